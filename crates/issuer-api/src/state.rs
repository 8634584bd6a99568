//! Shared application state handed to every handler.

use std::sync::Arc;

use store::Store;

use crate::metrics::ApiMetrics;
use crate::signer::Signer;

pub struct AppState {
    pub store: Store,
    pub signer: Signer,
    pub metrics: Arc<ApiMetrics>,
    pub body_limit_bytes: usize,
    pub bulk_body_limit_bytes: usize,
    pub retry_after_secs: u64,
    /// Per-API-key request budget.
    pub limiter: crate::ratelimit::KeyLimiter,
    /// Recently authenticated API keys (see `keycache`).
    pub api_keys: crate::keycache::ApiKeyCache,
    pub explorer: crate::settings::ExplorerSettings,
    /// Read-only RPC client for verification.
    pub chain: chain::ChainClient,
}

impl AppState {
    pub fn store_error(&self, e: store::StoreError) -> crate::error::ApiError {
        crate::error::ApiError::from_store(e, self.retry_after_secs)
    }
}
