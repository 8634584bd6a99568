//! Dev-only test harness: ephemeral PostgreSQL and a local solana-test-validator.
//!
//! Tests and the `localnet` launcher use the same code, so "the project starts its own
//! Postgres and validator" holds for `make test`, `make demo` and a bare `cargo test`:
//! - `localnet exec -- <cmd>` starts ONE PostgreSQL and ONE validator for a whole test run and
//!   exports `DATABASE_URL` / `SOLANA_RPC_URL` to the command;
//! - without those variables, each test process starts its own (slower, but self-contained).
//!
//! Tests are isolated by a fresh database each ([`test_db`]) and fresh funded keypairs.

pub mod ports;
pub mod postgres;
pub mod proxy;
pub mod validator;

pub use postgres::{test_db, PgEnv, TestDb, TestPostgres};
