//! The imperative shell shared by issuer-api, outbox-relay and reconciler.
//!
//! Owns what every service does the same way and must not drift between them: layered typed
//! configuration, tracing setup, the Prometheus text endpoint, the probe server for the
//! background services, and the shutdown signal. No business rules live here.

pub mod probes;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
