//! PostgreSQL adapter: the only crate that writes SQL.
//!
//! It owns the connection pool, the embedded migrations, and every query the services run.
//! Business rules (hashing, signing, status transitions) stay in `domain`; this crate only
//! persists their results, and enforces status transitions with guarded `UPDATE ... WHERE
//! status = ANY(...)` statements built from `domain::status::allowed_sources`.
//!
//! Errors are split the way an outbox needs them: [`StoreError::Unavailable`] means nothing
//! was committed (the database could not be reached, or dropped the connection before
//! COMMIT), [`StoreError::OutcomeUnknown`] means the connection was lost while COMMIT was in
//! flight (it may have committed: only a read, or an idempotent retry, can tell); everything
//! else is a definite answer from the database.

pub mod batches;
pub mod credentials;
pub mod error;
pub mod issuers;
pub mod listener;
pub mod migrate;
pub mod outbox;
pub mod reconcile;
pub mod revocation_lists;
pub mod revocations;
pub mod status_lists;
pub mod tls;
pub mod verification;
pub mod webhooks;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use error::StoreError;

/// Channel the API notifies (inside the issuing transaction) and the relay listens on.
pub const OUTBOX_CHANNEL: &str = "outbox_new";

/// Connection settings shared by every service.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// libpq-style URL or key=value string. Secret: it may carry a password.
    pub url: SecretString,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long a request may wait for a pooled connection (or a new one) before it is
    /// answered "database unavailable" instead of hanging.
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
}

fn default_max_connections() -> usize {
    16
}
fn default_acquire_timeout_ms() -> u64 {
    3_000
}

impl DatabaseSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            max_connections: default_max_connections(),
            acquire_timeout_ms: default_acquire_timeout_ms(),
        }
    }
}

/// Cheap to clone handle on the pool.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Builds the pool without connecting: a service can start (and answer /healthz) while
    /// the database is still down, and report it through /readyz.
    pub fn connect_lazy(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        // TLS as the URL's `sslmode` and `sslrootcert` ask (`tls`), libpq's meanings.
        let target = tls::connect_config(settings.url.expose_secret())?;
        let manager = Manager::from_config(
            target.config,
            target.tls,
            ManagerConfig {
                // Fast recycling skips a round trip per checkout; broken connections are
                // detected by the failing query and reported as Unavailable.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let timeout = Duration::from_millis(settings.acquire_timeout_ms);
        let pool = Pool::builder(manager)
            .max_size(settings.max_connections.max(1))
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Config(format!("pool: {e}")))?;
        Ok(Self { pool })
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(StoreError::from)
    }

    /// Readiness: a round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// The pool, for adapters (the relay's LISTEN connection is separate, see outbox).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}
