//! Relay tests against a real PostgreSQL and a real local solana-test-validator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anchoring;
mod batching;
mod endpoints;
mod faults;
mod helpers;
mod page;
mod revocation;
mod spend;
mod status_lists;
mod tampering;
mod upgrade;
mod vc_interop;
mod verify;
mod webhooks;
