//! API errors: one enum, each variant with a stable machine code, an HTTP status and a human
//! message. Internal details are logged, never sent to clients.
//!
//! The codes are part of the public contract (documented in README "Error codes"); renaming
//! one is a breaking change.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use store::StoreError;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("credential not found")]
    CredentialNotFound,
    #[error("issuer not found")]
    IssuerNotFound,
    #[error("credential batch not found")]
    CredentialBatchNotFound,
    #[error("no anchored version of this status list exists (yet)")]
    StatusListNotFound,
    #[error("no proof bundle yet: {reason}")]
    ProofNotAvailable { reason: String },
    #[error("this credential has no verifiable credential: it was issued before they were, or recovered from a proof bundle")]
    VcNotAvailable,
    #[error("the proof bundle does not verify: {reason}")]
    InvalidProof { reason: String },
    #[error("no finalized anchor on record matches this bundle: run `reconciler run-once --since` over its time first")]
    AnchorNotFound,
    #[error("the bundle disagrees with a credential on record; nothing was changed")]
    RelinkConflict,
    #[error("route not found")]
    RouteNotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{message}")]
    InvalidJson { message: String },
    #[error("{message}")]
    InvalidMultipart { message: String },
    #[error("field `{field}` is required")]
    MissingField { field: String },
    #[error("field `{field}`: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("invalid query parameter `{field}`: {reason}")]
    InvalidQuery { field: String, reason: String },
    #[error("request body larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported content type: use application/json or multipart/form-data")]
    UnsupportedMediaType,
    #[error("invalid Idempotency-Key header: {reason}")]
    InvalidIdempotencyKey { reason: String },
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("serial already used by credential {existing_id} with different content")]
    SerialConflict { existing_id: String },
    #[error("the issuer has no usable signing key")]
    SigningUnavailable,
    #[error("the chain RPC node is unavailable; retry later")]
    ChainUnavailable { retry_after_secs: u64 },
    /// The node answered with a transaction its signers did not sign (another memo, fee
    /// payer or signature count than the real one): the answer was refused, not believed.
    #[error("the chain RPC node returned a transaction that is not what its signers signed: the answer was refused; retry later")]
    ChainUnauthentic { retry_after_secs: u64 },
    /// Two of the configured RPC endpoints answered differently about the anchor: one is
    /// behind or lying, so no verdict (issue #23).
    #[error("the chain RPC endpoints disagree about the anchor transaction: no verdict was given; retry later")]
    ChainDisagreement { retry_after_secs: u64 },
    #[error("the database is unavailable; retry later")]
    DatabaseUnavailable { retry_after_secs: u64 },
    #[error("the database connection was lost while committing: the request may have been recorded; retry with the same Idempotency-Key to learn its outcome")]
    CommitOutcomeUnknown { retry_after_secs: u64 },
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the request body did not arrive within {secs} s")]
    RequestTimeout { secs: u64 },
    #[error("internal error")]
    Internal,
    #[error("no such webhook endpoint")]
    WebhookEndpointNotFound,
    #[error("no such webhook delivery")]
    WebhookDeliveryNotFound,
    #[error("webhook URL refused: {reason}")]
    WebhookUrlRefused { reason: String },
    #[error("an issuer has at most {limit} webhook endpoints")]
    WebhookEndpointLimit { limit: i64 },
}

/// The JSON body of every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The existing credential, for `serial_conflict`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_id: Option<String>,
}

impl ApiError {
    /// The stable code of this error (the one list is [`ErrorCode`]).
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::CredentialNotFound => ErrorCode::CredentialNotFound,
            ApiError::IssuerNotFound => ErrorCode::IssuerNotFound,
            ApiError::CredentialBatchNotFound => ErrorCode::CredentialBatchNotFound,
            ApiError::StatusListNotFound => ErrorCode::StatusListNotFound,
            ApiError::ProofNotAvailable { .. } => ErrorCode::ProofNotAvailable,
            ApiError::VcNotAvailable => ErrorCode::VcNotAvailable,
            ApiError::InvalidProof { .. } => ErrorCode::InvalidProof,
            ApiError::AnchorNotFound => ErrorCode::AnchorNotFound,
            ApiError::RelinkConflict => ErrorCode::RelinkConflict,
            ApiError::RouteNotFound => ErrorCode::RouteNotFound,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::InvalidJson { .. } => ErrorCode::InvalidJson,
            ApiError::InvalidMultipart { .. } => ErrorCode::InvalidMultipart,
            ApiError::MissingField { .. } => ErrorCode::MissingField,
            ApiError::InvalidField { .. } => ErrorCode::InvalidField,
            ApiError::InvalidQuery { .. } => ErrorCode::InvalidQuery,
            ApiError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            ApiError::InvalidIdempotencyKey { .. } => ErrorCode::InvalidIdempotencyKey,
            ApiError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            ApiError::SerialConflict { .. } => ErrorCode::SerialConflict,
            ApiError::SigningUnavailable => ErrorCode::SigningUnavailable,
            ApiError::ChainUnavailable { .. } => ErrorCode::ChainUnavailable,
            ApiError::ChainUnauthentic { .. } => ErrorCode::ChainUnauthentic,
            ApiError::ChainDisagreement { .. } => ErrorCode::ChainDisagreement,
            ApiError::DatabaseUnavailable { .. } => ErrorCode::DatabaseUnavailable,
            ApiError::CommitOutcomeUnknown { .. } => ErrorCode::CommitOutcomeUnknown,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::RequestTimeout { .. } => ErrorCode::RequestTimeout,
            ApiError::Internal => ErrorCode::Internal,
            ApiError::WebhookEndpointNotFound => ErrorCode::WebhookEndpointNotFound,
            ApiError::WebhookDeliveryNotFound => ErrorCode::WebhookDeliveryNotFound,
            ApiError::WebhookUrlRefused { .. } => ErrorCode::WebhookUrlRefused,
            ApiError::WebhookEndpointLimit { .. } => ErrorCode::WebhookEndpointLimit,
        }
    }

    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    pub fn invalid_field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn body(&self) -> ErrorBody {
        let field = match self {
            ApiError::MissingField { field }
            | ApiError::InvalidField { field, .. }
            | ApiError::InvalidQuery { field, .. } => Some(field.clone()),
            _ => None,
        };
        let existing_id = match self {
            ApiError::SerialConflict { existing_id } => Some(existing_id.clone()),
            _ => None,
        };
        ErrorBody {
            code: self.code(),
            message: self.to_string(),
            field,
            existing_id,
        }
    }

    /// Maps a store error: unavailability becomes 503 + Retry-After (saying so when a COMMIT
    /// may have landed); anything else is an internal error whose detail is logged here and
    /// not shown to the client.
    pub fn from_store(e: StoreError, retry_after_secs: u64) -> Self {
        if let StoreError::OutcomeUnknown(_) = e {
            tracing::warn!(error = %e, "commit outcome unknown");
            ApiError::CommitOutcomeUnknown { retry_after_secs }
        } else if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            ApiError::DatabaseUnavailable { retry_after_secs }
        } else {
            tracing::error!(error = %e, "store error");
            ApiError::Internal
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::CredentialNotFound
            | ApiError::IssuerNotFound
            | ApiError::CredentialBatchNotFound
            | ApiError::StatusListNotFound
            | ApiError::WebhookEndpointNotFound
            | ApiError::WebhookDeliveryNotFound
            | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::ProofNotAvailable { .. }
            | ApiError::VcNotAvailable
            | ApiError::AnchorNotFound
            | ApiError::RelinkConflict => StatusCode::CONFLICT,
            ApiError::InvalidProof { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidJson { .. }
            | ApiError::InvalidMultipart { .. }
            | ApiError::MissingField { .. }
            | ApiError::InvalidField { .. }
            | ApiError::InvalidQuery { .. }
            | ApiError::InvalidIdempotencyKey { .. }
            | ApiError::WebhookUrlRefused { .. } => StatusCode::BAD_REQUEST,
            ApiError::WebhookEndpointLimit { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::SerialConflict { .. } => StatusCode::CONFLICT,
            ApiError::SigningUnavailable
            | ApiError::DatabaseUnavailable { .. }
            | ApiError::CommitOutcomeUnknown { .. }
            | ApiError::ChainUnavailable { .. }
            | ApiError::ChainUnauthentic { .. }
            | ApiError::ChainDisagreement { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status_code());
        match self {
            ApiError::DatabaseUnavailable { retry_after_secs }
            | ApiError::CommitOutcomeUnknown { retry_after_secs }
            | ApiError::ChainUnavailable { retry_after_secs }
            | ApiError::ChainUnauthentic { retry_after_secs }
            | ApiError::ChainDisagreement { retry_after_secs }
            | ApiError::RateLimited { retry_after_secs } => {
                builder.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::Unauthorized => {
                builder.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        builder.json(self.body())
    }
}

/// Declares [`ErrorCode`] from one list: each variant with its stable text, and `ALL`.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident => $text:literal,)+) => {
        /// Every code the API can answer with, at the top level of an error body or per item
        /// of a bulk response: the one list (README "Error codes" documents each; a test
        /// checks it does).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)+
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $text,)+
                }
            }
        }
    };
}

error_codes! {
    Unauthorized => "unauthorized",
    CredentialNotFound => "credential_not_found",
    IssuerNotFound => "issuer_not_found",
    CredentialBatchNotFound => "credential_batch_not_found",
    /// A status list with no anchored version yet (or no such list).
    StatusListNotFound => "status_list_not_found",
    ProofNotAvailable => "proof_not_available",
    VcNotAvailable => "vc_not_available",
    InvalidProof => "invalid_proof",
    AnchorNotFound => "anchor_not_found",
    RelinkConflict => "relink_conflict",
    RouteNotFound => "route_not_found",
    MethodNotAllowed => "method_not_allowed",
    InvalidJson => "invalid_json",
    InvalidMultipart => "invalid_multipart",
    MissingField => "missing_field",
    InvalidField => "invalid_field",
    InvalidQuery => "invalid_query",
    PayloadTooLarge => "payload_too_large",
    UnsupportedMediaType => "unsupported_media_type",
    InvalidIdempotencyKey => "invalid_idempotency_key",
    IdempotencyKeyReused => "idempotency_key_reused",
    SerialConflict => "serial_conflict",
    SigningUnavailable => "signing_unavailable",
    ChainUnavailable => "chain_unavailable",
    /// The RPC node's transaction failed its own signatures: refused (a 503, as another node
    /// or a later answer may be truthful; never a verdict).
    ChainUnauthentic => "chain_unauthentic",
    /// Two RPC endpoints answered differently about the anchor: no verdict (a 503).
    ChainDisagreement => "chain_disagreement",
    DatabaseUnavailable => "database_unavailable",
    /// The connection dropped while COMMIT was in flight: it may have committed.
    CommitOutcomeUnknown => "commit_outcome_unknown",
    RateLimited => "rate_limited",
    /// The request body did not arrive within `http.body_read_timeout_secs`.
    RequestTimeout => "request_timeout",
    Internal => "internal_error",
    /// A bulk item whose serial appears earlier in the same request (per item only).
    DuplicateInRequest => "duplicate_in_request",
    WebhookEndpointNotFound => "webhook_endpoint_not_found",
    WebhookDeliveryNotFound => "webhook_delivery_not_found",
    /// A webhook URL that is not https (unless `webhooks.allow_http`), carries credentials or
    /// a fragment, or names a non-public address (unless `webhooks.allow_private`).
    WebhookUrlRefused => "webhook_url_refused",
    WebhookEndpointLimit => "webhook_endpoint_limit",
}

/// Every code's text (`ErrorCode::ALL`), for tests and the fuzz property.
pub fn all_codes() -> impl Iterator<Item = &'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_of_unknown_outcome_is_its_own_retryable_answer() {
        let unknown = ApiError::from_store(StoreError::OutcomeUnknown("closed".into()), 3);
        assert_eq!(unknown.code(), "commit_outcome_unknown");
        let response = unknown.error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "3");
        let down = ApiError::from_store(StoreError::Unavailable("refused".into()), 3);
        assert_eq!(down.code(), "database_unavailable");
    }

    #[test]
    fn every_code_is_unique_and_documented_in_the_readme() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("### Error codes")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        for code in all_codes() {
            assert!(seen.insert(code), "{code} twice");
            assert!(
                section.contains(&format!("`{code}`")),
                "README lacks {code}"
            );
        }
    }
}
