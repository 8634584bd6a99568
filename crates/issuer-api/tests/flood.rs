//! The public routes under attack (#18, the load test): 150 clients uploading 1 MiB bodies to
//! `POST /v1/verify` back to back and 50 slow-loris clients dribbling theirs, 200 at once from
//! 200 addresses (behind a trusted proxy, as through an ingress), against the real binary on
//! loopback, while an authenticated portal issues credentials one after another.
//!
//! The public routes have their own listener (`public.port`), whose workers run at niceness 10
//! (`public.nice`): the kernel gives the portal's workers the CPU first.
//!
//! Asserts: the portal's routes and the public ones each answer only on their own port; no
//! answer to the attack is a 5xx, the slow bodies meet the read deadline (408) and the flood
//! the limits (429); every issuance succeeds during the attack, and its p99 stays within 2x of
//! the unloaded p99 (300 issuances each); the API's peak resident memory (VmHWM) stays under a
//! 512 MiB pod. The p99 is a timed figure on a shared 2-core machine, so nextest retries this
//! test twice (`.config/nextest.toml`). Measured on this machine (docs/reliability.md,
//! "Abuse"): 15 runs, 13 within 2x (0.8x to 2.0x), 2 over (3.97x and 15x). The attack lasts as
//! long as the loaded phase, at least 6 s.
//! It takes every test thread (`.config/nextest.toml`), so the rest of the suite does not
//! share the two cores with it, and `make test` runs it first, on its own, before the suite
//! has loaded the validator and PostgreSQL: the figure is the attack's effect, not the
//! suite's. (In the middle of the suite, the CI run of 6956fd1 measured 21-29 ms unloaded and
//! 174-414 ms under attack, three tries out of three.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // each suite reads the fields it needs
#[path = "common/binary.rs"]
mod binary;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ISSUANCES: usize = 300;
const FLOODERS: usize = 150;
const LORIS: usize = 50;
const POD_LIMIT_MIB: f64 = 512.0;

fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[(samples.len() * 99).div_ceil(100) - 1]
}

/// One verification request with a 1 MiB file, from client `ip` (X-Forwarded-For).
fn verify_request(port: u16, ip: &str, file: &[u8]) -> Vec<u8> {
    let boundary = "floodboundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(file);
    for (name, value) in [
        ("issuer_id", "uni-flood"),
        ("recipient_id", "student-1"),
        ("issued_at", "2026-06-30T12:00:00Z"),
        ("serial", "FLOOD-1"),
    ] {
        body.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}").as_bytes(),
        );
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut request = format!(
        "POST /v1/verify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Forwarded-For: {ip}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

/// The status of the answer on `stream`, with the error code of a 5xx (`None` when the
/// server closed without one, as it may after refusing a body it will not read).
async fn read_status(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        // A 5xx is read whole, to name its code; anything else by its status line.
        if head.len() >= 12 && (head[9] != b'5' || head.len() > 4096) {
            break;
        }
    }
    let status = std::str::from_utf8(head.get(9..12)?).ok()?.to_string();
    if !status.starts_with('5') {
        return Some(status);
    }
    let text = String::from_utf8_lossy(&head);
    let code = text
        .split("\"code\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("?");
    Some(format!("{status} {code}"))
}

type Tally = Arc<Mutex<BTreeMap<String, usize>>>;

fn count(tally: &Tally, what: String) {
    *tally.lock().unwrap().entry(what).or_default() += 1;
}

/// Uploads back to back until `stop`.
async fn flooder(port: u16, ip: String, file: Arc<Vec<u8>>, stop: Arc<AtomicBool>, tally: Tally) {
    let request = verify_request(port, &ip, &file);
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
            count(&tally, "connect failed".into());
            continue;
        };
        // A refused upload may be closed mid-body: the status, if any, is still read.
        let _ = stream.write_all(&request).await;
        match read_status(&mut stream).await {
            Some(status) => count(&tally, status),
            None => count(&tally, "closed early".into()),
        }
    }
}

/// Sends the head and then one byte every 200 ms until the server answers or `stop`.
async fn loris(port: u16, ip: String, file: Arc<Vec<u8>>, stop: Arc<AtomicBool>, tally: Tally) {
    let request = verify_request(port, &ip, &file);
    let head_len = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
            count(&tally, "connect failed".into());
            continue;
        };
        if stream.write_all(&request[..head_len]).await.is_err() {
            continue;
        }
        let mut sent = head_len;
        let mut buf = [0u8; 1024];
        let status = loop {
            if stop.load(Ordering::Relaxed) {
                break None;
            }
            tokio::select! {
                read = stream.read(&mut buf) => {
                    break match read {
                        Ok(n) if n >= 12 => std::str::from_utf8(&buf[9..12]).ok().and_then(|s| s.parse::<u16>().ok()),
                        _ => None,
                    };
                }
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if sent < request.len() && stream.write_all(&request[sent..sent + 1]).await.is_ok() {
                        sent += 1;
                    }
                }
            }
        };
        match status {
            Some(status) => count(&tally, format!("loris {status}")),
            None if stop.load(Ordering::Relaxed) => {}
            None => count(&tally, "loris closed".into()),
        }
    }
}

/// The attackers' own runtime, on two threads at the lowest CPU priority (`renice 19`;
/// `FLOOD_ATTACKER_NICE` changes it, to measure the shared-machine case). In a
/// real attack their CPU is other machines'; here they share the API's two cores, and at equal
/// priority the figure would measure this machine being shared (the API's own p99 went from
/// 11.5 ms to 2.08 s that way), not what reaches the API. The attack still arrives at whatever
/// rate the cores allow.
fn attacker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(|| {
            // Linux: a thread id is a "process" to renice, which then applies to that thread.
            if let Some(tid) = std::fs::read_link("/proc/thread-self")
                .ok()
                .and_then(|link| link.file_name()?.to_str().map(str::to_string))
            {
                let nice = std::env::var("FLOOD_ATTACKER_NICE").unwrap_or_else(|_| "19".into());
                let _ = std::process::Command::new("renice")
                    .args(["-n", &nice, "-p", &tid])
                    .output();
            }
        })
        .build()
        .unwrap()
}

async fn issue_many(http: &reqwest::Client, api: &str, key: &str, prefix: &str) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(ISSUANCES);
    for i in 0..ISSUANCES {
        let body = json!({
            "recipient_id": format!("student-{prefix}-{i}"), "issued_at": "2026-06-30T12:00:00Z",
            "serial": format!("{prefix}-{i}"), "credential_type": "diploma", "title": "BSc",
            "file_base64": "JVBERi0xLjcgZmxvb2Q=",
        });
        let started = Instant::now();
        let resp = http
            .post(format!("{api}/v1/credentials"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        latencies.push(started.elapsed());
        assert_eq!(
            resp.status().as_u16(),
            202,
            "{}",
            resp.text().await.unwrap()
        );
    }
    latencies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_flood_and_slow_loris_get_no_5xx_while_issuance_goes_on_and_memory_stays_under_the_pod_limit(
) {
    let config = std::env::temp_dir().join(format!("flood-{}.toml", uuid::Uuid::new_v4()));
    // Loopback is the ingress: each attacker is its own client, as 200 machines would be.
    std::fs::write(&config, "[public]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").unwrap();
    // The public routes on their own listener (its workers at niceness 10), as in production.
    let port = testkit::ports::free_port().unwrap();
    let mut served = binary::serve_with(
        "uni-flood",
        "error",
        None,
        &[
            ("APP_CONFIG_FILE", config.display().to_string()),
            // Slow bodies get 408 after 5 s (30 in production), so the test stays short.
            ("APP__HTTP__BODY_READ_TIMEOUT_SECS", "5".into()),
            ("APP__PUBLIC__PORT", port.to_string()),
        ],
    )
    .await;
    let pid = served.child.id();
    let http = reqwest::Client::new();
    let key = served.api_key.clone();

    // The split: the public routes answer only on their port, the portal's only on the API's.
    let public = format!("http://127.0.0.1:{port}");
    let status = |url: String, post: bool| {
        let request = if post { http.post(url) } else { http.get(url) };
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(format!("{}/v1/verify", served.api), true).await, 404);
    assert_eq!(
        status(format!("{}/v1/%76erify", served.api), true).await,
        404
    );
    assert_eq!(
        status(format!("{public}/v1/%63redentials"), true).await,
        404
    );
    assert_eq!(status(format!("{}/verify", served.api), false).await, 404);
    assert_eq!(status(format!("{public}/verify"), false).await, 200);
    assert_eq!(status(format!("{public}/v1/credentials"), true).await, 404);
    assert_eq!(status(format!("{public}/healthz"), false).await, 200);
    assert_eq!(status(format!("{}/healthz", served.api), false).await, 200);

    // Warm (connections, caches, the signing key), then the unloaded figure.
    issue_many(&http, &served.api, &key, "WARM").await;
    let unloaded = p99(issue_many(&http, &served.api, &key, "QUIET").await);

    let stop = Arc::new(AtomicBool::new(false));
    let tally: Tally = Arc::default();
    let file = Arc::new(vec![b'%'; 1024 * 1024]);
    let runtime = attacker_runtime();
    let mut attackers = Vec::new();
    for n in 0..FLOODERS + LORIS {
        let ip = format!("198.18.{}.{}", n / 250, n % 250 + 1);
        let (stop, tally, file) = (stop.clone(), tally.clone(), file.clone());
        if n < FLOODERS {
            attackers.push(runtime.spawn(flooder(port, ip, file, stop, tally)));
        } else {
            attackers.push(runtime.spawn(loris(port, ip, file, stop, tally)));
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attack_started = Instant::now();
    let loaded_samples = issue_many(&http, &served.api, &key, "LOUD").await;
    let attack_secs = attack_started.elapsed().as_secs_f64();
    // Long enough for every slow-loris client to meet the read deadline at least once.
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(attack_started.elapsed())).await;
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        let _ = attacker.await;
    }
    runtime.shutdown_background();
    let loaded = p99(loaded_samples);
    let peak = binary::vm_hwm_mib(pid);
    let tally = tally.lock().unwrap().clone();
    eprintln!(
        "issuance p99: unloaded {unloaded:?}, under attack {loaded:?} ({attack_secs:.1} s); API peak RSS {peak:.0} MiB; attack answers {tally:?}"
    );

    let five_xx: usize = tally
        .iter()
        .filter(|(k, _)| k.trim_start_matches("loris ").starts_with('5'))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(five_xx, 0, "5xx answers to the attack: {tally:?}");
    assert!(
        tally.get("loris 408").copied().unwrap_or(0) > 0,
        "no slow body met the read deadline: {tally:?}"
    );
    assert!(
        tally.get("429").copied().unwrap_or(0) > 0,
        "the flood was never limited: {tally:?}"
    );
    assert!(peak < POD_LIMIT_MIB, "peak RSS {peak:.0} MiB");
    assert!(
        loaded <= unloaded * 2,
        "issuance p99 under attack {loaded:?} is more than twice the unloaded {unloaded:?}"
    );
    let _ = served.child.kill();
    let _ = std::fs::remove_file(config);
}
