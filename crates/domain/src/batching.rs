//! When to seal a Merkle batch, and which anchoring mode an issuer uses.
//!
//! A batch trades latency for cost: one memo (5,000 lamports) covers up to `max_members`
//! credentials, but the first credential of a batch waits until the batch is full or
//! `max_wait` has passed. Sealing is final (members and root are fixed before any transaction
//! is signed), so the decision is made once, here, as a pure function.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How an issuer's credentials are anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnchoringMode {
    /// One memo per credential: lowest latency, 5,000 lamports (+ priority fee) each.
    #[default]
    Single,
    /// One memo per sealed batch carrying its Merkle root.
    Merkle,
}

impl AnchoringMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            AnchoringMode::Single => "single",
            AnchoringMode::Merkle => "merkle",
        }
    }
}

impl fmt::Display for AnchoringMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AnchoringMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "single" => Ok(AnchoringMode::Single),
            "merkle" => Ok(AnchoringMode::Merkle),
            other => Err(format!(
                "unknown anchoring mode {other:?} (single or merkle)"
            )),
        }
    }
}

/// Upper bound of `max_members`: the memo carries only the root, so the bound is about the
/// size of one sealing transaction in PostgreSQL and of proofs (log2(10,000) ≈ 14 steps).
pub const MAX_BATCH_MEMBERS: u32 = 10_000;

/// Seal now? `due`: unbatched due credentials found (at most `max_members`); `oldest_age`:
/// how long the oldest of them has waited.
pub fn should_seal(due: u32, max_members: u32, oldest_age: Duration, max_wait: Duration) -> bool {
    due > 0 && (due >= max_members.max(1) || oldest_age >= max_wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Duration = Duration::from_secs(2);

    #[test]
    fn seals_a_full_batch_at_once_and_a_partial_one_after_max_wait() {
        assert!(should_seal(1000, 1000, Duration::ZERO, S));
        assert!(!should_seal(999, 1000, Duration::from_millis(1999), S));
        assert!(should_seal(1, 1000, S, S));
        assert!(!should_seal(0, 1000, Duration::from_secs(3600), S));
        // A zero maximum behaves as 1 rather than never sealing.
        assert!(should_seal(1, 0, Duration::ZERO, S));
    }

    #[test]
    fn modes_parse_and_print() {
        for m in [AnchoringMode::Single, AnchoringMode::Merkle] {
            assert_eq!(m.as_str().parse::<AnchoringMode>().unwrap(), m);
        }
        assert!("Merkle".parse::<AnchoringMode>().is_err());
        assert_eq!(AnchoringMode::default(), AnchoringMode::Single);
    }

    proptest! {
        #[test]
        fn never_seals_nothing_and_always_seals_a_full_or_old_batch(
            due in 0u32..2000, max in 1u32..2000, age_ms in 0u64..5000,
        ) {
            let age = Duration::from_millis(age_ms);
            let seal = should_seal(due, max, age, S);
            prop_assert_eq!(seal, due > 0 && (due >= max || age >= S));
        }
    }
}
