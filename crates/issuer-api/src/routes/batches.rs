//! `POST /v1/credential-batches` (bulk issuance), `GET /v1/credential-batches/{id}` (counts by
//! status) and `GET /v1/credential-batches/{id}/proofs` (NDJSON proof bundles).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::hash::Salt;
use domain::{CredentialId, SystemRandom};
use ring::digest;
use serde::Serialize;
use serde_json::{json, Value};
use store::batches::ProofScope;
use store::credentials::{
    BulkItemOutcome, BulkOutcome, IdempotencyRequest, NewBulk, NewCredential,
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthenticatedIssuer;
use crate::bulk::{self, BulkItem};
use crate::error::ApiError;
use crate::issuance;
use crate::request;
use crate::state::AppState;

/// The result of one item of a bulk request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkItemResult {
    /// Position of the item in the request (0-based).
    pub index: usize,
    /// accepted | duplicate | invalid
    pub status: &'static str,
    /// The credential: created (accepted) or already existing (duplicate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// For invalid items: the stable error code (as the single endpoint's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For `serial_conflict`: the credential that holds the serial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_id: Option<String>,
}

/// Response of `POST /v1/credential-batches`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResponse {
    /// The request's id: `GET /v1/credential-batches/{id}`.
    pub id: String,
    pub submitted: usize,
    pub accepted: usize,
    pub duplicates: usize,
    pub invalid: usize,
    pub items: Vec<BulkItemResult>,
}

fn invalid(index: usize, serial: Option<String>, e: &ApiError) -> BulkItemResult {
    let body = e.body();
    BulkItemResult {
        index,
        status: "invalid",
        id: None,
        serial,
        code: Some(body.code),
        field: body.field,
        message: Some(body.message),
        existing_id: body.existing_id,
    }
}

/// Issue up to 10,000 credentials in one request and one transaction.
#[utoipa::path(
    post,
    path = "/v1/credential-batches",
    request_body(content = crate::bulk::BulkBody, description = "JSON `{\"credentials\": [...]}` or NDJSON (`application/x-ndjson`, one item per line); each item as `POST /v1/credentials` with `file_base64` or `file_sha256`", content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays return the first response")),
    responses(
        (status = 202, description = "At least one item accepted; per-item results", body = BulkResponse),
        (status = 200, description = "Nothing new accepted (all duplicate or invalid)", body = BulkResponse),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn issue_batch(
    issuer: AuthenticatedIssuer,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let AuthenticatedIssuer(issuer) = issuer;
    let idempotency_key = request::idempotency_key(req.headers())?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let ndjson = if content_type.starts_with("application/json") {
        false
    } else if content_type.starts_with("application/x-ndjson") {
        true
    } else {
        return Err(ApiError::UnsupportedMediaType);
    };
    let body = request::within_deadline(
        state.body_read_timeout,
        request::read_body_limited(req.headers(), payload, state.bulk_body_limit_bytes),
    )
    .await?;
    let fingerprint = {
        let d = digest::digest(&digest::SHA256, &body);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    };
    // A signing key rotated between the signer's cache and the commit is refused by the
    // store (as for single credentials): the items are signed again with the new key, once.
    let store = state.store();
    let (outcome, request_id, items, positions, rejected, submitted) =
        issuance::with_active_key(&state, &issuer, async |key| {
            // Parsing, hashing and signing 10,000 items is CPU work: off the async workers.
            let (worker_issuer, worker_body) = (issuer.clone(), body.clone());
            let worker_base = state.public_base.clone();
            let parsed = web::block(move || {
                if ndjson {
                    bulk::parse_ndjson(&worker_body)
                } else {
                    bulk::parse_json(&worker_body)
                }
            })
            .await
            .map_err(|_| ApiError::Internal)??;
            // One status-list bit per well-formed item, in request order (a duplicate serial
            // leaves its bit unused, at 0; a request with none reserves nothing).
            let wanted = parsed.iter().filter(|item| item.is_ok()).count();
            let first = if wanted == 0 {
                None
            } else {
                Some(
                    store
                        .reserve_status_ordinals(&issuer, u32::try_from(wanted).unwrap_or(u32::MAX))
                        .await
                        .map_err(|e| state.store_error(e))?,
                )
            };
            let Prepared {
                items,
                positions,
                rejected,
                submitted,
            } = web::block(move || prepare(&worker_issuer, &key, &worker_base, parsed, first))
                .await
                .map_err(|_| ApiError::Internal)??;
            let request_id = Uuid::now_v7();
            let new_bulk = NewBulk {
                request_id,
                issuer: &issuer,
                submitted: i32::try_from(submitted).unwrap_or(i32::MAX),
                invalid: i32::try_from(rejected.iter().filter(|r| r.is_some()).count())
                    .unwrap_or(i32::MAX),
                items: &items,
            };
            let idempotency = idempotency_key.as_deref().map(|key| IdempotencyRequest {
                key,
                request_hash: &fingerprint,
            });
            let render_stored = |outcomes: &[BulkItemOutcome]| {
                render(&assemble(
                    request_id, &items, &positions, &rejected, outcomes,
                ))
            };
            let stored = store
                .issue_bulk(&new_bulk, idempotency, render_stored)
                .await;
            Ok(stored.map(|outcome| (outcome, request_id, items, positions, rejected, submitted)))
        })
        .await?;
    let replayed = matches!(outcome, BulkOutcome::Replayed { .. });
    let (status, body) = match outcome {
        BulkOutcome::IdempotencyKeyReused => return Err(ApiError::IdempotencyKeyReused),
        BulkOutcome::Replayed { status, body } => (status, body),
        BulkOutcome::Done(outcomes) => {
            let response = assemble(request_id, &items, &positions, &rejected, &outcomes);
            state
                .metrics
                .credentials_issued
                .with_label_values(&[issuer.as_str()])
                .inc_by(response.accepted as u64);
            tracing::info!(request_id = %request_id, issuer = %issuer, submitted, accepted = response.accepted, duplicates = response.duplicates, invalid = response.invalid, "bulk issuance committed");
            render(&response)
        }
    };
    let status = actix_web::http::StatusCode::from_u16(status).map_err(|_| ApiError::Internal)?;
    let mut response = HttpResponse::build(status);
    if let Some(id) = body.get("id").and_then(Value::as_str) {
        response.insert_header((header::LOCATION, format!("/v1/credential-batches/{id}")));
    }
    if replayed {
        // The stored answer of an earlier request with this Idempotency-Key.
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(response.json(body))
}

fn render(response: &BulkResponse) -> (u16, Value) {
    let status = if response.accepted > 0 { 202 } else { 200 };
    (
        status,
        serde_json::to_value(response).unwrap_or_else(|_| json!({"code": "internal_error"})),
    )
}

/// Parsed, hashed and signed items, ready for the store.
struct Prepared {
    /// Valid items, serials unique within the request.
    items: Vec<NewCredential>,
    /// Request index of each valid item.
    positions: Vec<usize>,
    /// Per request index: the result of an item refused before the store.
    rejected: Vec<Option<BulkItemResult>>,
    submitted: usize,
}

fn prepare(
    issuer: &domain::IssuerId,
    key: &crate::signer::IssuingKey,
    base: &domain::vc::PublicBase,
    parsed: bulk::ParsedItems,
    first: Option<domain::status_list::StatusOrdinal>,
) -> Result<Prepared, ApiError> {
    use rayon::prelude::*;
    let submitted = parsed.len();
    let mut valid = Vec::with_capacity(submitted);
    let mut positions = Vec::with_capacity(submitted);
    let mut rejected = vec![None; submitted];
    let mut seen = std::collections::HashSet::with_capacity(submitted);
    let mut next_ordinal = first.map(|o| o.get());
    for (index, item) in parsed.into_iter().enumerate() {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                rejected[index] = Some(invalid(index, None, &e));
                continue;
            }
        };
        // The item's status bit: the next reserved one (reserved for every well-formed item).
        let ordinal = next_ordinal
            .and_then(domain::status_list::StatusOrdinal::new)
            .ok_or(ApiError::Internal)?;
        next_ordinal = next_ordinal.map(|o| o + 1);
        let serial = item.fields.serial.as_str().to_string();
        if !seen.insert(serial.clone()) {
            rejected[index] = Some(BulkItemResult {
                index,
                status: "invalid",
                id: None,
                code: Some(crate::error::ErrorCode::DuplicateInRequest.as_str()),
                field: Some("serial".into()),
                message: Some(format!("serial {serial} appears earlier in this request")),
                serial: Some(serial),
                existing_id: None,
            });
            continue;
        }
        // Ids in request order (UUIDv7 is time-ordered), before the parallel part.
        valid.push((CredentialId::new_v7(), item, ordinal));
        positions.push(index);
    }
    // The VC's canonicalization, then the hash and the Ed25519 signatures, are the API's CPU
    // per bulk item: spread over the cores, in order. One proof configuration for all.
    let proof = issuance::prepare_proof(issuer, key, base).ok_or(ApiError::Internal)?;
    let items = valid
        .into_par_iter()
        .map(
            |(
                id,
                BulkItem {
                    fields,
                    file_digest,
                },
                ordinal,
            )| {
                // A failing system RNG is not recoverable per item: the request fails whole
                // (checked below) rather than issuing unsalted credentials.
                let salt = Salt::generate(&SystemRandom::new()).ok()?;
                issuance::sign(
                    id,
                    salt,
                    issuer,
                    key,
                    base,
                    &proof,
                    fields,
                    file_digest,
                    ordinal,
                )
            },
        )
        .collect::<Option<Vec<_>>>()
        .ok_or(ApiError::Internal)?;
    Ok(Prepared {
        items,
        positions,
        rejected,
        submitted,
    })
}

fn assemble(
    request_id: Uuid,
    items: &[NewCredential],
    positions: &[usize],
    rejected: &[Option<BulkItemResult>],
    outcomes: &[BulkItemOutcome],
) -> BulkResponse {
    let mut results: Vec<Option<BulkItemResult>> = rejected.to_vec();
    for ((item, &index), outcome) in items.iter().zip(positions).zip(outcomes) {
        let serial = Some(item.serial.as_str().to_string());
        results[index] = Some(match outcome {
            BulkItemOutcome::Created(id) => BulkItemResult {
                index,
                status: "accepted",
                id: Some(id.to_string()),
                serial,
                code: None,
                field: None,
                message: None,
                existing_id: None,
            },
            BulkItemOutcome::Duplicate(id) => BulkItemResult {
                index,
                status: "duplicate",
                id: Some(id.to_string()),
                serial,
                code: None,
                field: None,
                message: None,
                existing_id: None,
            },
            BulkItemOutcome::SerialConflict(existing) => invalid(
                index,
                serial,
                &ApiError::SerialConflict {
                    existing_id: existing.to_string(),
                },
            ),
        });
    }
    let items: Vec<BulkItemResult> = results.into_iter().flatten().collect();
    let count = |s: &str| items.iter().filter(|r| r.status == s).count();
    BulkResponse {
        id: request_id.to_string(),
        submitted: rejected.len(),
        accepted: count("accepted"),
        duplicates: count("duplicate"),
        invalid: count("invalid"),
        items,
    }
}

pub(crate) fn parse_request_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::invalid_field("id", "not a batch id (UUID)"))
}

/// Counts of a bulk request's credentials by status.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialBatchView {
    pub id: String,
    pub submitted: i32,
    pub accepted: i32,
    pub duplicates: i32,
    pub invalid: i32,
    pub created_at: String,
    /// Count per status (queued, submitted, confirmed, finalized, failed, ...).
    #[schema(value_type = Object)]
    pub statuses: serde_json::Map<String, Value>,
    /// Every accepted credential is finalized: its proof bundles are ready.
    pub all_finalized: bool,
}

/// A bulk request of the authenticated issuer and how far its credentials got.
#[utoipa::path(
    get,
    path = "/v1/credential-batches/{id}",
    params(("id" = String, Path, description = "Id returned by POST /v1/credential-batches")),
    responses((status = 200, body = CredentialBatchView), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_batch(
    issuer: AuthenticatedIssuer,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_request_id(&path.into_inner())?;
    let summary = state
        .store()
        .credential_batch(&issuer.0, &id)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::CredentialBatchNotFound)?;
    let finalized: i64 = summary
        .by_status
        .iter()
        .filter(|(s, _)| s == "finalized")
        .map(|(_, n)| n)
        .sum();
    let total: i64 = summary.by_status.iter().map(|(_, n)| n).sum();
    Ok(HttpResponse::Ok().json(CredentialBatchView {
        id: id.to_string(),
        submitted: summary.submitted,
        accepted: summary.accepted,
        duplicates: summary.duplicates,
        invalid: summary.invalid,
        created_at: summary.created_at.to_rfc3339(),
        statuses: summary
            .by_status
            .into_iter()
            .map(|(s, n)| (s, Value::from(n)))
            .collect(),
        all_finalized: finalized == total,
    }))
}

/// The proof bundles of a bulk request's finalized credentials, one JSON per line.
#[utoipa::path(
    get,
    path = "/v1/credential-batches/{id}/proofs",
    params(("id" = String, Path, description = "Id returned by POST /v1/credential-batches")),
    responses((status = 200, description = "NDJSON: one proof bundle (schema credential-anchor/proof-bundle/v1) per finalized credential", content_type = "application/x-ndjson"), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_batch_proofs(
    issuer: AuthenticatedIssuer,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_request_id(&path.into_inner())?;
    state
        .store()
        .credential_batch(&issuer.0, &id)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::CredentialBatchNotFound)?;
    let bundles = crate::proofs::bundles_for(&state, &issuer.0, ProofScope::Request(&id)).await?;
    let mut out = Vec::with_capacity(bundles.len() * 1024);
    for bundle in bundles.into_iter().flatten() {
        serde_json::to_writer(&mut out, &bundle).map_err(|_| ApiError::Internal)?;
        out.push(b'\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .body(out))
}
