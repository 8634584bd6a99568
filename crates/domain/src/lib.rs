//! Pure domain rules for credentials anchored on Solana.
//!
//! This crate owns every rule that must be the same in the API, the relay, the reconciler and
//! the offline verifier: identifier syntax, the credential hash, issuer signatures, Merkle
//! batches and their proofs, the on-chain memo format, the status machine, the retry policy,
//! API key handling and the sealing of signing seeds at rest.
//!
//! It performs no I/O: no files, no network, no clock reads (times are passed in) and no
//! randomness except through a `ring::rand::SecureRandom` or a number the caller supplies.
//! That keeps every rule deterministic and testable with unit and property tests, and lets the
//! adapters (`store`, `chain`) and binaries depend on it without pulling in any runtime.

pub mod anchor_keys;
pub mod anchoring;
pub mod api_key;
pub mod batching;
pub mod bundle_edits;
pub mod cluster;
pub mod display;
pub mod fuzzing;
pub mod hash;
pub mod ids;
pub mod key_validity;
pub mod memo;
pub mod merkle;
pub mod proof;
pub mod reconcile;
pub mod retry;
pub mod revocation_scan;
pub mod rpc_pool;
pub mod sealed;
pub mod signing;
pub mod spend;
pub mod status;
pub mod status_list;
pub mod vc;
pub mod verdict;
pub mod webhook;

pub use api_key::{ApiKey, ApiKeyError, ApiKeyHash, ApiKeyId, ApiKeySecret};
pub use hash::{
    credential_hash, credential_hash_v2, CredentialFields, CredentialHash, FileDigest,
    HashParseError, HashScheme, ProofFormat, Salt, SaltError,
};
pub use ids::*;
pub use memo::{
    Decoded, Memo, MemoError, Revoked, MAX_MEMO_LEN, MAX_REVOCATIONS_PER_MEMO, MEMO_PREFIX,
};
pub use merkle::{MerkleError, MerkleProof, MerkleRoot, MerkleTree, ProofStep, Side};
pub use retry::{ErrorClass, RetryDecision, RetryPolicy};
pub use sealed::{open_seed, seal_seed, MasterKey, SealError, SEALED_SEED_LEN};
pub use signing::{
    ed25519_public_from_seed, seed_from_solana_keypair, signature_message,
    verify_credential_signature, IssuerSignature, PublicKey, SigningError, SigningKey,
};
pub use status::{
    allowed_sources, transition, AnchorTxEvent, AnchorTxStatus, CredentialStatus,
    InvalidTransition, StatusEvent, UnknownStatus,
};

pub use batching::AnchoringMode;
pub use cluster::{cluster_of_genesis_hash, Cluster, UnknownCluster};
pub use proof::{
    bundle_version, check_offline, AnchorPath, BundleAnchor, BundleSignature, ProofBundle,
    ProofCheckError, PROOF_BUNDLE_V1, PROOF_BUNDLE_V2,
};
/// Randomness sources accepted by the key-generating functions, re-exported so callers need
/// no direct `ring` dependency just to construct a `SystemRandom`.
pub use ring::rand::{SecureRandom, SystemRandom};
