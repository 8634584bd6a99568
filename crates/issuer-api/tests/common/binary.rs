//! The real `issuer-api` binary, set up as an operator would: a master key from `admin
//! new-master-key`, an issuer from `admin create-issuer`, then `serve` on a free port,
//! waited for until `/readyz` answers. Shared by the suites that watch the process itself
//! (its logs, its memory).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct Served {
    /// Kept alive with the server.
    pub db: testkit::TestDb,
    pub api: String,
    pub api_key: String,
    pub master_key: String,
    pub child: Child,
    /// The variables it was started with.
    pub env: Vec<(&'static str, String)>,
}

/// Starts the binary at `log_filter`; its stdout and stderr go to `log` (or nowhere).
pub async fn serve(issuer: &str, log_filter: &str, log: Option<&Path>) -> Served {
    serve_with(issuer, log_filter, log, &[]).await
}

/// `serve` with more variables (`extra` wins over the defaults).
pub async fn serve_with(
    issuer: &str,
    log_filter: &str,
    log: Option<&Path>,
    extra: &[(&'static str, String)],
) -> Served {
    let db = testkit::test_db().await.unwrap();
    let bin = env!("CARGO_BIN_EXE_issuer-api");
    let master_key = String::from_utf8(
        Command::new(bin)
            .args(["admin", "new-master-key"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let port = testkit::ports::free_port().unwrap();
    let mut env = vec![
        ("APP__DATABASE__URL", db.url.clone()),
        ("APP__SIGNING__MASTER_KEY", master_key.clone()),
        ("APP__HTTP__HOST", "127.0.0.1".into()),
        ("APP__HTTP__PORT", port.to_string()),
        ("APP__HTTP__METRICS_PORT", "0".into()),
        ("APP__HTTP__WORKERS", "2".into()),
        ("APP__LOG__FILTER", log_filter.into()),
        ("APP__LOG__FORMAT", "json".into()),
        // Required of every service; nothing listens there (these suites never read the chain).
        ("APP__CHAIN__RPC_URL", "http://127.0.0.1:9".into()),
    ];
    env.extend(extra.iter().cloned());
    let created = Command::new(bin)
        .args([
            "admin",
            "create-issuer",
            "--id",
            issuer,
            "--name",
            "Process University",
            "--anchor-pubkey",
            "11111111111111111111111111111112",
        ])
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let api_key = created["api_key"].as_str().unwrap().to_string();
    let (stdout, stderr) = match log {
        Some(path) => {
            let file = std::fs::File::create(path).unwrap();
            (Stdio::from(file.try_clone().unwrap()), Stdio::from(file))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    let child = Command::new(bin)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdout(stdout)
        .stderr(stderr)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let api = format!("http://127.0.0.1:{port}");
    wait_ready(&api).await;
    Served {
        db,
        api,
        api_key,
        master_key,
        child,
        env,
    }
}

/// Waits (up to 10 s) until `api`'s `/readyz` answers 200.
pub async fn wait_ready(api: &str) {
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("{api}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Served {
    /// Runs `issuer-api <args>` with this server's variables and `extra` on top: (success,
    /// stdout, stderr).
    pub fn command(&self, args: &[&str], extra: &[(&str, String)]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_issuer-api"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v)))
            .envs(extra.iter().map(|(k, v)| (*k, v)))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Stops the server and starts it again with `extra` on top of its variables (same
    /// port), output discarded.
    pub async fn restart(&mut self, extra: &[(&str, String)]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Command::new(env!("CARGO_BIN_EXE_issuer-api"))
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (*k, v)))
            .envs(extra.iter().map(|(k, v)| (*k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        wait_ready(&self.api).await;
    }
}

/// The peak resident memory of process `pid` (VmHWM in /proc), in MiB.
pub fn vm_hwm_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024.0
}
