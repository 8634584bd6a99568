//! Probes, metrics and the OpenAPI document.

use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::state::AppState;

/// Liveness: the process serves HTTP. Deliberately does not touch the database, so a
/// database outage makes pods unready, not restarted in a loop.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the database answers and its schema is current.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let reason = match state.store().migrations_current().await {
        Ok(true) => return HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Ok(false) => "database schema is behind this build: run migrations".to_string(),
        Err(e) if e.is_unavailable() => "database unavailable".to_string(),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            "readiness check failed".to_string()
        }
    };
    HttpResponse::ServiceUnavailable()
        .json(serde_json::json!({"code": "not_ready", "message": reason}))
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    service_shell::probes::encode_metrics(&state.metrics.registry)
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::ApiDoc::openapi())
}
