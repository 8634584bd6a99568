//! Anchoring keys and their windows: which Solana key may pay for an issuer's memos, and until
//! when.
//!
//! An issuer anchors with one key at a time. `issuer-api admin rotate-anchor-key` retires the
//! active key at an instant and makes the next one active from that instant; every key stays
//! in the issuer's profile with its window. A memo (anchor, batch or revocation) is trusted only
//! when its fee payer is one of the issuer's anchoring keys **and the block carrying it was made
//! before that key was retired**: a retired key may be lost or sold, and nothing it pays for
//! afterwards speaks for the issuer. Credentials anchored while it was active keep verifying.
//!
//! The start of a window is enforced with [`VALID_FROM_SLACK`]: block times are whole seconds
//! from the validators' clocks, so a memo sent just after a key was registered can carry a
//! block time a moment before `valid_from` (PostgreSQL's clock). A key's memos from well before
//! it became the issuer's (a key another issuer used first, say) are not the issuer's. The end
//! is exact: `admin rotate-anchor-key` already sets it a grace period after the rotation, so
//! transactions signed just before it still land inside the window. A block whose time the
//! node does not report cannot be placed in a window: a retired key's memo without a time is
//! not trusted. The same function decides for the verifier (`verdict`) and the reconciler
//! (`reconcile`).
//!
//! Because windows are read against block times, their bounds are set on the chain's clock
//! when it trails the database's ([`window_bound`], [`rotation_bound`]): `admin create-issuer`
//! and `admin rotate-anchor-key` read the newest finalized block time first. A cluster whose
//! slots come slower than planned clamps its block times to what the slot count allows; this
//! machine's loaded test validator fell more than the 10 minutes of slack behind after 40
//! minutes of the crash suite, and its new keys' first anchors were judged not yet valid.

use chrono::{DateTime, TimeDelta, Utc};

use crate::signing::PublicKey;

/// How long before its `valid_from` a key's block may be: validator clocks and PostgreSQL's
/// disagree by seconds, and block times are whole seconds.
pub const VALID_FROM_SLACK: TimeDelta = TimeDelta::minutes(10);

/// One anchoring key of an issuer with its window (what the issuer profile publishes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorKeyWindow {
    /// Base58 Solana public key.
    pub pubkey: String,
    pub valid_from: DateTime<Utc>,
    /// `None` while the key is the issuer's active one.
    pub retired_at: Option<DateTime<Utc>>,
}

/// Whether a transaction's fee payer speaks for the issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorKeyCheck {
    /// One of the issuer's keys, and the block predates its retirement (or it is active).
    Trusted,
    /// Not a key of this issuer at all.
    NotTheIssuers,
    /// The issuer's key, but the block was made at or after its retirement.
    Retired { retired_at: DateTime<Utc> },
    /// The issuer's key, but the block was made before it became the issuer's.
    NotYetValid { valid_from: DateTime<Utc> },
    /// The issuer's retired key, and the node gave no block time to place the memo.
    TimeUnknown,
}

impl AnchorKeyCheck {
    /// Stable code (verdict reason, reconciler finding).
    pub const fn code(self) -> &'static str {
        match self {
            AnchorKeyCheck::Trusted => "trusted",
            AnchorKeyCheck::NotTheIssuers => "anchor_wrong_fee_payer",
            AnchorKeyCheck::Retired { .. } => "anchor_key_retired",
            AnchorKeyCheck::NotYetValid { .. } => "anchor_key_not_yet_valid",
            AnchorKeyCheck::TimeUnknown => "anchor_time_unknown",
        }
    }
}

/// Where a window bound (a new key's `valid_from`, the old key's retirement) is set: the
/// earlier of the database's clock and the chain's (`chain_now`, the newest finalized block
/// time, when it could be read). Windows are read against block times, and a cluster whose
/// slots come slower than planned has a clock that trails the wall clock (block times are
/// clamped to what the slot count allows: minutes behind on a stalled cluster or a loaded
/// test validator). Set on the database's clock alone, a new key's first anchors would land
/// "before" its window (not trusted) and a retired key would keep vouching for the lag. A
/// chain clock ahead of the database's never moves a bound later: the key's window must
/// start by the time it is registered.
pub fn window_bound(
    database_now: DateTime<Utc>,
    chain_now: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    match chain_now {
        Some(chain) if chain < database_now => chain,
        _ => database_now,
    }
}

/// Where a rotation ends the active key's window and starts the new key's: [`window_bound`],
/// but never before the active key's own start (`active_since`): a chain clock that fell
/// further behind since that key was registered would otherwise end its window before it
/// began.
pub fn rotation_bound(
    database_now: DateTime<Utc>,
    chain_now: Option<DateTime<Utc>>,
    active_since: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let bound = window_bound(database_now, chain_now);
    active_since.map_or(bound, |since| bound.max(since))
}

/// Decides whether `payer`, in a block made at `block_time`, speaks for the issuer whose
/// anchoring keys are `keys` (see the module docs).
pub fn check_anchor_key(
    keys: &[AnchorKeyWindow],
    payer: &str,
    block_time: Option<DateTime<Utc>>,
) -> AnchorKeyCheck {
    let Some(key) = keys.iter().find(|k| k.pubkey == payer) else {
        return AnchorKeyCheck::NotTheIssuers;
    };
    match (key.retired_at, block_time) {
        (_, Some(t)) if t < key.valid_from - VALID_FROM_SLACK => AnchorKeyCheck::NotYetValid {
            valid_from: key.valid_from,
        },
        (None, _) => AnchorKeyCheck::Trusted,
        (Some(_), None) => AnchorKeyCheck::TimeUnknown,
        (Some(retired_at), Some(t)) if t < retired_at => AnchorKeyCheck::Trusted,
        (Some(retired_at), Some(_)) => AnchorKeyCheck::Retired { retired_at },
    }
}

/// The key that was the issuer's active one at `t`: the newest whose window had started. For
/// naming the payer of an anchor whose transaction this database never stored (a row rebuilt
/// from the chain, whose `finalized_at` is its block time). Inside a rotation's grace period
/// both keys could have paid; this names the newer one (see docs/proof-bundle.md).
pub fn key_at(keys: &[AnchorKeyWindow], t: DateTime<Utc>) -> Option<&AnchorKeyWindow> {
    keys.iter()
        .filter(|k| k.valid_from <= t)
        .max_by_key(|k| k.valid_from)
        .or_else(|| keys.iter().min_by_key(|k| k.valid_from))
}

/// Why a text is not an anchoring key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Solana public key (base58 of 32 bytes): {0}")]
pub struct MalformedAnchorKey(String);

/// Validates the base58 text of an anchoring key (32 bytes) and returns it unchanged; the
/// message never echoes more than a short prefix of the input.
pub fn parse_anchor_pubkey(text: &str) -> Result<String, MalformedAnchorKey> {
    match PublicKey::from_base58(text) {
        Ok(key) if key.to_base58() == text => Ok(text.to_string()),
        Ok(_) => Err(MalformedAnchorKey("not in canonical base58".into())),
        Err(e) => Err(MalformedAnchorKey(e.to_string())),
    }
}

/// What a relay starting with a keypair may do (`relay_key_check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayKeyCheck {
    /// No issuer is registered yet: nothing to anchor, nothing to check against.
    NoIssuers,
    /// The key is the active anchoring key of these issuers; `others` issuers have another
    /// one (their jobs wait, each saying why in its `last_error`, until a relay with their key
    /// runs or they rotate to this one).
    Serves {
        issuers: Vec<crate::IssuerId>,
        others: usize,
    },
    /// Issuers exist and the key is the active anchoring key of none: every memo it paid for
    /// would be refused by every verifier, so the relay must not start (a wrong Secret mounted,
    /// or the runbook's "rotate, then mount the new keypair" done in the wrong order).
    ServesNone { issuers: usize },
}

/// The relay's start-up rule: given how many issuers exist and those whose active anchoring
/// key is the relay's, whether it may start. Only the active key counts, because the relay
/// signs only with an issuer's active key (`outbox-relay`'s `sign_and_send`).
pub fn relay_key_check(issuers: usize, holders: Vec<crate::IssuerId>) -> RelayKeyCheck {
    if issuers == 0 {
        RelayKeyCheck::NoIssuers
    } else if holders.is_empty() {
        RelayKeyCheck::ServesNone { issuers }
    } else {
        let others = issuers.saturating_sub(holders.len());
        RelayKeyCheck::Serves {
            issuers: holders,
            others,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: &str = "AnchorKeyOld11111111111111111111111111111111";
    const B: &str = "AnchorKeyNew11111111111111111111111111111111";

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn rotated(at_secs: i64) -> Vec<AnchorKeyWindow> {
        vec![
            AnchorKeyWindow {
                pubkey: A.into(),
                valid_from: at(-1_000_000),
                retired_at: Some(at(at_secs)),
            },
            AnchorKeyWindow {
                pubkey: B.into(),
                valid_from: at(at_secs),
                retired_at: None,
            },
        ]
    }

    #[test]
    fn the_old_key_is_trusted_before_its_retirement_and_never_after() {
        let keys = rotated(1000);
        assert_eq!(
            check_anchor_key(&keys, A, Some(at(999))),
            AnchorKeyCheck::Trusted
        );
        assert_eq!(
            check_anchor_key(&keys, A, Some(at(1000))),
            AnchorKeyCheck::Retired {
                retired_at: at(1000)
            }
        );
        assert_eq!(
            check_anchor_key(&keys, A, None),
            AnchorKeyCheck::TimeUnknown
        );
        assert_eq!(check_anchor_key(&keys, B, None), AnchorKeyCheck::Trusted);
        assert_eq!(
            check_anchor_key(&keys, "Stranger", Some(at(5))),
            AnchorKeyCheck::NotTheIssuers
        );
        assert_eq!(
            check_anchor_key(&[], A, Some(at(5))),
            AnchorKeyCheck::NotTheIssuers
        );
    }

    #[test]
    fn a_key_vouches_from_its_start_give_or_take_the_slack() {
        let keys = rotated(1000);
        let slack = VALID_FROM_SLACK.num_seconds();
        // B became the issuer's at 1000: a block a few seconds earlier is clock skew...
        assert_eq!(
            check_anchor_key(&keys, B, Some(at(1000 - 5))),
            AnchorKeyCheck::Trusted
        );
        // ... one from long before is not the issuer's.
        assert_eq!(
            check_anchor_key(&keys, B, Some(at(1000 - slack - 1))),
            AnchorKeyCheck::NotYetValid {
                valid_from: at(1000)
            }
        );
        assert_eq!(key_at(&keys, at(999)).unwrap().pubkey, A);
        assert_eq!(key_at(&keys, at(1000)).unwrap().pubkey, B);
        assert_eq!(key_at(&keys, at(5_000)).unwrap().pubkey, B);
        assert_eq!(key_at(&keys, at(-9_000_000)).unwrap().pubkey, A);
        assert!(key_at(&[], at(0)).is_none());
    }

    #[test]
    fn anchor_pubkeys_are_validated() {
        let good = PublicKey::from_bytes([7; 32]).to_base58();
        assert_eq!(parse_anchor_pubkey(&good).unwrap(), good);
        assert!(parse_anchor_pubkey("").is_err());
        assert!(parse_anchor_pubkey("not-base58!").is_err());
        assert!(parse_anchor_pubkey(&bs58::encode([1u8; 31]).into_string()).is_err());
        assert!(parse_anchor_pubkey(&"1".repeat(200)).is_err());
        // Leading '1's decode to zero bytes: a non-canonical text of the same key is refused,
        // so one key always has one text (the reconciler groups and compares by text).
        let zero = PublicKey::from_bytes([0; 32]).to_base58();
        assert!(parse_anchor_pubkey(&zero).is_ok());
    }

    proptest! {
        /// A key that was never retired is trusted at any time; a retired key exactly before
        /// its retirement; a key not listed never.
        #[test]
        fn the_window_rule_holds_for_any_times(retire in 1i64..4_000_000_000, t in 0i64..4_000_000_000) {
            let keys = rotated(retire);
            let old = check_anchor_key(&keys, A, Some(at(t)));
            prop_assert_eq!(old == AnchorKeyCheck::Trusted, t < retire);
            let new = check_anchor_key(&keys, B, Some(at(t)));
            prop_assert_eq!(
                new == AnchorKeyCheck::Trusted,
                t >= retire - VALID_FROM_SLACK.num_seconds()
            );
            prop_assert_eq!(check_anchor_key(&keys, "X", Some(at(t))), AnchorKeyCheck::NotTheIssuers);
        }

        /// A bound is never later than either clock and is one of them; a key registered
        /// with it trusts every block from the chain's "now" on, however far the chain's
        /// clock trails the database's.
        #[test]
        fn a_window_bound_is_set_on_the_earlier_clock(
            db in 0i64..4_000_000_000,
            chain in proptest::option::of(0i64..4_000_000_000),
            later in 0i64..100_000,
        ) {
            let bound = window_bound(at(db), chain.map(at));
            prop_assert!(bound <= at(db));
            if let Some(c) = chain {
                prop_assert!(bound <= at(c));
                prop_assert!(bound == at(c) || bound == at(db));
                // Registered now: a block the chain makes from now on is inside the window.
                let keys = vec![AnchorKeyWindow {
                    pubkey: A.to_string(),
                    valid_from: bound,
                    retired_at: None,
                }];
                prop_assert_eq!(check_anchor_key(&keys, A, Some(at(c + later))), AnchorKeyCheck::Trusted);
            } else {
                prop_assert_eq!(bound, at(db));
            }
        }

        /// A rotation's bound is the window bound unless that falls before the active key's
        /// start: then the active key's start (its window is never reversed).
        #[test]
        fn a_rotation_never_ends_a_window_before_it_began(
            db in 0i64..4_000_000_000,
            chain in proptest::option::of(0i64..4_000_000_000),
            since in proptest::option::of(0i64..4_000_000_000),
        ) {
            let bound = rotation_bound(at(db), chain.map(at), since.map(at));
            let plain = window_bound(at(db), chain.map(at));
            match since {
                Some(s) => {
                    prop_assert!(bound >= at(s));
                    prop_assert_eq!(bound, plain.max(at(s)));
                }
                None => prop_assert_eq!(bound, plain),
            }
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,100}") {
            let _ = parse_anchor_pubkey(&s);
        }
    }

    #[test]
    fn a_relay_starts_only_with_the_active_key_of_some_issuer() {
        let uni = |s: &str| crate::IssuerId::parse(s).unwrap();
        assert_eq!(relay_key_check(0, vec![]), RelayKeyCheck::NoIssuers);
        assert_eq!(
            relay_key_check(3, vec![]),
            RelayKeyCheck::ServesNone { issuers: 3 }
        );
        assert_eq!(
            relay_key_check(3, vec![uni("uni-a")]),
            RelayKeyCheck::Serves {
                issuers: vec![uni("uni-a")],
                others: 2
            }
        );
        assert_eq!(
            relay_key_check(1, vec![uni("uni-a")]),
            RelayKeyCheck::Serves {
                issuers: vec![uni("uni-a")],
                others: 0
            }
        );
    }
}
