//! Typed settings of the Solana adapter and the cluster it talks to.
//!
//! Owns `ChainConfig` (endpoint, timeout, priority-fee policy); `Cluster` (which network) is
//! the domain's, re-exported here, because proof bundles name it too. It does not read files or the environment:
//! binaries build it from their own settings.

use std::fmt;
use std::time::Duration;

pub use domain::cluster::{Cluster, UnknownCluster};

/// Connection and fee policy for the RPC endpoints. `Debug` shows the RPC URLs without path
/// and query, where providers put API keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// HTTP JSON-RPC endpoint, e.g. `http://127.0.0.1:8899`: the preferred one.
    pub rpc_url: String,
    /// More endpoints (other providers), tried in this order when the preferred one fails,
    /// lags or is slow; see `domain::rpc_pool`.
    pub fallback_rpc_urls: Vec<String>,
    /// When an endpoint counts as lagging or slow.
    pub pool: domain::rpc_pool::PoolPolicy,
    /// Per-request HTTP timeout.
    pub request_timeout: Duration,
    /// Highest compute-unit price (micro-lamports per CU) we ever pay.
    pub priority_fee_cap_micro_lamports: u64,
    /// Which percentile of the recent non-zero priority fees to pay (0..=100; e.g. 75).
    pub priority_fee_percentile: u8,
    /// Which network this is (explorer links).
    pub cluster: Cluster,
}

/// About a minute of slots (400 ms each) behind the best endpoint's finalized slot counts as
/// lagging; two seconds of average latency counts as slow.
pub const DEFAULT_POOL_POLICY: domain::rpc_pool::PoolPolicy = domain::rpc_pool::PoolPolicy {
    lag_margin_slots: 150,
    slow_ms: 2_000,
};

impl ChainConfig {
    /// Every endpoint, the preferred one first.
    pub fn rpc_urls(&self) -> Vec<String> {
        std::iter::once(self.rpc_url.clone())
            .chain(self.fallback_rpc_urls.iter().cloned())
            .collect()
    }

    /// Defaults that suit a local validator and devnet: 30 s timeout, 75th percentile fee
    /// capped at 100,000 micro-lamports per CU, so the priority fee of even the largest memo
    /// (405,150 CU limit) stays under 40,600 lamports (0.0000406 SOL) on top of the 5,000
    /// base fee.
    pub fn new(rpc_url: impl Into<String>, cluster: Cluster) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            fallback_rpc_urls: Vec::new(),
            pool: DEFAULT_POOL_POLICY,
            request_timeout: Duration::from_secs(30),
            priority_fee_cap_micro_lamports: 100_000,
            priority_fee_percentile: 75,
            cluster,
        }
    }
}

impl fmt::Debug for ChainConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainConfig")
            .field("rpc_url", &crate::error::redact_urls(&self.rpc_url))
            .field(
                "fallback_rpc_urls",
                &self
                    .fallback_rpc_urls
                    .iter()
                    .map(|u| crate::error::redact_urls(u))
                    .collect::<Vec<_>>(),
            )
            .field("pool", &self.pool)
            .field("request_timeout", &self.request_timeout)
            .field(
                "priority_fee_cap_micro_lamports",
                &self.priority_fee_cap_micro_lamports,
            )
            .field("priority_fee_percentile", &self.priority_fee_percentile)
            .field("cluster", &self.cluster)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_api_key_in_the_rpc_url() {
        let config = ChainConfig::new(
            "https://mainnet.example.com/?api-key=SECRET",
            Cluster::MainnetBeta,
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("mainnet.example.com"), "{shown}");
    }
}
