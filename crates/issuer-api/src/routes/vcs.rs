//! The W3C side of a credential: each issuer's `did:web` document (public) and the signed
//! Open Badges 3.0 Verifiable Credentials the registrar hands to graduates (authenticated).
//! The shapes are `domain::vc`'s; the signatures were made at issuance (`issuance::sign`).

use actix_web::{http::header, web, HttpResponse};
use domain::vc::{did_document, DidSigningKey};
use domain::IssuerId;

use crate::auth::AuthenticatedIssuer;
use crate::error::ApiError;
use crate::routes::batches::parse_request_id;
use crate::routes::credentials::parse_id;
use crate::state::AppState;

/// Media type of a VC 2.0 credential secured with an embedded proof.
const VC_MEDIA_TYPE: &str = "application/vc";

/// The DID document of `did:web:<public base>:issuers:{id}`: every signing key (retired
/// ones too) as an assertion method, every Solana anchoring key beside them.
#[utoipa::path(
    get,
    path = "/issuers/{id}/did.json",
    params(("id" = String, Path, description = "Issuer id (slug)")),
    responses((status = 200, description = "DID document (did:web)", content_type = "application/did+ld+json", body = Object), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
)]
pub async fn get_did_document(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = IssuerId::parse(&path.into_inner())
        .map_err(|e| ApiError::invalid_field("id", e.to_string()))?;
    let store = state.store();
    store
        .issuer(&id)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::IssuerNotFound)?;
    let signing: Vec<DidSigningKey> = store
        .signing_keys(&id)
        .await
        .map_err(|e| state.store_error(e))?
        .into_iter()
        .map(|key| DidSigningKey {
            key_id: key.key_id,
            public_key: key.public_key,
        })
        .collect();
    let anchoring: Vec<String> = store
        .anchor_keys_of(&id)
        .await
        .map_err(|e| state.store_error(e))?
        .into_iter()
        .map(|key| key.pubkey)
        .collect();
    let document = did_document(&state.public_base.did(&id), &signing, &anchoring);
    Ok(HttpResponse::Ok()
        .content_type("application/did+ld+json")
        // A rotation shows within five minutes; old keys never leave the document.
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(document))
}

/// The signed Open Badges 3.0 credential of one credential, byte for byte as issued.
#[utoipa::path(
    get,
    path = "/v1/credentials/{id}/vc",
    params(("id" = String, Path, description = "Credential id")),
    responses((status = 200, description = "OpenBadgeCredential (VC 2.0, eddsa-rdfc-2022)", content_type = "application/vc", body = Object), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_vc(
    issuer: AuthenticatedIssuer,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.into_inner())?;
    let vc = state
        .store()
        .credential_vc(&issuer.0, &id)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::CredentialNotFound)?
        .ok_or(ApiError::VcNotAvailable)?;
    Ok(HttpResponse::Ok().content_type(VC_MEDIA_TYPE).body(vc))
}

/// The signed credentials of one bulk request, one per line, in request order.
#[utoipa::path(
    get,
    path = "/v1/credential-batches/{id}/vcs",
    params(("id" = String, Path, description = "Id returned by POST /v1/credential-batches")),
    responses((status = 200, description = "NDJSON: one OpenBadgeCredential per accepted item", content_type = "application/x-ndjson"), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_batch_vcs(
    issuer: AuthenticatedIssuer,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_request_id(&path.into_inner())?;
    let store = state.store();
    store
        .credential_batch(&issuer.0, &id)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::CredentialBatchNotFound)?;
    let vcs = store
        .batch_vcs(&issuer.0, &id)
        .await
        .map_err(|e| state.store_error(e))?;
    let mut out = String::with_capacity(vcs.iter().map(|v| v.len() + 1).sum());
    for vc in vcs {
        // Stored compact (serde_json's `to_string`): one line each.
        out.push_str(&vc);
        out.push('\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .body(out))
}

/// Status list `{list}` of issuer `{id}` (W3C Bitstring Status List, revocation): its newest
/// version whose `ca1:s` anchor is finalized, so any verifier can check it against the
/// chain. Public and cacheable: the ETag is the SHA-256 of the served bytes, so a client
/// revalidating with `If-None-Match` gets `304` until a new version is anchored.
#[utoipa::path(
    get,
    path = "/issuers/{id}/status-lists/{list}",
    params(("id" = String, Path, description = "Issuer id (slug)"), ("list" = String, Path, description = "List number (decimal: 0, 1, 2, ...)")),
    responses((status = 200, description = "BitstringStatusListCredential (VC 2.0, eddsa-rdfc-2022)", content_type = "application/vc", body = Object), (status = 304, description = "Not modified (If-None-Match)"), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
)]
pub async fn get_status_list(
    path: web::Path<(String, String)>,
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (id, list) = path.into_inner();
    let id = IssuerId::parse(&id).map_err(|e| ApiError::invalid_field("id", e.to_string()))?;
    let list: u32 = Some(&list)
        .filter(|l| l.bytes().all(|b| b.is_ascii_digit()))
        .filter(|l| l.len() == 1 || !l.starts_with('0'))
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| ApiError::invalid_field("list", "a list number (0, 1, 2, ...)"))?;
    let served = state
        .store()
        .served_status_list(&id, list)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::StatusListNotFound)?;
    let etag = format!(
        "\"{}\"",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            served.credential_sha256
        )
    );
    let cache = "public, max-age=60";
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type(VC_MEDIA_TYPE)
        .insert_header((header::ETAG, etag))
        // A new version is anchored within a debounce plus finality of a revocation; a
        // minute of caching keeps a burst of verifiers off the database.
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header(("Status-List-Version", served.version.to_string()))
        .body(served.credential))
}
