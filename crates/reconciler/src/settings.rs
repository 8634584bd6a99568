//! Typed configuration of the reconciler (defaults → TOML file → `APP__*` environment).

/// The reconciler reads the chain and never signs: `chain.keypair_path` is refused.
pub use chain::ChainSettings;
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
