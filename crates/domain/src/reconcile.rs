//! Classification of one on-chain anchor for the reconciler (invariant 4).
//!
//! Anyone can write a memo in our format and make it show up in the anchoring key's history
//! (by listing the key as a read-only account), so a memo is trusted only when the
//! transaction succeeded, was paid (and so signed) by the anchoring key, and the memo names an
//! issuer that anchored with that key when the block was made (a key retired by rotation
//! vouches only for blocks before its retirement: `anchor_keys`). Everything else is
//! classified, never trusted.

use chrono::{DateTime, Utc};

use crate::anchor_keys::{check_anchor_key, AnchorKeyCheck, AnchorKeyWindow};
use crate::memo::{decode, Decoded, Memo};
use crate::IssuerId;

/// One issuer that anchors (or anchored) with a key, and that key's window for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHolder {
    pub issuer: IssuerId,
    pub window: AnchorKeyWindow,
}

/// What one finalized transaction from an anchoring key's history proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorVerdict {
    /// Successful, paid by the anchoring key, memo of an issuer of that key.
    Trusted(Vec<Memo>),
    /// A memo of ours written by someone else (wrong fee payer, or an issuer that does not
    /// anchor with this key).
    Forged(Vec<Memo>),
    /// Paid by the issuer's key outside its window: after the issuer retired it, before it
    /// became the issuer's, or at a time the node does not report for a retired key. Whoever
    /// holds a key outside its window does not speak for the issuer.
    RetiredKey(Vec<Memo>),
    /// A transaction with our memo that failed: it anchors nothing.
    Failed(Vec<Memo>),
    /// No memo of ours: unrelated traffic of the key (airdrops, transfers).
    NotOurs,
}

/// The facts about one transaction the verdict depends on.
#[derive(Debug, Clone, Copy)]
pub struct ObservedAnchor<'a> {
    pub fee_payer: &'a str,
    pub succeeded: bool,
    pub memos: &'a [String],
    pub block_time: Option<DateTime<Utc>>,
}

/// Classifies `tx` found in the history of `anchor_key`; `holders` are the issuers that
/// anchor or anchored with `anchor_key`, each with the key's window.
///
/// A transaction with several of our memos is trusted only if every one of them is: a
/// mixed transaction means a key is anchoring for an issuer it does not belong to, which is
/// a configuration error the operator must see, not something to half-accept.
pub fn classify(tx: ObservedAnchor<'_>, anchor_key: &str, holders: &[KeyHolder]) -> AnchorVerdict {
    let ours: Vec<Memo> = tx
        .memos
        .iter()
        .filter_map(|text| match decode(text) {
            Decoded::Ours(memo) => Some(memo),
            Decoded::NotOurs => None,
        })
        .collect();
    if ours.is_empty() {
        return AnchorVerdict::NotOurs;
    }
    if !tx.succeeded {
        return AnchorVerdict::Failed(ours);
    }
    if tx.fee_payer != anchor_key {
        return AnchorVerdict::Forged(ours);
    }
    let checks: Vec<AnchorKeyCheck> = ours
        .iter()
        .map(|m| {
            let windows: Vec<AnchorKeyWindow> = holders
                .iter()
                .filter(|h| &h.issuer == m.issuer())
                .map(|h| h.window.clone())
                .collect();
            check_anchor_key(&windows, tx.fee_payer, tx.block_time)
        })
        .collect();
    if checks.iter().all(|c| *c == AnchorKeyCheck::Trusted) {
        AnchorVerdict::Trusted(ours)
    } else if checks.contains(&AnchorKeyCheck::NotTheIssuers) {
        AnchorVerdict::Forged(ours)
    } else {
        AnchorVerdict::RetiredKey(ours)
    }
}

/// Whether `text` is the base58 text of a 64-byte transaction signature. A stored anchor
/// signature that is not is drift on its face, without asking the chain.
pub fn is_signature_text(text: &str) -> bool {
    bs58::decode(text)
        .into_vec()
        .is_ok_and(|bytes| bytes.len() == 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::CredentialHash;
    use crate::CredentialId;

    const KEY: &str = "AnchorKey1111111111111111111111111111111111";
    const OTHER: &str = "Other11111111111111111111111111111111111111";

    fn issuer(s: &str) -> IssuerId {
        IssuerId::parse(s).unwrap()
    }

    fn memo(issuer_id: &str) -> Memo {
        Memo::Credential {
            issuer: issuer(issuer_id),
            credential: CredentialId::new_v7(),
            hash: CredentialHash::from_bytes([7; 32]),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn holder(issuer_id: &str, retired_at: Option<i64>) -> KeyHolder {
        KeyHolder {
            issuer: issuer(issuer_id),
            window: AnchorKeyWindow {
                pubkey: KEY.into(),
                valid_from: at(0),
                retired_at: retired_at.map(at),
            },
        }
    }

    fn run(fee_payer: &str, succeeded: bool, memos: &[String]) -> AnchorVerdict {
        classify(
            ObservedAnchor {
                fee_payer,
                succeeded,
                memos,
                block_time: Some(at(100)),
            },
            KEY,
            &[holder("uni-a", None)],
        )
    }

    #[test]
    fn a_retired_key_is_trusted_only_for_blocks_before_its_retirement() {
        let m = memo("uni-a");
        let memos = [m.encode()];
        let observe = |block_time| ObservedAnchor {
            fee_payer: KEY,
            succeeded: true,
            memos: &memos,
            block_time,
        };
        let holders = [holder("uni-a", Some(100))];
        assert_eq!(
            classify(observe(Some(at(99))), KEY, &holders),
            AnchorVerdict::Trusted(vec![m.clone()])
        );
        assert_eq!(
            classify(observe(Some(at(100))), KEY, &holders),
            AnchorVerdict::RetiredKey(vec![m.clone()])
        );
        assert_eq!(
            classify(observe(None), KEY, &holders),
            AnchorVerdict::RetiredKey(vec![m.clone()])
        );
        // Another issuer still anchoring with the same key does not lend it to uni-a.
        let shared = [holder("uni-a", Some(100)), holder("uni-b", None)];
        assert_eq!(
            classify(observe(Some(at(150))), KEY, &shared),
            AnchorVerdict::RetiredKey(vec![m])
        );
    }

    #[test]
    fn successful_memo_from_the_key_is_trusted() {
        let m = memo("uni-a");
        assert_eq!(
            run(KEY, true, &[m.encode()]),
            AnchorVerdict::Trusted(vec![m])
        );
    }

    #[test]
    fn other_fee_payer_is_forged() {
        let m = memo("uni-a");
        assert_eq!(
            run(OTHER, true, &[m.encode()]),
            AnchorVerdict::Forged(vec![m])
        );
    }

    #[test]
    fn issuer_of_another_key_is_forged_even_from_the_key() {
        let m = memo("uni-b");
        assert_eq!(
            run(KEY, true, &[m.encode()]),
            AnchorVerdict::Forged(vec![m])
        );
    }

    #[test]
    fn mixed_memos_are_not_half_trusted() {
        let good = memo("uni-a");
        let bad = memo("uni-b");
        assert_eq!(
            run(KEY, true, &[good.encode(), bad.encode()]),
            AnchorVerdict::Forged(vec![good, bad])
        );
    }

    #[test]
    fn failed_transaction_is_failed_whoever_paid() {
        let m = memo("uni-a");
        assert_eq!(
            run(KEY, false, &[m.encode()]),
            AnchorVerdict::Failed(vec![m.clone()])
        );
        assert_eq!(
            run(OTHER, false, &[m.encode()]),
            AnchorVerdict::Failed(vec![m])
        );
    }

    #[test]
    fn signature_text_is_64_bytes_of_base58() {
        assert!(is_signature_text(&bs58::encode([9u8; 64]).into_string()));
        assert!(!is_signature_text(&bs58::encode([9u8; 32]).into_string()));
        assert!(!is_signature_text("not-a-signature!"));
    }

    #[test]
    fn foreign_memos_are_not_ours() {
        assert_eq!(
            run(KEY, true, &["hello".to_string()]),
            AnchorVerdict::NotOurs
        );
        assert_eq!(run(KEY, true, &[]), AnchorVerdict::NotOurs);
    }

    #[test]
    fn foreign_memos_next_to_ours_are_ignored() {
        let m = memo("uni-a");
        assert_eq!(
            run(KEY, true, &["gm".to_string(), m.encode()]),
            AnchorVerdict::Trusted(vec![m])
        );
    }
}
