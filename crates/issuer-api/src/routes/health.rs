//! Probes, metrics and the OpenAPI document.

use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::state::AppState;

/// Liveness: the process serves HTTP. Deliberately does not touch the database, so a
/// database outage makes pods unready, not restarted in a loop. A public listener
/// (`public.port`) that stopped serving fails it: nothing else would bring it back, so the
/// kubelet restarts the pod.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    if public_listener_stopped(&state) {
        return HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "code": "not_live", "message": "the public listener (public.port) stopped"
        }));
    }
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

fn public_listener_stopped(state: &AppState) -> bool {
    state
        .public_listener
        .as_ref()
        .is_some_and(|alive| !alive.load(std::sync::atomic::Ordering::Relaxed))
}

/// How long readiness waits for the RPC endpoint before calling it unreachable: a probe
/// must answer well within the kubelet's probe timeout even when the node black-holes.
const CHAIN_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness: the database answers and its schema is current (else 503: issuance cannot
/// work). The RPC endpoint verification reads is reported beside it, never as a reason to
/// be unready: without it only verification degrades (`chain_unavailable`), issuance and
/// proofs go on, and taking every pod out of service for it would stop issuing too.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let public_stopped = public_listener_stopped(&state);
    let reason = match state.store().migrations_current().await {
        // The public routes are half of what this pod is for: without them it is not ready.
        _ if public_stopped => "the public listener (public.port) stopped".to_string(),
        Ok(true) => {
            let chain = chain_readiness(&state).await;
            let mut body = serde_json::json!({"status": "ready", "chain": chain});
            if chain["reachable"] == false {
                body["degraded"] = serde_json::json!(["verify"]);
            }
            return HttpResponse::Ok().json(body);
        }
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

/// `{"rpc": <endpoint, path and query hidden>, "reachable": bool, "error"?: text}`.
async fn chain_readiness(state: &AppState) -> serde_json::Value {
    let rpc = chain::redact_urls(&state.chain.config().rpc_url);
    match tokio::time::timeout(CHAIN_PROBE_TIMEOUT, state.chain.health()).await {
        Ok(Ok(())) => serde_json::json!({"rpc": rpc, "reachable": true}),
        Ok(Err(e)) => {
            serde_json::json!({"rpc": rpc, "reachable": false, "error": e.to_string()})
        }
        Err(_) => serde_json::json!({
            "rpc": rpc,
            "reachable": false,
            "error": format!("no answer within {} s", CHAIN_PROBE_TIMEOUT.as_secs()),
        }),
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    service_shell::probes::encode_metrics(&state.metrics.registry)
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::ApiDoc::openapi())
}
