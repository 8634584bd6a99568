//! Typed settings of the Solana adapter and the cluster it talks to.
//!
//! Owns `ChainConfig` (endpoint, timeout, priority-fee policy) and `Cluster` (which network,
//! used for explorer links shown to verifiers). It does not read files or the environment:
//! binaries build it from their own settings.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

/// Connection and fee policy for one RPC endpoint. `Debug` shows the RPC URL without path
/// and query, where providers put API keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// HTTP JSON-RPC endpoint, e.g. `http://127.0.0.1:8899`.
    pub rpc_url: String,
    /// Per-request HTTP timeout.
    pub request_timeout: Duration,
    /// Highest compute-unit price (micro-lamports per CU) we ever pay.
    pub priority_fee_cap_micro_lamports: u64,
    /// Which percentile of the recent non-zero priority fees to pay (0..=100; e.g. 75).
    pub priority_fee_percentile: u8,
    /// Which network this is (explorer links).
    pub cluster: Cluster,
}

impl ChainConfig {
    /// Defaults that suit a local validator and devnet: 30 s timeout, 75th percentile fee
    /// capped at 100,000 micro-lamports per CU, so the priority fee of even the largest memo
    /// (405,150 CU limit) stays under 40,600 lamports (0.0000406 SOL) on top of the 5,000
    /// base fee.
    pub fn new(rpc_url: impl Into<String>, cluster: Cluster) -> Self {
        Self {
            rpc_url: rpc_url.into(),
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

/// A Solana network. Serialized lowercase as Solana tools spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cluster {
    Localnet,
    Devnet,
    Testnet,
    MainnetBeta,
}

impl Cluster {
    pub fn as_str(self) -> &'static str {
        match self {
            Cluster::Localnet => "localnet",
            Cluster::Devnet => "devnet",
            Cluster::Testnet => "testnet",
            Cluster::MainnetBeta => "mainnet-beta",
        }
    }

    /// Link to the transaction on explorer.solana.com. For localnet the explorer must be told
    /// the RPC URL (`custom_rpc`), because it fetches the transaction from the browser; the
    /// named clusters ignore `custom_rpc` since the explorer has its own endpoints for them.
    pub fn explorer_tx_url(&self, signature: &str, custom_rpc: Option<&str>) -> String {
        let sig = utf8_percent_encode(signature, NON_ALPHANUMERIC);
        let base = format!("https://explorer.solana.com/tx/{sig}");
        match self {
            Cluster::MainnetBeta => base,
            Cluster::Devnet => format!("{base}?cluster=devnet"),
            Cluster::Testnet => format!("{base}?cluster=testnet"),
            Cluster::Localnet => match custom_rpc {
                Some(url) => format!(
                    "{base}?cluster=custom&customUrl={}",
                    utf8_percent_encode(url, NON_ALPHANUMERIC)
                ),
                // The explorer's "custom" cluster defaults to http://localhost:8899.
                None => format!("{base}?cluster=custom"),
            },
        }
    }
}

impl fmt::Display for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown cluster name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cluster {0:?}: expected localnet, devnet, testnet or mainnet-beta")]
pub struct UnknownCluster(pub String);

impl FromStr for Cluster {
    type Err = UnknownCluster;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "localnet" => Ok(Cluster::Localnet),
            "devnet" => Ok(Cluster::Devnet),
            "testnet" => Ok(Cluster::Testnet),
            "mainnet-beta" => Ok(Cluster::MainnetBeta),
            other => Err(UnknownCluster(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str =
        "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW";

    #[test]
    fn explorer_urls_name_the_cluster() {
        assert_eq!(
            Cluster::MainnetBeta.explorer_tx_url(SIG, None),
            format!("https://explorer.solana.com/tx/{SIG}")
        );
        assert_eq!(
            Cluster::Devnet.explorer_tx_url(SIG, Some("http://ignored")),
            format!("https://explorer.solana.com/tx/{SIG}?cluster=devnet")
        );
        assert_eq!(
            Cluster::Testnet.explorer_tx_url(SIG, None),
            format!("https://explorer.solana.com/tx/{SIG}?cluster=testnet")
        );
        assert_eq!(
            Cluster::Localnet.explorer_tx_url(SIG, Some("http://127.0.0.1:8899")),
            format!(
                "https://explorer.solana.com/tx/{SIG}?cluster=custom&customUrl=http%3A%2F%2F127%2E0%2E0%2E1%3A8899"
            )
        );
        assert_eq!(
            Cluster::Localnet.explorer_tx_url(SIG, None),
            format!("https://explorer.solana.com/tx/{SIG}?cluster=custom")
        );
    }

    #[test]
    fn a_hostile_signature_cannot_break_the_url() {
        let url = Cluster::Devnet.explorer_tx_url("a/../b?x=1#y", None);
        assert_eq!(
            url,
            "https://explorer.solana.com/tx/a%2F%2E%2E%2Fb%3Fx%3D1%23y?cluster=devnet"
        );
    }

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

    #[test]
    fn serde_and_from_str_use_solana_names() {
        for c in [
            Cluster::Localnet,
            Cluster::Devnet,
            Cluster::Testnet,
            Cluster::MainnetBeta,
        ] {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Cluster>(&json).unwrap(), c);
            assert_eq!(c.as_str().parse::<Cluster>().unwrap(), c);
        }
        assert!("mainnet".parse::<Cluster>().is_err());
        assert!(serde_json::from_str::<Cluster>("\"MainnetBeta\"").is_err());
    }
}
