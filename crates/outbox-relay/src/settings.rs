//! Typed configuration of outbox-relay (defaults → TOML file → `APP__*` environment).

pub use chain::ChainSettings;
use domain::{AnchoringMode, RetryPolicy};
use serde::Deserialize;
pub use service_shell::probes::ProbeSettings;
use service_shell::telemetry::LogSettings;
use store::DatabaseSettings;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub chain: ChainSettings,
    #[serde(default)]
    pub relay: RelaySettings,
    #[serde(default)]
    pub probes: ProbeSettings,
    #[serde(default)]
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RelaySettings {
    /// Jobs claimed per round trip. Was `batch_size` (still read): "batch" is kept for
    /// Merkle batches (ARCHITECTURE.md, "Vocabulary").
    #[serde(default = "default_claim_size", alias = "batch_size")]
    pub claim_size: u32,
    /// Jobs advanced in parallel within a batch.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// How long a claim is ours. Longer than one step (a few RPC calls), much shorter than
    /// the time an SRE would tolerate a crashed relay's jobs sitting idle.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// Fallback poll when no NOTIFY arrives.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// LISTEN for the issuing transactions' NOTIFY (default). Off, the relay finds new jobs
    /// only by polling every `poll_interval_ms`: for a connection pooler that cannot LISTEN
    /// (PgBouncer in transaction mode), and the benchmark's baseline of what NOTIFY buys.
    #[serde(default = "default_listen")]
    pub listen: bool,
    /// Delay before re-checking a sent transaction's status.
    #[serde(default = "default_track_ms")]
    pub track_interval_ms: u64,
    /// After a transaction is first seen confirmed, the delay before checking it again:
    /// finality comes ~32 slots (~13 s) later, so checking earlier only costs writes.
    #[serde(default = "default_finality_hint_ms")]
    pub finality_hint_ms: u64,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Time allowed after SIGTERM to finish the current pass (keep below the pod's
    /// terminationGracePeriodSeconds).
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
    /// Worker identity for leases; defaults to $HOSTNAME plus a random suffix.
    #[serde(default)]
    pub worker_id: Option<String>,
    /// Anchoring mode of issuers without their own (`issuers.anchor_mode`): `single` (one
    /// memo per credential) or `merkle` (one memo per sealed batch). Keep it the same on
    /// every replica.
    #[serde(default)]
    pub mode: AnchoringMode,
    /// Merkle mode: most credentials sealed into one batch (1..=10,000).
    #[serde(default = "default_batch_members")]
    pub batch_max_members: u32,
    /// Merkle mode: the longest a due credential waits for its batch to fill.
    #[serde(default = "default_batch_wait_ms")]
    pub batch_max_wait_ms: u64,
    /// Lamports each issuer's anchoring may cost per hour and per day (0 = no limit). Over
    /// it, the issuer's new transactions are deferred (never dropped); the others go on.
    #[serde(default)]
    pub spend: domain::spend::SpendBudget,
    /// How long a job deferred by the spend budget waits before it is looked at again.
    #[serde(default = "default_spend_retry_secs")]
    pub spend_retry_secs: u64,
}

fn default_spend_retry_secs() -> u64 {
    60
}

fn default_batch_members() -> u32 {
    1_000
}
fn default_batch_wait_ms() -> u64 {
    2_000
}

fn default_claim_size() -> u32 {
    64
}
fn default_concurrency() -> usize {
    16
}
fn default_lease_ms() -> u64 {
    30_000
}
fn default_poll_ms() -> u64 {
    500
}
fn default_listen() -> bool {
    true
}
fn default_track_ms() -> u64 {
    400
}
fn default_finality_hint_ms() -> u64 {
    10_000
}
fn default_grace() -> u64 {
    20
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            claim_size: default_claim_size(),
            concurrency: default_concurrency(),
            lease_ms: default_lease_ms(),
            poll_interval_ms: default_poll_ms(),
            listen: default_listen(),
            track_interval_ms: default_track_ms(),
            finality_hint_ms: default_finality_hint_ms(),
            retry: RetryPolicy::default(),
            shutdown_grace_secs: default_grace(),
            worker_id: None,
            mode: AnchoringMode::default(),
            batch_max_members: default_batch_members(),
            batch_max_wait_ms: default_batch_wait_ms(),
            spend: Default::default(),
            spend_retry_secs: default_spend_retry_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_example_config_file_loads() {
        std::env::set_var("RELAYTEST__DATABASE__URL", "postgres://u@h/db");
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/outbox-relay.toml");
        let s: Settings = service_shell::settings::load_with_env(Some(&path), "RELAYTEST").unwrap();
        assert_eq!(s.relay.retry.max_attempts, 10);
        assert_eq!(s.relay.retry.cap, Duration::from_secs(300));
        assert_eq!(s.probes.port, 9101);
        assert_eq!(ProbeSettings::default().port, 9100);
        let chain = s.chain.chain_config();
        assert_eq!(chain.cluster, chain::Cluster::Localnet);
        assert!(s.chain.signing_keypair().is_ok());
    }

    #[test]
    fn the_old_name_of_the_claim_size_is_still_read() {
        let old: RelaySettings =
            serde_json::from_value(serde_json::json!({"batch_size": 7})).unwrap();
        assert_eq!(old.claim_size, 7);
        let new: RelaySettings =
            serde_json::from_value(serde_json::json!({"claim_size": 9})).unwrap();
        assert_eq!(new.claim_size, 9);
    }
}
