//! Dev-only test harness: ephemeral PostgreSQL and a local solana-test-validator.
//!
//! Tests and the `localnet` launcher use the same code, so "the project starts its own
//! Postgres and validator" holds for `make test`, `make demo` and a bare `cargo test`:
//! - `localnet exec -- <cmd>` starts ONE PostgreSQL and ONE validator for a whole test run and
//!   exports `DATABASE_URL` / `SOLANA_RPC_URL` to the command;
//! - without those variables, each test process starts its own (slower, but self-contained).
//!
//! Tests are isolated by a fresh database each ([`test_db`]) and fresh funded keypairs.

pub mod interop;
pub mod ports;
pub mod postgres;
pub mod proxy;
pub mod services;
pub mod tls;
pub mod validator;
pub mod webhook_receiver;

pub use postgres::{
    test_db, Durability, PgEnv, ReplicatedPostgres, Replication, TestDb, TestPostgres,
};

/// How long a test waits for a transaction to reach `finalized` (or for work that needs it).
///
/// A liveness bound, not a timing assertion: on the 2-core CI machine, with the whole suite
/// sharing one validator, finality has taken more than 90 s while crash tests saturate the
/// cores (a green run at one commit, a red one at the next). Waiting longer never hides a
/// wrong result, only a hang, and a hang still fails here.
pub const FINALITY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);
