//! HTTP tests of issuer-api against a real PostgreSQL (testkit), app started on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bulk;
mod corpus;
mod errors;
mod helpers;
mod idempotency;
mod issue;
mod listing;
mod ops;
mod public;
mod ratelimit;
mod rotation;
mod vcs;
mod webhooks;
