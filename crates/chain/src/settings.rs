//! The one `[chain]` section every service reads (defaults → TOML file → `APP__CHAIN__*`):
//! where the RPC node is, which cluster it must be, how long a call may take, the priority
//! fee policy and, for the one service that signs, the anchoring keypair.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::{ChainConfig, Cluster};

#[derive(Debug, Clone, Deserialize)]
pub struct ChainSettings {
    /// HTTP JSON-RPC endpoint. Required: no service guesses a default port. The preferred one
    /// when there are several.
    pub rpc_url: String,
    /// More endpoints, ideally other providers: a TOML list, or one comma-separated string
    /// (`APP__CHAIN__FALLBACK_RPC_URLS=https://a,https://b`). Sends fail over to them, and a
    /// verdict or a re-signing decision asks two endpoints (`domain::rpc_pool`).
    #[serde(default, deserialize_with = "url_list")]
    pub fallback_rpc_urls: Vec<String>,
    /// Finalized slots an endpoint may trail the best one by before it is used only after
    /// the others.
    #[serde(default = "default_lag_margin")]
    pub lag_margin_slots: u64,
    /// Average latency (ms) above which an endpoint is used only after the faster ones.
    #[serde(default = "default_slow_ms")]
    pub slow_ms: u64,
    /// Milliseconds between health probes of every endpoint (`getHealth`, finalized slot).
    #[serde(default = "default_probe_ms")]
    pub health_probe_ms: u64,
    /// The network anchors live on: explorer links, the cluster a bundle must name, and the
    /// genesis the relay checks before it signs.
    #[serde(default)]
    pub cluster: Cluster,
    /// Per-request RPC timeout (at least 100 ms).
    #[serde(default = "default_rpc_timeout_ms")]
    pub request_timeout_ms: u64,
    #[serde(default = "default_fee_cap")]
    pub priority_fee_cap_micro_lamports: u64,
    /// Percentile of recent non-zero priority fees to pay (capped at 100).
    #[serde(default = "default_fee_percentile")]
    pub priority_fee_percentile: u8,
    /// Solana keypair JSON file of the anchoring (fee payer) key: a mounted Secret in
    /// Kubernetes. Only outbox-relay signs and needs it; the API and the reconciler never
    /// sign and refuse to start with one (a key where it is not needed is a key that leaks).
    #[serde(default)]
    pub keypair_path: Option<PathBuf>,
}

fn default_lag_margin() -> u64 {
    crate::config::DEFAULT_POOL_POLICY.lag_margin_slots
}
fn default_slow_ms() -> u64 {
    crate::config::DEFAULT_POOL_POLICY.slow_ms
}
fn default_probe_ms() -> u64 {
    5_000
}

/// A list of URLs from TOML (a list) or the environment (one comma-separated string).
fn url_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let urls = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(',').map(str::to_string).collect(),
        OneOrMany::Many(v) => v,
    };
    Ok(urls
        .into_iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect())
}

fn default_rpc_timeout_ms() -> u64 {
    10_000
}
fn default_fee_cap() -> u64 {
    100_000
}
fn default_fee_percentile() -> u8 {
    75
}

impl ChainSettings {
    /// `rpc_url` with every other setting at its default.
    pub fn new(rpc_url: impl Into<String>) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            fallback_rpc_urls: Vec::new(),
            lag_margin_slots: default_lag_margin(),
            slow_ms: default_slow_ms(),
            health_probe_ms: default_probe_ms(),
            cluster: Cluster::default(),
            request_timeout_ms: default_rpc_timeout_ms(),
            priority_fee_cap_micro_lamports: default_fee_cap(),
            priority_fee_percentile: default_fee_percentile(),
            keypair_path: None,
        }
    }

    /// The client configuration these settings describe.
    pub fn chain_config(&self) -> ChainConfig {
        let mut config = ChainConfig::new(self.rpc_url.clone(), self.cluster);
        config.priority_fee_cap_micro_lamports = self.priority_fee_cap_micro_lamports;
        config.priority_fee_percentile = self.priority_fee_percentile.min(100);
        config.request_timeout = Duration::from_millis(self.request_timeout_ms.max(100));
        config.fallback_rpc_urls = self.fallback_rpc_urls.clone();
        config.pool = domain::rpc_pool::PoolPolicy {
            lag_margin_slots: self.lag_margin_slots,
            slow_ms: self.slow_ms,
        };
        config
    }

    /// How often the endpoints' health is probed.
    pub fn health_probe_interval(&self) -> Duration {
        Duration::from_millis(self.health_probe_ms.max(100))
    }

    /// For a read-only service: refuses a configured keypair.
    pub fn read_only(&self, service: &str) -> Result<(), String> {
        match &self.keypair_path {
            Some(path) => Err(format!(
                "chain.keypair_path is set ({}) but {service} never signs: remove it",
                path.display()
            )),
            None => Ok(()),
        }
    }

    /// For the signing service: the keypair file, which it cannot run without.
    pub fn signing_keypair(&self) -> Result<&PathBuf, String> {
        self.keypair_path
            .as_ref()
            .ok_or_else(|| "chain.keypair_path is required: the anchoring keypair file".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let s: ChainSettings = serde_json::from_value(serde_json::json!({
            "rpc_url": "http://127.0.0.1:1",
            "priority_fee_percentile": 250,
            "request_timeout_ms": 1
        }))
        .unwrap();
        assert_eq!(s.cluster, Cluster::Localnet);
        let c = s.chain_config();
        assert_eq!(c.priority_fee_percentile, 100);
        assert_eq!(c.request_timeout, Duration::from_millis(100));
        assert!(s.read_only("reconciler").is_ok());
        assert!(s.signing_keypair().is_err());
    }

    #[test]
    fn fallback_endpoints_from_a_list_or_a_comma_separated_string() {
        let listed: ChainSettings = serde_json::from_value(serde_json::json!({
            "rpc_url": "http://a", "fallback_rpc_urls": ["http://b", " http://c "]
        }))
        .unwrap();
        let from_env: ChainSettings = serde_json::from_value(serde_json::json!({
            "rpc_url": "http://a", "fallback_rpc_urls": "http://b, http://c,"
        }))
        .unwrap();
        for s in [listed, from_env] {
            assert_eq!(
                s.chain_config().rpc_urls(),
                vec!["http://a", "http://b", "http://c"]
            );
        }
        let none: ChainSettings =
            serde_json::from_value(serde_json::json!({"rpc_url": "http://a"})).unwrap();
        assert_eq!(none.chain_config().rpc_urls(), vec!["http://a"]);
    }

    #[test]
    fn an_unknown_cluster_or_a_missing_rpc_url_is_an_error_not_a_default() {
        let unknown = serde_json::from_value::<ChainSettings>(
            serde_json::json!({"rpc_url": "http://x", "cluster": "moonnet"}),
        );
        assert!(unknown.is_err());
        assert!(serde_json::from_value::<ChainSettings>(serde_json::json!({})).is_err());
    }

    #[test]
    fn a_keypair_is_refused_where_nothing_signs() {
        let mut s = ChainSettings::new("http://x");
        s.keypair_path = Some("/k.json".into());
        assert!(s
            .read_only("issuer-api")
            .unwrap_err()
            .contains("never signs"));
        assert_eq!(s.signing_keypair().unwrap(), &PathBuf::from("/k.json"));
    }
}
