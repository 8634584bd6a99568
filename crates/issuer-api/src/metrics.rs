//! Prometheus metrics of the API, in a registry owned by the application (not the global
//! one), so several apps in one test process never collide.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use crate::state::AppState;

pub struct ApiMetrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub credentials_issued: IntCounterVec,
    pub revocations: IntCounterVec,
    pub verifications: IntCounterVec,
    /// Webhook delivery attempts by result (`webhooks`).
    pub webhook_deliveries: IntCounterVec,
    /// Age of the oldest pending webhook delivery to an enabled endpoint.
    pub webhook_oldest_pending: prometheus::Gauge,
}

/// The `result` label values of `webhook_deliveries_total`.
pub const WEBHOOK_RESULTS: [&str; 5] = ["delivered", "retrying", "failed", "gone", "refused"];

impl ApiMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route pattern, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            ),
            &["route", "method"],
        )?;
        let credentials_issued = IntCounterVec::new(
            Opts::new(
                "credentials_issued_total",
                "Credentials accepted (202) by issuer",
            ),
            &["issuer"],
        )?;
        let revocations = IntCounterVec::new(
            Opts::new(
                "credential_revocations_total",
                "Revocations recorded (202) by issuer",
            ),
            &["issuer"],
        )?;
        let verifications = IntCounterVec::new(
            Opts::new(
                "credential_verifications_total",
                "Verifications answered, by verdict",
            ),
            &["verdict"],
        )?;
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook delivery attempts by result: delivered (2xx), retrying, failed (dead letter after the schedule), gone (410: endpoint disabled), refused (destination not allowed)",
            ),
            &["result"],
        )?;
        // Every series exists from the start at 0: the first dead letter is then an increase
        // an alert sees.
        for result in WEBHOOK_RESULTS {
            webhook_deliveries.with_label_values(&[result]);
        }
        let webhook_oldest_pending = prometheus::Gauge::new(
            "webhook_oldest_pending_age_seconds",
            "Seconds since the oldest undelivered webhook delivery to an enabled endpoint was recorded (0: none)",
        )?;
        registry.register(Box::new(webhook_deliveries.clone()))?;
        registry.register(Box::new(webhook_oldest_pending.clone()))?;
        registry.register(Box::new(revocations.clone()))?;
        registry.register(Box::new(verifications.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(credentials_issued.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            credentials_issued,
            revocations,
            verifications,
            webhook_deliveries,
            webhook_oldest_pending,
        })
    }
}

/// Records every request under its route *pattern* (`/v1/credentials/{id}`), never the raw
/// path, so label cardinality stays bounded whatever clients send.
/// The `method` label: the standard methods by name, anything a client makes up as `other`,
/// so made-up methods cannot create an unbounded number of series.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
    ];
    KNOWN
        .into_iter()
        .find(|known| method.as_str() == *known)
        .unwrap_or("other")
}

pub async fn track_http(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = method_label(req.method()).to_string();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let res = next.call(req).await?;
    if let Some(m) = metrics {
        let status = res.status().as_u16().to_string();
        m.http_requests
            .with_label_values(&[&route, &method, &status])
            .inc();
        m.http_duration
            .with_label_values(&[&route, &method])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(res)
}
