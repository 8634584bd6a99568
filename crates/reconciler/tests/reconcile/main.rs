//! Reconciler tests against a real PostgreSQL and a real local solana-test-validator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batches;
mod helpers;
mod rotation;
mod scenarios;
mod status_lists;
