//! Typed configuration of issuer-api (defaults → TOML file → `APP__*` environment).

use secrecy::SecretString;
use serde::Deserialize;
use service_shell::telemetry::LogSettings;
use store::DatabaseSettings;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub signing: SigningSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub explorer: ExplorerSettings,
    /// The RPC node `POST /v1/verify` reads anchors from, and the cluster it must be
    /// (read-only: the API never signs, so `chain.keypair_path` is refused).
    pub chain: chain::ChainSettings,
    /// Limits of the unauthenticated verification routes.
    #[serde(default)]
    pub public: crate::public::PublicSettings,
    /// The status list publisher and ordinal blocks.
    #[serde(default)]
    pub status_lists: crate::status_lists::StatusListSettings,
    /// Webhook URLs allowed and the delivery worker (`webhooks`).
    #[serde(default)]
    pub webhooks: crate::webhooks::WebhookSettings,
}

/// Explorer links in responses. The network itself is `chain.cluster`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExplorerSettings {
    /// Moved to `chain.cluster` (one `[chain]` section for every service). Still read so a
    /// configuration that sets it is refused at start-up instead of silently verifying
    /// against another cluster.
    #[serde(default)]
    pub cluster: Option<chain::Cluster>,
    /// RPC URL the explorer should read a local validator from (localnet only).
    #[serde(default)]
    pub custom_rpc_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Largest accepted request body (a diploma PDF plus metadata). Larger → 413.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Largest accepted bulk request (`POST /v1/credential-batches`). Send `file_sha256`
    /// instead of `file_base64` to issue thousands of large files in one request.
    #[serde(default = "default_bulk_body_limit")]
    pub bulk_body_limit_bytes: usize,
    /// actix workers; defaults to the number of cores.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Seconds in-flight requests get after SIGTERM; keep below the pod's
    /// terminationGracePeriodSeconds.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
    /// Seconds a client is told to wait (Retry-After) when the database is unavailable.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u64,
    /// Sustained requests per second allowed per API key (429 + Retry-After beyond it);
    /// 0 turns limiting off. Bulk issuance is one request per up to 10,000 credentials.
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_second: u32,
    /// Bucket size: how many requests a rested key may make at once (at least the rate).
    #[serde(default = "default_rate_burst")]
    pub rate_limit_burst: u32,
    /// Seconds an authenticated API key's row is reused without a database lookup; a key
    /// revoked in the database stops working within this long. 0 looks every request up.
    #[serde(default = "default_api_key_cache_secs")]
    pub api_key_cache_secs: u64,
    /// Seconds an idle keep-alive connection stays open. Keep it above the idle timeout of
    /// every client and proxy in front (load balancers commonly use 60 s): if the server
    /// closes first, a request sent on the closing connection fails on the client
    /// (a 502 at the ingress, `IncompleteMessage` in reqwest). 0 turns keep-alive off;
    /// capped at an hour. A graceful stop waits for open connections, idle ones included, up
    /// to `shutdown_timeout_secs`.
    #[serde(default = "default_keep_alive_secs")]
    pub keep_alive_secs: u64,
    /// Whether to apply pending migrations at start-up (the Kubernetes migration Job does it
    /// otherwise).
    #[serde(default = "default_true")]
    pub migrate_on_start: bool,
    /// The longest a request body may take to arrive, on every route: a slow upload (a
    /// slow-loris client holding a worker and a buffer) gets `408 request_timeout`.
    #[serde(default = "default_body_read_timeout_secs")]
    pub body_read_timeout_secs: u64,
    /// The port `/metrics` is served on, and nothing else is (it is not served on `port`):
    /// the public API never exposes the service's internals, and a NetworkPolicy can open
    /// this port to Prometheus only. 0 picks a free port (tests).
    #[serde(default = "default_metrics_port")]
    pub metrics_port: u16,
    /// Failed authentications a client IP may make per minute (also its burst); past it the
    /// client gets `429` before any key lookup until its budget refills (`auth_throttle`).
    /// 0 turns throttling off.
    #[serde(default = "default_failed_auth_per_ip_per_minute")]
    pub failed_auth_per_ip_per_minute: u32,
}

fn default_metrics_port() -> u16 {
    9100
}

fn default_failed_auth_per_ip_per_minute() -> u32 {
    30
}

fn default_body_read_timeout_secs() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
pub struct SigningSettings {
    /// Base64 of 32 random bytes: seals issuer signing seeds at rest. Never logged.
    pub master_key: SecretString,
    /// Comma-separated base64 master keys being rotated away from (`admin rotate-master-key`):
    /// seeds still sealed under one of them open, new seeds are sealed under `master_key`
    /// only. Empty once a rotation has finished. Never logged.
    #[serde(default)]
    pub previous_master_keys: Option<SecretString>,
}

impl SigningSettings {
    /// The current master key, then the previous ones in the order given.
    pub fn master_keys(&self) -> anyhow::Result<Vec<domain::sealed::MasterKey>> {
        use secrecy::ExposeSecret;
        let current = domain::sealed::MasterKey::from_base64(self.master_key.expose_secret())
            .map_err(|e| anyhow::anyhow!("signing.master_key: {e}"))?;
        let mut keys = vec![current];
        if let Some(previous) = &self.previous_master_keys {
            for (i, text) in previous
                .expose_secret()
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .enumerate()
            {
                // The message names the position, never the text: it is a secret.
                let key = domain::sealed::MasterKey::from_base64(text).map_err(|e| {
                    anyhow::anyhow!("signing.previous_master_keys, key {}: {e}", i + 1)
                })?;
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        Ok(keys)
    }
}

fn default_host() -> String {
    "0.0.0.0".into()
}
fn default_port() -> u16 {
    8080
}
fn default_bulk_body_limit() -> usize {
    64 * 1024 * 1024
}
fn default_body_limit() -> usize {
    10 * 1024 * 1024
}
fn default_shutdown_timeout() -> u64 {
    20
}
fn default_retry_after() -> u64 {
    2
}
fn default_rate_limit() -> u32 {
    200
}
fn default_rate_burst() -> u32 {
    400
}
fn default_api_key_cache_secs() -> u64 {
    5
}
fn default_keep_alive_secs() -> u64 {
    75
}
fn default_true() -> bool {
    true
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: default_host(),
            port: default_port(),
            body_limit_bytes: default_body_limit(),
            bulk_body_limit_bytes: default_bulk_body_limit(),
            workers: None,
            shutdown_timeout_secs: default_shutdown_timeout(),
            retry_after_secs: default_retry_after(),
            rate_limit_per_second: default_rate_limit(),
            rate_limit_burst: default_rate_burst(),
            api_key_cache_secs: default_api_key_cache_secs(),
            keep_alive_secs: default_keep_alive_secs(),
            migrate_on_start: true,
            body_read_timeout_secs: default_body_read_timeout_secs(),
            metrics_port: default_metrics_port(),
            failed_auth_per_ip_per_minute: default_failed_auth_per_ip_per_minute(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_file_loads_with_secrets_from_the_environment() {
        std::env::set_var("APITEST__DATABASE__URL", "postgres://u@h/db");
        std::env::set_var("APITEST__SIGNING__MASTER_KEY", "AAAA");
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/issuer-api.toml");
        let s: Settings = service_shell::settings::load_with_env(Some(&path), "APITEST").unwrap();
        assert_eq!(s.http.port, 8080);
        assert_eq!(s.http.body_limit_bytes, 10 * 1024 * 1024);
        assert_eq!(s.log.format, service_shell::telemetry::LogFormat::Json);
        assert_eq!(s.chain.rpc_url, "http://127.0.0.1:8899");
        assert_eq!(s.chain.request_timeout_ms, 10_000);
        assert_eq!(s.chain.cluster, chain::Cluster::Localnet);
        assert!(
            s.explorer.cluster.is_none(),
            "the example sets the cluster in [chain]"
        );
        // Webhooks: https to public addresses only, as production must be.
        assert!(!s.webhooks.allow_http && !s.webhooks.allow_private);
        assert_eq!(s.webhooks.retention_days, 30);
        // Secrets never show up in Debug output.
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("postgres://u@h/db") && !debug.contains("AAAA"),
            "{debug}"
        );
    }

    #[test]
    fn missing_secrets_are_a_clear_error() {
        let err =
            service_shell::settings::load_with_env::<Settings>(None, "APITEST_EMPTY").unwrap_err();
        assert!(
            err.to_string().contains("database") || err.to_string().contains("signing"),
            "{err}"
        );
    }
}
