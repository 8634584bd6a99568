//! reconciler: compares the issuers' anchors on Solana with PostgreSQL and repairs drift.
//!
//! Owns the loop (a run every `reconcile.interval_secs` over the last `reconcile.window_secs`),
//! probes and metrics, and shutdown. The scan is `scan::Reconciler`; the trust decision is
//! `domain::reconcile`; SQL is in `store::reconcile`; RPC is in `chain`.

pub mod metrics;
pub mod scan;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use chain::{ChainClient, ChainMetrics};
use service_shell::probes::{serve_probes, ReadinessCheck};
use store::Store;

pub use scan::{Reconciler, RunReport, Since};
pub use service_shell::probes::ProbeSettings;
pub use settings::{ChainSettings, ReconcileSettings, Settings};

/// The reconciler without the service around it (no probe server): what `run-once` uses, so
/// it can run next to a serving replica without fighting over the probe port.
pub fn reconciler_from_settings(settings: &Settings) -> anyhow::Result<Reconciler> {
    let store = Store::connect_lazy(&settings.database)?;
    let (reconciler, _) = build_reconciler(settings, store, &prometheus::Registry::new())?;
    Ok(reconciler)
}

fn build_reconciler(
    settings: &Settings,
    store: Store,
    registry: &prometheus::Registry,
) -> anyhow::Result<(Reconciler, ChainClient)> {
    // Read-only: the reconciler never signs, so it never holds the anchoring key.
    settings
        .chain
        .read_only("reconciler")
        .map_err(anyhow::Error::msg)?;
    let chain = ChainClient::read_only(settings.chain.chain_config())
        .with_metrics(ChainMetrics::register(registry)?);
    let metrics = metrics::ReconcilerMetrics::register(registry)?;
    Ok((Reconciler::new(store, chain.clone(), metrics), chain))
}

pub struct Application {
    port: u16,
    probes: actix_web::dev::Server,
    reconciler: Reconciler,
    /// The outbox backlog gauges, refreshed by this (singleton) service too.
    backlog: (Store, service_shell::probes::BacklogGauges),
    interval: Duration,
    window: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = Store::connect_lazy(&settings.database)?;
        let registry = prometheus::Registry::new();
        let up = prometheus::IntGauge::new("reconciler_up", "1 while the reconciler runs")?;
        up.set(1);
        registry.register(Box::new(up))?;
        let (reconciler, chain) = build_reconciler(&settings, store.clone(), &registry)?;
        let backlog = service_shell::probes::BacklogGauges::register(&registry)?;
        let listener = settings.probes.bind()?;
        let port = listener.local_addr()?.port();
        let backlog_store = store.clone();
        let ready: ReadinessCheck = Arc::new(move || {
            let store = store.clone();
            let chain = chain.clone();
            Box::pin(async move {
                store.ping().await.map_err(|e| format!("database: {e}"))?;
                chain.health().await.map_err(|e| format!("rpc: {e}"))
            })
        });
        let probes = serve_probes(listener, registry, ready)?;
        Ok(Self {
            port,
            probes,
            backlog: (backlog_store, backlog),
            reconciler,
            interval: Duration::from_secs(settings.reconcile.interval_secs.max(1)),
            window: Duration::from_secs(settings.reconcile.window_secs.max(1)),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn reconciler(&self) -> &Reconciler {
        &self.reconciler
    }

    /// Runs a reconciliation every interval until `shutdown` resolves, then stops the probe
    /// server. A run in progress at shutdown is abandoned: each repair is its own transaction
    /// and idempotent, so the next run redoes whatever was left.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Self {
            probes: probe_server,
            reconciler,
            backlog: (store, gauges),
            interval,
            window,
            ..
        } = self;
        let probes = probe_server.handle();
        let probe_task = tokio::spawn(probe_server);
        let backlog_task = tokio::spawn(async move {
            loop {
                // Bounded: a hung database must not wedge the refresher.
                if let Ok(Ok(b)) =
                    tokio::time::timeout(Duration::from_secs(5), store.outbox_backlog()).await
                {
                    gauges.set(b.pending, b.dead, b.oldest_pending_age_seconds);
                }
                tokio::time::sleep(Duration::from_secs(15)).await;
            }
        });
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = &mut shutdown => break,
            }
            tokio::select! {
                r = reconciler.run_once(Since::Window(window), true) => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "reconciliation run failed");
                    }
                }
                _ = &mut shutdown => break,
            }
        }
        tracing::info!("shutdown requested");
        backlog_task.abort();
        probes.stop(true).await;
        probe_task.await??;
        Ok(())
    }
}
