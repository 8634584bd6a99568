//! The anchoring (fee-payer) keypair.
//!
//! Owns loading and generating the Solana keypair that signs and pays for anchor
//! transactions. The file format is the Solana CLI's: a JSON array of 64 numbers (32-byte
//! Ed25519 seed followed by the 32-byte public key). Parsing never panics, checks that the
//! public half matches the seed (a swapped or corrupted file is refused, not silently used
//! with a different address), and the secret never reaches `Debug` output or logs.

use std::fmt;
use std::path::Path;

use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

use crate::error::ChainError;

/// Length of a Solana CLI keypair: seed (32) + public key (32).
const KEYPAIR_LEN: usize = 64;

/// The key that signs and pays for anchor transactions. Its public key is the issuer's
/// on-chain identity that reconcilers and verifiers check as fee payer.
pub struct AnchorKeypair(Keypair);

impl AnchorKeypair {
    /// A fresh random keypair (tests, bootstrap).
    pub fn generate() -> Self {
        Self(Keypair::new())
    }

    /// Reads a Solana CLI keypair file.
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self, ChainError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ChainError::InvalidKeypair(format!("cannot read {}: {e}", path.display()))
        })?;
        Self::from_json_str(&text).map_err(|e| match e {
            ChainError::InvalidKeypair(msg) => {
                ChainError::InvalidKeypair(format!("{}: {msg}", path.display()))
            }
            other => other,
        })
    }

    /// Parses the Solana CLI JSON form (`[12,34,...]`, 64 numbers 0..=255).
    pub fn from_json_str(json: &str) -> Result<Self, ChainError> {
        // Parse as u64 first so an out-of-range number gets a message naming the problem
        // instead of serde's generic one.
        let numbers: Vec<u64> = serde_json::from_str(json.trim()).map_err(|e| {
            ChainError::InvalidKeypair(format!("expected a JSON array of 64 numbers: {e}"))
        })?;
        if numbers.len() != KEYPAIR_LEN {
            return Err(ChainError::InvalidKeypair(format!(
                "expected {KEYPAIR_LEN} numbers, found {}",
                numbers.len()
            )));
        }
        let bytes = numbers
            .iter()
            .map(|&n| u8::try_from(n))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| ChainError::InvalidKeypair("every number must be 0..=255".into()))?;
        Keypair::try_from(bytes.as_slice()).map(Self).map_err(|_| {
            ChainError::InvalidKeypair("the public key half does not match the secret seed".into())
        })
    }

    /// The Solana CLI JSON form. It contains the secret: write it only to protected files.
    pub fn to_json_string(&self) -> String {
        let bytes = self.0.to_bytes();
        let parts: Vec<String> = bytes.iter().map(u8::to_string).collect();
        format!("[{}]", parts.join(","))
    }

    /// The public key in base58, the form explorers and RPC methods use.
    pub fn pubkey_base58(&self) -> String {
        self.0.pubkey().to_string()
    }

    /// The 32-byte Ed25519 seed, for callers that derive the same key with another library.
    pub fn secret_seed(&self) -> [u8; 32] {
        *self.0.secret_bytes()
    }

    pub(crate) fn keypair(&self) -> &Keypair {
        &self.0
    }
}

impl fmt::Debug for AnchorKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnchorKeypair")
            .field("pubkey", &self.pubkey_base58())
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_the_public_key() {
        let kp = AnchorKeypair::generate();
        let again = AnchorKeypair::from_json_str(&kp.to_json_string()).unwrap();
        assert_eq!(kp.pubkey_base58(), again.pubkey_base58());
        assert_eq!(kp.secret_seed(), again.secret_seed());
    }

    #[test]
    fn reads_a_cli_keypair_file_with_whitespace() {
        let kp = AnchorKeypair::generate();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.json");
        std::fs::write(&path, format!("\n  {}\n", kp.to_json_string())).unwrap();
        let loaded = AnchorKeypair::from_json_file(&path).unwrap();
        assert_eq!(loaded.pubkey_base58(), kp.pubkey_base58());
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = AnchorKeypair::from_json_file(dir.path().join("nope.json")).unwrap_err();
        assert!(missing.to_string().contains("cannot read"), "{missing}");

        let good = AnchorKeypair::generate().to_json_string();
        let mut mismatched: Vec<u64> = serde_json::from_str(&good).unwrap();
        mismatched[40] ^= 1;
        let cases = [
            ("", "JSON array"),
            ("not json", "JSON array"),
            ("{\"a\":1}", "JSON array"),
            ("[1,2,3]", "expected 64 numbers, found 3"),
            (&*format!("[{}]", vec!["256"; 64].join(",")), "0..=255"),
            (&*format!("[{}]", vec!["-1"; 64].join(",")), "JSON array"),
            (
                &*serde_json::to_string(&mismatched).unwrap(),
                "does not match",
            ),
        ];
        for (text, needle) in cases {
            let path = dir.path().join("k.json");
            std::fs::write(&path, text).unwrap();
            let err = AnchorKeypair::from_json_file(&path).unwrap_err();
            assert!(
                matches!(err, ChainError::InvalidKeypair(_)),
                "{text}: {err}"
            );
            assert!(err.to_string().contains(needle), "{text}: {err}");
            assert!(err.to_string().contains("k.json"), "{err}");
        }
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let kp = AnchorKeypair::generate();
        let shown = format!("{kp:?}");
        assert!(shown.contains(&kp.pubkey_base58()));
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&kp.to_json_string()));
        assert!(!shown.contains(&bs58::encode(kp.secret_seed()).into_string()));
    }
}
