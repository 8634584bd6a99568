//! The reconciler's rules (invariants 3 and 4): which on-chain memos to trust (`classify`),
//! and what a trusted memo means for the database record it names (`decide_anchor`,
//! `decide_batch`, `decide_revocation` → a `Repair`), plus the drift rule for a recorded
//! anchor the chain does not back (`check_recorded_anchor`).
//!
//! Anyone can write a memo in our format and make it show up in the anchoring key's history
//! (by listing the key as a read-only account), so a memo is trusted only when the
//! transaction succeeded, was paid (and so signed) by the anchoring key, and the memo names an
//! issuer that anchored with that key when the block was made (a key retired by rotation
//! vouches only for blocks before its retirement: `anchor_keys`). Everything else is
//! classified, never trusted.
//!
//! The decisions are pure: `store` reads the record under a row lock, asks the rule here, and
//! executes the `Repair` in the same transaction; the scan only gathers the inputs.

use chrono::{DateTime, Utc};

use crate::anchor_keys::{check_anchor_key, AnchorKeyCheck, AnchorKeyWindow};
use crate::hash::CredentialHash;
use crate::memo::{decode, Decoded, Memo};
use crate::status::{allowed_sources, CredentialStatus, StatusEvent};
use crate::{IssuerId, MerkleRoot};

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

/// Kind of a recorded disagreement between the database and the chain; the text is the
/// `reconciliation_findings.kind` column and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    PendingAnchored,
    MissingRow,
    Drift,
    Forged,
    FailedTx,
    /// A memo paid by an issuer's anchoring key after the issuer retired it.
    RetiredKey,
    /// A stored anchoring key that is not a valid public key: its history cannot be read.
    MalformedKey,
    /// A status list version anchored on chain that the database did not know (a restore):
    /// rebuilt from its memo; the publisher re-signs its bits.
    StatusListRecovered,
    /// A list whose newest servable version is older than the newest anchored one: verifiers
    /// given the served list see `stale` until it is re-signed.
    StatusListStale,
}

impl FindingKind {
    pub const ALL: [FindingKind; 9] = [
        FindingKind::PendingAnchored,
        FindingKind::MissingRow,
        FindingKind::Drift,
        FindingKind::Forged,
        FindingKind::FailedTx,
        FindingKind::RetiredKey,
        FindingKind::MalformedKey,
        FindingKind::StatusListRecovered,
        FindingKind::StatusListStale,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            FindingKind::PendingAnchored => "pending_anchored",
            FindingKind::MissingRow => "missing_row",
            FindingKind::Drift => "drift",
            FindingKind::Forged => "forged",
            FindingKind::FailedTx => "failed_tx",
            FindingKind::RetiredKey => "retired_key",
            FindingKind::MalformedKey => "malformed_key",
            FindingKind::StatusListRecovered => "status_list_recovered",
            FindingKind::StatusListStale => "status_list_stale",
        }
    }
}

/// Why a record and the chain disagree in a way the reconciler must not repair on its own:
/// the row is left alone and a human sees a `drift` finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriftReason {
    /// The record names another issuer, hash, member count or root than the memo.
    RecordDisagrees,
    /// The record already holds another anchor: two anchors of one subject landed, so
    /// invariant 2 broke somewhere. The first anchor stays.
    SecondAnchor,
    /// A revocation memo for a credential with no row (its anchor is older than the scanned
    /// window, or it is a batch member not yet re-linked).
    RevocationWithoutCredential,
    /// A revocation memo for a credential whose row does not say anchored.
    RevocationOfUnanchored,
    /// A recorded anchor signature that is not a signature at all.
    NotASignature,
    /// A recorded anchor signature the node's full history does not know.
    UnknownOnChain,
    /// A recorded anchor signature whose transaction failed.
    FailedOnChain,
}

/// What the reconciler does with one trusted memo, given what the database records for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repair {
    /// The record already agrees with the chain: nothing to write, nothing to report.
    Consistent,
    /// No record exists (a restore lost it): rebuild it from the memo as `recovered`.
    Backfill,
    /// The record is pending (the relay crashed or gave up after sending): finalize it, its
    /// open outbox job and its transactions with the anchor found on chain.
    Finalize,
    /// The revocation already records this anchor but its credential is not `revoked`.
    MarkRevoked,
    /// Record a drift finding; write nothing else.
    Drift(DriftReason),
}

/// What a trusted memo is about, for the finding it amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Credential,
    Batch,
    Revocation,
    /// A version of a status list (`ca1:s`).
    StatusList,
}

impl Repair {
    /// The finding a repair amounts to (kind and the detail recorded beside it), `None` for
    /// `Consistent`. One table, so the detail texts operators grep for never drift apart.
    pub const fn finding(self, subject: Subject) -> Option<(FindingKind, &'static str)> {
        use FindingKind as K;
        use Subject as S;
        Some(match (self, subject) {
            (Repair::Consistent, _) => return None,
            (Repair::Backfill, S::Credential) => (K::MissingRow, "backfilled as recovered"),
            (Repair::Backfill, S::Batch) => (
                K::MissingRow,
                "batch backfilled as recovered; members are re-linked from their proof bundles",
            ),
            (Repair::Backfill, S::Revocation) => {
                (K::MissingRow, "revocation rebuilt from the chain")
            }
            (Repair::Backfill, S::StatusList) => (
                K::StatusListRecovered,
                "status list version rebuilt from the chain; the publisher re-signs its bits",
            ),
            (Repair::Finalize, S::StatusList) => (
                K::PendingAnchored,
                "status list version finalized by the reconciler",
            ),
            (Repair::Finalize, S::Credential) => {
                (K::PendingAnchored, "finalized by the reconciler")
            }
            (Repair::Finalize, S::Batch) => {
                (K::PendingAnchored, "batch finalized by the reconciler")
            }
            (Repair::Finalize, S::Revocation) => {
                (K::PendingAnchored, "revocation finalized by the reconciler")
            }
            (Repair::MarkRevoked, _) => (
                K::PendingAnchored,
                "anchored revocation's credential was not revoked",
            ),
            (Repair::Drift(reason), subject) => (K::Drift, reason.detail(subject)),
        })
    }
}

impl DriftReason {
    /// The detail recorded with the drift finding.
    pub const fn detail(self, subject: Subject) -> &'static str {
        use DriftReason as D;
        match (self, subject) {
            (D::RecordDisagrees, Subject::Credential) => "row disagrees with its on-chain memo",
            (D::RecordDisagrees, Subject::Batch) => "batch record disagrees with its on-chain memo",
            (D::RecordDisagrees, Subject::Revocation) => {
                "row disagrees with its on-chain revocation memo"
            }
            (D::RecordDisagrees, Subject::StatusList) => {
                "status list version number disagrees with its on-chain memo"
            }
            (D::SecondAnchor, Subject::StatusList) => {
                "a second anchor of an anchored status list version"
            }
            (D::SecondAnchor, Subject::Credential) => "a second anchor of an anchored credential",
            (D::SecondAnchor, Subject::Batch) => "a second anchor of an anchored batch",
            (D::SecondAnchor, Subject::Revocation) => "a second revocation anchor of a credential",
            (D::RevocationWithoutCredential, _) => {
                "revocation on chain for a credential with no row: rebuild the credential, then run-once again"
            }
            (D::RevocationOfUnanchored, _) => {
                "revocation on chain for a credential not anchored here: rebuild its anchor, then run-once again"
            }
            (D::NotASignature, _) => "anchor_signature is not a signature",
            (D::UnknownOnChain, _) => "anchor_signature unknown on chain",
            (D::FailedOnChain, _) => "anchor transaction failed on chain",
        }
    }
}

/// A trusted memo's claim about a credential (its anchor or its revocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialClaim<'a> {
    pub issuer: &'a IssuerId,
    pub hash: &'a CredentialHash,
    /// The transaction that carried the memo.
    pub signature: &'a str,
}

/// What the database records for a credential, read under its row lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCredential {
    pub issuer: String,
    pub hash: Vec<u8>,
    pub status: CredentialStatus,
    pub anchor_signature: Option<String>,
}

impl RecordedCredential {
    fn names(&self, claim: &CredentialClaim<'_>) -> bool {
        self.issuer == claim.issuer.as_str() && self.hash.as_slice() == claim.hash.as_bytes()
    }
}

/// The statuses a trusted anchor finalizes: the chain settles every state short of anchored
/// (`ObservedOnChain`), including a dead-lettered one (the relay sent, then gave up too early).
pub fn awaiting_anchor() -> impl Iterator<Item = CredentialStatus> {
    allowed_sources(StatusEvent::ObservedOnChain)
        .iter()
        .copied()
        .filter(|s| !s.is_anchored())
}

/// A trusted `ca1:c` memo against the credential row it names.
pub fn decide_anchor(claim: &CredentialClaim<'_>, row: Option<&RecordedCredential>) -> Repair {
    let Some(row) = row else {
        return Repair::Backfill;
    };
    if !row.names(claim) {
        Repair::Drift(DriftReason::RecordDisagrees)
    } else if awaiting_anchor().any(|s| s == row.status) {
        Repair::Finalize
    } else if row
        .anchor_signature
        .as_deref()
        .is_some_and(|recorded| recorded != claim.signature)
    {
        Repair::Drift(DriftReason::SecondAnchor)
    } else {
        Repair::Consistent
    }
}

/// The steady state of every periodic scan: the row records exactly this anchor, so the
/// transaction is the one the database trusted before and the scan need not fetch it again.
/// Stricter than `decide_anchor(..) == Consistent`: the signature itself must be recorded.
pub fn records_exactly(claim: &CredentialClaim<'_>, row: &RecordedCredential) -> bool {
    row.anchor_signature.as_deref() == Some(claim.signature)
        && decide_anchor(claim, Some(row)) == Repair::Consistent
}

/// A trusted `ca1:b` memo's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchClaim<'a> {
    pub issuer: &'a IssuerId,
    pub count: u32,
    pub root: &'a MerkleRoot,
    pub signature: &'a str,
}

/// What the database records for a Merkle batch, read under its row lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedBatch {
    pub issuer: String,
    pub member_count: i64,
    pub root: Vec<u8>,
    pub completed: bool,
    pub anchor_signature: Option<String>,
}

/// A trusted `ca1:b` memo against the batch record it names.
pub fn decide_batch(claim: &BatchClaim<'_>, row: Option<&RecordedBatch>) -> Repair {
    let Some(row) = row else {
        return Repair::Backfill;
    };
    let agrees = row.issuer == claim.issuer.as_str()
        && row.member_count == i64::from(claim.count)
        && row.root.as_slice() == claim.root.as_bytes();
    decide_job_record(
        agrees,
        row.completed,
        row.anchor_signature.as_deref(),
        claim.signature,
    )
}

/// The rule a trusted memo and the record of a job that owns its anchor (a batch, a status
/// list version) share: a record that says something else is drift; a pending one is
/// finalized by the anchor found; a completed one anchored by another transaction means two
/// anchors landed (drift); otherwise they agree.
fn decide_job_record(
    agrees: bool,
    completed: bool,
    recorded_signature: Option<&str>,
    signature: &str,
) -> Repair {
    if !agrees {
        Repair::Drift(DriftReason::RecordDisagrees)
    } else if !completed {
        Repair::Finalize
    } else if recorded_signature.is_some_and(|recorded| recorded != signature) {
        Repair::Drift(DriftReason::SecondAnchor)
    } else {
        Repair::Consistent
    }
}

/// What the database records for the status list version with a memo's bits (issuer, list
/// and bits hash), read under its row lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedStatusVersion {
    pub version: u32,
    pub completed: bool,
    pub anchor_signature: Option<String>,
}

/// A trusted `ca1:s` memo (version `version`, carried by `signature`) against the record of
/// the same bits: none → backfill (a restore), pending → finalize, another anchor → drift.
pub fn decide_status_version(
    version: u32,
    signature: &str,
    row: Option<&RecordedStatusVersion>,
) -> Repair {
    let Some(row) = row else {
        return Repair::Backfill;
    };
    decide_job_record(
        row.version == version,
        row.completed,
        row.anchor_signature.as_deref(),
        signature,
    )
}

/// What the database records for a revocation: no row, a pending one, or one with its
/// anchor signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedRevocation {
    None,
    Pending,
    Anchored(String),
}

/// A trusted revocation (a `ca1:r` memo, or one entry of a `ca1:v` list) against its credential row and revocation record. Applied after
/// the run's anchors: a revocation is only ever sent for an anchored credential.
pub fn decide_revocation(
    claim: &CredentialClaim<'_>,
    credential: Option<&RecordedCredential>,
    revocation: &RecordedRevocation,
) -> Repair {
    let Some(credential) = credential else {
        return Repair::Drift(DriftReason::RevocationWithoutCredential);
    };
    if !credential.names(claim) {
        return Repair::Drift(DriftReason::RecordDisagrees);
    }
    if !allowed_sources(StatusEvent::RevocationAnchored).contains(&credential.status) {
        return Repair::Drift(DriftReason::RevocationOfUnanchored);
    }
    match revocation {
        RecordedRevocation::Anchored(recorded) if recorded == claim.signature => {
            if credential.status == CredentialStatus::Revoked {
                Repair::Consistent
            } else {
                Repair::MarkRevoked
            }
        }
        RecordedRevocation::Anchored(_) => Repair::Drift(DriftReason::SecondAnchor),
        RecordedRevocation::Pending => Repair::Finalize,
        RecordedRevocation::None => Repair::Backfill,
    }
}

/// What the node's full history (`getSignatureStatuses` with `searchTransactionHistory`) says
/// of a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureOnChain {
    Unknown,
    Failed,
    Succeeded,
}

/// The drift rule for a row that claims an anchor: its signature must be a signature the
/// chain knows as successful. `on_chain` is not consulted for text that is not a signature.
pub fn check_recorded_anchor(signature: &str, on_chain: SignatureOnChain) -> Option<DriftReason> {
    if !is_signature_text(signature) {
        return Some(DriftReason::NotASignature);
    }
    match on_chain {
        SignatureOnChain::Unknown => Some(DriftReason::UnknownOnChain),
        SignatureOnChain::Failed => Some(DriftReason::FailedOnChain),
        SignatureOnChain::Succeeded => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_list_memo_backfills_finalizes_or_drifts() {
        let row = |version, completed, sig: Option<&str>| RecordedStatusVersion {
            version,
            completed,
            anchor_signature: sig.map(str::to_string),
        };
        assert_eq!(decide_status_version(3, "s", None), Repair::Backfill);
        assert_eq!(
            decide_status_version(3, "s", Some(&row(3, false, None))),
            Repair::Finalize
        );
        assert_eq!(
            decide_status_version(3, "s", Some(&row(3, true, Some("s")))),
            Repair::Consistent
        );
        assert_eq!(
            decide_status_version(3, "s", Some(&row(3, true, Some("t")))),
            Repair::Drift(DriftReason::SecondAnchor)
        );
        assert_eq!(
            decide_status_version(3, "s", Some(&row(2, true, Some("s")))),
            Repair::Drift(DriftReason::RecordDisagrees)
        );
        assert_eq!(
            Repair::Backfill.finding(Subject::StatusList).map(|f| f.0),
            Some(FindingKind::StatusListRecovered)
        );
    }
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

    mod decisions {
        use super::super::*;
        use crate::status::transition;
        use proptest::prelude::*;

        const SIGS: [&str; 3] = ["sig-a", "sig-b", "sig-c"];

        fn status() -> impl Strategy<Value = CredentialStatus> {
            proptest::sample::select(CredentialStatus::ALL.to_vec())
        }

        fn sig() -> impl Strategy<Value = Option<String>> {
            proptest::option::of(proptest::sample::select(SIGS.to_vec()).prop_map(String::from))
        }

        fn issuer_text() -> impl Strategy<Value = String> {
            proptest::sample::select(vec!["uni-a".to_string(), "uni-b".to_string()])
        }

        fn hash_byte() -> impl Strategy<Value = u8> {
            0u8..2
        }

        prop_compose! {
            fn recorded()(issuer in issuer_text(), h in hash_byte(), status in status(), anchor_signature in sig())
                -> RecordedCredential {
                RecordedCredential { issuer, hash: vec![h; 32], status, anchor_signature }
            }
        }

        /// The row as the store leaves it after executing `repair` (the SQL of
        /// `store::reconcile`, restated), to check that repairs converge.
        fn after(
            repair: Repair,
            claim: &CredentialClaim<'_>,
            row: Option<&RecordedCredential>,
        ) -> Option<RecordedCredential> {
            match repair {
                Repair::Backfill => Some(RecordedCredential {
                    issuer: claim.issuer.as_str().into(),
                    hash: claim.hash.as_bytes().to_vec(),
                    status: CredentialStatus::initial_for_backfill(),
                    anchor_signature: Some(claim.signature.into()),
                }),
                Repair::Finalize => row.map(|r| RecordedCredential {
                    status: transition(r.status, StatusEvent::ObservedOnChain).unwrap(),
                    anchor_signature: Some(claim.signature.into()),
                    ..r.clone()
                }),
                _ => row.cloned(),
            }
        }

        proptest! {
            #[test]
            fn an_anchor_decision_follows_the_status_machine_and_converges(
                row in proptest::option::of(recorded()),
                claim_sig in proptest::sample::select(SIGS.to_vec()),
            ) {
                let issuer = IssuerId::parse("uni-a").unwrap();
                let hash = CredentialHash::from_bytes([0; 32]);
                let claim = CredentialClaim { issuer: &issuer, hash: &hash, signature: claim_sig };
                let repair = decide_anchor(&claim, row.as_ref());
                match (&row, repair) {
                    (None, r) => prop_assert_eq!(r, Repair::Backfill),
                    (Some(r), Repair::Finalize) => {
                        prop_assert!(!r.status.is_anchored());
                        prop_assert_eq!(transition(r.status, StatusEvent::ObservedOnChain), Ok(CredentialStatus::Finalized));
                    }
                    (Some(r), Repair::Consistent) => {
                        prop_assert!(r.status.is_anchored());
                        prop_assert!(r.names(&claim));
                    }
                    (Some(r), Repair::Drift(DriftReason::RecordDisagrees)) => prop_assert!(!r.names(&claim)),
                    (Some(r), Repair::Drift(DriftReason::SecondAnchor)) => {
                        prop_assert!(r.status.is_anchored());
                        prop_assert!(r.anchor_signature.as_deref() != Some(claim_sig));
                    }
                    (_, other) => prop_assert!(false, "unexpected {:?}", other),
                }
                // Executing the repair, then deciding again, settles: nothing is repaired twice.
                let repaired = after(repair, &claim, row.as_ref());
                let again = decide_anchor(&claim, repaired.as_ref());
                prop_assert!(matches!(again, Repair::Consistent | Repair::Drift(_)), "{:?} then {:?}", repair, again);
                if let Some(r) = &row {
                    if records_exactly(&claim, r) {
                        prop_assert_eq!(repair, Repair::Consistent);
                    }
                }
            }

            #[test]
            fn a_revocation_decision_follows_the_status_machine_and_converges(
                row in proptest::option::of(recorded()),
                recorded_revocation in prop_oneof![
                    Just(RecordedRevocation::None),
                    Just(RecordedRevocation::Pending),
                    proptest::sample::select(SIGS.to_vec()).prop_map(|s| RecordedRevocation::Anchored(s.into())),
                ],
                claim_sig in proptest::sample::select(SIGS.to_vec()),
            ) {
                let issuer = IssuerId::parse("uni-a").unwrap();
                let hash = CredentialHash::from_bytes([0; 32]);
                let claim = CredentialClaim { issuer: &issuer, hash: &hash, signature: claim_sig };
                let repair = decide_revocation(&claim, row.as_ref(), &recorded_revocation);
                if matches!(repair, Repair::Backfill | Repair::Finalize | Repair::MarkRevoked) {
                    let r = row.as_ref().unwrap();
                    prop_assert_eq!(transition(r.status, StatusEvent::RevocationAnchored), Ok(CredentialStatus::Revoked));
                    // After the repair: the revocation records this anchor, the credential is revoked.
                    let revoked = RecordedCredential { status: CredentialStatus::Revoked, ..r.clone() };
                    let again = decide_revocation(&claim, Some(&revoked), &RecordedRevocation::Anchored(claim_sig.into()));
                    prop_assert_eq!(again, Repair::Consistent);
                }
                if repair == Repair::Consistent {
                    prop_assert_eq!(row.map(|r| r.status), Some(CredentialStatus::Revoked));
                }
            }

            #[test]
            fn a_batch_decision_converges(
                issuer in issuer_text(),
                count in 1u32..3,
                root_byte in 0u8..2,
                completed in any::<bool>(),
                anchor_signature in sig(),
                exists in any::<bool>(),
                claim_sig in proptest::sample::select(SIGS.to_vec()),
            ) {
                let claim_issuer = IssuerId::parse("uni-a").unwrap();
                let root = MerkleRoot::from_bytes([0; 32]);
                let claim = BatchClaim { issuer: &claim_issuer, count: 1, root: &root, signature: claim_sig };
                let row = exists.then(|| RecordedBatch { issuer, member_count: i64::from(count), root: vec![root_byte; 32], completed, anchor_signature });
                let repair = decide_batch(&claim, row.as_ref());
                let repaired = match repair {
                    Repair::Backfill | Repair::Finalize => Some(RecordedBatch {
                        issuer: "uni-a".into(), member_count: 1, root: vec![0; 32], completed: true,
                        anchor_signature: Some(claim_sig.into()),
                    }),
                    _ => row.clone(),
                };
                let again = decide_batch(&claim, repaired.as_ref());
                prop_assert!(matches!(again, Repair::Consistent | Repair::Drift(_)));
                if repair == Repair::Finalize {
                    prop_assert!(!row.unwrap().completed);
                }
            }
        }

        #[test]
        fn every_repair_but_consistent_is_a_finding_and_drift_is_drift() {
            let reasons = [
                DriftReason::RecordDisagrees,
                DriftReason::SecondAnchor,
                DriftReason::RevocationWithoutCredential,
                DriftReason::RevocationOfUnanchored,
                DriftReason::NotASignature,
                DriftReason::UnknownOnChain,
                DriftReason::FailedOnChain,
            ];
            for subject in [Subject::Credential, Subject::Batch, Subject::Revocation] {
                assert_eq!(Repair::Consistent.finding(subject), None);
                for repair in [Repair::Backfill, Repair::Finalize, Repair::MarkRevoked] {
                    let (kind, detail) = repair.finding(subject).unwrap();
                    assert_ne!(kind, FindingKind::Drift);
                    assert!(!detail.is_empty());
                }
                for reason in reasons {
                    let (kind, detail) = Repair::Drift(reason).finding(subject).unwrap();
                    assert_eq!(kind, FindingKind::Drift);
                    assert!(!detail.is_empty());
                }
            }
            let kinds: std::collections::HashSet<_> =
                FindingKind::ALL.iter().map(|k| k.as_str()).collect();
            assert_eq!(kinds.len(), FindingKind::ALL.len());
        }

        #[test]
        fn the_statuses_a_trusted_anchor_finalizes_are_the_pending_ones() {
            let pending: Vec<_> = awaiting_anchor().collect();
            assert_eq!(
                pending,
                [
                    CredentialStatus::Queued,
                    CredentialStatus::Submitted,
                    CredentialStatus::Confirmed,
                    CredentialStatus::Failed
                ]
            );
        }

        #[test]
        fn a_recorded_anchor_is_drift_unless_the_chain_knows_it_succeeded() {
            let good = bs58::encode([9u8; 64]).into_string();
            assert_eq!(
                check_recorded_anchor(&good, SignatureOnChain::Succeeded),
                None
            );
            assert_eq!(
                check_recorded_anchor(&good, SignatureOnChain::Failed),
                Some(DriftReason::FailedOnChain)
            );
            assert_eq!(
                check_recorded_anchor(&good, SignatureOnChain::Unknown),
                Some(DriftReason::UnknownOnChain)
            );
            assert_eq!(
                check_recorded_anchor("nope", SignatureOnChain::Succeeded),
                Some(DriftReason::NotASignature)
            );
        }
    }
}
