//! Prometheus text encoding and the small probe server of the background services
//! (outbox-relay, reconciler): `/healthz`, `/readyz`, `/metrics`.

use std::future::Future;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};
use prometheus::{Encoder, Registry, TextEncoder};
use serde::Deserialize;

/// Where a background service serves its probes and metrics.
#[derive(Debug, Clone, Deserialize)]
pub struct ProbeSettings {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
}

fn default_host() -> String {
    "0.0.0.0".into()
}
fn default_port() -> u16 {
    9100
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            host: default_host(),
            port: default_port(),
        }
    }
}

impl ProbeSettings {
    pub fn bind(&self) -> std::io::Result<TcpListener> {
        TcpListener::bind((self.host.as_str(), self.port))
    }
}

/// The outbox backlog gauges. Exported by the relay AND the reconciler: with every relay
/// stopped, the reconciler's copy still shows the queue ageing, so the
/// "oldest pending outbox job" alert fires instead of going silent with its series.
#[derive(Clone)]
pub struct BacklogGauges {
    pub pending: prometheus::IntGauge,
    pub dead: prometheus::IntGauge,
    pub oldest_pending_age: prometheus::Gauge,
}

impl BacklogGauges {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let g = Self {
            pending: prometheus::IntGauge::new(
                "outbox_pending",
                "Open outbox jobs (not completed, not dead)",
            )?,
            dead: prometheus::IntGauge::new(
                "outbox_dead_letter_jobs",
                "Dead-lettered jobs awaiting an operator",
            )?,
            oldest_pending_age: prometheus::Gauge::new(
                "outbox_oldest_pending_age_seconds",
                "Age of the oldest open outbox job",
            )?,
        };
        registry.register(Box::new(g.pending.clone()))?;
        registry.register(Box::new(g.dead.clone()))?;
        registry.register(Box::new(g.oldest_pending_age.clone()))?;
        Ok(g)
    }

    pub fn set(&self, pending: i64, dead: i64, oldest_pending_age_seconds: f64) {
        self.pending.set(pending);
        self.dead.set(dead);
        self.oldest_pending_age.set(oldest_pending_age_seconds);
    }
}

/// Encodes every metric of `registry` in the Prometheus text format.
pub fn encode_metrics(registry: &Registry) -> HttpResponse {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut buf) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(buf),
        Err(e) => HttpResponse::InternalServerError().body(format!("metrics encoding: {e}")),
    }
}

/// A readiness check: Ok when the service can do its work, Err with the reason otherwise.
pub type ReadinessCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>>>> + Send + Sync>;

/// Starts the probe server on an already-bound listener (port 0 in tests) and returns the
/// server handle. Liveness answers while the process runs; readiness runs `ready`.
pub fn serve_probes(
    listener: TcpListener,
    registry: Registry,
    ready: ReadinessCheck,
) -> std::io::Result<actix_web::dev::Server> {
    let registry = web::Data::new(registry);
    let ready = web::Data::new(ready);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(registry.clone())
            .app_data(ready.clone())
            .route(
                "/healthz",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(r#"{"status":"ok"}"#)
                }),
            )
            .route(
                "/metrics",
                web::get().to(|r: web::Data<Registry>| async move { encode_metrics(&r) }),
            )
            .route(
                "/readyz",
                web::get().to(|check: web::Data<ReadinessCheck>| async move {
                    match (check.get_ref())().await {
                        Ok(()) => HttpResponse::Ok()
                            .content_type("application/json")
                            .body(r#"{"status":"ready"}"#),
                        Err(reason) => HttpResponse::ServiceUnavailable()
                            .content_type("application/json")
                            .body(format!(
                                r#"{{"code":"not_ready","message":{}}}"#,
                                json_string(&reason)
                            )),
                    }
                }),
            )
    })
    .workers(1)
    // The owning service handles signals and stops this server itself, in order.
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Minimal JSON string escaping so this crate needs no serde_json.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::json_string;

    #[test]
    fn escapes_json_strings() {
        assert_eq!(json_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000ad\"");
    }
}
