//! Solana adapter: the only crate that talks to an RPC node.
//!
//! Builds, signs and sends SPL Memo anchor transactions; tracks their signatures to
//! `confirmed` and `finalized`; scans the issuer's history and decodes transactions for the
//! reconciler and the verifier. It knows nothing about credentials or the memo text format
//! (that is `domain`), nor about Postgres (that is `store`): memos go in and come out as
//! strings.
//!
//! Error policy: every failure is a [`ChainError`] whose [`ChainError::class`] tells the
//! caller whether retrying can help. Nothing an RPC node answers can make this crate panic.

mod anchor_tx;
mod client;
mod config;
mod decode;
mod error;
mod fees;
mod keypair;
mod metrics;
mod settings;

pub use anchor_tx::{sign_memo_transaction, SignedAnchorTx, PACKET_DATA_SIZE};
pub use client::{
    AddressSignature, ChainClient, Commitment, Confirmation, SigStatus, MAX_SIGNATURES_PER_PAGE,
};
pub use config::{ChainConfig, Cluster, UnknownCluster};
pub use decode::{
    decode_get_transaction, parse_inline_memos, FetchedTx, MEMO_V1_PROGRAM_ID, MEMO_V3_PROGRAM_ID,
};
/// Retry class shared with the rest of the service.
pub use domain::retry::ErrorClass;
pub use error::{
    classify_client_error, classify_http_status, classify_json_rpc_error, classify_message,
    classify_transaction_error, redact_urls, ChainError, RpcFailureKind,
};
pub use fees::{
    compute_unit_limit_for_memo, fee_lamports, priority_fee_from_recent, LAMPORTS_PER_SIGNATURE,
    MAX_COMPUTE_UNIT_LIMIT, MAX_MEMO_BYTES, MEASURED_MEMO_COMPUTE_UNITS,
};
pub use keypair::AnchorKeypair;
pub use metrics::ChainMetrics;
pub use settings::ChainSettings;
