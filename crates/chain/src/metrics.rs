//! Prometheus metrics of RPC calls.
//!
//! Owns `rpc_request_duration_seconds{method}` and `rpc_errors_total{method,class}`, and per
//! endpoint (issue #23) `rpc_endpoint_requests_total{endpoint,result}`,
//! `rpc_endpoint_up{endpoint}` (1 while healthy or slow, 0 while lagging or failing),
//! `rpc_endpoint_finalized_slot{endpoint}` and `rpc_failovers_total{method}` (a call that
//! moved on to the next endpoint). The `method` label is the JSON-RPC method name (a small
//! fixed set), never a URL or a signature; `endpoint` is the configured URL without its path
//! and query (where providers put API keys), one per configured endpoint, so the label
//! cardinality stays bounded.

use std::time::Duration;

use domain::retry::ErrorClass;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::error::ChainError;

/// RPC call metrics; cheap to clone (the collectors are reference-counted).
#[derive(Clone, Debug)]
pub struct ChainMetrics {
    request_duration: HistogramVec,
    errors: IntCounterVec,
    endpoint_requests: IntCounterVec,
    endpoint_up: IntGaugeVec,
    endpoint_slot: IntGaugeVec,
    failovers: IntCounterVec,
}

impl ChainMetrics {
    /// Creates the collectors and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "rpc_request_duration_seconds",
                "Duration of Solana JSON-RPC requests, by method, successful or not.",
            )
            // From a local validator (~1 ms) to a slow public endpoint near its timeout.
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["method"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "rpc_errors_total",
                "Failed Solana JSON-RPC requests, by method and retry class.",
            ),
            &["method", "class"],
        )?;
        let endpoint_requests = IntCounterVec::new(
            Opts::new(
                "rpc_endpoint_requests_total",
                "Solana JSON-RPC requests by endpoint and result (ok, error).",
            ),
            &["endpoint", "result"],
        )?;
        let endpoint_up = IntGaugeVec::new(
            Opts::new(
                "rpc_endpoint_up",
                "1 while the RPC endpoint is healthy or only slow, 0 while it lags or fails.",
            ),
            &["endpoint"],
        )?;
        let endpoint_slot = IntGaugeVec::new(
            Opts::new(
                "rpc_endpoint_finalized_slot",
                "The newest finalized slot the RPC endpoint reported at its last health probe.",
            ),
            &["endpoint"],
        )?;
        let failovers = IntCounterVec::new(
            Opts::new(
                "rpc_failovers_total",
                "Calls that failed on one RPC endpoint and moved on to the next, by method.",
            ),
            &["method"],
        )?;
        registry.register(Box::new(request_duration.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(endpoint_requests.clone()))?;
        registry.register(Box::new(endpoint_up.clone()))?;
        registry.register(Box::new(endpoint_slot.clone()))?;
        registry.register(Box::new(failovers.clone()))?;
        Ok(Self {
            request_duration,
            errors,
            endpoint_requests,
            endpoint_up,
            endpoint_slot,
            failovers,
        })
    }

    pub(crate) fn record_endpoint(&self, endpoint: &str, ok: bool) {
        self.endpoint_requests
            .with_label_values(&[endpoint, if ok { "ok" } else { "error" }])
            .inc();
    }

    pub(crate) fn set_endpoint(&self, endpoint: &str, up: bool, finalized_slot: Option<u64>) {
        self.endpoint_up
            .with_label_values(&[endpoint])
            .set(i64::from(up));
        if let Some(slot) = finalized_slot {
            self.endpoint_slot
                .with_label_values(&[endpoint])
                .set(i64::try_from(slot).unwrap_or(i64::MAX));
        }
    }

    pub(crate) fn record_failover(&self, method: &str) {
        self.failovers.with_label_values(&[method]).inc();
    }

    pub(crate) fn record(&self, method: &str, elapsed: Duration, error: Option<&ChainError>) {
        self.request_duration
            .with_label_values(&[method])
            .observe(elapsed.as_secs_f64());
        if let Some(err) = error {
            let class = match err.class() {
                ErrorClass::Retryable => "retryable",
                ErrorClass::Permanent => "permanent",
            };
            self.errors.with_label_values(&[method, class]).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_durations_and_classified_errors() {
        let registry = Registry::new();
        let m = ChainMetrics::register(&registry).unwrap();
        m.record("getSlot", Duration::from_millis(3), None);
        m.record(
            "sendTransaction",
            Duration::from_millis(5),
            Some(&ChainError::Timeout("x".into())),
        );
        m.record(
            "sendTransaction",
            Duration::from_millis(5),
            Some(&ChainError::ReadOnly),
        );
        let families = registry.gather();
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        assert!(names.contains(&"rpc_request_duration_seconds"));
        assert!(names.contains(&"rpc_errors_total"));
        assert_eq!(
            m.errors
                .with_label_values(&["sendTransaction", "retryable"])
                .get(),
            1
        );
        assert_eq!(
            m.errors
                .with_label_values(&["sendTransaction", "permanent"])
                .get(),
            1
        );
        assert_eq!(
            m.request_duration
                .with_label_values(&["sendTransaction"])
                .get_sample_count(),
            2
        );
        // Registering twice in one registry is refused, not a panic.
        assert!(ChainMetrics::register(&registry).is_err());
    }
}
