//! A local Solana cluster for tests: finding, starting and funding `solana-test-validator`.
//!
//! Owns the validator child process and its temporary ledger: [`TestValidator`] starts one on
//! free ports and kills it on drop; [`chain_env`] hands tests either the endpoint exported by
//! the `localnet` launcher (`$SOLANA_RPC_URL`) or a validator shared by all tests of this
//! process; [`airdrop`] funds a test's fresh keypair.
//!
//! It speaks plain JSON-RPC over `reqwest` and must not depend on the `chain` crate (whose
//! tests use this module), so the little RPC it needs is written out here.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

/// Pinned validator version; matches `scripts/install-validator.sh`.
const AGAVE_VERSION: &str = "4.2.2";
/// How long a fresh validator may take to answer `getHealth` with a slot > 0.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an airdrop may take to be confirmed.
const AIRDROP_TIMEOUT: Duration = Duration::from_secs(30);
/// Ports one validator gets: RPC, RPC websocket (RPC + 1), faucet, gossip, then the dynamic
/// range (TPU, TVU, repair, QUIC...). The validator needs at least 26 dynamic ports; 60
/// leaves room for its QUIC endpoints.
const PORT_BLOCK: u16 = 64;
/// Blocks are picked below Linux's ephemeral range (32768+) so outgoing connections of other
/// processes do not grab a port between our check and the validator's bind.
const PORT_SEARCH_START: u16 = 11_000;
const PORT_SEARCH_END: u16 = 32_000;
/// Start attempts: another process may take a port between our check and the bind.
const START_ATTEMPTS: usize = 3;

/// Path of the `solana-test-validator` binary: `$SOLANA_TEST_VALIDATOR` if set, else the
/// cached install of `scripts/install-validator.sh`, else the first one on `PATH`.
pub fn validator_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SOLANA_TEST_VALIDATOR").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let cached = PathBuf::from(home)
            .join(".cache/credential-anchor/tools")
            .join(format!("agave-{AGAVE_VERSION}"))
            .join("bin/solana-test-validator");
        if cached.is_file() {
            return Some(cached);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("solana-test-validator"))
            .find(|candidate| candidate.is_file())
    })
}

/// A running `solana-test-validator` with its own temporary ledger and ports. Dropping it
/// kills the process and waits for it, then deletes the ledger.
pub struct TestValidator {
    child: Child,
    rpc_url: String,
    rpc_addr: SocketAddrV4,
    faucet_port: u16,
    ports: PortReservation,
    // Declared last so it is removed after the process is gone.
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestValidator")
            .field("pid", &self.child.id())
            .field("rpc_url", &self.rpc_url)
            .field("ledger", &self.ledger_path())
            .finish()
    }
}

impl TestValidator {
    /// Starts a validator on free ports and waits until it answers `getHealth` = ok with a
    /// confirmed slot > 0 (at most 60 s; the error carries the tail of its log).
    ///
    /// Blocking (it polls with plain `std::net` HTTP, so it needs no runtime): from async
    /// code call it through `tokio::task::spawn_blocking`, as [`chain_env`] does.
    pub fn start() -> anyhow::Result<TestValidator> {
        Self::start_with(None)
    }

    /// `start`, optionally in a session of its own whose scheduling group (Linux autogroup)
    /// runs at `own_group_nice`. The benchmark uses it: the validator is a fixture sharing the
    /// cores with the services measured, and a nice value only orders threads within one
    /// group, while PostgreSQL's server runs in a group of its own anyway. With its own group
    /// at nice 19, the validator yields the CPU to everything else and takes what is idle.
    pub fn start_with(own_group_nice: Option<i32>) -> anyhow::Result<TestValidator> {
        let binary = validator_binary().ok_or_else(|| {
            anyhow!(
                "solana-test-validator not found: set SOLANA_TEST_VALIDATOR, run \
                 scripts/install-validator.sh, or put it on PATH"
            )
        })?;
        let mut last_error = None;
        for attempt in 1..=START_ATTEMPTS {
            match Self::start_once(&binary, own_group_nice) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "solana-test-validator did not start");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("solana-test-validator did not start")))
    }

    fn start_once(binary: &Path, own_group_nice: Option<i32>) -> anyhow::Result<TestValidator> {
        let ports = PortReservation::reserve()?;
        let dir = tempfile::Builder::new()
            .prefix("test-validator-")
            .tempdir()
            .context("create the validator's temp dir")?;
        let ledger = dir.path().join("ledger");
        let stdout = std::fs::File::create(dir.path().join("stdout.log"))?;
        let stderr = std::fs::File::create(dir.path().join("stderr.log"))?;
        let base = ports.base;
        let (rpc_port, faucet_port, gossip_port) = (base, base + 2, base + 3);
        let dynamic = format!("{}-{}", base + 4, base + PORT_BLOCK);
        // The validator runs under a small shell watchdog in a process group of its own: if
        // this process dies without running `Drop` (Ctrl-C, a test-runner timeout, SIGKILL),
        // the watchdog sees it within a second and kills the validator, so no orphan keeps a
        // core and the ports busy. `Drop` kills the whole group.
        // In its own session (`setsid` execs in place: the spawned pid stays the group
        // leader `Drop` kills) when it gets a scheduling group of its own.
        let mut command = match own_group_nice {
            Some(_) => {
                let mut c = Command::new("setsid");
                c.arg("sh");
                c
            }
            None => {
                let mut c = Command::new("sh");
                c.process_group(0);
                c
            }
        };
        let child = command
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("sh")
            .arg(std::process::id().to_string())
            .arg(binary)
            .arg("--ledger")
            .arg(&ledger)
            .args(["--reset", "--quiet", "--bind-address", "127.0.0.1"])
            // The default keeps only 10,000 shreds: a busy test run purges transactions a
            // minute old, and tests (verifier, reconciler) read old transactions back. Keep
            // the whole run's ledger (tens of MB).
            .args(["--limit-ledger-size", "50000000"])
            .args(["--rpc-port", &rpc_port.to_string()])
            .args(["--faucet-port", &faucet_port.to_string()])
            .args(["--gossip-port", &gossip_port.to_string()])
            .args(["--dynamic-port-range", &dynamic])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawn {} under sh", binary.display()))?;
        let mut validator = TestValidator {
            child,
            rpc_url: format!("http://127.0.0.1:{rpc_port}"),
            rpc_addr: SocketAddrV4::new(Ipv4Addr::LOCALHOST, rpc_port),
            faucet_port,
            ports,
            dir,
        };
        validator.wait_until_ready()?;
        if let Some(nice) = own_group_nice {
            // After readiness, so `setsid` has long run: the group is then the validator's
            // alone, never this process's. Not fatal: the benchmark reports what it finds.
            if let Err(e) = set_own_group_nice(validator.child.id(), nice) {
                tracing::warn!(error = %format!("{e:#}"), "validator left at normal priority");
                eprintln!("localnet: validator left at normal priority: {e:#}");
            }
        }
        tracing::info!(rpc_url = %validator.rpc_url, "solana-test-validator ready");
        Ok(validator)
    }

    fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "solana-test-validator exited during startup ({status}); log tail:\n{}",
                    self.log_tail(40)
                );
            }
            if self.is_ready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "solana-test-validator at {} not ready after {STARTUP_TIMEOUT:?}; log tail:\n{}",
                    self.rpc_url,
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn is_ready(&self) -> bool {
        let healthy = matches!(
            blocking_rpc_call(self.rpc_addr, "getHealth", json!([])),
            Ok(Value::String(s)) if s == "ok"
        );
        // A confirmed slot > 0 means blocks are being voted on, so blockhashes and airdrops
        // work at `confirmed`.
        healthy
            && matches!(
                blocking_rpc_call(self.rpc_addr, "getSlot", json!([{"commitment": "confirmed"}])),
                Ok(Value::Number(n)) if n.as_u64().is_some_and(|slot| slot > 0)
            )
    }

    /// JSON-RPC endpoint, e.g. `http://127.0.0.1:11234`.
    pub fn rpc_url(&self) -> &str {
        &self.rpc_url
    }

    /// Port of the validator's faucet (airdrops go through RPC `requestAirdrop`).
    pub fn faucet_port(&self) -> u16 {
        self.faucet_port
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.dir.path().join("ledger")
    }

    /// Last `lines` lines of the validator's stderr and log file, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for (name, path) in [
            ("stderr", self.dir.path().join("stderr.log")),
            ("validator.log", self.ledger_path().join("validator.log")),
        ] {
            let tail = tail_of_file(&path, lines);
            if !tail.is_empty() {
                out.push_str(&format!("--- {name} ---\n{tail}\n"));
            }
        }
        if out.is_empty() {
            out.push_str("(no log output)");
        }
        out
    }
}

impl Drop for TestValidator {
    fn drop(&mut self) {
        // SIGKILL to the whole group (watchdog and validator): the ledger is thrown away, so a
        // clean shutdown buys nothing.
        let group = self.child.id();
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -KILL -- -{group} 2>/dev/null"))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.ports.release();
    }
}

/// `sh -c WATCHDOG_SCRIPT sh <parent pid> <validator> <args...>`: runs the validator in the
/// foreground (so the shell exits when it does, and `try_wait` sees that), next to a
/// background loop that kills the whole process group once the parent process is gone.
const WATCHDOG_SCRIPT: &str = r#"parent=$1; shift
( while kill -0 "$parent" 2>/dev/null; do sleep 1; done; kill -KILL 0 ) &
watchdog=$!
"$@"
status=$?
kill "$watchdog" 2>/dev/null
exit $status"#;

/// Where a test's chain lives.
#[derive(Debug, Clone)]
pub enum ChainEnv {
    /// An endpoint someone else runs (`$SOLANA_RPC_URL`, set by the `localnet` launcher).
    External(String),
    /// A validator started by this process, shared by every test alive at the same time
    /// (one validator keeps a core busy; one per test would starve a small machine). It
    /// stops when the last test holding it is done.
    Owned(Arc<TestValidator>),
}

impl ChainEnv {
    pub fn rpc_url(&self) -> &str {
        match self {
            ChainEnv::External(url) => url,
            ChainEnv::Owned(validator) => validator.rpc_url(),
        }
    }
}

/// The chain for a test: `$SOLANA_RPC_URL` when set, else this process's shared validator
/// (started on first use). Tests isolate themselves by funding a fresh keypair each.
pub async fn chain_env() -> anyhow::Result<ChainEnv> {
    if let Ok(url) = std::env::var("SOLANA_RPC_URL") {
        if !url.trim().is_empty() {
            return Ok(ChainEnv::External(url));
        }
    }
    // A tokio mutex, held across the (slow) start, so concurrent tests wait for the one
    // validator instead of each starting their own.
    static SHARED: tokio::sync::Mutex<Weak<TestValidator>> =
        tokio::sync::Mutex::const_new(Weak::new());
    let mut shared = SHARED.lock().await;
    if let Some(validator) = shared.upgrade() {
        return Ok(ChainEnv::Owned(validator));
    }
    let validator = tokio::task::spawn_blocking(TestValidator::start)
        .await
        .context("validator start task")??;
    let validator = Arc::new(validator);
    *shared = Arc::downgrade(&validator);
    Ok(ChainEnv::Owned(validator))
}

/// Airdrops `lamports` to `pubkey_base58` and waits until the airdrop is confirmed (30 s).
pub async fn airdrop(rpc_url: &str, pubkey_base58: &str, lamports: u64) -> anyhow::Result<()> {
    let http = http_client()?;
    let signature = rpc_call(
        &http,
        rpc_url,
        "requestAirdrop",
        json!([pubkey_base58, lamports, {"commitment": "confirmed"}]),
    )
    .await?;
    let signature = signature
        .as_str()
        .ok_or_else(|| anyhow!("requestAirdrop returned {signature}, not a signature"))?
        .to_string();
    let deadline = Instant::now() + AIRDROP_TIMEOUT;
    loop {
        let statuses = rpc_call(
            &http,
            rpc_url,
            "getSignatureStatuses",
            json!([[signature], {"searchTransactionHistory": false}]),
        )
        .await?;
        let status = &statuses["value"][0];
        if !status.is_null() {
            if !status["err"].is_null() {
                bail!("airdrop {signature} failed: {}", status["err"]);
            }
            if matches!(
                status["confirmationStatus"].as_str(),
                Some("confirmed" | "finalized")
            ) {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            bail!("airdrop {signature} to {pubkey_base58} not confirmed after {AIRDROP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the chain's own clock (the block time of the newest finalized slot) is past
/// `unix_secs` (60 s at most). Block times are the validator's vote timestamps, clamped to
/// what its slot count allows: on a loaded machine, where slots come slower than 400 ms, the
/// chain's clock trails the wall clock by seconds. A test whose premise is "this transaction
/// lands after that moment" by the chain's clock waits here rather than sleeping.
pub async fn wait_chain_clock_past(rpc_url: &str, unix_secs: i64) -> anyhow::Result<i64> {
    let http = http_client()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let slot = rpc_call(
            &http,
            rpc_url,
            "getSlot",
            json!([{"commitment": "finalized"}]),
        )
        .await?;
        let time = rpc_call(&http, rpc_url, "getBlockTime", json!([slot])).await?;
        match time.as_i64() {
            Some(t) if t > unix_secs => return Ok(t),
            _ if Instant::now() >= deadline => {
                bail!("the chain's clock is still at {time} (slot {slot}), not past {unix_secs}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The autogroup line of `/proc/<pid>/autogroup` ("/autogroup-123 nice 0"): (group, nice).
pub fn parse_autogroup(line: &str) -> Option<(&str, i32)> {
    let mut parts = line.split_whitespace();
    let group = parts.next()?;
    (parts.next()? == "nice").then_some(())?;
    Some((group, parts.next()?.parse().ok()?))
}

/// Sets the nice value of `pid`'s autogroup, refusing when that group is also this
/// process's (it would slow the caller down too).
fn set_own_group_nice(pid: u32, nice: i32) -> anyhow::Result<()> {
    let path = format!("/proc/{pid}/autogroup");
    let theirs = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path} (kernel without autogroups?)"))?;
    let ours = std::fs::read_to_string("/proc/self/autogroup")?;
    let (their_group, _) =
        parse_autogroup(&theirs).with_context(|| format!("unexpected {path}: {theirs:?}"))?;
    let (our_group, _) =
        parse_autogroup(&ours).with_context(|| format!("unexpected autogroup: {ours:?}"))?;
    if their_group == our_group {
        bail!("the validator shares this process's scheduling group {our_group}");
    }
    std::fs::write(&path, nice.to_string()).with_context(|| format!("writing {path}"))
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("build HTTP client")
}

/// One JSON-RPC call; the `result`, or an error carrying the node's error object.
async fn rpc_call(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    params: Value,
) -> anyhow::Result<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let response: Value = http
        .post(url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("{method} to {url}"))?
        .error_for_status()
        .with_context(|| format!("{method} to {url}"))?
        .json()
        .await
        .with_context(|| format!("{method} response from {url}"))?;
    if let Some(error) = response.get("error") {
        bail!("{method} failed: {error}");
    }
    response
        .get("result")
        .cloned()
        .ok_or_else(|| anyhow!("{method} response has no result: {response}"))
}

/// One JSON-RPC call over a plain blocking HTTP/1.0 connection (no chunked encoding, the
/// server closes after the response), for startup polling without an async runtime.
fn blocking_rpc_call(addr: SocketAddrV4, method: &str, params: Value) -> anyhow::Result<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr.into(), timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "POST / HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("{method}: malformed HTTP response"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("{method}: {}", head.lines().next().unwrap_or(""));
    }
    let response: Value = serde_json::from_str(payload)?;
    if let Some(error) = response.get("error") {
        bail!("{method} failed: {error}");
    }
    response
        .get("result")
        .cloned()
        .ok_or_else(|| anyhow!("{method} response has no result"))
}

fn tail_of_file(path: &Path, lines: usize) -> String {
    // Read at most the last 64 KiB: validator logs grow quickly.
    const MAX: u64 = 64 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(MAX)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A block of `PORT_BLOCK` consecutive ports, free when checked, and not handed to another
/// validator of this process until released.
struct PortReservation {
    base: u16,
    released: bool,
}

/// Bases of the blocks this process has handed out (tests run in parallel threads).
static RESERVED_BLOCKS: Mutex<Vec<u16>> = Mutex::new(Vec::new());

impl PortReservation {
    fn reserve() -> anyhow::Result<Self> {
        let mut seed = RandomState::new().build_hasher();
        seed.write_u32(std::process::id());
        let mut state = seed.finish();
        let span = u64::from(PORT_SEARCH_END - PORT_SEARCH_START - PORT_BLOCK);
        for _ in 0..500 {
            // xorshift: cheap, good enough to spread processes over the range.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let offset = u16::try_from(state % span).unwrap_or(0);
            let base = PORT_SEARCH_START + offset;
            let mut taken = RESERVED_BLOCKS
                .lock()
                .map_err(|_| anyhow!("port reservation lock poisoned"))?;
            let overlaps = taken
                .iter()
                .any(|&other| base < other + PORT_BLOCK && other < base + PORT_BLOCK);
            if overlaps || !(base..base + PORT_BLOCK).all(port_is_free) {
                continue;
            }
            taken.push(base);
            return Ok(Self {
                base,
                released: false,
            });
        }
        bail!("no block of {PORT_BLOCK} free ports found in {PORT_SEARCH_START}..{PORT_SEARCH_END}")
    }

    fn release(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        if let Ok(mut taken) = RESERVED_BLOCKS.lock() {
            taken.retain(|&b| b != self.base);
        }
    }
}

impl Drop for PortReservation {
    fn drop(&mut self) {
        self.release();
    }
}

/// Free for both TCP and UDP on loopback, and for TCP on all interfaces (the faucet binds
/// 0.0.0.0).
fn port_is_free(port: u16) -> bool {
    let loopback = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    TcpListener::bind(loopback).is_ok()
        && UdpSocket::bind(loopback).is_ok()
        && TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_blocks_do_not_overlap_within_a_process() {
        let a = PortReservation::reserve().unwrap();
        let b = PortReservation::reserve().unwrap();
        assert!(a.base + PORT_BLOCK <= b.base || b.base + PORT_BLOCK <= a.base);
        assert!(a.base >= PORT_SEARCH_START && a.base + PORT_BLOCK <= PORT_SEARCH_END);
    }

    #[test]
    fn autogroup_lines_parse_into_group_and_nice() {
        assert_eq!(
            parse_autogroup("/autogroup-54450 nice 19\n"),
            Some(("/autogroup-54450", 19))
        );
        assert_eq!(
            parse_autogroup("/autogroup-1 nice -5"),
            Some(("/autogroup-1", -5))
        );
        assert_eq!(parse_autogroup("/autogroup-1 weight 3"), None);
        assert_eq!(parse_autogroup(""), None);
    }

    #[test]
    fn tail_reads_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(tail_of_file(&path, 2), "c\nd");
        assert_eq!(tail_of_file(&dir.path().join("missing"), 2), "");
    }
}
