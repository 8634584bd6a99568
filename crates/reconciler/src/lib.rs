//! reconciler: compares the issuer's anchors on Solana with PostgreSQL and repairs drift.
//!
//! Status: skeleton. It loads its typed config, serves `/healthz`, `/readyz` (database
//! reachable) and `/metrics`, and exits cleanly on SIGTERM. The scan itself is tracked by the
//! reconciler issue; until then the README says so.

use std::sync::Arc;

use serde::Deserialize;
pub use service_shell::probes::ProbeSettings;
use service_shell::probes::{serve_probes, ReadinessCheck};
use service_shell::telemetry::LogSettings;
use store::{DatabaseSettings, Store};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    #[serde(default)]
    pub probes: ProbeSettings,
    #[serde(default)]
    pub log: LogSettings,
}

pub struct Application {
    port: u16,
    probes: actix_web::dev::Server,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = Store::connect_lazy(&settings.database)?;
        let registry = prometheus::Registry::new();
        let up = prometheus::IntGauge::new("reconciler_up", "1 while the reconciler runs")?;
        up.set(1);
        registry.register(Box::new(up))?;
        let listener = settings.probes.bind()?;
        let port = listener.local_addr()?.port();
        let ready: ReadinessCheck = Arc::new(move || {
            let store = store.clone();
            Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
        });
        let probes = serve_probes(listener, registry, ready)?;
        Ok(Self { port, probes })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs until `shutdown` resolves, then stops the probe server.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let handle = self.probes.handle();
        let server = tokio::spawn(self.probes);
        shutdown.await;
        tracing::info!("shutdown requested");
        handle.stop(true).await;
        server.await??;
        Ok(())
    }
}
