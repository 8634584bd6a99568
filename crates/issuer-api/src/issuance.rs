//! The one issuance service both routes share: hash → sign → store, with one re-sign when
//! the signing key was rotated between the signer's cache and the commit. Signing makes both
//! proofs of a credential: the issuer signature over the v2 hash (what the anchor commits
//! to) and the Verifiable Credential (Open Badges 3.0, `eddsa-rdfc-2022`) wallets carry.
//!
//! `POST /v1/credentials` and `POST /v1/credential-batches` differ only in how they parse a
//! request and render its answer; what a credential is (proof format v2 over its fields,
//! signed by the issuer's active key) and how a rotation race is survived live here once.

use std::sync::Arc;

use domain::hash::{CredentialFields, FileDigest, HashScheme, Salt};
use domain::status_list::StatusOrdinal;
use domain::vc::{OpenBadge, PublicBase};
use domain::{CredentialId, IssuerId};
use store::credentials::NewCredential;
use store::StoreError;

use crate::error::ApiError;
use crate::request::ParsedFields;
use crate::signer::IssuingKey;
use crate::state::AppState;

/// The proof configuration of the VCs `signer` signs now under `base` (`created` to the
/// second), canonicalized once: one per single issuance, one per bulk request. `None` only
/// if it cannot be canonicalized (logged), which our fixed configuration never causes.
pub fn prepare_proof(
    issuer: &IssuerId,
    signer: &IssuingKey,
    base: &PublicBase,
) -> Option<vc::PreparedProof> {
    let options = vc::ProofOptions {
        verification_method: base.did(issuer).signing_method(signer.key.key_id()),
        created: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    };
    let context = serde_json::json!(domain::vc::CREDENTIAL_CONTEXTS);
    vc::PreparedProof::new(&context, &options)
        .inspect_err(
            |e| tracing::error!(issuer = %issuer, error = %e, "cannot prepare the VC proof"),
        )
        .ok()
}

/// Hashes a credential's fields under proof format v2 (the id, the salt and `key` inside the
/// hash), signs the hash with `key`, and makes its Verifiable Credential, signed by the same
/// key under the issuer's `did:web` (`base`) with `proof` (from [`prepare_proof`] for this
/// key), its `credentialStatus` the bit of `status` in the issuer's status lists: the one
/// place a credential to store is made. About 2 ms of CPU in release (one
/// RDFC canonicalization): callers run it off the async workers. `None` only if the VC
/// cannot be canonicalized, which the fields the API accepts never cause (logged; the caller
/// answers 500 and stores nothing).
#[allow(clippy::too_many_arguments)] // the parts of one credential, named at two call sites
pub fn sign(
    id: CredentialId,
    salt: Salt,
    issuer: &IssuerId,
    signer: &IssuingKey,
    base: &PublicBase,
    proof: &vc::PreparedProof,
    fields: ParsedFields,
    file_digest: FileDigest,
    status: StatusOrdinal,
) -> Option<NewCredential> {
    let key = &signer.key;
    let scheme = HashScheme::V2 {
        credential_id: id,
        salt,
        key_id: key.key_id().clone(),
        public_key: key.public_key(),
    };
    let hash = scheme.hash(&CredentialFields {
        file_digest,
        issuer: issuer.clone(),
        recipient: fields.recipient.clone(),
        issued_at: fields.issued_at,
        serial: fields.serial.clone(),
    });
    let did = base.did(issuer);
    let unsigned = domain::vc::open_badge(&OpenBadge {
        id,
        issuer_did: &did,
        issuer_name: &signer.issuer_name,
        issued_at: fields.issued_at,
        credential_type: &fields.credential_type,
        title: &fields.title,
        recipient: &fields.recipient,
        salt: &salt,
        file_digest: &file_digest,
        status: Some(domain::vc::status_entry(base, issuer, status.position())),
    });
    let credential = match proof.attach(&unsigned, |data| key.sign_data_integrity(data)) {
        Ok(credential) => credential.to_string(),
        Err(e) => {
            tracing::error!(credential_id = %id, error = %e, "cannot sign the verifiable credential");
            return None;
        }
    };
    Some(NewCredential {
        id,
        issuer: issuer.clone(),
        serial: fields.serial,
        recipient: fields.recipient,
        issued_at: fields.issued_at,
        credential_type: fields.credential_type,
        title: fields.title,
        metadata: fields.metadata,
        file_digest,
        signature: key.sign_credential(scheme.format(), &hash),
        scheme,
        hash,
        key_id: key.key_id().clone(),
        vc: Some(credential),
        status_ordinal: Some(status),
    })
}

/// Runs `attempt` (sign with the given key, then store) with the issuer's active signing key.
/// A cached key may have been rotated meanwhile: the store refuses to record under a retired
/// key (`StoreError::SigningKeyRetired`, nothing written), so the cached key is forgotten and
/// `attempt` runs once more with the active one. The v2 hash binds the key, so the caller
/// hashes inside `attempt`. An `ApiError` from `attempt` ends the call as it is.
///
/// The status ordinal is taken inside `attempt` too: after a failover to an asynchronous
/// standby or a restore, a block this replica reserved can overlap ordinals the database
/// hands out again, and the store refuses the second use (`StoreError::StatusOrdinalTaken`,
/// nothing written). The issuer's block is forgotten and `attempt` runs again; a fresh
/// reservation starts past every ordinal in use, so only another replica's stale block can
/// collide once more. Past [`ORDINAL_ATTEMPTS`] the client is told to retry (503).
pub async fn with_active_key<T>(
    state: &AppState,
    issuer: &IssuerId,
    mut attempt: impl AsyncFnMut(Arc<IssuingKey>) -> Result<Result<T, StoreError>, ApiError>,
) -> Result<T, ApiError> {
    let mut retried = false;
    let mut ordinal_attempts = 1;
    loop {
        let key = state
            .signer
            .key_for(&state.store(), issuer, state.retry_after_secs)
            .await?;
        match attempt(key).await? {
            Ok(stored) => return Ok(stored),
            Err(StoreError::SigningKeyRetired(key_id)) if !retried => {
                tracing::info!(issuer = %issuer, %key_id, "signing key rotated meanwhile: signing again");
                state.signer.invalidate(issuer);
                retried = true;
            }
            Err(StoreError::SigningKeyRetired(_)) => return Err(ApiError::SigningUnavailable),
            Err(StoreError::StatusOrdinalTaken) => {
                state.ordinals.forget(issuer);
                if ordinal_attempts >= ORDINAL_ATTEMPTS {
                    tracing::warn!(issuer = %issuer, "status ordinals still taken after fresh reservations: client told to retry");
                    return Err(ApiError::DatabaseUnavailable {
                        retry_after_secs: state.retry_after_secs,
                    });
                }
                tracing::warn!(issuer = %issuer, "status ordinal already in use (a reservation the database lost in a failover or restore): reserving afresh and signing again");
                ordinal_attempts += 1;
            }
            Err(e) => return Err(state.store_error(e)),
        }
    }
}

/// Attempts at storing a credential whose status ordinal turned out to be taken (see
/// [`with_active_key`]): each forgets this replica's block and reserves afresh.
pub const ORDINAL_ATTEMPTS: u32 = 3;
