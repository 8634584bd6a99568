//! issuer-api: the registrar portal's REST API.
//!
//! Owns HTTP concerns only: parsing requests into domain types, authentication, mapping
//! outcomes to stable JSON errors, metrics and OpenAPI. Hashing and signing rules live in
//! `domain`; every SQL statement lives in `store`. The one invariant this crate must keep:
//! a 202 is sent only after the credential and its outbox row committed together.

pub mod admin;
pub mod auth;
pub mod auth_throttle;
pub mod bounded;
pub mod bulk;
pub mod error;
pub mod fuzzing;
pub mod issuance;
pub mod keycache;
pub mod listeners;
pub mod metrics;
pub mod openapi;
pub mod proofs;
pub mod public;
pub mod ratelimit;
pub mod request;
pub mod routes;
pub mod settings;
pub mod signer;
pub mod startup;
pub mod state;
pub mod status_lists;
pub mod verify;
pub mod verify_vc;
pub mod views;
pub mod webhooks;

pub use settings::Settings;
pub use startup::Application;
