//! The three services as real processes, configured only through `APP__*` variables as in
//! production: the one bring-up behind `localnet up --services` (the demo, the Prometheus
//! and schemathesis scripts) and the bench.
//!
//! Provisioning goes through the binaries' own operator commands (`issuer-api admin`,
//! `outbox-relay keygen/pubkey/airdrop`), exactly what the README tells an operator to run,
//! so this module depends on no service crate. Every port is chosen free at run time and
//! every setting is passed explicitly: no service falls back to a default port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::ports::free_port;

/// One of the service binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    IssuerApi,
    OutboxRelay,
    Reconciler,
}

impl Service {
    pub fn binary(self) -> &'static str {
        match self {
            Service::IssuerApi => "issuer-api",
            Service::OutboxRelay => "outbox-relay",
            Service::Reconciler => "reconciler",
        }
    }
}

/// What every service of one stack shares.
#[derive(Debug, Clone)]
pub struct StackEnv {
    pub database_url: String,
    pub rpc_url: String,
    /// The API's signing master key, base64 (`issuer-api admin new-master-key`).
    pub master_key_b64: String,
    /// The anchoring keypair file: given to the relay only (the others never sign and
    /// refuse one).
    pub keypair_path: PathBuf,
    pub log_filter: String,
    /// The API's `/metrics` port (`http.metrics_port`); 0 picks a free one nobody reads.
    pub api_metrics_port: u16,
}

impl StackEnv {
    /// The variables of `service` whose HTTP port (the API) or probe port (the others) is
    /// `port`. The caller's own `APP__*` variables are inherited by the process and win
    /// only where this list says nothing (e.g. `APP__RECONCILE__INTERVAL_SECS`).
    pub fn env(&self, service: Service, port: u16) -> Vec<(String, String)> {
        let mut env = vec![
            ("APP__DATABASE__URL".to_string(), self.database_url.clone()),
            ("APP__CHAIN__RPC_URL".to_string(), self.rpc_url.clone()),
            ("APP__LOG__FILTER".to_string(), self.log_filter.clone()),
        ];
        let port = port.to_string();
        match service {
            Service::IssuerApi => env.extend([
                (
                    "APP__SIGNING__MASTER_KEY".to_string(),
                    self.master_key_b64.clone(),
                ),
                ("APP__HTTP__HOST".to_string(), "127.0.0.1".to_string()),
                ("APP__HTTP__PORT".to_string(), port),
                (
                    "APP__HTTP__METRICS_PORT".to_string(),
                    self.api_metrics_port.to_string(),
                ),
                // Explorer links of a local validator point at it.
                (
                    "APP__EXPLORER__CUSTOM_RPC_URL".to_string(),
                    self.rpc_url.clone(),
                ),
            ]),
            Service::OutboxRelay | Service::Reconciler => {
                env.extend([
                    ("APP__PROBES__HOST".to_string(), "127.0.0.1".to_string()),
                    ("APP__PROBES__PORT".to_string(), port),
                ]);
                if service == Service::OutboxRelay {
                    env.push((
                        "APP__CHAIN__KEYPAIR_PATH".to_string(),
                        self.keypair_path.display().to_string(),
                    ));
                }
            }
        }
        env
    }
}

/// A running service process; killed on drop.
pub struct ServiceProcess {
    pub service: Service,
    pub child: Child,
    /// `/readyz` of its HTTP or probe port.
    pub ready_url: String,
    pub log: PathBuf,
}

impl ServiceProcess {
    /// Starts `bin_dir/<service> args` with `env`, its stderr (where logs go) into `log`.
    pub fn spawn(
        bin_dir: &Path,
        service: Service,
        args: &[&str],
        env: &[(String, String)],
        port: u16,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let bin = bin_dir.join(service.binary());
        let file = std::fs::File::create(log).with_context(|| format!("{}", log.display()))?;
        let mut command = Command::new(&bin);
        command.args(args);
        // The process inherits the caller's environment; a keypair exported there for some
        // other relay would make a service that never signs refuse to start.
        if service != Service::OutboxRelay {
            command.env_remove("APP__CHAIN__KEYPAIR_PATH");
        }
        let child = command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Self {
            service,
            child,
            ready_url: format!("http://127.0.0.1:{port}/readyz"),
            log: log.to_path_buf(),
        })
    }

    /// Waits for `/readyz` to answer 200; fails at once if the process exits, with the end
    /// of its log.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(&self.ready_url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.service.binary(),
                    log_tail(&self.log)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not ready within {timeout:?}:\n{}",
                    self.service.binary(),
                    log_tail(&self.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Runs an operator command of a service binary and returns its stdout; a failure carries
/// its stderr.
pub fn operator_command(
    bin_dir: &Path,
    service: Service,
    args: &[&str],
    env: &[(String, String)],
) -> anyhow::Result<String> {
    let bin = bin_dir.join(service.binary());
    let out = Command::new(&bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed ({}): {}",
            service.binary(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// What `start_stack` brings up.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub bin_dir: PathBuf,
    /// Keypair, logs and the issuer's answer are written here.
    pub work_dir: PathBuf,
    pub issuer_id: String,
    pub issuer_name: String,
    /// Lamports airdropped to the anchoring key, in SOL.
    pub sol: u32,
    pub relay: bool,
    pub reconciler: bool,
    pub log_filter: String,
}

/// A provisioned, running stack.
pub struct RunningStack {
    pub env: StackEnv,
    pub processes: Vec<ServiceProcess>,
    /// What the scripts need, as `NAME=value` (see `localnet up --services`).
    pub vars: Vec<(String, String)>,
}

/// Provisions an issuer and starts the services on `database_url` and `rpc_url`: a master
/// key, an anchoring keypair (funded), `issuer-api admin create-issuer`, then each service
/// until its `/readyz` answers.
pub async fn start_stack(
    opts: &StackOptions,
    database_url: &str,
    rpc_url: &str,
) -> anyhow::Result<RunningStack> {
    let bin = &opts.bin_dir;
    std::fs::create_dir_all(&opts.work_dir)?;
    let keypair_path = opts.work_dir.join("anchor.json");
    let master_key_b64 =
        operator_command(bin, Service::IssuerApi, &["admin", "new-master-key"], &[])?;
    let env = StackEnv {
        database_url: database_url.to_string(),
        rpc_url: rpc_url.to_string(),
        master_key_b64,
        keypair_path: keypair_path.clone(),
        log_filter: opts.log_filter.clone(),
        api_metrics_port: free_port()?,
    };
    let keypair = keypair_path.display().to_string();
    operator_command(
        bin,
        Service::OutboxRelay,
        &["keygen", "--out", &keypair],
        &[],
    )?;
    let anchor_pubkey = operator_command(
        bin,
        Service::OutboxRelay,
        &["pubkey", "--keypair", &keypair],
        &[],
    )?;
    let relay_cli_env = env.env(Service::OutboxRelay, 0);
    operator_command(
        bin,
        Service::OutboxRelay,
        &[
            "airdrop",
            "--keypair",
            &keypair,
            "--sol",
            &opts.sol.to_string(),
        ],
        &relay_cli_env,
    )?;
    let api_port = free_port()?;
    let api_env = env.env(Service::IssuerApi, api_port);
    let created = operator_command(
        bin,
        Service::IssuerApi,
        &[
            "admin",
            "create-issuer",
            "--id",
            &opts.issuer_id,
            "--name",
            &opts.issuer_name,
            "--anchor-pubkey",
            &anchor_pubkey,
        ],
        &api_env,
    )?;
    std::fs::write(opts.work_dir.join("issuer.json"), &created)?;
    let issuer: serde_json::Value =
        serde_json::from_str(&created).context("create-issuer printed no JSON")?;
    let api_key = issuer["api_key"]
        .as_str()
        .context("create-issuer printed no api_key")?
        .to_string();

    let mut processes = Vec::new();
    let mut vars = vec![
        (
            "API_URL".to_string(),
            format!("http://127.0.0.1:{api_port}"),
        ),
        ("API_KEY".to_string(), api_key),
        ("ISSUER_ID".to_string(), opts.issuer_id.clone()),
        ("ANCHOR_PUBKEY".to_string(), anchor_pubkey),
        ("ANCHOR_KEYPAIR".to_string(), keypair),
        ("MASTER_KEY".to_string(), env.master_key_b64.clone()),
        (
            "API_METRICS_PORT".to_string(),
            env.api_metrics_port.to_string(),
        ),
        ("LOG_DIR".to_string(), opts.work_dir.display().to_string()),
    ];
    let mut start = |service: Service, port: u16, var: &str| -> anyhow::Result<()> {
        let log = opts.work_dir.join(format!("{}.log", service.binary()));
        let process = ServiceProcess::spawn(
            bin,
            service,
            &["serve"],
            &env.env(service, port),
            port,
            &log,
        )?;
        vars.push((format!("{var}_PORT"), port.to_string()));
        vars.push((format!("{var}_PID"), process.pid().to_string()));
        processes.push(process);
        Ok(())
    };
    start(Service::IssuerApi, api_port, "API")?;
    if opts.relay {
        start(Service::OutboxRelay, free_port()?, "RELAY")?;
    }
    if opts.reconciler {
        start(Service::Reconciler, free_port()?, "RECONCILER")?;
    }
    for process in &mut processes {
        process.wait_ready(Duration::from_secs(60)).await?;
    }
    Ok(RunningStack {
        env,
        processes,
        vars,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> StackEnv {
        StackEnv {
            database_url: "postgres://db".into(),
            rpc_url: "http://rpc".into(),
            master_key_b64: "bWFzdGVy".into(),
            keypair_path: "/k.json".into(),
            api_metrics_port: 0,
            log_filter: "warn".into(),
        }
    }

    fn get<'a>(vars: &'a [(String, String)], key: &str) -> Option<&'a str> {
        vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn only_the_relay_gets_the_keypair_and_only_the_api_the_master_key() {
        let api = env().env(Service::IssuerApi, 1);
        let relay = env().env(Service::OutboxRelay, 2);
        let reconciler = env().env(Service::Reconciler, 3);
        assert_eq!(get(&api, "APP__HTTP__PORT"), Some("1"));
        assert_eq!(get(&relay, "APP__PROBES__PORT"), Some("2"));
        assert_eq!(get(&reconciler, "APP__PROBES__PORT"), Some("3"));
        assert!(get(&api, "APP__SIGNING__MASTER_KEY").is_some());
        assert!(get(&relay, "APP__SIGNING__MASTER_KEY").is_none());
        assert_eq!(get(&relay, "APP__CHAIN__KEYPAIR_PATH"), Some("/k.json"));
        assert!(get(&api, "APP__CHAIN__KEYPAIR_PATH").is_none());
        assert!(get(&reconciler, "APP__CHAIN__KEYPAIR_PATH").is_none());
        for vars in [&api, &relay, &reconciler] {
            assert_eq!(get(vars, "APP__CHAIN__RPC_URL"), Some("http://rpc"));
            assert_eq!(get(vars, "APP__DATABASE__URL"), Some("postgres://db"));
        }
    }
}
