//! outbox-relay: turns committed outbox jobs into Solana memo transactions, exactly once.
//!
//! Owns the loop (wake on NOTIFY or poll, run a pass, repeat), probes and metrics, and the
//! ordered shutdown. The per-job decision is `domain::anchoring`; SQL is in `store::outbox`;
//! RPC is in `chain`. Invariant kept here: a transaction is sent only after it was stored
//! under a valid lease (see `relay::Relay::sign_and_send`).

pub mod metrics;
pub mod relay;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use chain::{AnchorKeypair, ChainClient, ChainMetrics};
use secrecy::ExposeSecret;
use service_shell::probes::{serve_probes, ReadinessCheck};
use store::Store;
use tokio::sync::Notify;
use tokio::task::JoinSet;

pub use relay::{Relay, RelayConfig};
pub use settings::Settings;

/// How often the spend gauges are read from the database (one grouped query over the last
/// day's transactions, `store::outbox::lamports_spent_by_issuer`).
const SPEND_REFRESH: Duration = Duration::from_secs(30);

pub struct Application {
    port: u16,
    relay: Relay,
    probes: actix_web::dev::Server,
    wake: Arc<Notify>,
    /// None when `relay.listen` is off.
    listener: Option<tokio::task::JoinHandle<()>>,
    poll_interval: Duration,
    grace: Duration,
}

/// Refuses to start with a keypair that is no issuer's active anchoring key
/// (`domain::anchor_keys::relay_key_check`); says which issuers it serves otherwise.
async fn check_anchor_key(store: &Store, pubkey: &str) -> anyhow::Result<()> {
    use domain::anchor_keys::{relay_key_check, RelayKeyCheck};
    // A database that is down at start-up is not a reason to stay down: the relay waits for
    // it like for any other outage, and each job's own check (`sign_and_send`) still refuses
    // a key that is not its issuer's. Only a definite answer can refuse the start.
    let (total, holders) = match store.anchor_key_holders(pubkey).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the issuers' anchoring keys at start-up; each job checks its own");
            return Ok(());
        }
    };
    match relay_key_check(total, holders) {
        RelayKeyCheck::NoIssuers => {
            tracing::warn!(anchor_pubkey = %pubkey, "no issuer is registered yet: nothing to anchor");
        }
        RelayKeyCheck::Serves { issuers, others } => {
            let issuers: Vec<&str> = issuers.iter().map(|i| i.as_str()).collect();
            tracing::info!(anchor_pubkey = %pubkey, ?issuers, others, "anchoring for the issuers whose active key this is");
            if others > 0 {
                tracing::warn!(others, "issuers with another active anchoring key: their jobs wait for a relay with their key");
            }
        }
        RelayKeyCheck::ServesNone { issuers } => anyhow::bail!(
            "the relay's keypair ({pubkey}, chain.keypair_path) is the active anchoring key of none \
             of the {issuers} registered issuers: every memo it paid for would be refused by \
             verifiers. Mount the keypair of an issuer's active key, or rotate an issuer to this \
             key first (issuer-api admin rotate-anchor-key)"
        ),
    }
    Ok(())
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = Store::connect_lazy(&settings.database)?;
        let keypair_path = settings
            .chain
            .signing_keypair()
            .map_err(anyhow::Error::msg)?;
        let keypair = AnchorKeypair::from_json_file(keypair_path)?;
        tracing::info!(anchor_pubkey = %keypair.pubkey_base58(), "anchoring key loaded");
        check_anchor_key(&store, &keypair.pubkey_base58()).await?;
        let registry = prometheus::Registry::new();
        let chain = ChainClient::new(settings.chain.chain_config(), keypair)
            .with_metrics(ChainMetrics::register(&registry)?);
        // Which endpoint a send goes to first follows their health (`domain::rpc_pool`).
        chain.spawn_health_probe(settings.chain.health_probe_interval());
        let metrics = metrics::RelayMetrics::register(&registry)?;
        let worker = settings.relay.worker_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "relay".into());
            format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
        });
        let relay = Relay::new(
            store.clone(),
            chain.clone(),
            RelayConfig {
                worker,
                claim_size: settings.relay.claim_size.max(1),
                concurrency: settings.relay.concurrency.max(1),
                lease: Duration::from_millis(settings.relay.lease_ms.max(1_000)),
                track_interval: Duration::from_millis(settings.relay.track_interval_ms),
                finality_hint: Duration::from_millis(settings.relay.finality_hint_ms),
                retry: settings.relay.retry,
                mode: settings.relay.mode,
                batch_max_members: settings.relay.batch_max_members,
                batch_max_wait: Duration::from_millis(settings.relay.batch_max_wait_ms),
                spend: settings.relay.spend,
                spend_retry: Duration::from_secs(settings.relay.spend_retry_secs.max(1)),
            },
            metrics,
        );
        let wake = Arc::new(Notify::new());
        let listener = settings.relay.listen.then(|| {
            store::listener::spawn_outbox_listener(
                settings.database.url.expose_secret().to_string().into(),
                wake.clone(),
            )
        });
        if !settings.relay.listen {
            tracing::info!(
                poll_ms = settings.relay.poll_interval_ms,
                "LISTEN off (relay.listen = false): new jobs are found by polling only"
            );
        }
        let tcp = settings.probes.bind()?;
        let port = tcp.local_addr()?.port();
        let ready: ReadinessCheck = Arc::new(move || {
            let store = store.clone();
            let chain = chain.clone();
            Box::pin(async move {
                store.ping().await.map_err(|e| format!("database: {e}"))?;
                chain.health().await.map_err(|e| format!("rpc: {e}"))
            })
        });
        let probes = serve_probes(tcp, registry, ready)?;
        Ok(Self {
            port,
            relay,
            probes,
            wake,
            listener,
            poll_interval: Duration::from_millis(settings.relay.poll_interval_ms.max(10)),
            grace: Duration::from_secs(settings.relay.shutdown_grace_secs),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// Runs passes until `shutdown` resolves. Shutdown order: stop claiming, let the passes in
    /// progress finish (bounded by the grace period, then aborted: unfinished jobs' leases
    /// simply expire), stop the listener, then the probe server.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Self {
            relay,
            probes: probe_server,
            wake,
            listener,
            poll_interval,
            grace,
            ..
        } = self;
        let probes = probe_server.handle();
        let probe_task = tokio::spawn(probe_server);
        tokio::pin!(shutdown);
        let mut last_backlog = std::time::Instant::now() - Duration::from_secs(60);
        let mut last_spend = std::time::Instant::now() - SPEND_REFRESH * 2;
        // A wake-up during a pass starts one more pass beside it (never more than one):
        // the new job is claimed at once instead of after the pass in progress, whose
        // tracking RPC calls can take hundreds of milliseconds. Leases and fencing keep two
        // passes of one process apart exactly as they keep two relays apart. A JoinSet, so
        // shutdown can abort it like the main pass and a panic in it is not lost.
        let mut beside: JoinSet<()> = JoinSet::new();
        tracing::info!(worker = %relay.worker(), "relay started");
        'passes: loop {
            if last_backlog.elapsed() > Duration::from_secs(5) {
                // Bounded: a half-open database connection must not delay shutdown.
                match tokio::time::timeout(Duration::from_secs(5), relay.refresh_backlog()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "backlog refresh failed"),
                    Err(_) => tracing::warn!("backlog refresh timed out"),
                }
                last_backlog = std::time::Instant::now();
            }
            if last_spend.elapsed() > SPEND_REFRESH {
                match tokio::time::timeout(Duration::from_secs(5), relay.refresh_spend()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "spend gauge refresh failed"),
                    Err(_) => tracing::warn!("spend gauge refresh timed out"),
                }
                last_spend = std::time::Instant::now();
            }
            let pass = relay.run_pass();
            tokio::pin!(pass);
            let claimed = loop {
                let idle = beside.is_empty();
                tokio::select! {
                    r = &mut pass => break r,
                    // Reaped as soon as it ends, so the next wake-up may start another.
                    Some(done) = beside.join_next(), if !idle => reap(done),
                    _ = wake.notified(), if idle => {
                        let relay = relay.clone();
                        beside.spawn(async move {
                            record_pass(&relay, relay.run_pass().await);
                        });
                    }
                    _ = &mut shutdown => {
                        tracing::info!("shutdown requested: finishing the passes in progress");
                        let _ = tokio::time::timeout(grace, async {
                            let _ = pass.await;
                            drain(&mut beside).await;
                        })
                        .await;
                        break 'passes;
                    }
                }
            };
            if record_pass(&relay, claimed) {
                continue;
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll_interval) => {}
                _ = &mut shutdown => {
                    let _ = tokio::time::timeout(grace, drain(&mut beside)).await;
                    break;
                }
            }
        }
        // Past the grace period a pass still running is aborted, as the main pass is.
        beside.shutdown().await;
        if let Some(listener) = listener {
            listener.abort();
        }
        probes.stop(true).await;
        let _ = probe_task.await;
        tracing::info!("relay stopped");
        Ok(())
    }
}

/// Records a pass's outcome; true when it claimed a full batch (more may be due right away).
fn record_pass(relay: &Relay, claimed: Result<usize, relay::StepError>) -> bool {
    match claimed {
        Ok(n) => {
            relay.mark_success();
            n >= 1 && n >= relay.claim_size() as usize
        }
        Err(e) => {
            tracing::warn!(error = %e, "relay pass failed");
            false
        }
    }
}

/// Waits for the pass beside the main one, if any.
async fn drain(beside: &mut JoinSet<()>) {
    while let Some(done) = beside.join_next().await {
        reap(done);
    }
}

/// A finished pass beside the main one: its outcome was recorded by the task itself; a panic
/// is raised again here, as a panic of the main pass would be.
fn reap(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!("a relay pass panicked");
            std::panic::resume_unwind(e.into_panic());
        }
    }
}
