//! `Application::build`: the one way to start the API, used by `main` and by tests (port 0).

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::KeepAlive;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use store::Store;
use tracing_actix_web::TracingLogger;

use crate::error::ApiError;
use crate::listeners::{lower_cpu_priority, metrics_gate, RouteSet};
use crate::metrics::{track_http, ApiMetrics};
use crate::settings::Settings;
use crate::signer::Signer;
use crate::state::AppState;

pub struct Application {
    port: u16,
    metrics_port: u16,
    server: Server,
    /// The public listener (`public.port`), served from its own thread and runtime.
    public: Option<PublicServer>,
    store: Store,
}

struct PublicServer {
    port: u16,
    handle: actix_web::dev::ServerHandle,
}

/// Connections of the pool used outside the actix workers (see `build`).
pub const SHARED_POOL_CONNECTIONS: usize = 2;

/// Longest idle keep-alive honoured: actix adds the timeout to an `Instant`, which would
/// overflow (and panic) on an absurd configured value.
pub const MAX_KEEP_ALIVE_SECS: u64 = 3_600;

/// `http.keep_alive_secs` as actix wants it: 0 is off, anything else capped at
/// `MAX_KEEP_ALIVE_SECS`.
pub fn keep_alive(secs: u64) -> KeepAlive {
    match secs {
        0 => KeepAlive::Disabled,
        secs => KeepAlive::Timeout(std::time::Duration::from_secs(
            secs.min(MAX_KEEP_ALIVE_SECS),
        )),
    }
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings
            .chain
            .read_only("issuer-api")
            .map_err(anyhow::Error::msg)?;
        if let Some(cluster) = settings.explorer.cluster {
            anyhow::bail!(
                "explorer.cluster ({}) moved to chain.cluster (APP__CHAIN__CLUSTER): set the cluster there and remove explorer.cluster",
                cluster.as_str()
            );
        }
        let masters = settings.signing.master_keys()?;
        // The shared pool serves what runs outside the workers (the status-list publisher,
        // migrations): SHARED_POOL_CONNECTIONS at most, so a replica's connections are
        // `database.max_connections` + this (what `make deploy-check` budgets).
        let mut shared = settings.database.clone();
        shared.max_connections = SHARED_POOL_CONNECTIONS;
        let store = Store::connect_lazy(&shared)?;
        if settings.http.migrate_on_start {
            let applied = store.migrate().await?;
            tracing::info!(applied, "migrations applied");
        }
        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port))?;
        let port = listener.local_addr()?.port();
        let metrics_listener =
            TcpListener::bind((settings.http.host.as_str(), settings.http.metrics_port)).map_err(
                |e| {
                    anyhow::anyhow!(
                        "http.metrics_port {}: {e} (it must differ from http.port)",
                        settings.http.metrics_port
                    )
                },
            )?;
        let metrics_port = metrics_listener.local_addr()?.port();
        let public_listener = match settings.public.port {
            Some(p) => Some(
                TcpListener::bind((settings.http.host.as_str(), p)).map_err(|e| {
                    anyhow::anyhow!("public.port {p}: {e} (it must differ from http.port and http.metrics_port)")
                })?,
            ),
            None => None,
        };
        let public_port = match &public_listener {
            Some(l) => Some(l.local_addr()?.port()),
            None => None,
        };
        // Cleared when the public listener stops serving: `/readyz` then says so.
        let public_alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let public_base = match &settings.public.base_url {
            Some(url) => domain::vc::PublicBase::parse(url)
                .map_err(|e| anyhow::anyhow!("public.base_url: {e}"))?,
            None => {
                let host = match settings.http.host.as_str() {
                    "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
                    host => host,
                };
                // DID documents are public routes: name the listener that serves them.
                let url = format!("http://{host}:{}", public_port.unwrap_or(port));
                tracing::warn!(%url, "public.base_url is not set: issuer DIDs name the listen address, which only this machine can resolve");
                domain::vc::PublicBase::parse(&url)
                    .map_err(|e| anyhow::anyhow!("public.base_url (from http.host): {e}"))?
            }
        };
        let metrics = Arc::new(ApiMetrics::new()?);
        let workers = settings
            .http
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        // Each worker gets its own pool (see `state::install_worker_store`), together no more
        // connections than `database.max_connections` (unless there are more workers than
        // connections: each still gets one).
        let mut per_worker = settings.database.clone();
        per_worker.max_connections = (settings.database.max_connections / workers).max(1);
        let signer = Arc::new(Signer::new(masters));
        // Verification reads anchors through every configured endpoint (two must agree when
        // there are several); the probe keeps their order and the per-endpoint gauges current.
        let chain = chain::ChainClient::read_only(settings.chain.chain_config())
            .with_metrics(chain::ChainMetrics::register(&metrics.registry)?);
        chain.spawn_health_probe(settings.chain.health_probe_interval());
        tokio::spawn(crate::status_lists::run_publisher(
            store.clone(),
            signer.clone(),
            public_base.clone(),
            settings.status_lists.clone(),
        ));
        if settings.webhooks.worker {
            tokio::spawn(crate::webhooks::run_worker(
                store.clone(),
                signer.clone(),
                settings.webhooks.clone(),
                metrics.clone(),
            ));
        }
        let state = web::Data::new(AppState {
            shared_store: store.clone(),
            signer,
            ordinals: crate::status_lists::OrdinalAllocator::new(
                settings.status_lists.ordinal_block,
            ),
            metrics,
            body_limit_bytes: settings.http.body_limit_bytes,
            bulk_body_limit_bytes: settings.http.bulk_body_limit_bytes,
            retry_after_secs: settings.http.retry_after_secs,
            limiter: crate::ratelimit::KeyLimiter::new(
                settings.http.rate_limit_per_second,
                settings.http.rate_limit_burst,
            ),
            api_keys: crate::keycache::ApiKeyCache::new(std::time::Duration::from_secs(
                settings.http.api_key_cache_secs,
            )),
            explorer: crate::state::Explorer {
                cluster: settings.chain.cluster,
                custom_rpc_url: settings.explorer.custom_rpc_url.clone(),
            },
            chain,
            public: crate::public::PublicGuard::new(&settings.public),
            public_base,
            body_read_timeout: std::time::Duration::from_secs(
                settings.http.body_read_timeout_secs.max(1),
            ),
            auth_throttle: crate::auth_throttle::AuthThrottle::new(
                settings.http.failed_auth_per_ip_per_minute,
            ),
            metrics_port,
            public_listener: public_port.map(|_| public_alive.clone()),
            webhooks: settings.webhooks.clone(),
        });
        // Which node verification trusts is the first thing to know when verdicts turn
        // into `chain_unavailable` (the demo once read a default nobody listened on).
        tracing::info!(
            rpc = %chain::redact_urls(&settings.chain.chain_config().rpc_urls().join(", ")),
            cluster = settings.chain.cluster.as_str(),
            "verification reads the chain from these RPC endpoints"
        );
        // One App per server: its `RouteSet` decides which routes it has at all
        // (`crate::listeners`); `metrics_gate` keeps `/metrics` on the metrics port.
        // `own_pool`: every worker gets a pool of its own; the public listener's workers
        // split `public.max_connections`, so strangers can never hold the portal's
        // connections (`make deploy-check` budgets both).
        let app = move |own_pool: store::DatabaseSettings, routes: RouteSet| {
            let state = state.clone();
            move || {
                // The URL was checked when the shared pool was made; should this still fail,
                // the worker falls back to the shared pool.
                if let Ok(own) = Store::connect_lazy(&own_pool) {
                    crate::state::install_worker_store(own);
                }
                App::new()
                    .wrap(from_fn(metrics_gate))
                    .wrap(from_fn(track_http))
                    .wrap(TracingLogger::default())
                    .app_data(state.clone())
                    .app_data(web::PathConfig::default().error_handler(|err, _| {
                        ApiError::invalid_field("path", err.to_string()).into()
                    }))
                    .configure(crate::routes::configure(routes))
                    .default_service(web::to(crate::routes::route_not_found))
            }
        };
        let http = &settings.http;
        let server = HttpServer::new(app(
            per_worker,
            if public_listener.is_some() {
                RouteSet::Portal
            } else {
                RouteSet::All
            },
        ))
        .shutdown_timeout(http.shutdown_timeout_secs)
        // actix closes idle connections after 5 s by default, shorter than most clients'
        // and proxies' idle timeouts: a request racing that close is lost in transit.
        .keep_alive(keep_alive(http.keep_alive_secs))
        .workers(workers);
        let server = server.listen(listener)?.listen(metrics_listener)?.run();
        let public = match (public_listener, public_port) {
            (Some(listener), Some(port)) => {
                let public_workers = settings.public.workers.max(1);
                let mut public_pool = settings.database.clone();
                public_pool.max_connections =
                    (settings.public.max_connections / public_workers).max(1);
                let public = HttpServer::new(app(public_pool, RouteSet::Public))
                    .shutdown_timeout(http.shutdown_timeout_secs)
                    .keep_alive(keep_alive(http.keep_alive_secs))
                    .workers(public_workers)
                    .listen(listener)?
                    .run();
                let handle = public.handle();
                spawn_public(public, settings.public.nice, public_alive)?;
                Some(PublicServer { port, handle })
            }
            _ => None,
        };
        tracing::info!(port, metrics_port, ?public_port, "issuer-api listening");
        Ok(Self {
            port,
            metrics_port,
            server,
            public,
            store,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where `/metrics` is served (`http.metrics_port`).
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// Where the public routes are served when `public.port` is set.
    pub fn public_port(&self) -> Option<u16> {
        self.public.as_ref().map(|p| p.port)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until SIGTERM/SIGINT; actix drains in-flight requests for
    /// `http.shutdown_timeout_secs` before returning.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Some(public) = self.public {
            public.handle.stop(true).await;
        }
        served
    }

    /// The server handle, for tests that stop it.
    pub fn into_server(self) -> Server {
        self.server
    }
}

/// Runs the public server on a thread of its own whose niceness its acceptor and workers
/// inherit: actix spawns them when the server is first polled, from the polling thread.
/// `alive` is cleared when it stops, for whatever reason.
fn spawn_public(
    server: Server,
    nice: i32,
    alive: Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("public-http".into())
        .spawn(move || {
            // Set on every way out of this thread, a panic included.
            struct Stopped(Arc<std::sync::atomic::AtomicBool>);
            impl Drop for Stopped {
                fn drop(&mut self) {
                    self.0.store(false, std::sync::atomic::Ordering::Relaxed);
                }
            }
            let _stopped = Stopped(alive);
            lower_cpu_priority(nice);
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => {
                    if let Err(e) = runtime.block_on(server) {
                        tracing::error!(error = %e, "the public listener stopped");
                    }
                }
                Err(e) => tracing::error!(error = %e, "the public listener could not start"),
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_zero_is_off_and_huge_values_are_capped() {
        assert_eq!(keep_alive(0), KeepAlive::Disabled);
        assert_eq!(
            keep_alive(75),
            KeepAlive::Timeout(std::time::Duration::from_secs(75))
        );
        assert_eq!(
            keep_alive(u64::MAX),
            KeepAlive::Timeout(std::time::Duration::from_secs(MAX_KEEP_ALIVE_SECS))
        );
    }
}
