//! `POST /v1/credentials/{id}/revoke`: record a revocation and queue its anchor (`ca1:r`, or a
//! `ca1:v` list in Merkle mode).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use store::revocations::RevokeOutcome;
use utoipa::ToSchema;

use crate::auth::AuthenticatedIssuer;
use crate::error::ApiError;
use crate::request;
use crate::state::AppState;
use crate::views::RevocationView;

/// Longest accepted reason (characters). It is stored and shown to the issuer only (never in
/// the public verdict of `POST /v1/verify` or the `/verify` page), never put on chain.
pub const MAX_REASON_CHARS: usize = 500;
/// A revoke body is tiny; refuse anything bigger before buffering it.
const REVOKE_BODY_LIMIT: usize = 8 * 1024;

/// JSON body of a revocation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// Why the credential is revoked (1..=500 characters), e.g. "issued in error".
    pub reason: Option<String>,
}

/// Parses the reason: present, trimmed, non-empty, at most [`MAX_REASON_CHARS`].
pub fn parse_reason(body: &[u8]) -> Result<String, ApiError> {
    let parsed: RevokeBody = serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson {
        message: format!("invalid JSON body: {e}"),
    })?;
    let reason = parsed.reason.ok_or_else(|| ApiError::MissingField {
        field: "reason".into(),
    })?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid_field("reason", "must not be empty"));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::invalid_field(
            "reason",
            format!("at most {MAX_REASON_CHARS} characters"),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "reason",
            "control characters are not allowed",
        ));
    }
    Ok(reason.to_string())
}

/// Revoke a credential of the authenticated issuer. 202 when recorded now, 200 with the
/// same revocation when it was revoked before (the reason of the first call is kept).
#[utoipa::path(
    post,
    path = "/v1/credentials/{id}/revoke",
    params(("id" = String, Path, description = "Credential id")),
    request_body = RevokeBody,
    responses(
        (status = 202, description = "Recorded; its memo is queued for anchoring", body = RevocationView),
        (status = 200, description = "Already revoked: the existing revocation", body = RevocationView),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_credential(
    issuer: AuthenticatedIssuer,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = super::credentials::parse_id(&path.into_inner())?;
    let body = request::within_deadline(
        state.body_read_timeout,
        request::read_body_limited(req.headers(), payload, REVOKE_BODY_LIMIT),
    )
    .await?;
    let reason = parse_reason(&body)?;
    let outcome = state
        .store()
        .revoke_credential(&issuer.0, &id, &reason)
        .await
        .map_err(|e| state.store_error(e))?;
    match outcome {
        RevokeOutcome::NotFound => Err(ApiError::CredentialNotFound),
        RevokeOutcome::Created(r) => {
            state
                .metrics
                .revocations
                .with_label_values(&[r.issuer.as_str()])
                .inc();
            tracing::info!(credential_id = %r.credential_id, issuer = %r.issuer, "revocation recorded and queued");
            Ok(HttpResponse::Accepted().json(RevocationView::new(&r, &state.explorer)))
        }
        RevokeOutcome::Existing(r) => {
            Ok(HttpResponse::Ok().json(RevocationView::new(&r, &state.explorer)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_is_required_trimmed_and_bounded() {
        assert_eq!(
            parse_reason(br#"{"reason": "  issued in error "}"#).unwrap(),
            "issued in error"
        );
        assert_eq!(parse_reason(b"{}").unwrap_err().code(), "missing_field");
        assert_eq!(
            parse_reason(br#"{"reason": "   "}"#).unwrap_err().code(),
            "invalid_field"
        );
        let long = format!(r#"{{"reason": "{}"}}"#, "x".repeat(MAX_REASON_CHARS + 1));
        assert_eq!(
            parse_reason(long.as_bytes()).unwrap_err().code(),
            "invalid_field"
        );
        assert_eq!(
            parse_reason(br#"{"reason": "a\u0007b"}"#)
                .unwrap_err()
                .code(),
            "invalid_field"
        );
        assert_eq!(
            parse_reason(br#"{"reason": "x", "other": 1}"#)
                .unwrap_err()
                .code(),
            "invalid_json"
        );
        assert_eq!(
            parse_reason(b"not json").unwrap_err().code(),
            "invalid_json"
        );
    }
}
