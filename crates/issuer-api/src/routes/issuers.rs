//! `GET /v1/issuers/{id}`: the public issuer profile verifiers check signatures and anchors
//! against (no authentication: it holds only public keys).

use actix_web::{web, HttpResponse};
use domain::IssuerId;

use crate::error::ApiError;
use crate::state::AppState;
use crate::views::{AnchorKeyView, IssuerProfileView, SigningKeyView};

/// The issuer's name, every anchoring key and every signing key with its validity window.
#[utoipa::path(
    get,
    path = "/v1/issuers/{id}",
    params(("id" = String, Path, description = "Issuer id (slug)")),
    responses((status = 200, body = IssuerProfileView), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
)]
pub async fn get_issuer(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = IssuerId::parse(&path.into_inner())
        .map_err(|e| ApiError::invalid_field("id", e.to_string()))?;
    let issuer = state
        .store()
        .issuer(&id)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::IssuerNotFound)?;
    let keys = state
        .store()
        .signing_keys(&id)
        .await
        .map_err(|e| state.store_error(e))?;
    let anchor_keys = state
        .store()
        .anchor_keys_of(&id)
        .await
        .map_err(|e| state.store_error(e))?;
    Ok(HttpResponse::Ok().json(IssuerProfileView {
        id: issuer.id.as_str().to_string(),
        name: issuer.name,
        did: state.public_base.did(&id).to_string(),
        did_document: state.public_base.did_document_url(&id),
        anchor_pubkey: issuer.anchor_pubkey,
        anchor_keys: anchor_keys.iter().map(AnchorKeyView::from).collect(),
        signing_keys: keys.iter().map(SigningKeyView::from).collect(),
    }))
}
