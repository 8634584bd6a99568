//! Shared application state handed to every handler, and each actix worker's own database
//! pool.

use std::cell::RefCell;
use std::sync::Arc;

use store::Store;

use crate::metrics::ApiMetrics;
use crate::signer::Signer;

thread_local! {
    /// This worker thread's pool (see `AppState::store`).
    static WORKER_STORE: RefCell<Option<Store>> = const { RefCell::new(None) };
}

/// Gives the calling actix worker thread a pool of its own. A tokio-postgres connection is
/// driven by the runtime that opened it; with one pool shared by every worker, a query from
/// worker A on a connection opened by worker B costs two cross-thread wake-ups (issue #10's
/// profile: a quarter of the API's CPU in the scheduler). Called from the `HttpServer`
/// factory, which actix runs once on each worker thread.
pub fn install_worker_store(store: Store) {
    WORKER_STORE.with(|s| *s.borrow_mut() = Some(store));
}

pub struct AppState {
    /// The pool used outside worker threads (and where no worker pool was installed).
    pub shared_store: Store,
    /// Shared with the status list publisher (one key cache).
    pub signer: std::sync::Arc<Signer>,
    /// Status-list ordinals reserved by this replica (`status_lists`).
    pub ordinals: crate::status_lists::OrdinalAllocator,
    pub metrics: Arc<ApiMetrics>,
    pub body_limit_bytes: usize,
    pub bulk_body_limit_bytes: usize,
    pub retry_after_secs: u64,
    /// Per-API-key request budget.
    pub limiter: crate::ratelimit::KeyLimiter,
    /// Recently authenticated API keys (see `keycache`).
    pub api_keys: crate::keycache::ApiKeyCache,
    /// The cluster anchors live on (`chain.cluster`) and how to link to them.
    pub explorer: Explorer,
    /// Gates of the public verification routes (`public`).
    pub public: crate::public::PublicGuard,
    /// `http.body_read_timeout_secs`.
    pub body_read_timeout: std::time::Duration,
    /// Read-only RPC client for verification.
    pub chain: chain::ChainClient,
    /// `public.base_url`: the root of the issuers' `did:web`.
    pub public_base: domain::vc::PublicBase,
    /// Failed authentications per client IP (`auth_throttle`).
    pub auth_throttle: crate::auth_throttle::AuthThrottle,
    /// The port `/metrics` is bound to (`http.metrics_port`, resolved when it was 0).
    pub metrics_port: u16,
    /// With `public.port`: whether the public listener still serves (`/readyz`).
    pub public_listener: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// `webhooks.*`: which URLs endpoints may have, the rotation grace.
    pub webhooks: crate::webhooks::WebhookSettings,
}

/// Where anchors live (`chain.cluster`) and the explorer's local RPC override.
#[derive(Debug, Clone)]
pub struct Explorer {
    pub cluster: chain::Cluster,
    pub custom_rpc_url: Option<String>,
}

impl AppState {
    /// The database: the calling worker's own pool, else the shared one.
    pub fn store(&self) -> Store {
        WORKER_STORE
            .with(|s| s.borrow().clone())
            .unwrap_or_else(|| self.shared_store.clone())
    }

    pub fn store_error(&self, e: store::StoreError) -> crate::error::ApiError {
        crate::error::ApiError::from_store(e, self.retry_after_secs)
    }
}
