//! Public verification: gathers the evidence for `domain::verdict::derive_verdict` — the
//! issuer's published profile and revocation state from PostgreSQL, and the anchor
//! transaction from the chain over RPC — and renders the answer. Shared by `POST /v1/verify`
//! (JSON) and `POST /verify` (the HTML page), so both always agree.
//!
//! The anchor is checked ON CHAIN (transaction exists, `err == null`, finalized, fee payer =
//! the issuer's anchoring key, memo = the bundle's expected memo): the database is trusted
//! only for what the issuer says about itself (its profile, its revocations), never for the
//! fact that something was anchored.

use bytes::Bytes;
use chain::ChainError;
use domain::hash::{CredentialFields, FileDigest};
use domain::proof::{bundle_version, AnchorPath, BundleAnchor, BundleSignature, ProofBundle};
use domain::signing::PublicKey;
use domain::verdict::{
    derive_verdict, ChainAnchor, Evidence, IssuerFacts, PublishedKey, RevocationState, VerdictKind,
};
use domain::{IssuedAt, IssuerId, RecipientId, Serial};
use serde::{Deserialize, Serialize};
use store::batches::{BatchMembership, ProofScope};
use store::credentials::CredentialRecord;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// What the verifier brought along with the file.
#[derive(Debug, Clone)]
pub enum Claim {
    /// A proof bundle (`GET /v1/credentials/{id}/proof`, schema v2 or v1, read by `ProofBundle::from_json`).
    Bundle(Box<ProofBundle>),
    /// A Verifiable Credential (`GET /v1/credentials/{id}/vc`): its Data Integrity proof is
    /// checked, then it must say exactly what the record it names says, and that record's
    /// fields are verified as claimed fields (file, anchor, revocation). With it, the status
    /// list the verifier was given (a `BitstringStatusListCredential`), judged against the
    /// anchored versions of that list (`verify_vc::check_status_list`).
    Credential(Box<serde_json::Value>, Option<Bytes>),
    /// The hash inputs the credential claims; looked up by hash among the issuer's.
    Fields {
        issuer: IssuerId,
        recipient: RecipientId,
        issued_at: IssuedAt,
        serial: Serial,
    },
}

/// The verification answer (JSON of `POST /v1/verify`; the page renders the same facts).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerificationView {
    /// valid | revoked | revocation_pending | not_anchored_yet | tampered | unknown_issuer |
    /// invalid_signature
    #[schema(value_type = String)]
    pub verdict: VerdictKind,
    /// Stable code of the precise reason (e.g. `file_mismatch`, `anchor_wrong_fee_payer`).
    pub reason: String,
    /// The verdict in one sentence for people.
    pub message: String,
    /// What exactly was found.
    pub detail: String,
    pub credential_id: Option<String>,
    pub issuer: Option<VerifiedIssuer>,
    /// RFC 3339, as hashed.
    pub issued_at: Option<String>,
    /// Hex.
    pub credential_hash: Option<String>,
    pub anchor: Option<VerifiedAnchor>,
    pub revocation: Option<VerifiedRevocation>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifiedIssuer {
    pub id: String,
    /// Display name from the issuer profile (absent for an unknown issuer).
    pub name: Option<String>,
    /// The signing key id the credential names.
    pub key_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifiedAnchor {
    pub signature: String,
    /// Slot as read from the chain (the bundle's claim when the chain does not have it).
    pub slot: Option<u64>,
    /// Read from the chain at `finalized` commitment.
    pub finalized: bool,
    pub block_time: Option<String>,
    pub explorer_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifiedRevocation {
    /// pending | anchored
    pub status: String,
    /// Why it was revoked. Private to the issuer: always absent from the public verdict
    /// (`POST /v1/verify`, the `/verify` page); the issuer sees it in
    /// `GET /v1/credentials/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub requested_at: String,
    pub signature: Option<String>,
}

/// Runs every check and returns the verdict. Errors are only for "could not check"
/// (database or chain unavailable, malformed bundle signature), never for a bad credential.
pub async fn verify(
    state: &AppState,
    file: &Bytes,
    claim: Claim,
) -> Result<VerificationView, ApiError> {
    let store_err = |e| state.store_error(e);
    let issuer_id = match &claim {
        Claim::Bundle(b) => b.fields.issuer.clone(),
        Claim::Fields { issuer, .. } => issuer.clone(),
        Claim::Credential(vc, list) => {
            return Box::pin(crate::verify_vc::verify_credential(
                state,
                file,
                vc,
                list.as_ref(),
            ))
            .await
        }
    };
    let issuer_record = state.store().issuer(&issuer_id).await.map_err(store_err)?;
    let facts = match &issuer_record {
        Some(i) => {
            let keys = state.store().signing_keys(&i.id).await.map_err(store_err)?;
            let anchor_keys = state
                .store()
                .anchor_keys_of(&i.id)
                .await
                .map_err(store_err)?;
            Some(IssuerFacts {
                // Published, even if empty: an issuer without a key vouches for no anchor.
                anchor_keys: Some(anchor_keys),
                signing_keys: keys
                    .into_iter()
                    .map(|k| PublishedKey {
                        key_id: k.key_id,
                        public_key: k.public_key,
                        window: k.window,
                    })
                    .collect(),
            })
        }
        None => None,
    };
    let (bundle, record) = match claim {
        Claim::Bundle(bundle) => {
            // Our record of what the bundle PROVES (issuer and credential hash, both covered
            // by the issuer's signature and the anchor), never of the id it names: in merkle
            // mode nothing covers `credential_id`, so a holder could edit it to dodge the
            // record and its revocation. A record under another id makes the verdict
            // `tampered` (`credential_id_mismatch`).
            let record = state
                .store()
                .credential_by_hash(&bundle.fields.issuer, &bundle.credential_hash)
                .await
                .map_err(store_err)?;
            (*bundle, record)
        }
        Claim::Credential(..) => return Err(ApiError::Internal),
        Claim::Fields {
            issuer,
            recipient,
            issued_at,
            serial,
        } => {
            let fields = CredentialFields {
                file_digest: FileDigest::of(file),
                issuer: issuer.clone(),
                recipient,
                issued_at,
                serial,
            };
            let (Some(issuer_record), Some(facts)) = (&issuer_record, &facts) else {
                return no_match(state, &fields, None);
            };
            // The claimed fields cannot be hashed alone: a v2 hash also covers the record's
            // id and secret salt. So the record is found by its serial and kept only if the
            // claimed fields, hashed under that record's own scheme, give its hash.
            let record = state
                .store()
                .credential_by_serial(&issuer, &fields.serial)
                .await
                .map_err(store_err)?
                .filter(|r| {
                    published_key(facts, r)
                        .and_then(|public_key| r.hash_scheme(public_key))
                        .is_some_and(|scheme| scheme.hash(&fields) == r.hash)
                });
            // Its batch membership (if it was anchored in a Merkle batch) and the key that
            // paid for its anchor.
            let proof = match &record {
                Some(r) => state
                    .store()
                    .proof_records(&issuer, ProofScope::Credential(&r.id))
                    .await
                    .map_err(store_err)?
                    .into_iter()
                    .next(),
                None => None,
            };
            let bundle = record.as_ref().and_then(|r| {
                let (membership, payer) = proof
                    .map(|p| (p.membership, p.anchor_payer))
                    .unwrap_or_default();
                bundle_from_record(
                    r,
                    membership,
                    payer,
                    fields.clone(),
                    issuer_record,
                    facts,
                    state,
                )
            });
            match bundle {
                Some(bundle) => (bundle, record),
                // Nothing issued matches, or only a row backfilled from the chain that has no
                // signature to check.
                None => return no_match(state, &fields, Some(&issuer_record.name)),
            }
        }
    };

    // The revocation of that record: keyed by (issuer, hash) in effect.
    let revocation = match &record {
        Some(r) => state.store().revocation(&r.id).await.map_err(store_err)?,
        None => None,
    };
    let revocation_state = match &revocation {
        None => RevocationState::NotRevoked,
        Some(r) if r.is_anchored() => RevocationState::Anchored,
        Some(_) => RevocationState::Pending,
    };
    let chain = if bundle.anchor.signature.is_empty() {
        ChainAnchor::NotSubmitted
    } else {
        read_anchor(state, &bundle.anchor.signature).await?
    };
    // A bundle that carries its VC is held to it as the offline verifier holds it (a VC
    // nothing checked would be shown to people as the credential). Canonicalization of what
    // was sent is bounded by `vc::canon::MAX_BLANK_NODES`.
    let vc_refusal = bundle
        .vc
        .as_ref()
        .and_then(|vc| vc::bundle::check_vc(&bundle, vc).err());
    let verdict = vc::bundle::with_vc(
        derive_verdict(&Evidence {
            bundle: &bundle,
            file: Some(file),
            issuer: facts.as_ref(),
            recorded_at: record.as_ref().map(|r| r.created_at),
            recorded_id: record.as_ref().map(|r| r.id),
            chain: &chain,
            chain_cluster: Some(state.explorer.cluster),
            revocation: &revocation_state,
        }),
        vc_refusal,
    );
    state
        .metrics
        .verifications
        .with_label_values(&[verdict.kind.as_str()])
        .inc();

    let seen = match &chain {
        ChainAnchor::Seen(tx) => Some(tx),
        _ => None,
    };
    let anchor = (!bundle.anchor.signature.is_empty()).then(|| VerifiedAnchor {
        signature: bundle.anchor.signature.clone(),
        slot: seen.map(|t| t.slot).or(Some(bundle.anchor.slot)),
        finalized: seen.is_some_and(|t| t.finalized),
        block_time: seen.and_then(|t| t.block_time).map(|t| t.to_rfc3339()),
        explorer_url: explorer_url(state, &bundle.anchor.signature),
    });
    Ok(VerificationView {
        verdict: verdict.kind,
        reason: verdict.reason.to_string(),
        message: verdict.kind.headline().to_string(),
        detail: verdict.detail,
        credential_id: Some(bundle.credential_id.to_string()),
        issuer: Some(VerifiedIssuer {
            id: bundle.fields.issuer.as_str().to_string(),
            name: issuer_record.map(|i| i.name),
            key_id: Some(bundle.issuer_signature.key_id.as_str().to_string()),
        }),
        issued_at: Some(bundle.fields.issued_at.canonical()),
        credential_hash: Some(bundle.credential_hash.to_hex()),
        anchor,
        revocation: revocation.map(|r| VerifiedRevocation {
            status: if r.is_anchored() {
                "anchored"
            } else {
                "pending"
            }
            .to_string(),
            // Private by default: the public verdict says revoked and when, not why.
            reason: None,
            requested_at: r.requested_at.to_rfc3339(),
            signature: r.anchor_signature.clone(),
        }),
    })
}

/// Nothing this issuer issued has this hash: an unknown issuer (`issuer_name` is `None`),
/// or a file and details that do not match anything it issued (tampered).
fn no_match(
    state: &AppState,
    fields: &CredentialFields,
    issuer_name: Option<&str>,
) -> Result<VerificationView, ApiError> {
    let (kind, reason, detail) = match issuer_name {
        None => (
            VerdictKind::UnknownIssuer,
            "unknown_issuer",
            format!("issuer {:?} is not known", fields.issuer.as_str()),
        ),
        Some(_) => (
            VerdictKind::Tampered,
            "no_matching_credential",
            "no credential of this issuer has this file with these details".to_string(),
        ),
    };
    state
        .metrics
        .verifications
        .with_label_values(&[kind.as_str()])
        .inc();
    Ok(VerificationView {
        verdict: kind,
        reason: reason.to_string(),
        message: kind.headline().to_string(),
        detail,
        credential_id: None,
        issuer: Some(VerifiedIssuer {
            id: fields.issuer.as_str().to_string(),
            name: issuer_name.map(str::to_string),
            key_id: None,
        }),
        issued_at: Some(fields.issued_at.canonical()),
        // Without a matching record there is no salt, so no hash to name.
        credential_hash: None,
        anchor: None,
        revocation: None,
    })
}

/// The bundle our database implies for `record` (claimed-fields path), at any status: an
/// unanchored credential gets an empty anchor signature (the verdict says "not anchored
/// yet"). The memo is rebuilt from the facts by `expected_memo`, never read from the row.
/// The published public key of the record's signing key.
fn published_key(facts: &IssuerFacts, record: &CredentialRecord) -> Option<PublicKey> {
    let key_id = record.key_id.as_ref()?;
    facts
        .signing_keys
        .iter()
        .find(|k| &k.key_id == key_id)
        .map(|k| k.public_key)
}

#[allow(clippy::too_many_arguments)] // the parts of one bundle, named at the single call site
fn bundle_from_record(
    record: &CredentialRecord,
    membership: Option<BatchMembership>,
    payer: Option<String>,
    fields: CredentialFields,
    issuer: &store::issuers::IssuerRecord,
    facts: &IssuerFacts,
    state: &AppState,
) -> Option<ProofBundle> {
    let key_id = record.key_id.clone()?;
    // The public key as the issuer publishes it (the verdict checks the window).
    let public_key = published_key(facts, record)?;
    let scheme = record.hash_scheme(public_key)?;
    let mut bundle = ProofBundle {
        version: bundle_version(scheme.format()).to_string(),
        credential_id: record.id,
        salt: scheme.salt(),
        issuer_name: issuer.name.clone(),
        fields,
        credential_hash: record.hash,
        issuer_signature: BundleSignature {
            key_id,
            public_key,
            signature: record.signature?,
        },
        anchor: BundleAnchor {
            cluster: state.explorer.cluster,
            signature: record.anchor_signature.clone().unwrap_or_default(),
            slot: record.anchor_slot.unwrap_or(0),
            // The key that paid for this credential's anchor (it may have been rotated out
            // since); the issuer's active key for an anchor not sent yet.
            anchor_pubkey: crate::proofs::anchor_payer_of(
                payer,
                record.finalized_at,
                facts.anchor_keys.as_deref().unwrap_or_default(),
            )
            .or_else(|| issuer.anchor_pubkey.clone())
            .unwrap_or_default(),
            memo: String::new(),
            mode: match membership {
                None => AnchorPath::Single,
                Some(m) => AnchorPath::Merkle {
                    batch_id: m.batch_id,
                    count: m.count,
                    root: m.root,
                    proof: m.proof,
                },
            },
        },
        vc: None,
    };
    bundle.anchor.memo = bundle.expected_memo().ok()?.encode();
    Some(bundle)
}

/// The anchor transaction as the chain has it: at `finalized`, else at `confirmed`.
async fn read_anchor(state: &AppState, signature: &str) -> Result<ChainAnchor, ApiError> {
    match state.chain.fetch_anchor(signature).await {
        Ok(Some(seen)) => Ok(ChainAnchor::Seen(seen)),
        Ok(None) => Ok(ChainAnchor::NotFound),
        Err(e) => Err(chain_read_error(e, state.retry_after_secs)),
    }
}

/// What a failed chain read tells the verifier: a bad signature in the request is theirs
/// (400); a node caught lying is named as such (`chain_unauthentic`) so an operator looks at
/// the RPC provider, not at a network blip; anything else is `chain_unavailable`. Never a
/// verdict: no answer from the chain is taken as one.
fn chain_read_error(e: ChainError, retry_after_secs: u64) -> ApiError {
    match e {
        ChainError::InvalidArgument(_) => {
            ApiError::invalid_field("proof", "anchor.signature is not a transaction signature")
        }
        e @ ChainError::Unauthentic { .. } => {
            tracing::error!(error = %e, "the RPC node returned a transaction its signers did not sign");
            ApiError::ChainUnauthentic { retry_after_secs }
        }
        e @ ChainError::Disagreement { .. } => {
            tracing::error!(error = %e, "RPC endpoints disagree about an anchor: no verdict");
            ApiError::ChainDisagreement { retry_after_secs }
        }
        e => {
            tracing::warn!(error = %e, "chain read for verification failed");
            ApiError::ChainUnavailable { retry_after_secs }
        }
    }
}

fn explorer_url(state: &AppState, signature: &str) -> String {
    state
        .explorer
        .cluster
        .explorer_tx_url(signature, state.explorer.custom_rpc_url.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mapping alone (a lying node cannot be produced on demand in a unit test; the
    /// decoder's refusal itself is tested in `chain::decode` and, against a real validator
    /// behind a rewriting proxy, in the verifier's CLI tests).
    #[test]
    fn a_lying_node_is_named_and_a_blip_is_unavailable() {
        let lie = ChainError::Unauthentic {
            method: "getTransaction",
            detail: "edited memo".into(),
        };
        let e = chain_read_error(lie, 7);
        assert_eq!(e.code(), "chain_unauthentic");
        assert_eq!(
            actix_web::ResponseError::status_code(&e),
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE
        );
        let blip = chain_read_error(ChainError::Timeout("slow".into()), 7);
        assert_eq!(blip.code(), "chain_unavailable");
        let bad = chain_read_error(ChainError::InvalidArgument("sig".into()), 7);
        assert_eq!(bad.code(), "invalid_field");
    }
}
