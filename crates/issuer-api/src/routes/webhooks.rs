//! Webhook endpoints of the authenticated issuer (issue #24): register, list, change, delete,
//! rotate the secret, send a test event, list deliveries and replay one.
//!
//! A secret is shown once, when it is made (create, rotate); it is stored sealed under the
//! master key. URLs are checked by `domain::webhook::endpoint_url` (https only unless
//! `webhooks.allow_http`; IP literals of non-public addresses refused unless
//! `webhooks.allow_private`); host names are checked again at each delivery.

use actix_web::{web, HttpRequest, HttpResponse};
use domain::webhook::{endpoint_url, EventType, WebhookSecret, SECRET_BYTES};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use store::webhooks::{
    DeliveryRecord, DeliveryState, EndpointChange, EndpointRecord, MAX_DELIVERY_PAGE,
    MAX_ENDPOINTS_PER_ISSUER,
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthenticatedIssuer;
use crate::error::ApiError;
use crate::request;
use crate::state::AppState;

/// Webhook request bodies are small.
const WEBHOOK_BODY_LIMIT: usize = 16 * 1024;

/// `POST /v1/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointBody {
    /// Where deliveries are POSTed: `https://` (at most 2048 characters).
    pub url: Option<String>,
    /// Event types to receive; all of them when absent.
    pub event_types: Option<Vec<String>>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// `PATCH /v1/webhooks/{id}`: only the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpointBody {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// Enabling an endpoint disabled by a 410 resumes its pending deliveries.
    pub enabled: Option<bool>,
}

/// `POST /v1/webhooks/{id}/rotate-secret`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// Seconds the previous secret still signs deliveries (0 to 604800; default
    /// `webhooks.rotation_grace_secs`, one day).
    pub grace_secs: Option<u64>,
}

/// An endpoint as shown to its issuer.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// `gone` (the receiver answered 410) or `client` when disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Until when the previous secret also signs deliveries (after a rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<String>,
    /// The signing secret (`whsec_...`): only in the answer that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl EndpointView {
    fn new(e: &EndpointRecord, secret: Option<&WebhookSecret>) -> Self {
        EndpointView {
            id: e.id.to_string(),
            url: e.url.clone(),
            event_types: e.event_types.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            previous_secret_expires_at: e
                .previous_expires_at
                .filter(|at| *at > chrono::Utc::now())
                .map(|at| at.to_rfc3339()),
            secret: secret.map(WebhookSecret::expose),
            created_at: e.created_at.to_rfc3339(),
            updated_at: e.updated_at.to_rfc3339(),
        }
    }
}

/// The issuer's endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub items: Vec<EndpointView>,
}

/// One delivery of an event to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    /// The `webhook-id` header of every attempt (receivers deduplicate by it).
    pub webhook_id: String,
    pub event_type: String,
    /// pending | delivered | failed (a dead letter: replay it with `.../retry`).
    pub status: &'static str,
    pub attempts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
    /// HTTP status of the last answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<i32>,
    /// At most 256 characters of the last answer's body, or of the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: String,
}

impl From<DeliveryRecord> for DeliveryView {
    fn from(d: DeliveryRecord) -> Self {
        DeliveryView {
            id: d.id,
            webhook_id: domain::webhook::message_id(d.event_id),
            event_type: d.event_type,
            status: d.state.as_str(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.map(|t| t.to_rfc3339()),
            delivered_at: d.delivered_at.map(|t| t.to_rfc3339()),
            failed_at: d.dead_at.map(|t| t.to_rfc3339()),
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at.to_rfc3339(),
        }
    }
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryView>,
    /// Pass as `before` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// `GET /v1/webhooks/{id}/deliveries` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// pending | delivered | failed
    pub status: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// The `next_before` of the previous page.
    pub before: Option<i64>,
}

/// `POST /v1/webhooks/{id}/test` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestEventView {
    pub delivery_id: i64,
    pub webhook_id: String,
}

fn parse_endpoint_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::invalid_field("id", "not a webhook id (UUID)"))
}

/// Event types: known, subscribable, no duplicates, at least one (absent: all).
pub fn parse_event_types(types: Option<Vec<String>>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(types) = types else { return Ok(None) };
    if types.is_empty() {
        return Err(ApiError::invalid_field(
            "event_types",
            "at least one event type",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for t in types {
        let parsed = EventType::parse_subscribable(&t).ok_or_else(|| {
            ApiError::invalid_field(
                "event_types",
                format!(
                    "unknown event type; one of {}",
                    EventType::SUBSCRIBABLE.map(EventType::as_str).join(", ")
                ),
            )
        })?;
        let name = parsed.as_str().to_string();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(Some(out))
}

fn parse_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    endpoint_url(url, state.webhooks.allow_http, state.webhooks.allow_private)
        .map(|u| u.to_string())
        .map_err(|e| ApiError::WebhookUrlRefused {
            reason: e.to_string(),
        })
}

async fn read_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    empty_ok: Option<T>,
) -> Result<T, ApiError> {
    let body = request::within_deadline(
        state.body_read_timeout,
        request::read_body_limited(req.headers(), payload, WEBHOOK_BODY_LIMIT),
    )
    .await?;
    if body.is_empty() {
        if let Some(default) = empty_ok {
            return Ok(default);
        }
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson {
        message: format!("invalid JSON body: {e}"),
    })
}

/// A new secret for `endpoint`: sealed under the master key (what is stored) and in the clear
/// (shown once, in this answer only).
fn new_sealed_secret(
    state: &AppState,
    endpoint: &Uuid,
) -> Result<(Vec<u8>, WebhookSecret), ApiError> {
    let rng = SystemRandom::new();
    let mut bytes = [0u8; SECRET_BYTES];
    rng.fill(&mut bytes).map_err(|_| ApiError::Internal)?;
    let secret = WebhookSecret::from_bytes(&bytes).map_err(|_| ApiError::Internal)?;
    let sealed = state
        .signer
        .seal_webhook_secret(endpoint, &bytes, &rng)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot seal a webhook secret");
            ApiError::Internal
        })?;
    Ok((sealed, secret))
}

/// Register a webhook endpoint. The answer carries its secret, shown this once.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    request_body = CreateEndpointBody,
    responses(
        (status = 201, body = EndpointView),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_endpoint(
    issuer: AuthenticatedIssuer,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: CreateEndpointBody = read_json(&req, payload, &state, None).await?;
    let url = body.url.ok_or_else(|| ApiError::MissingField {
        field: "url".into(),
    })?;
    let url = parse_url(&state, &url)?;
    let types = parse_event_types(body.event_types)?.unwrap_or_else(|| {
        EventType::SUBSCRIBABLE
            .map(|t| t.as_str().to_string())
            .to_vec()
    });
    let id = Uuid::now_v7();
    let (sealed, secret) = new_sealed_secret(&state, &id)?;
    let created = state
        .store()
        .create_webhook_endpoint(
            &issuer.0,
            id,
            &url,
            &types,
            body.enabled.unwrap_or(true),
            &sealed,
        )
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::WebhookEndpointLimit {
            limit: MAX_ENDPOINTS_PER_ISSUER,
        })?;
    tracing::info!(issuer = %issuer.0, endpoint = %id, "webhook endpoint registered");
    Ok(HttpResponse::Created().json(EndpointView::new(&created, Some(&secret))))
}

/// The issuer's webhook endpoints (never their secrets).
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    responses((status = 200, body = EndpointList), (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_endpoints(
    issuer: AuthenticatedIssuer,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let endpoints = state
        .store()
        .list_webhook_endpoints(&issuer.0)
        .await
        .map_err(|e| state.store_error(e))?;
    Ok(HttpResponse::Ok().json(EndpointList {
        items: endpoints
            .iter()
            .map(|e| EndpointView::new(e, None))
            .collect(),
    }))
}

/// One webhook endpoint.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}",
    params(("id" = String, Path, description = "Webhook endpoint id")),
    responses((status = 200, body = EndpointView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_endpoint(
    issuer: AuthenticatedIssuer,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_endpoint_id(&path.into_inner())?;
    let endpoint = state
        .store()
        .get_webhook_endpoint(&issuer.0, id)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::WebhookEndpointNotFound)?;
    Ok(HttpResponse::Ok().json(EndpointView::new(&endpoint, None)))
}

/// Change an endpoint's URL, event types or whether it is enabled.
#[utoipa::path(
    patch,
    path = "/v1/webhooks/{id}",
    params(("id" = String, Path, description = "Webhook endpoint id")),
    request_body = UpdateEndpointBody,
    responses((status = 200, body = EndpointView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn update_endpoint(
    issuer: AuthenticatedIssuer,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_endpoint_id(&path.into_inner())?;
    let body: UpdateEndpointBody = read_json(&req, payload, &state, None).await?;
    let change = EndpointChange {
        url: body.url.map(|u| parse_url(&state, &u)).transpose()?,
        event_types: parse_event_types(body.event_types)?,
        enabled: body.enabled,
    };
    let endpoint = state
        .store()
        .update_webhook_endpoint(&issuer.0, id, &change)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::WebhookEndpointNotFound)?;
    Ok(HttpResponse::Ok().json(EndpointView::new(&endpoint, None)))
}

/// Delete an endpoint and its pending deliveries.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    params(("id" = String, Path, description = "Webhook endpoint id")),
    responses((status = 204, description = "Deleted"), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete_endpoint(
    issuer: AuthenticatedIssuer,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_endpoint_id(&path.into_inner())?;
    let deleted = state
        .store()
        .delete_webhook_endpoint(&issuer.0, id)
        .await
        .map_err(|e| state.store_error(e))?;
    if !deleted {
        return Err(ApiError::WebhookEndpointNotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Most grace a rotation may give the previous secret (a week).
const MAX_GRACE_SECS: u64 = 7 * 86_400;

/// Make a new secret (shown this once). The previous one keeps signing deliveries, next to
/// the new one, for the grace period: receivers switch without losing a delivery.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/rotate-secret",
    params(("id" = String, Path, description = "Webhook endpoint id")),
    request_body = RotateBody,
    responses((status = 200, body = EndpointView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn rotate_secret(
    issuer: AuthenticatedIssuer,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_endpoint_id(&path.into_inner())?;
    let body: RotateBody = read_json(&req, payload, &state, Some(RotateBody::default())).await?;
    let grace = body
        .grace_secs
        .unwrap_or(state.webhooks.rotation_grace_secs);
    if grace > MAX_GRACE_SECS {
        return Err(ApiError::invalid_field(
            "grace_secs",
            format!("at most {MAX_GRACE_SECS}"),
        ));
    }
    let (sealed, secret) = new_sealed_secret(&state, &id)?;
    let endpoint = state
        .store()
        .rotate_webhook_secret(
            &issuer.0,
            id,
            &sealed,
            std::time::Duration::from_secs(grace),
        )
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::WebhookEndpointNotFound)?;
    tracing::info!(issuer = %issuer.0, endpoint = %id, grace, "webhook secret rotated");
    Ok(HttpResponse::Ok().json(EndpointView::new(&endpoint, Some(&secret))))
}

/// Queue a `webhook.test` event to this endpoint only (delivered like any other).
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/test",
    params(("id" = String, Path, description = "Webhook endpoint id")),
    responses((status = 202, body = TestEventView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn test_endpoint(
    issuer: AuthenticatedIssuer,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_endpoint_id(&path.into_inner())?;
    let body = serde_json::json!({
        "type": EventType::Test.as_str(),
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": { "issuer_id": issuer.0.as_str(), "endpoint_id": id.to_string() },
    })
    .to_string();
    let (event, delivery) = state
        .store()
        .record_webhook_test(&issuer.0, id, &body)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::WebhookEndpointNotFound)?;
    Ok(HttpResponse::Accepted().json(TestEventView {
        delivery_id: delivery,
        webhook_id: domain::webhook::message_id(event),
    }))
}

/// An endpoint's deliveries, newest first; `status=failed` lists its dead letters.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries",
    params(("id" = String, Path, description = "Webhook endpoint id"), DeliveryQuery),
    responses((status = 200, body = DeliveryPage), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_deliveries(
    issuer: AuthenticatedIssuer,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_endpoint_id(&path.into_inner())?;
    // Parsed here, not by the extractor: a bad query is `invalid_query` JSON like every error.
    let query = web::Query::<DeliveryQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::InvalidQuery {
            field: "query".into(),
            reason: e.to_string(),
        })?;
    let status = query
        .status
        .map(|s| {
            DeliveryState::parse(&s).ok_or_else(|| ApiError::InvalidQuery {
                field: "status".into(),
                reason: "one of pending, delivered, failed".into(),
            })
        })
        .transpose()?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_DELIVERY_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery {
            field: "limit".into(),
            reason: format!("1 to {MAX_DELIVERY_PAGE}"),
        });
    }
    let items = state
        .store()
        .list_webhook_deliveries(&issuer.0, id, status, query.before, limit)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::WebhookEndpointNotFound)?;
    let next_before = (i64::try_from(items.len()).ok() == Some(limit))
        .then(|| items.last().map(|d| d.id))
        .flatten();
    Ok(HttpResponse::Ok().json(DeliveryPage {
        items: items.into_iter().map(DeliveryView::from).collect(),
        next_before,
    }))
}

/// Replay a delivery now (a dead letter, or any other), with the same `webhook-id` and a
/// fresh retry schedule.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
    params(("id" = String, Path, description = "Webhook endpoint id"), ("delivery_id" = i64, Path, description = "Delivery id")),
    responses((status = 202, body = DeliveryView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn retry_delivery(
    issuer: AuthenticatedIssuer,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery) = path.into_inner();
    let id = parse_endpoint_id(&id)?;
    let delivery: i64 = delivery
        .parse()
        .map_err(|_| ApiError::invalid_field("delivery_id", "not a delivery id (integer)"))?;
    let replayed = state
        .store()
        .retry_webhook_delivery(&issuer.0, id, delivery)
        .await
        .map_err(|e| state.store_error(e))?
        .ok_or(ApiError::WebhookDeliveryNotFound)?;
    Ok(HttpResponse::Accepted().json(DeliveryView::from(replayed)))
}
