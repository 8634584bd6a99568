//! A webhook receiver for integration tests (issue #24): `interop/webhook-receiver.mjs` as a
//! child process.
//!
//! Why a Node process and not an axum handler in the test: every delivery is checked with the
//! Standard Webhooks reference library (npm `standardwebhooks`, pinned in interop/), so a
//! test proves that a receiver who follows the standard accepts what we send, not merely that
//! our signer agrees with our own verifier. Each named endpoint can be told to answer any
//! status after any delay (500 then 200, 410, a hang), and can check each delivery against
//! several secrets at once (rotation: which of old and new verified).
//!
//! The process is killed on drop; it also exits by itself when its stdin (a pipe held here)
//! closes, so a test process that dies without unwinding leaves no receiver behind.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

/// One delivery as the receiver recorded it (before answering it).
#[derive(Debug, Clone, Deserialize)]
pub struct Delivery {
    /// The endpoint name of `POST /hooks/<name>`.
    pub endpoint: String,
    /// The `webhook-id` header (None when absent).
    pub webhook_id: Option<String>,
    /// The `webhook-timestamp` header, as sent (None when absent).
    pub webhook_timestamp: Option<String>,
    /// The body's `type` (None when the body is not a JSON object with a string `type`).
    pub r#type: Option<String>,
    /// The body's `data` (Null when absent or not JSON).
    pub data: serde_json::Value,
    /// Indexes, in the endpoint's `secrets`, of the secrets that verified the delivery.
    pub valid_with: Vec<usize>,
    /// `!valid_with.is_empty()`.
    pub valid: bool,
    /// The status the receiver answered (or will answer after its delay).
    pub status: u16,
    /// Receipt time, Unix milliseconds (receiver clock, which is this machine's).
    pub received_at_ms: u64,
    /// Per secret, in order: None if it verified, else the library's message ("No matching
    /// signature found", "Message timestamp too old", "Missing required headers", ...).
    #[serde(default)]
    pub errors: Vec<Option<String>>,
}

/// The running receiver; see the module documentation.
pub struct Receiver {
    child: Child,
    /// Held open: the receiver exits when it closes (`--stdin-lifeline`).
    _lifeline: Option<ChildStdin>,
    port: u16,
    http: reqwest::Client,
}

impl Receiver {
    /// Installs interop/ if needed ([`crate::interop::install`]), starts the receiver on a
    /// free loopback port and waits for it to listen. Panics with the reason when it cannot.
    pub fn start() -> Receiver {
        let dir = crate::interop::install();
        let script = dir.join("webhook-receiver.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .args(["--port", "0", "--stdin-lifeline"])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting node {}: {e}", script.display()));
        let lifeline = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            panic!("webhook receiver: no stdout pipe");
        };
        let mut stdout = BufReader::new(stdout);
        let mut first = String::new();
        let read = stdout.read_line(&mut first);
        let listening = serde_json::from_str::<serde_json::Value>(first.trim())
            .ok()
            .and_then(|v| v["listening"].as_u64());
        let port = listening.and_then(|p| u16::try_from(p).ok());
        let Some(port) = port.filter(|p| *p != 0) else {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "webhook receiver did not start (first stdout line {first:?}, read {read:?}, \
                 exit {status:?}); its stderr is above"
            );
        };
        // Drain the rest of stdout so that a full pipe never blocks the receiver.
        std::thread::Builder::new()
            .name("webhook-receiver-stdout".into())
            .spawn(move || {
                let _ = std::io::copy(&mut stdout, &mut std::io::sink());
            })
            .unwrap_or_else(|e| panic!("spawning the stdout drain thread: {e}"));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| panic!("building the HTTP client: {e}"));
        Receiver {
            child,
            _lifeline: lifeline,
            port,
            http,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The delivery URL of endpoint `name`: `http://127.0.0.1:<port>/hooks/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/hooks/{name}", self.port)
    }

    /// Configures (or reconfigures, at any time) endpoint `name`: the secrets to verify each
    /// delivery with (`whsec_...`, each on its own), the status to answer and how long to
    /// wait before answering (the delivery is recorded before the wait).
    pub async fn configure(&self, name: &str, secrets: &[String], status: u16, delay_ms: u64) {
        let url = format!("http://127.0.0.1:{}/control/endpoints/{name}", self.port);
        let body = json!({"secrets": secrets, "status": status, "delay_ms": delay_ms});
        let response = self
            .http
            .put(&url)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
        let code = response.status();
        if !code.is_success() {
            let text = response.text().await.unwrap_or_default();
            panic!("PUT {url} {body}: {code} {text}");
        }
    }

    /// Every delivery endpoint `name` recorded, oldest first (unconfigured names record none).
    pub async fn deliveries(&self, name: &str) -> Vec<Delivery> {
        let url = format!("http://127.0.0.1:{}/control/deliveries", self.port);
        let response = self
            .http
            .get(&url)
            .query(&[("endpoint", name)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}?endpoint={name}: {e}"));
        let code = response.status();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("GET {url}?endpoint={name}: reading the body: {e}"));
        if !code.is_success() {
            panic!("GET {url}?endpoint={name}: {code} {text}");
        }
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET {url}?endpoint={name}: {e} in {text}"))
    }

    /// Waits until endpoint `name` has recorded at least `count` deliveries and returns them
    /// all; panics after `timeout` with what it has.
    pub async fn wait_for(&self, name: &str, count: usize, timeout: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.deliveries(name).await;
            if got.len() >= count {
                return got;
            }
            if Instant::now() >= deadline {
                panic!(
                    "endpoint {name}: {} of {count} deliveries within {timeout:?}: {got:#?}",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
