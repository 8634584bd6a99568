//! Typed configuration of the reconciler (defaults → TOML file → `APP__*` environment).

use std::time::Duration;

use chain::{ChainConfig, Cluster};
use serde::Deserialize;
use service_shell::probes::ProbeSettings;
use service_shell::telemetry::LogSettings;
use store::DatabaseSettings;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub chain: ChainSettings,
    #[serde(default)]
    pub reconcile: ReconcileSettings,
    #[serde(default)]
    pub probes: ProbeSettings,
    #[serde(default)]
    pub log: LogSettings,
}

/// RPC endpoint only: the reconciler reads the chain and never signs, so it gets no keypair.
#[derive(Debug, Clone, Deserialize)]
pub struct ChainSettings {
    pub rpc_url: String,
    #[serde(default = "default_cluster")]
    pub cluster: String,
    #[serde(default = "default_rpc_timeout_ms")]
    pub request_timeout_ms: u64,
}

fn default_cluster() -> String {
    "localnet".into()
}
fn default_rpc_timeout_ms() -> u64 {
    10_000
}

impl ChainSettings {
    pub fn new(rpc_url: impl Into<String>) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            cluster: default_cluster(),
            request_timeout_ms: default_rpc_timeout_ms(),
        }
    }

    pub fn chain_config(&self) -> anyhow::Result<ChainConfig> {
        let cluster: Cluster = self
            .cluster
            .parse()
            .map_err(|e| anyhow::anyhow!("chain.cluster: {e}"))?;
        let mut config = ChainConfig::new(self.rpc_url.clone(), cluster);
        config.request_timeout = Duration::from_millis(self.request_timeout_ms.max(100));
        Ok(config)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReconcileSettings {
    /// Time between two scans of the loop.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// How far back each loop scan looks (bounded further by the per-key checkpoint).
    #[serde(default = "default_window")]
    pub window_secs: u64,
}

fn default_interval() -> u64 {
    300
}
fn default_window() -> u64 {
    3_600
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            interval_secs: default_interval(),
            window_secs: default_window(),
        }
    }
}
