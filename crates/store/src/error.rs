//! Store errors, classified for callers: unavailable (retry later) versus a definite answer.

use thiserror::Error;
use tokio_postgres::error::SqlState;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be reached, refused new work, or dropped the connection
    /// before COMMIT was sent: a transaction cut short **was not committed** (it rolls back).
    /// A single autocommit statement (no explicit transaction: a finding, a checkpoint, a
    /// sent mark) can still have applied; every one of those is idempotent. Retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The connection was lost while COMMIT was in flight: the transaction **may or may not
    /// have committed**, and only reading the database again can tell. Retrying is safe
    /// because every write of ours is idempotent (Idempotency-Keys, unique serials, fenced
    /// updates, `ON CONFLICT`), and the retry answers what actually happened.
    #[error("database connection lost during COMMIT, outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// Bad configuration (URL, pool sizes).
    #[error("database configuration: {0}")]
    Config(String),
    /// A row read back from the database does not satisfy the domain's rules: data corruption
    /// or a manual edit. Never caused by a client request.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Fault injected by a test failpoint.
    #[error("injected fault: {0}")]
    Injected(String),
    /// The signing key a credential was signed with was retired (rotated) before the
    /// credential could be recorded: sign again with the active key. Nothing was written.
    #[error("signing key {0} was retired")]
    SigningKeyRetired(String),
    /// The status-list ordinal a credential was signed with is already another credential's:
    /// a reservation the database no longer remembers (a failover to an asynchronous standby,
    /// a restore) was handed out from memory. Nothing was written: reserve afresh and sign
    /// again.
    #[error("status ordinal already in use")]
    StatusOrdinalTaken,
    #[error("migration failed: {0}")]
    Migration(String),
    /// Any other database error (constraint violations we did not expect, syntax errors).
    #[error("database error: {}", describe(.0))]
    Database(#[source] tokio_postgres::Error),
}

/// The server's message and SQLSTATE: `tokio_postgres` displays a server error as only "db
/// error", which left operators (and the relay's `last_error`) without the reason. The
/// message, never the `detail`, which can quote row values (a recipient id, for one).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl StoreError {
    /// The database did not give a definite answer (down, or lost mid-COMMIT): retry later.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::OutcomeUnknown(_)
        )
    }

    /// What a failed COMMIT means. A server error (SQLSTATE) is a definite refusal: the
    /// transaction rolled back. A connection that closed or failed at the socket level may
    /// have delivered the COMMIT and lost only its answer.
    pub(crate) fn from_commit(e: tokio_postgres::Error) -> Self {
        if e.code().is_none() && (e.is_closed() || has_io_source(&e)) {
            StoreError::OutcomeUnknown(e.to_string())
        } else {
            StoreError::from(e)
        }
    }
}

/// COMMIT, telling "not committed" from "outcome unknown" (`StoreError::from_commit`). Every
/// transaction of the store ends here.
pub(crate) async fn commit(tx: deadpool_postgres::Transaction<'_>) -> Result<(), StoreError> {
    tx.commit().await.map_err(StoreError::from_commit)
}

/// The unique index on (issuer, status ordinal), migration V10.
const STATUS_ORDINAL_INDEX: &str = "credentials_status_ordinal";

/// SQLSTATEs that mean "the server is not able to do this right now", not "this is wrong".
fn is_transient(state: &SqlState) -> bool {
    let code = state.code();
    code.starts_with("08") // connection exceptions
        || code.starts_with("57P") // admin/crash shutdown, cannot connect now
        || *state == SqlState::TOO_MANY_CONNECTIONS
        || *state == SqlState::T_R_SERIALIZATION_FAILURE
        || *state == SqlState::T_R_DEADLOCK_DETECTED
        || *state == SqlState::READ_ONLY_SQL_TRANSACTION // failover to a replica in progress
        // The database is being restored or swapped (restore into a new database, then
        // rename): it comes back under the same name.
        || *state == SqlState::INVALID_CATALOG_NAME
}

fn has_io_source(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.is_closed() {
            return StoreError::Unavailable(e.to_string());
        }
        if e.as_db_error().and_then(|db| db.constraint()) == Some(STATUS_ORDINAL_INDEX) {
            return StoreError::StatusOrdinalTaken;
        }
        match e.code() {
            Some(state) if is_transient(state) => StoreError::Unavailable(e.to_string()),
            Some(_) => StoreError::Database(e),
            // No SQLSTATE: an I/O error talking to the server means unavailable; anything else
            // (a parameter that does not serialise, a protocol surprise) is our bug.
            None if has_io_source(&e) => StoreError::Unavailable(e.to_string()),
            None => StoreError::Database(e),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Backend(pg) => StoreError::from(pg),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

impl From<refinery::Error> for StoreError {
    fn from(e: refinery::Error) -> Self {
        StoreError::Migration(e.to_string())
    }
}
