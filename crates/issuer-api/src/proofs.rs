//! Proof bundles (`domain::proof::ProofBundle`, schema v2 or v1) assembled from the store: the
//! credential's hash inputs, its issuer signature and the signing key's public key, and its
//! anchor (single memo, or batch root plus inclusion path).
//!
//! A bundle is only handed out once the anchor is finalized: before that, the transaction it
//! would name could still be replaced. Every bundle is checked with
//! `domain::proof::check_offline` before it leaves, so the API never serves a bundle the
//! offline verifier would reject.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use domain::anchor_keys::{key_at, AnchorKeyWindow};
use domain::proof::{
    bundle_version, check_offline, AnchorPath, BundleAnchor, BundleSignature, ProofBundle,
};
use domain::signing::PublicKey;
use domain::{CredentialFields, CredentialStatus, IssuerId, ProofFormat};
use store::batches::{ProofRecord, ProofScope};

use crate::auth::AuthenticatedIssuer;
use crate::error::ApiError;
use crate::state::AppState;

/// Bundles of the credentials in `scope`, each or the reason it has none yet.
pub async fn bundles_for(
    state: &AppState,
    issuer: &IssuerId,
    scope: ProofScope<'_>,
) -> Result<Vec<Result<ProofBundle, ApiError>>, ApiError> {
    let store_err = |e| state.store_error(e);
    let records = state
        .store()
        .proof_records(issuer, scope)
        .await
        .map_err(store_err)?;
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let profile = state
        .store()
        .issuer(issuer)
        .await
        .map_err(store_err)?
        .ok_or(ApiError::Internal)?;
    let keys: HashMap<String, PublicKey> = state
        .store()
        .signing_keys(issuer)
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|k| (k.key_id.as_str().to_string(), k.public_key))
        .collect();
    let anchor_keys = state
        .store()
        .anchor_keys_of(issuer)
        .await
        .map_err(store_err)?;
    let cluster = state.explorer.cluster;
    Ok(records
        .into_iter()
        .map(|r| bundle_from(r, &profile.name, &anchor_keys, &keys, cluster))
        .collect())
}

fn unavailable(reason: impl Into<String>) -> ApiError {
    ApiError::ProofNotAvailable {
        reason: reason.into(),
    }
}

/// The key a bundle names as its anchor's payer: the one the relay recorded when it signed
/// (a rotation may have retired it since), else, for a row rebuilt from the chain (no stored
/// transaction; `finalized_at` is its block time), the key active at that time.
pub fn anchor_payer_of(
    recorded: Option<String>,
    finalized_at: Option<chrono::DateTime<chrono::Utc>>,
    anchor_keys: &[AnchorKeyWindow],
) -> Option<String> {
    recorded.or_else(|| {
        finalized_at
            .and_then(|t| key_at(anchor_keys, t))
            .map(|k| k.pubkey.clone())
    })
}

/// Pure assembly of one bundle from what the store holds.
pub fn bundle_from(
    record: ProofRecord,
    issuer_name: &str,
    anchor_keys: &[AnchorKeyWindow],
    keys: &HashMap<String, PublicKey>,
    cluster: chain::Cluster,
) -> Result<ProofBundle, ApiError> {
    let ProofRecord {
        credential: c,
        membership,
        anchor_payer,
        vc,
    } = record;
    // A revoked credential keeps its (finalized) anchor: its bundle still proves what was
    // issued, and verifiers learn of the revocation separately.
    if !matches!(
        c.status,
        CredentialStatus::Finalized | CredentialStatus::Revoked
    ) {
        return Err(unavailable(format!(
            "the credential is {}; its bundle exists once its anchor is finalized",
            c.status.as_str()
        )));
    }
    let (Some(serial), Some(recipient), Some(issued_at), Some(file_digest)) =
        (c.serial, c.recipient, c.issued_at, c.file_digest)
    else {
        return Err(unavailable("the credential's hash inputs are not known"));
    };
    let (Some(key_id), Some(signature)) = (c.key_id, c.signature) else {
        return Err(unavailable("the credential has no issuer signature"));
    };
    let format = c
        .proof_format
        .ok_or_else(|| unavailable("the credential's proof format is not known"))?;
    // A v2 credential whose salt was erased (crypto-shredding) can no longer be proven by
    // anyone, this API included: that is the point of erasing it.
    let salt = match format {
        ProofFormat::V1 => None,
        ProofFormat::V2 => Some(c.salt.ok_or_else(|| {
            unavailable("the credential's salt was erased; its hash can no longer be opened")
        })?),
    };
    let public_key = *keys
        .get(key_id.as_str())
        .ok_or_else(|| unavailable("the signing key is not published"))?;
    let (Some(tx_signature), Some(slot)) = (c.anchor_signature, c.anchor_slot) else {
        return Err(unavailable("the anchor is not recorded"));
    };
    // The key that paid for the anchor (recorded by the relay when it signed), which a
    // rotation may have retired since; for a row rebuilt from the chain (no stored
    // transaction), the key that was active at its block time.
    let anchor_pubkey = anchor_payer_of(anchor_payer, c.finalized_at, anchor_keys)
        .ok_or_else(|| unavailable("the issuer has no anchoring key"))?;
    let mode = match membership {
        None => AnchorPath::Single,
        Some(m) => AnchorPath::Merkle {
            batch_id: m.batch_id,
            count: m.count,
            root: m.root,
            proof: m.proof,
        },
    };
    let mut bundle = ProofBundle {
        version: bundle_version(format).to_string(),
        credential_id: c.id,
        salt,
        issuer_name: issuer_name.to_string(),
        fields: CredentialFields {
            file_digest,
            issuer: c.issuer,
            recipient,
            issued_at,
            serial,
        },
        credential_hash: c.hash,
        issuer_signature: BundleSignature {
            key_id,
            public_key,
            signature,
        },
        anchor: BundleAnchor {
            cluster,
            signature: tx_signature,
            slot,
            anchor_pubkey,
            memo: String::new(),
            mode,
        },
        // Stored by this service as JSON; a row that does not parse (never written so) is
        // served without it rather than not at all.
        vc: vc.and_then(|text| serde_json::from_str(&text).ok()),
    };
    bundle.anchor.memo = bundle
        .expected_memo()
        .map_err(|e| {
            tracing::error!(credential_id = %bundle.credential_id, error = %e, "stored batch cannot form a memo");
            ApiError::Internal
        })?
        .encode();
    if let Err(e) = check_offline(&bundle, None) {
        // Stored data that does not verify is corruption: never hand it out.
        tracing::error!(credential_id = %bundle.credential_id, error = %e, "assembled proof bundle does not verify");
        return Err(ApiError::Internal);
    }
    Ok(bundle)
}

/// The credential's proof bundle: everything needed to verify it against the chain without
/// this API.
#[utoipa::path(
    get,
    path = "/v1/credentials/{id}/proof",
    params(("id" = String, Path, description = "Credential id")),
    responses(
        (status = 200, description = "Proof bundle, schema credential-anchor/proof-bundle/v2 (v1 for credentials issued before it; docs/proof-bundle.md)", body = Object),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "Not finalized yet", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_proof(
    issuer: AuthenticatedIssuer,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = crate::routes::credentials::parse_id(&path.into_inner())?;
    let bundle = bundles_for(&state, &issuer.0, ProofScope::Credential(&id))
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::CredentialNotFound)??;
    Ok(HttpResponse::Ok().json(bundle))
}

/// Re-links a credential lost by a restore from an older backup, from its proof bundle
/// (e.g. one `issue-bulk` wrote). The bundle must verify offline and match a finalized
/// anchor the reconciler (or relay) recorded from the chain; nothing else is trusted.
#[utoipa::path(
    post,
    path = "/v1/credentials/recover",
    request_body(content = Object, description = "A proof bundle (schema credential-anchor/proof-bundle/v2 or v1, read strictly)", content_type = "application/json"),
    responses(
        (status = 200, description = "Linked, or already known", body = Object),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 409, description = "anchor_not_found or relink_conflict", body = crate::error::ErrorBody),
        (status = 422, description = "invalid_proof", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn recover(
    issuer: AuthenticatedIssuer,
    req: actix_web::HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = crate::request::within_deadline(
        state.body_read_timeout,
        crate::request::read_body_limited(req.headers(), payload, state.body_limit_bytes),
    )
    .await?;
    let bundle = ProofBundle::from_json(&body).map_err(|e| ApiError::InvalidJson {
        message: e.to_string(),
    })?;
    if bundle.fields.issuer != issuer.0 {
        return Err(ApiError::invalid_field(
            "fields.issuer",
            "the bundle belongs to another issuer",
        ));
    }
    check_offline(&bundle, None).map_err(|e| ApiError::InvalidProof {
        reason: e.to_string(),
    })?;
    let outcome = state
        .store()
        .relink_from_bundle(&bundle)
        .await
        .map_err(|e| state.store_error(e))?;
    use store::batches::Relinked;
    let (id, status) = match outcome {
        Relinked::Linked(id) => (id, "linked"),
        Relinked::AlreadyKnown(id) => (id, "already_known"),
        Relinked::UnknownAnchor => return Err(ApiError::AnchorNotFound),
        Relinked::Conflict => return Err(ApiError::RelinkConflict),
    };
    if status == "linked" {
        tracing::info!(credential_id = %id, "credential re-linked from its proof bundle");
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": id.to_string(), "status": status})))
}
