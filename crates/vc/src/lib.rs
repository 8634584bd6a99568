//! W3C Verifiable Credentials plumbing, with no network and no database.
//!
//! - [`canon`]: a JSON-LD document → RDFC-1.0 canonical N-Quads, over the contexts bundled in
//!   [`contexts`] (a context is never fetched: a document naming any other context is refused).
//! - [`proof`]: the Data Integrity `eddsa-rdfc-2022` cryptosuite (W3C vc-di-eddsa §3.3):
//!   attach a proof to an unsecured document, and verify one.
//!
//! What a credential *says* (the Open Badges 3.0 shape, the issuer's `did:web`, its DID
//! document) is a rule of `domain::vc`; this crate only canonicalizes and signs bytes.
//! Canonicalization is the JSON-LD 1.1 processor of the `json-ld` crate and RDFC-1.0 of
//! `ssi-rdf` (the two parts of `ssi` that do the work); why not `ssi`'s own Data Integrity
//! layer is in ARCHITECTURE.md ("Verifiable credentials").

pub mod bundle;
pub mod canon;
pub mod contexts;
pub mod proof;

pub use canon::canonicalize;
pub use proof::{
    attach_proof, verify_proof, PreparedProof, ProofError, ProofOptions, VerifiedProof,
};

/// Why a document could not be canonicalized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonError {
    /// Not a JSON-LD document we process: an unknown context, an undefined term, a
    /// malformed value. The text is the JSON-LD processor's.
    #[error("not a JSON-LD document over the bundled contexts: {0}")]
    JsonLd(String),
    /// More blank nodes than [`canon::MAX_BLANK_NODES`]: refused rather than risk RDFC-1.0's
    /// exponential case.
    #[error("{0} blank nodes: more than a credential has ({max})", max = canon::MAX_BLANK_NODES)]
    TooManyBlankNodes(usize),
}
