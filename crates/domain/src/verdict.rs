//! The verdict on a credential: one pure function from every piece of evidence the edges
//! gathered (the file, the proof bundle, the issuer's published keys, what the chain says
//! about the anchor transaction, the revocation state) to one answer a verifier can act on.
//!
//! Used by `POST /v1/verify`, the HTML page and the offline `credential-verify` command, so
//! all three answer the same thing for the same evidence. It does no I/O: the callers fetch
//! the transaction (at `finalized`, then `confirmed`), the issuer profile or pinned key, and
//! the revocation, and hand the facts in.
//!
//! Checks run from the most fundamental to the least, and the first failure decides:
//! issuer known → bundle consistent with the file (hash, signature, Merkle path, memo) →
//! signing key published and valid at signing time → anchor key is the issuer's → the chain
//! has the transaction, successful, paid by that key, carrying exactly the expected memo,
//! finalized → revocation. A revocation pending on chain is reported as its own verdict
//! (`revocation_pending`), not as `valid` with a flag: a verifier skimming only the verdict
//! must not read "valid" for a credential its issuer has already withdrawn.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::anchor_keys::{check_anchor_key, AnchorKeyCheck, AnchorKeyWindow};
use crate::cluster::Cluster;
use crate::key_validity::{check_key_validity, KeyWindow, SigningEvidence};
use crate::proof::{check_offline, ProofBundle, ProofCheckError};
use crate::signing::PublicKey;
use crate::{CredentialId, KeyId};

/// The answer, as the API, the page and the CLI name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// Issued by this issuer, untampered, anchored and finalized, not revoked.
    Valid,
    /// Valid once, and its revocation is anchored.
    Revoked,
    /// Genuine and anchored, but its issuer revoked it and the revocation memo is not
    /// finalized yet: treat as revoked.
    RevocationPending,
    /// Genuine so far, but the anchor is not (yet) finalized on chain.
    NotAnchoredYet,
    /// The file, the bundle or the claimed fields do not match what was issued and anchored.
    Tampered,
    /// The issuer named by the credential is not known (or not the one pinned).
    UnknownIssuer,
    /// The issuer signature does not verify, or the key was not valid when it signed.
    InvalidSignature,
    /// Genuine and anchored, but the status list it was checked with is older than the
    /// newest version its issuer anchored: whoever served it is behind, and may be hiding a
    /// revocation. Not valid; fetch the list again from the issuer.
    Stale,
    /// Everything else holds, but whether it was revoked could not be established (the
    /// offline verifier could not read the anchoring key's history back to the anchor):
    /// not valid, try another RPC endpoint or ask later.
    Inconclusive,
}

impl VerdictKind {
    pub const ALL: [VerdictKind; 9] = [
        VerdictKind::Valid,
        VerdictKind::Revoked,
        VerdictKind::RevocationPending,
        VerdictKind::NotAnchoredYet,
        VerdictKind::Tampered,
        VerdictKind::UnknownIssuer,
        VerdictKind::InvalidSignature,
        VerdictKind::Stale,
        VerdictKind::Inconclusive,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Valid => "valid",
            VerdictKind::Revoked => "revoked",
            VerdictKind::RevocationPending => "revocation_pending",
            VerdictKind::NotAnchoredYet => "not_anchored_yet",
            VerdictKind::Tampered => "tampered",
            VerdictKind::UnknownIssuer => "unknown_issuer",
            VerdictKind::InvalidSignature => "invalid_signature",
            VerdictKind::Stale => "stale",
            VerdictKind::Inconclusive => "inconclusive",
        }
    }

    /// A short sentence for people (the page, the CLI's one-line verdict).
    pub const fn headline(self) -> &'static str {
        match self {
            VerdictKind::Valid => "Valid: issued by this issuer, unchanged, and anchored on chain.",
            VerdictKind::Revoked => "Revoked: the issuer has withdrawn this credential.",
            VerdictKind::RevocationPending => {
                "Revoked (pending): the issuer has withdrawn this credential; the revocation is being anchored."
            }
            VerdictKind::NotAnchoredYet => {
                "Not anchored yet: genuine so far, but its anchor is not final on chain. Try again later."
            }
            VerdictKind::Tampered => {
                "Tampered: this file or its details do not match what the issuer anchored."
            }
            VerdictKind::UnknownIssuer => "Unknown issuer: this issuer is not known here.",
            VerdictKind::InvalidSignature => {
                "Invalid signature: the issuer's signature on this credential does not hold."
            }
            VerdictKind::Stale => {
                "Stale: the status list checked is older than the one its issuer anchored. Fetch it again from the issuer; do not accept it as valid."
            }
            VerdictKind::Inconclusive => {
                "Inconclusive: genuine so far, but part of the proof (whether it was revoked, or when its anchor was made) could not be checked. Do not accept it as valid yet."
            }
        }
    }
}

/// What the issuer publishes (API: its profile; CLI: the bundle's keys plus a pinned key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerFacts {
    /// The issuer's anchoring keys with their windows: the only acceptable fee payers, each
    /// until its retirement (`anchor_keys::check_anchor_key`). `None` means "not published"
    /// (offline, nothing pinned): then the bundle's own anchoring key is the reference.
    /// `Some(empty)` is an issuer that has no key: nothing it anchors is trusted.
    pub anchor_keys: Option<Vec<AnchorKeyWindow>>,
    /// Published signing keys. Empty means "not published" (offline): then the bundle's own
    /// key is used for the signature check and no validity window is enforced.
    pub signing_keys: Vec<PublishedKey>,
}

/// One published signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    pub key_id: KeyId,
    pub public_key: PublicKey,
    pub window: KeyWindow,
}

/// What the chain says about the bundle's anchor transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainAnchor {
    /// No anchor transaction exists yet (queued credential: no signature to look up).
    NotSubmitted,
    /// The node has no such transaction at `confirmed` or `finalized`.
    NotFound,
    /// The transaction as the node returned it.
    Seen(SeenTx),
}

/// A transaction read back from the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenTx {
    pub slot: u64,
    pub block_time: Option<DateTime<Utc>>,
    pub finalized: bool,
    /// `meta.err == null`.
    pub succeeded: bool,
    pub fee_payer: String,
    /// Every top-level memo instruction's text.
    pub memos: Vec<String>,
}

/// Whether the credential was revoked, as known to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationState {
    NotRevoked,
    /// Recorded, its memo (`ca1:r`, or a `ca1:v` list) not finalized yet.
    Pending,
    /// Its memo (`ca1:r` or `ca1:v`) is finalized (by the issuer's anchoring key).
    Anchored,
    /// Not found, but the search could not cover everything after the anchor
    /// (`revocation_scan`): the credential may be revoked.
    Unknown,
}

/// Everything the verdict depends on.
#[derive(Debug, Clone)]
pub struct Evidence<'a> {
    pub bundle: &'a ProofBundle,
    /// The file's bytes; `None` checks the bundle alone.
    pub file: Option<&'a [u8]>,
    /// `None`: the issuer is not known (or does not match the pinned key).
    pub issuer: Option<&'a IssuerFacts>,
    /// When our database recorded the credential, if the caller knows (exact signing
    /// evidence, see `key_validity`).
    pub recorded_at: Option<DateTime<Utc>>,
    /// The id under which the issuer recorded the credential with this issuer and hash, if
    /// the caller knows it (the API finds its record by what the bundle proves: issuer and
    /// credential hash). A bundle naming another id was edited: in merkle mode the id is
    /// covered by neither the hash, the signature nor the memo, so only this catches it.
    pub recorded_id: Option<CredentialId>,
    pub chain: &'a ChainAnchor,
    /// The cluster `chain` was read from (API: its configured cluster; CLI: named by the
    /// endpoints' genesis hash, [`crate::cluster::cluster_of_genesis_hash`]), or `None` when not known. A
    /// bundle naming another cluster cannot be checked here: inconclusive, never valid.
    pub chain_cluster: Option<Cluster>,
    /// The revocation state of the credential with this issuer and hash (never looked up
    /// by the bundle's id alone, which the holder can edit).
    pub revocation: &'a RevocationState,
}

/// The verdict with the precise reason behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub kind: VerdictKind,
    /// Stable machine-readable reason (e.g. `file_mismatch`, `anchor_wrong_fee_payer`).
    pub reason: &'static str,
    /// A sentence explaining the reason.
    pub detail: String,
}

impl Verdict {
    pub(crate) fn new(kind: VerdictKind, reason: &'static str, detail: impl Into<String>) -> Self {
        Verdict {
            kind,
            reason,
            detail: detail.into(),
        }
    }
}

/// Derives the verdict. Total: every combination of evidence has exactly one answer.
pub fn derive_verdict(e: &Evidence<'_>) -> Verdict {
    use VerdictKind as K;
    let b = e.bundle;
    let Some(issuer) = e.issuer else {
        return Verdict::new(
            K::UnknownIssuer,
            "unknown_issuer",
            format!("issuer {:?} is not known", b.fields.issuer.as_str()),
        );
    };
    if let Err(err) = check_offline(b, e.file) {
        let kind = match err {
            ProofCheckError::BadSignature(_) => K::InvalidSignature,
            _ => K::Tampered,
        };
        return Verdict::new(kind, err.code(), err.to_string());
    }
    if let Err(v) = check_recorded_id(b, e.recorded_id) {
        return v;
    }
    if let Some(cluster) = e.chain_cluster {
        if b.anchor.cluster != cluster {
            return Verdict::new(
                K::Inconclusive,
                "cluster_mismatch",
                format!(
                    "the bundle's anchor is on {}, but this verifier reads {cluster}",
                    b.anchor.cluster
                ),
            );
        }
    }

    // The signing key must be one the issuer published, with the same public key, and valid
    // when the credential was signed.
    let sig = &b.issuer_signature;
    if !issuer.signing_keys.is_empty() {
        let Some(key) = issuer.signing_keys.iter().find(|k| k.key_id == sig.key_id) else {
            return Verdict::new(
                K::InvalidSignature,
                "unknown_key",
                format!("the issuer has not published signing key {}", sig.key_id),
            );
        };
        if key.public_key != sig.public_key {
            return Verdict::new(
                K::InvalidSignature,
                "key_mismatch",
                format!(
                    "the bundle's public key for {} is not the one the issuer published",
                    sig.key_id
                ),
            );
        }
        let evidence = match (e.recorded_at, e.chain) {
            (Some(at), _) => SigningEvidence::Recorded(at),
            (
                None,
                ChainAnchor::Seen(SeenTx {
                    block_time: Some(t),
                    ..
                }),
            ) => SigningEvidence::AnchoredBy(*t),
            _ => SigningEvidence::None,
        };
        if let Err(err) = check_key_validity(&key.window, &b.fields.issued_at, evidence) {
            return Verdict::new(K::InvalidSignature, err.code(), err.to_string());
        }
    }

    let anchor_key = b.anchor.anchor_pubkey.as_str();
    if let Some(keys) = issuer
        .anchor_keys
        .as_ref()
        .filter(|keys| !keys.iter().any(|k| k.pubkey == anchor_key))
    {
        let known = if keys.is_empty() {
            "the issuer publishes no anchoring key"
        } else {
            "it is not one of the issuer's"
        };
        return Verdict::new(
            K::Tampered,
            "anchor_key_mismatch",
            format!("the bundle names anchoring key {anchor_key}, but {known}"),
        );
    }

    let tx = match e.chain {
        ChainAnchor::NotSubmitted => {
            return Verdict::new(
                K::NotAnchoredYet,
                "anchor_not_submitted",
                "the anchor transaction has not been sent yet",
            )
        }
        ChainAnchor::NotFound => {
            return Verdict::new(
                K::NotAnchoredYet,
                "anchor_not_found",
                format!("transaction {} is not on chain (yet)", b.anchor.signature),
            )
        }
        ChainAnchor::Seen(tx) => tx,
    };
    if !tx.succeeded {
        return Verdict::new(
            K::Tampered,
            "anchor_failed",
            "the anchor transaction failed on chain: it anchors nothing",
        );
    }
    // The fee payer is the first signer: only the issuer's key could have paid. The bundle's
    // key must be it (with no published keys, offline and nothing pinned, that is all there
    // is to check), and it must have been the issuer's key when the block was made.
    if tx.fee_payer != anchor_key {
        return Verdict::new(
            K::Tampered,
            "anchor_wrong_fee_payer",
            format!(
                "the transaction was paid by {}, not by the anchoring key {anchor_key}",
                tx.fee_payer
            ),
        );
    }
    if let Some(keys) = &issuer.anchor_keys {
        let check = check_anchor_key(keys, &tx.fee_payer, tx.block_time);
        match check {
            AnchorKeyCheck::Trusted => {}
            AnchorKeyCheck::NotTheIssuers => {
                return Verdict::new(
                    K::Tampered,
                    check.code(),
                    format!("{} is not an anchoring key of the issuer", tx.fee_payer),
                )
            }
            AnchorKeyCheck::Retired { retired_at } => {
                return Verdict::new(
                    K::Tampered,
                    check.code(),
                    format!(
                        "the anchor was paid by {} after the issuer retired that key ({})",
                        tx.fee_payer,
                        retired_at.to_rfc3339()
                    ),
                )
            }
            AnchorKeyCheck::NotYetValid { valid_from } => {
                return Verdict::new(
                    K::Tampered,
                    check.code(),
                    format!(
                        "the anchor was paid by {} before it became the issuer's key ({})",
                        tx.fee_payer,
                        valid_from.to_rfc3339()
                    ),
                )
            }
            AnchorKeyCheck::TimeUnknown => {
                return Verdict::new(
                    K::Inconclusive,
                    check.code(),
                    format!(
                        "the anchor was paid by the retired key {} and the node gave no block time to place it before the retirement",
                        tx.fee_payer
                    ),
                )
            }
        }
    }
    let expected_memo = match b.expected_memo() {
        Ok(memo) => memo.encode(),
        Err(err) => return Verdict::new(K::Tampered, err.code(), err.to_string()),
    };
    if !tx.memos.contains(&expected_memo) {
        return Verdict::new(
            K::Tampered,
            "anchor_memo_mismatch",
            format!("the transaction does not carry the memo {expected_memo:?}"),
        );
    }
    // The slot the bundle states is a fact about the transaction: it must be the real one.
    if tx.slot != b.anchor.slot {
        return Verdict::new(
            K::Tampered,
            "anchor_slot_mismatch",
            format!(
                "the bundle says slot {}, the transaction is in slot {}",
                b.anchor.slot, tx.slot
            ),
        );
    }
    if !tx.finalized {
        return Verdict::new(
            K::NotAnchoredYet,
            "anchor_not_finalized",
            format!(
                "the anchor is confirmed in slot {} but not finalized yet",
                tx.slot
            ),
        );
    }
    match e.revocation {
        RevocationState::Anchored => Verdict::new(
            K::Revoked,
            "revoked",
            "the issuer's revocation of this credential is anchored on chain",
        ),
        RevocationState::Pending => Verdict::new(
            K::RevocationPending,
            "revocation_pending",
            "the issuer has revoked this credential; its revocation is not final on chain yet",
        ),
        RevocationState::Unknown => Verdict::new(
            K::Inconclusive,
            "revocation_unknown",
            "no revocation was found, but the anchoring key's history could not be read back to the anchor",
        ),
        RevocationState::NotRevoked => Verdict::new(
            K::Valid,
            "valid",
            format!("anchored in slot {} and finalized", tx.slot),
        ),
    }
}

/// Whether a transaction, as an RPC node returned it, is the one its signers signed: every
/// required signature (`signatures[i]`, by `signers[i]`, the message's first static account
/// keys) verifies over `message`, the exact bytes the node sent, with at least one signer.
///
/// Why: a node can answer `getTransaction` with anything. The first signature is the
/// transaction's id and its first signer the fee payer, so once this holds, what the message
/// says (who paid, which memo) is the signers' word, not the node's: a node cannot show
/// another memo or fee payer for a real anchor, nor a memo of its choosing "paid" by a key it
/// does not hold. What a node can still lie about lies outside the message: the slot, the
/// block time, the status (`meta.err`), finality, and what the history holds (it can omit a
/// revocation). The verifier bounds those by the bundle (its slot must be the transaction's)
/// and by asking several endpoints, which must all agree.
pub fn transaction_authentic(
    message: &[u8],
    signers: &[[u8; 32]],
    signatures: &[[u8; 64]],
) -> bool {
    !signatures.is_empty()
        && signatures.len() == signers.len()
        && signers.iter().zip(signatures).all(|(key, sig)| {
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
                .verify(message, sig)
                .is_ok()
        })
}

/// The bundle's `credential_id` must be the one the issuer recorded for this issuer and
/// hash (when known): `tampered` [`credential_id_mismatch`] otherwise.
pub fn check_recorded_id(
    bundle: &ProofBundle,
    recorded_id: Option<CredentialId>,
) -> Result<(), Verdict> {
    match recorded_id {
        Some(recorded) if recorded != bundle.credential_id => Err(Verdict::new(
            VerdictKind::Tampered,
            "credential_id_mismatch",
            format!(
                "the bundle names credential {}, but the issuer recorded this credential as {recorded}",
                bundle.credential_id
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{CredentialFields, FileDigest};
    use crate::ids::{IssuedAt, IssuerId, RecipientId, Serial};
    use crate::merkle::MerkleTree;
    use crate::proof::{AnchorPath, BundleAnchor, BundleSignature, PROOF_BUNDLE_V1};
    use crate::signing::SigningKey;

    const FILE: &[u8] = b"%PDF diploma";
    const PAYER: &str = "Payer11111111111111111111111111111111111111";

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_seed(KeyId::parse("k1").unwrap(), &[seed; 32]).unwrap()
    }

    fn bundle(merkle: bool) -> ProofBundle {
        let fields = CredentialFields {
            file_digest: FileDigest::of(FILE),
            issuer: IssuerId::parse("uni").unwrap(),
            recipient: RecipientId::parse("s-1").unwrap(),
            issued_at: IssuedAt::parse_rfc3339("2026-06-30T12:00:00Z").unwrap(),
            serial: Serial::parse("S-1").unwrap(),
        };
        let hash = fields.hash();
        let mode = if merkle {
            let other = CredentialFields {
                serial: Serial::parse("S-2").unwrap(),
                ..fields.clone()
            }
            .hash();
            let tree = MerkleTree::build(&[other, hash]).unwrap();
            AnchorPath::Merkle {
                batch_id: crate::ids::BatchId::new_v7(),
                count: 2,
                root: tree.root(),
                proof: tree.proof(1).unwrap(),
            }
        } else {
            AnchorPath::Single
        };
        let k = key(1);
        let mut b = ProofBundle {
            version: PROOF_BUNDLE_V1.into(),
            credential_id: CredentialId::new_v7(),
            salt: None,
            issuer_name: "Uni".into(),
            fields,
            credential_hash: hash,
            issuer_signature: BundleSignature {
                key_id: k.key_id().clone(),
                public_key: k.public_key(),
                signature: k.sign_credential(crate::hash::ProofFormat::V1, &hash),
            },
            anchor: BundleAnchor {
                cluster: Cluster::Localnet,
                signature: "Sig".into(),
                slot: 10,
                anchor_pubkey: PAYER.into(),
                memo: String::new(),
                mode,
            },
            vc: None,
        };
        b.anchor.memo = b.expected_memo().unwrap().encode();
        b
    }

    fn issuer() -> IssuerFacts {
        IssuerFacts {
            anchor_keys: Some(vec![AnchorKeyWindow {
                pubkey: PAYER.into(),
                valid_from: t("2026-01-01T00:00:00Z"),
                retired_at: None,
            }]),
            signing_keys: vec![PublishedKey {
                key_id: KeyId::parse("k1").unwrap(),
                public_key: key(1).public_key(),
                window: KeyWindow {
                    valid_from: t("2026-01-01T00:00:00Z"),
                    retired_at: None,
                },
            }],
        }
    }

    fn seen(b: &ProofBundle) -> ChainAnchor {
        ChainAnchor::Seen(SeenTx {
            slot: 10,
            block_time: Some(t("2026-07-01T00:00:00Z")),
            finalized: true,
            succeeded: true,
            fee_payer: PAYER.into(),
            memos: vec![b.anchor.memo.clone()],
        })
    }

    fn verdict(
        b: &ProofBundle,
        file: Option<&[u8]>,
        issuer: Option<&IssuerFacts>,
        chain: &ChainAnchor,
        revocation: &RevocationState,
    ) -> Verdict {
        derive_verdict(&Evidence {
            bundle: b,
            file,
            issuer,
            recorded_at: None,
            recorded_id: None,
            chain,
            chain_cluster: Some(Cluster::Localnet),
            revocation,
        })
    }

    fn reason(v: Verdict) -> (VerdictKind, &'static str) {
        (v.kind, v.reason)
    }

    #[test]
    fn genuine_anchored_credentials_are_valid_revoked_or_pending_in_both_modes() {
        for merkle in [false, true] {
            let b = bundle(merkle);
            let i = issuer();
            let c = seen(&b);
            let cases = [
                (RevocationState::NotRevoked, VerdictKind::Valid),
                (RevocationState::Pending, VerdictKind::RevocationPending),
                (RevocationState::Anchored, VerdictKind::Revoked),
                (RevocationState::Unknown, VerdictKind::Inconclusive),
            ];
            for (rev, kind) in cases {
                assert_eq!(verdict(&b, Some(FILE), Some(&i), &c, &rev).kind, kind);
                // The bundle alone (no file) reaches the same verdict.
                assert_eq!(verdict(&b, None, Some(&i), &c, &rev).kind, kind);
            }
        }
    }

    /// An incomplete revocation search only ever turns `valid` into `inconclusive`: a
    /// tampered file or an unfinalized anchor keeps its own verdict.
    #[test]
    fn an_unknown_revocation_state_never_yields_valid() {
        for merkle in [false, true] {
            let b = bundle(merkle);
            let i = issuer();
            let c = seen(&b);
            let v = verdict(&b, Some(FILE), Some(&i), &c, &RevocationState::Unknown);
            assert_eq!(reason(v), (VerdictKind::Inconclusive, "revocation_unknown"));
            let v = verdict(&b, Some(b"other"), Some(&i), &c, &RevocationState::Unknown);
            assert_eq!(v.kind, VerdictKind::Tampered);
        }
    }

    #[test]
    fn an_unknown_issuer_wins_over_everything() {
        let b = bundle(false);
        let v = verdict(
            &b,
            Some(b"other file"),
            None,
            &ChainAnchor::NotFound,
            &RevocationState::Anchored,
        );
        assert_eq!(reason(v), (VerdictKind::UnknownIssuer, "unknown_issuer"));
    }

    #[test]
    fn tampering_is_tampered_and_a_bad_signature_is_invalid_signature() {
        let b = bundle(true);
        let i = issuer();
        let c = seen(&b);
        let none = RevocationState::NotRevoked;
        let mut one_byte = FILE.to_vec();
        one_byte[0] ^= 1;
        assert_eq!(
            reason(verdict(&b, Some(&one_byte), Some(&i), &c, &none)),
            (VerdictKind::Tampered, "file_mismatch")
        );
        let mut t = b.clone();
        t.fields.serial = Serial::parse("S-9").unwrap();
        assert_eq!(
            reason(verdict(&t, None, Some(&i), &c, &none)),
            (VerdictKind::Tampered, "hash_mismatch")
        );
        let mut t = b.clone();
        t.issuer_signature.signature =
            key(2).sign_credential(crate::hash::ProofFormat::V1, &b.credential_hash);
        assert_eq!(
            reason(verdict(&t, None, Some(&i), &c, &none)),
            (VerdictKind::InvalidSignature, "invalid_signature")
        );
        let mut t = b.clone();
        if let AnchorPath::Merkle { proof, .. } = &mut t.anchor.mode {
            proof.steps[0].hash[0] ^= 1;
        }
        assert_eq!(
            reason(verdict(&t, None, Some(&i), &c, &none)),
            (VerdictKind::Tampered, "bad_merkle_path")
        );
    }

    #[test]
    fn the_signing_key_must_be_published_and_valid_at_signing_time() {
        let none = RevocationState::NotRevoked;
        // A bundle signed (consistently) by a key the issuer never published.
        let mut b = bundle(false);
        let rogue = SigningKey::from_seed(KeyId::parse("rogue").unwrap(), &[9; 32]).unwrap();
        b.issuer_signature = BundleSignature {
            key_id: rogue.key_id().clone(),
            public_key: rogue.public_key(),
            signature: rogue.sign_credential(crate::hash::ProofFormat::V1, &b.credential_hash),
        };
        let c = seen(&b);
        assert_eq!(
            reason(verdict(&b, None, Some(&issuer()), &c, &none)),
            (VerdictKind::InvalidSignature, "unknown_key")
        );
        // Same key id, different public key than published.
        let mut i = issuer();
        i.signing_keys[0].public_key = key(3).public_key();
        let b = bundle(false);
        let c = seen(&b);
        assert_eq!(
            reason(verdict(&b, None, Some(&i), &c, &none)),
            (VerdictKind::InvalidSignature, "key_mismatch")
        );
        // Retired before the diploma's date.
        let mut i = issuer();
        i.signing_keys[0].window.retired_at = Some(t("2026-03-01T00:00:00Z"));
        assert_eq!(
            reason(verdict(&b, None, Some(&i), &c, &none)),
            (VerdictKind::InvalidSignature, "key_retired")
        );
        // Retired after the date, but the database recorded the credential after retiring.
        let mut i = issuer();
        i.signing_keys[0].window.retired_at = Some(t("2026-07-01T00:00:00Z"));
        let v = derive_verdict(&Evidence {
            bundle: &b,
            file: None,
            issuer: Some(&i),
            recorded_at: Some(t("2026-07-01T00:00:01Z")),
            recorded_id: None,
            chain: &c,
            chain_cluster: None,
            revocation: &none,
        });
        assert_eq!(reason(v), (VerdictKind::InvalidSignature, "key_retired"));
        // ... and recorded before retiring: valid.
        let v = derive_verdict(&Evidence {
            bundle: &b,
            file: None,
            issuer: Some(&i),
            recorded_at: Some(t("2026-06-30T12:00:01Z")),
            recorded_id: Some(b.credential_id),
            chain: &c,
            chain_cluster: None,
            revocation: &none,
        });
        assert_eq!(v.kind, VerdictKind::Valid);
        // Without a published key list (offline), the bundle's key is checked alone.
        let offline = IssuerFacts {
            anchor_keys: None,
            signing_keys: vec![],
        };
        assert_eq!(
            verdict(&b, Some(FILE), Some(&offline), &c, &none).kind,
            VerdictKind::Valid
        );
    }

    #[test]
    fn the_chain_must_back_the_bundle() {
        let b = bundle(false);
        let i = issuer();
        let none = RevocationState::NotRevoked;
        let base = match seen(&b) {
            ChainAnchor::Seen(tx) => tx,
            _ => unreachable!(),
        };
        let with = |f: &dyn Fn(&mut SeenTx)| {
            let mut tx = base.clone();
            f(&mut tx);
            reason(verdict(
                &b,
                Some(FILE),
                Some(&i),
                &ChainAnchor::Seen(tx),
                &none,
            ))
        };
        assert_eq!(
            with(&|tx| tx.succeeded = false),
            (VerdictKind::Tampered, "anchor_failed")
        );
        assert_eq!(
            with(&|tx| tx.fee_payer = "Someone".into()),
            (VerdictKind::Tampered, "anchor_wrong_fee_payer")
        );
        assert_eq!(
            with(&|tx| tx.memos = vec!["ca1:c:uni:other".into()]),
            (VerdictKind::Tampered, "anchor_memo_mismatch")
        );
        assert_eq!(
            with(&|tx| tx.memos = vec![]),
            (VerdictKind::Tampered, "anchor_memo_mismatch")
        );
        // Extra memos next to ours do not matter.
        assert_eq!(
            with(&|tx| tx.memos.insert(0, "hello".into())),
            (VerdictKind::Valid, "valid")
        );
        assert_eq!(
            with(&|tx| tx.finalized = false),
            (VerdictKind::NotAnchoredYet, "anchor_not_finalized")
        );
        // A revocation is only reported for a finalized anchor.
        let mut tx = base.clone();
        tx.finalized = false;
        assert_eq!(
            verdict(
                &b,
                None,
                Some(&i),
                &ChainAnchor::Seen(tx),
                &RevocationState::Anchored
            )
            .kind,
            VerdictKind::NotAnchoredYet
        );
        for (chain, code) in [
            (ChainAnchor::NotFound, "anchor_not_found"),
            (ChainAnchor::NotSubmitted, "anchor_not_submitted"),
        ] {
            assert_eq!(
                reason(verdict(&b, Some(FILE), Some(&i), &chain, &none)),
                (VerdictKind::NotAnchoredYet, code)
            );
        }
        // The bundle states another slot than the transaction's.
        let mut moved = b.clone();
        moved.anchor.slot += 1;
        assert_eq!(
            reason(verdict(&moved, None, Some(&i), &seen(&b), &none)),
            (VerdictKind::Tampered, "anchor_slot_mismatch")
        );
        // The bundle names another anchoring key than the issuer publishes.
        let mut other = i.clone();
        other.anchor_keys = Some(vec![AnchorKeyWindow {
            pubkey: "Other".into(),
            valid_from: t("2026-01-01T00:00:00Z"),
            retired_at: None,
        }]);
        assert_eq!(
            reason(verdict(&b, None, Some(&other), &seen(&b), &none)),
            (VerdictKind::Tampered, "anchor_key_mismatch")
        );
        // An issuer that publishes no anchoring key at all vouches for no anchor (unlike an
        // offline verifier that was given none, which falls back to the bundle's key).
        let mut keyless = i.clone();
        keyless.anchor_keys = Some(vec![]);
        assert_eq!(
            reason(verdict(&b, None, Some(&keyless), &seen(&b), &none)),
            (VerdictKind::Tampered, "anchor_key_mismatch")
        );
    }

    #[test]
    fn a_bundle_for_another_cluster_is_inconclusive() {
        let b = bundle(true);
        let i = issuer();
        let c = seen(&b);
        let none = RevocationState::NotRevoked;
        let at = |cluster| {
            derive_verdict(&Evidence {
                bundle: &b,
                file: Some(FILE),
                issuer: Some(&i),
                recorded_at: None,
                recorded_id: None,
                chain: &c,
                chain_cluster: cluster,
                revocation: &none,
            })
        };
        assert_eq!(at(Some(Cluster::Localnet)).kind, VerdictKind::Valid);
        assert_eq!(
            reason(at(Some(Cluster::MainnetBeta))),
            (VerdictKind::Inconclusive, "cluster_mismatch")
        );
        assert_eq!(at(None).kind, VerdictKind::Valid);
    }

    #[test]
    fn a_retired_anchoring_key_vouches_only_for_blocks_before_its_retirement() {
        let b = bundle(false);
        let none = RevocationState::NotRevoked;
        // `seen` places the block at 2026-07-01T00:00:00Z.
        let mut i = issuer();
        let keys = i.anchor_keys.as_mut().unwrap();
        keys[0].retired_at = Some(t("2026-07-01T00:00:01Z"));
        keys.push(AnchorKeyWindow {
            pubkey: "NewKey".into(),
            valid_from: t("2026-07-01T00:00:01Z"),
            retired_at: None,
        });
        assert_eq!(
            verdict(&b, Some(FILE), Some(&i), &seen(&b), &none).kind,
            VerdictKind::Valid
        );
        i.anchor_keys.as_mut().unwrap()[0].retired_at = Some(t("2026-07-01T00:00:00Z"));
        assert_eq!(
            reason(verdict(&b, Some(FILE), Some(&i), &seen(&b), &none)),
            (VerdictKind::Tampered, "anchor_key_retired")
        );
        let mut timeless = seen(&b);
        if let ChainAnchor::Seen(tx) = &mut timeless {
            tx.block_time = None;
        }
        assert_eq!(
            reason(verdict(&b, Some(FILE), Some(&i), &timeless, &none)),
            (VerdictKind::Inconclusive, "anchor_time_unknown")
        );
    }

    #[test]
    fn a_bundle_naming_another_id_than_recorded_is_tampered_even_when_revoked() {
        for merkle in [false, true] {
            let b = bundle(merkle);
            let i = issuer();
            let c = seen(&b);
            let recorded = b.credential_id;
            // The holder edits the id: in merkle mode nothing else in the bundle covers it,
            // so the chain still backs it. Whatever the revocation state, never valid.
            let mut edited = b.clone();
            edited.credential_id = CredentialId::new_v7();
            if !merkle {
                // Single mode: keep the memo consistent with the edit (the chain then says
                // the anchor carries another memo; the recorded id decides first).
                edited.anchor.memo = edited.expected_memo().unwrap().encode();
            }
            for rev in [
                RevocationState::NotRevoked,
                RevocationState::Pending,
                RevocationState::Anchored,
            ] {
                let v = derive_verdict(&Evidence {
                    bundle: &edited,
                    file: Some(FILE),
                    issuer: Some(&i),
                    recorded_at: None,
                    recorded_id: Some(recorded),
                    chain: &c,
                    chain_cluster: None,
                    revocation: &rev,
                });
                assert_eq!(
                    reason(v),
                    (VerdictKind::Tampered, "credential_id_mismatch"),
                    "merkle={merkle} {rev:?}"
                );
                // The genuine bundle with the same evidence is unaffected.
                let v = derive_verdict(&Evidence {
                    bundle: &b,
                    file: Some(FILE),
                    issuer: Some(&i),
                    recorded_at: None,
                    recorded_id: Some(recorded),
                    chain: &c,
                    chain_cluster: None,
                    revocation: &rev,
                });
                assert_ne!(v.reason, "credential_id_mismatch");
            }
        }
    }

    #[test]
    fn check_recorded_id_only_refuses_a_known_different_id() {
        let b = bundle(true);
        assert!(check_recorded_id(&b, None).is_ok());
        assert!(check_recorded_id(&b, Some(b.credential_id)).is_ok());
        let err = check_recorded_id(&b, Some(CredentialId::new_v7())).unwrap_err();
        assert_eq!(
            (err.kind, err.reason),
            (VerdictKind::Tampered, "credential_id_mismatch")
        );
        assert!(err.detail.contains(&b.credential_id.to_string()));
    }

    #[test]
    fn verdict_names_are_stable() {
        let names: Vec<_> = VerdictKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "valid",
                "revoked",
                "revocation_pending",
                "not_anchored_yet",
                "tampered",
                "unknown_issuer",
                "invalid_signature",
                "stale",
                "inconclusive"
            ]
        );
        for k in VerdictKind::ALL {
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
            assert!(!k.headline().is_empty());
        }
    }

    mod authentic {
        use super::super::transaction_authentic;
        use proptest::prelude::*;
        use ring::signature::{Ed25519KeyPair, KeyPair};

        fn signer(seed: u8) -> ([u8; 32], Ed25519KeyPair) {
            let pair = Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
            (pair.public_key().as_ref().try_into().unwrap(), pair)
        }

        fn sign(pair: &Ed25519KeyPair, message: &[u8]) -> [u8; 64] {
            pair.sign(message).as_ref().try_into().unwrap()
        }

        #[test]
        fn every_signer_must_have_signed_these_exact_bytes() {
            let message = b"\x01\x00\x02 a message naming a memo";
            let (payer, payer_pair) = signer(1);
            let (other, other_pair) = signer(2);
            let sig = sign(&payer_pair, message);
            assert!(transaction_authentic(message, &[payer], &[sig]));
            // Two signers, each over the same bytes.
            let both = [sig, sign(&other_pair, message)];
            assert!(transaction_authentic(message, &[payer, other], &both));
            // Another fee payer shown with the real signature.
            assert!(!transaction_authentic(message, &[other], &[sig]));
            // The node's own key re-signing: authentic, but then the fee payer is its key.
            let resigned = sign(&other_pair, message);
            assert!(transaction_authentic(message, &[other], &[resigned]));
            // No signature, or a count that is not the signers'.
            assert!(!transaction_authentic(message, &[], &[]));
            assert!(!transaction_authentic(message, &[payer, other], &[sig]));
            assert!(!transaction_authentic(message, &[payer], &both));
        }

        proptest! {
            /// Any change to the message (another memo, another key) breaks the signature.
            #[test]
            fn any_edit_of_the_message_is_detected(
                message in proptest::collection::vec(any::<u8>(), 1..400),
                at in any::<prop::sample::Index>(),
                flip in 1u8..,
            ) {
                let (payer, pair) = signer(3);
                let sig = sign(&pair, &message);
                prop_assert!(transaction_authentic(&message, &[payer], &[sig]));
                let mut edited = message.clone();
                edited[at.index(message.len())] ^= flip;
                prop_assert!(!transaction_authentic(&edited, &[payer], &[sig]));
            }
        }
    }
}
