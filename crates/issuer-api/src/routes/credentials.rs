//! `POST /v1/credentials`, `GET /v1/credentials/{id}`, `GET /v1/credentials`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::hash::{FileDigest, Salt};
use domain::{CredentialId, CredentialStatus, RecipientId, SystemRandom};
use ring::digest;
use serde::Deserialize;
use serde_json::{json, Value};
use store::credentials::{IdempotencyRequest, IssueOutcome, ListFilter, NewCredential};

use crate::auth::AuthenticatedIssuer;
use crate::error::ApiError;
use crate::issuance;
use crate::request::{self, IssueRequest};
use crate::state::AppState;
use crate::views::{CredentialPage, CredentialView, RevocationView};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// Issue a credential: hash, sign, and commit it with its outbox row; answers 202.
#[utoipa::path(
    post,
    path = "/v1/credentials",
    request_body(content = crate::request::IssueCredentialBody, description = "JSON with `file_base64`, or multipart/form-data with a `file` part and a `metadata` JSON part", content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays return the first response")),
    responses(
        (status = 202, description = "Accepted and queued for anchoring", body = CredentialView),
        (status = 200, description = "Same serial and content already issued", body = CredentialView),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody),
        (status = 415, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn issue_credential(
    issuer: AuthenticatedIssuer,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let AuthenticatedIssuer(issuer) = issuer;
    let idempotency_key = request::idempotency_key(req.headers())?;
    let limit = state.body_limit_bytes;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let parsed: IssueRequest = if content_type.starts_with("application/json") {
        let body = request::within_deadline(
            state.body_read_timeout,
            request::read_body_limited(req.headers(), payload, limit),
        )
        .await?;
        request::parse_json_request(&body)?
    } else if content_type.starts_with("multipart/form-data") {
        request::within_deadline(
            state.body_read_timeout,
            request::parse_multipart_request(req.headers(), payload, limit),
        )
        .await?
    } else {
        return Err(ApiError::UnsupportedMediaType);
    };

    let file_digest = FileDigest::of(&parsed.file);
    let id = CredentialId::new_v7();
    let salt = Salt::generate(&SystemRandom::new()).map_err(|_| ApiError::Internal)?;
    let store = state.store();
    let outcome = issuance::with_active_key(&state, &issuer, async |key| {
        let ordinal = match state.ordinals.next(&store, &issuer).await {
            Ok(ordinal) => ordinal,
            Err(e) => return Ok(Err(e)),
        };
        // Two RDFC canonicalizations (~2 ms each in release): off the async workers.
        let (worker_issuer, worker_base, fields) = (
            issuer.clone(),
            state.public_base.clone(),
            parsed.fields.clone(),
        );
        let new = web::block(move || {
            let proof = issuance::prepare_proof(&worker_issuer, &key, &worker_base)?;
            issuance::sign(
                id,
                salt,
                &worker_issuer,
                &key,
                &worker_base,
                &proof,
                fields,
                file_digest,
                ordinal,
            )
        })
        .await
        .map_err(|_| ApiError::Internal)?
        .ok_or(ApiError::Internal)?;
        let fingerprint = request_fingerprint(&new);
        let idempotency = idempotency_key.as_deref().map(|key| IdempotencyRequest {
            key,
            request_hash: &fingerprint,
        });
        Ok(store
            .issue_credential(&new, idempotency, render_outcome)
            .await)
    })
    .await?;
    let (status, body) = match &outcome {
        IssueOutcome::IdempotencyKeyReused => return Err(ApiError::IdempotencyKeyReused),
        IssueOutcome::Replayed { status, body } => (*status, body.clone()),
        other => render_outcome(other),
    };
    if let IssueOutcome::Created(record) = &outcome {
        state
            .metrics
            .credentials_issued
            .with_label_values(&[record.issuer.as_str()])
            .inc();
        tracing::info!(credential_id = %record.id, issuer = %record.issuer, "credential issued and queued");
    }
    let status = actix_web::http::StatusCode::from_u16(status).map_err(|_| ApiError::Internal)?;
    let mut response = HttpResponse::build(status);
    if status.is_success() {
        if let Some(id) = body.get("id").and_then(Value::as_str) {
            response.insert_header((header::LOCATION, format!("/v1/credentials/{id}")));
        }
    }
    Ok(response.json(body))
}

/// The (status, body) of an outcome: what the client gets now and on every replay.
fn render_outcome(outcome: &IssueOutcome) -> (u16, Value) {
    match outcome {
        IssueOutcome::Created(r) => (202, to_json(&CredentialView::from(r))),
        IssueOutcome::Duplicate(r) => (200, to_json(&CredentialView::from(r))),
        IssueOutcome::SerialConflict { existing } => {
            let err = ApiError::SerialConflict {
                existing_id: existing.to_string(),
            };
            (409, to_json(&err.body()))
        }
        IssueOutcome::Replayed { status, body } => (*status, body.clone()),
        IssueOutcome::IdempotencyKeyReused => {
            (422, to_json(&ApiError::IdempotencyKeyReused.body()))
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|_| json!({"code": "internal_error"}))
}

/// Fingerprint of the logical request (not the raw bytes: a multipart boundary differs
/// between two sends of the same request).
fn request_fingerprint(new: &NewCredential) -> [u8; 32] {
    let canonical = json!({
        "file_digest": new.file_digest.to_hex(),
        "recipient_id": new.recipient.as_str(),
        "issued_at": new.issued_at.canonical(),
        "serial": new.serial.as_str(),
        "credential_type": new.credential_type,
        "title": new.title,
        "metadata": new.metadata,
    });
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    let d = digest::digest(&digest::SHA256, &bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub(crate) fn parse_id(raw: &str) -> Result<CredentialId, ApiError> {
    raw.parse::<CredentialId>()
        .map_err(|_| ApiError::invalid_field("id", "not a credential id (UUID)"))
}

/// One credential of the authenticated issuer.
#[utoipa::path(
    get,
    path = "/v1/credentials/{id}",
    params(("id" = String, Path, description = "Credential id")),
    responses((status = 200, body = CredentialView), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_credential(
    issuer: AuthenticatedIssuer,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.into_inner())?;
    let record = state
        .store()
        .credential(&issuer.0, &id)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::CredentialNotFound)?;
    let revocation = state
        .store()
        .revocation(&id)
        .await
        .map_err(|e| state.store_error(e))?;
    let mut view = CredentialView::with_explorer(&record, &state.explorer);
    view.revocation = revocation.map(|r| RevocationView::new(&r, &state.explorer));
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    recipient_id: Option<String>,
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The issuer's credentials, newest first, keyset-paginated.
#[utoipa::path(
    get,
    path = "/v1/credentials",
    params(
        ("recipient_id" = Option<String>, Query, description = "Only this recipient"),
        ("status" = Option<String>, Query, description = "Only this status"),
        ("limit" = Option<u32>, Query, description = "Page size, 1..=500 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = CredentialPage), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_credentials(
    issuer: AuthenticatedIssuer,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params: ListParams = serde_urlencoded_query(req.query_string())?;
    let invalid = |field: &str, reason: String| ApiError::InvalidQuery {
        field: field.to_string(),
        reason,
    };
    let recipient = params
        .recipient_id
        .map(|r| RecipientId::parse(&r))
        .transpose()
        .map_err(|e| invalid("recipient_id", e.to_string()))?;
    let status = params
        .status
        .map(|s| s.parse::<CredentialStatus>())
        .transpose()
        .map_err(|_| invalid("status", "unknown status".into()))?;
    let limit = match params.limit {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| invalid("limit", format!("must be an integer from 1 to {MAX_PAGE}")))?,
    };
    let cursor = params
        .cursor
        .map(|c| c.parse::<CredentialId>())
        .transpose()
        .map_err(|_| invalid("cursor", "not a cursor returned by this API".into()))?;
    let filter = ListFilter { recipient, status };
    let records = state
        .store()
        .list_credentials(&issuer.0, &filter, limit, cursor.as_ref())
        .await
        .map_err(|e| state.store_error(e))?;
    let next_cursor = if records.len() == limit as usize {
        records.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(CredentialPage {
        items: records
            .iter()
            .map(|r| CredentialView::with_explorer(r, &state.explorer))
            .collect(),
        next_cursor,
    }))
}

fn serde_urlencoded_query(query: &str) -> Result<ListParams, ApiError> {
    web::Query::<ListParams>::from_query(query)
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::InvalidQuery {
            field: "query".into(),
            reason: e.to_string(),
        })
}
