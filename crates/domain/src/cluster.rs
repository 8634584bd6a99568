//! Which Solana network: the one name shared by settings, proof bundles (`anchor.cluster`),
//! explorer links and the genesis-hash check of an RPC endpoint.
//!
//! It lives in `domain` rather than in the `chain` adapter because a proof bundle names its
//! cluster and a verdict compares it: a bundle naming a cluster that does not exist is
//! malformed, not "localnet by default".

use std::fmt;
use std::str::FromStr;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

/// A Solana network. Serialized lowercase as Solana tools spell it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cluster {
    /// The default of every service's `chain.cluster`: a local validator.
    #[default]
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

/// The cluster a genesis hash names: the three public Solana clusters by their well-known
/// genesis hashes, anything else is a local (test) validator.
pub fn cluster_of_genesis_hash(genesis_hash: &str) -> Cluster {
    match genesis_hash {
        "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d" => Cluster::MainnetBeta,
        "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG" => Cluster::Devnet,
        "4uhcVJyU9pJkvQyS88uRDiswHXSCkY3zQawwpjk2NsNY" => Cluster::Testnet,
        _ => Cluster::Localnet,
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

    #[test]
    fn genesis_hashes_name_the_public_clusters_and_anything_else_is_local() {
        for (hash, cluster) in [
            (
                "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d",
                Cluster::MainnetBeta,
            ),
            (
                "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG",
                Cluster::Devnet,
            ),
            (
                "4uhcVJyU9pJkvQyS88uRDiswHXSCkY3zQawwpjk2NsNY",
                Cluster::Testnet,
            ),
            ("anything else", Cluster::Localnet),
        ] {
            assert_eq!(cluster_of_genesis_hash(hash), cluster);
        }
    }
}
