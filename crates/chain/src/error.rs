//! Errors of the Solana adapter and their retry classification.
//!
//! Owns `ChainError`, the finer `RpcFailureKind` an RPC failure is sorted into, and the pure
//! functions that sort a `ClientError` (HTTP status, JSON-RPC error code, transaction error,
//! message text) into a kind. Callers never inspect messages themselves: they ask
//! `ChainError::class()` whether retrying can help.
//!
//! The rule for anything not recognised is *retryable*: dead-lettering a credential on an
//! error we do not understand would lose work a later attempt could finish, while the relay's
//! bounded attempts already cap what a wrongly retried error costs.

use domain::retry::ErrorClass;
use solana_client::client_error::{reqwest, ClientError, ClientErrorKind};
use solana_client::rpc_request::{RpcError, RpcResponseErrorData};
use solana_client::rpc_response::TransactionError;

/// What went wrong in one RPC call, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcFailureKind {
    /// Connection refused/reset, DNS failure, broken body: the request may not have arrived.
    Transport,
    /// The HTTP client or the node gave up waiting.
    Timeout,
    /// HTTP 429 or a provider's rate-limit error.
    RateLimited,
    /// HTTP 5xx or JSON-RPC internal error.
    ServerError,
    /// The node is unhealthy, behind, or cannot serve that slot yet.
    NodeBehind,
    /// The transaction's blockhash is unknown to the node (too new for it, or expired).
    BlockhashNotFound,
    /// The cluster already processed this exact transaction.
    AlreadyProcessed,
    /// A block could not take the transaction now (cost limits, account in use).
    Congested,
    /// The response was not what the JSON-RPC contract promised.
    Decode,
    /// An error we do not recognise (see the module doc for why it is retryable).
    Unknown,
    /// HTTP 4xx other than 408/429: wrong URL, missing API key, forbidden.
    HttpClientError,
    /// The node rejected our request as malformed (bad params, unknown method).
    InvalidParams,
    /// A signature did not verify.
    BadSignature,
    /// The fee payer cannot pay the fee (no account, or not enough lamports).
    InsufficientFundsForFee,
    /// The transaction was rejected for a reason retrying the same bytes cannot fix.
    TransactionRejected,
    /// The node does not keep or support what was asked (pruned history, version).
    Unsupported,
    /// Signing failed locally.
    Signing,
}

impl RpcFailureKind {
    /// Whether a later attempt may succeed.
    pub fn class(self) -> ErrorClass {
        use RpcFailureKind::*;
        match self {
            Transport | Timeout | RateLimited | ServerError | NodeBehind | BlockhashNotFound
            | AlreadyProcessed | Congested | Decode | Unknown => ErrorClass::Retryable,
            HttpClientError
            | InvalidParams
            | BadSignature
            | InsufficientFundsForFee
            | TransactionRejected
            | Unsupported
            | Signing => ErrorClass::Permanent,
        }
    }

    /// Stable snake_case name for logs.
    pub fn as_str(self) -> &'static str {
        use RpcFailureKind::*;
        match self {
            Transport => "transport",
            Timeout => "timeout",
            RateLimited => "rate_limited",
            ServerError => "server_error",
            NodeBehind => "node_behind",
            BlockhashNotFound => "blockhash_not_found",
            AlreadyProcessed => "already_processed",
            Congested => "congested",
            Decode => "decode",
            Unknown => "unknown",
            HttpClientError => "http_client_error",
            InvalidParams => "invalid_params",
            BadSignature => "bad_signature",
            InsufficientFundsForFee => "insufficient_funds_for_fee",
            TransactionRejected => "transaction_rejected",
            Unsupported => "unsupported",
            Signing => "signing",
        }
    }
}

/// Every failure of the Solana adapter.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("rpc {method} failed ({}): {message}", kind.as_str())]
    Rpc {
        method: &'static str,
        kind: RpcFailureKind,
        message: String,
    },
    #[error("unexpected response to {method}: {detail}")]
    UnexpectedResponse {
        method: &'static str,
        detail: String,
    },
    /// The node answered, but its answer contradicts itself in a way only a lie (or a broken
    /// node) can: e.g. a transaction whose signatures do not verify over its message.
    #[error("{method} answer is not authentic: {detail}")]
    Unauthentic {
        method: &'static str,
        detail: String,
    },
    /// Two RPC endpoints answered the same question differently: at least one of them is
    /// behind or lying, and the answer cannot be trusted for a verdict.
    #[error("RPC endpoints disagree on {method}: {detail}")]
    Disagreement {
        method: &'static str,
        detail: String,
    },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("memo is {len} bytes; at most {max} fit in one anchor transaction")]
    MemoTooLong { len: usize, max: usize },
    #[error("invalid keypair: {0}")]
    InvalidKeypair(String),
    #[error("this chain client is read-only: no anchoring keypair configured")]
    ReadOnly,
    #[error("invalid transaction bytes: {0}")]
    InvalidTransaction(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

impl ChainError {
    /// Whether retrying the same operation later may succeed.
    pub fn class(&self) -> ErrorClass {
        match self {
            ChainError::Rpc { kind, .. } => kind.class(),
            // A node (or a proxy in front of it) answering garbage is usually transient; the
            // caller's bounded attempts stop a node that is permanently wrong.
            // Another attempt (or the node, once fixed) may answer honestly.
            ChainError::UnexpectedResponse { .. }
            | ChainError::Unauthentic { .. }
            | ChainError::Disagreement { .. }
            | ChainError::Timeout(_) => ErrorClass::Retryable,
            ChainError::MemoTooLong { .. }
            | ChainError::InvalidKeypair(_)
            | ChainError::ReadOnly
            | ChainError::InvalidTransaction(_)
            | ChainError::InvalidArgument(_)
            | ChainError::Signing(_) => ErrorClass::Permanent,
        }
    }

    /// The RPC failure kind, when this is an RPC failure.
    pub fn rpc_kind(&self) -> Option<RpcFailureKind> {
        match self {
            ChainError::Rpc { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Wraps a client error of the named JSON-RPC method, classifying it once. URLs in the
    /// message are cut to scheme and host: provider URLs often carry an API key in their path
    /// or query, and this message ends up in logs and in the outbox's `last_error`.
    pub fn from_client(method: &'static str, err: &ClientError) -> Self {
        ChainError::Rpc {
            method,
            kind: classify_client_error(err),
            message: redact_urls(&err.to_string()),
        }
    }
}

/// Replaces every `http(s)://host/path?query` in `text` by `http(s)://host/…`, keeping the
/// host (useful to tell endpoints apart) and dropping what may hold a secret.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = ["https://", "http://", "wss://", "ws://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme).map(|i| (i, scheme.len())))
        .min()
    {
        let (at, scheme_len) = start;
        out.push_str(&rest[..at]);
        let url = &rest[at..];
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>' | ','))
            .unwrap_or(url.len());
        let (url, after) = url.split_at(end);
        let authority_end = url[scheme_len..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |i| i + scheme_len);
        // Drop userinfo (`user:password@host`) as well.
        let authority = &url[scheme_len..authority_end];
        let host = authority.rsplit('@').next().unwrap_or(authority);
        out.push_str(&url[..scheme_len]);
        out.push_str(host);
        if authority_end < url.len() {
            out.push_str("/…");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Sorts a `solana-client` error into a failure kind. Pure: no I/O, no clock.
pub fn classify_client_error(err: &ClientError) -> RpcFailureKind {
    match err.kind() {
        ClientErrorKind::Io(io) => match io.kind() {
            std::io::ErrorKind::TimedOut => RpcFailureKind::Timeout,
            _ => RpcFailureKind::Transport,
        },
        ClientErrorKind::Reqwest(e) => classify_reqwest_error(e),
        ClientErrorKind::Middleware(_) => RpcFailureKind::Transport,
        ClientErrorKind::RpcError(rpc) => classify_rpc_error(rpc),
        ClientErrorKind::SerdeJson(_) => RpcFailureKind::Decode,
        ClientErrorKind::SigningError(_) => RpcFailureKind::Signing,
        ClientErrorKind::TransactionError(te) => classify_transaction_error(te),
        ClientErrorKind::Custom(message) => {
            classify_message(message).unwrap_or(RpcFailureKind::Unknown)
        }
    }
}

fn classify_reqwest_error(e: &reqwest::Error) -> RpcFailureKind {
    if e.is_timeout() {
        return RpcFailureKind::Timeout;
    }
    if let Some(status) = e.status() {
        return classify_http_status(status.as_u16());
    }
    if e.is_decode() {
        return RpcFailureKind::Decode;
    }
    RpcFailureKind::Transport
}

/// Failure kind of a non-2xx HTTP status from the RPC endpoint.
pub fn classify_http_status(status: u16) -> RpcFailureKind {
    match status {
        408 => RpcFailureKind::Timeout,
        429 => RpcFailureKind::RateLimited,
        400..=499 => RpcFailureKind::HttpClientError,
        500..=599 => RpcFailureKind::ServerError,
        _ => RpcFailureKind::Unknown,
    }
}

fn classify_rpc_error(rpc: &RpcError) -> RpcFailureKind {
    match rpc {
        RpcError::RpcResponseError {
            code,
            message,
            data,
        } => {
            let tx_err = match data {
                RpcResponseErrorData::SendTransactionPreflightFailure(sim) => {
                    sim.err.clone().map(TransactionError::from)
                }
                _ => None,
            };
            classify_json_rpc_error(*code, message, tx_err.as_ref())
        }
        // The client's own "this response makes no sense" errors.
        RpcError::RpcRequestError(message) | RpcError::ForUser(message) => {
            classify_message(message).unwrap_or(RpcFailureKind::Unknown)
        }
        RpcError::ParseError(_) => RpcFailureKind::Decode,
    }
}

/// Failure kind of a JSON-RPC error object (`code`, `message`, and the transaction error a
/// preflight failure carries, if any).
pub fn classify_json_rpc_error(
    code: i64,
    message: &str,
    tx_err: Option<&TransactionError>,
) -> RpcFailureKind {
    if let Some(te) = tx_err {
        return classify_transaction_error(te);
    }
    match code {
        // JSON-RPC 2.0 standard codes: our request was wrong; sending it again will not help.
        -32700 | -32600 | -32601 | -32602 => RpcFailureKind::InvalidParams,
        -32603 => RpcFailureKind::ServerError,
        // Preflight failure without parseable data: fall back to the message text.
        -32002 => classify_message(message).unwrap_or(RpcFailureKind::TransactionRejected),
        -32003 | -32006 => RpcFailureKind::BadSignature,
        // Block not available / node unhealthy / status not available yet / min context slot
        // not reached / long-term storage unreachable / scan error / rewards period /
        // no slot history: the node will catch up or another node will answer.
        -32004 | -32005 | -32012 | -32014 | -32016 | -32017 | -32019 | -32021 => {
            RpcFailureKind::NodeBehind
        }
        // Block cleaned up / slot skipped / no snapshot / long-term slot skipped / key excluded
        // from secondary index / history not available / signature length mismatch /
        // unsupported version / filter transaction not found: this node will never answer.
        -32001 | -32007 | -32008 | -32009 | -32010 | -32011 | -32013 | -32015 | -32018 | -32020 => {
            RpcFailureKind::Unsupported
        }
        // Providers use 429 or -32429 for rate limiting.
        429 | -32429 => RpcFailureKind::RateLimited,
        _ => classify_message(message).unwrap_or(RpcFailureKind::Unknown),
    }
}

/// Failure kind of a transaction-level error reported by the node.
pub fn classify_transaction_error(te: &TransactionError) -> RpcFailureKind {
    match te {
        TransactionError::BlockhashNotFound => RpcFailureKind::BlockhashNotFound,
        TransactionError::AlreadyProcessed => RpcFailureKind::AlreadyProcessed,
        TransactionError::InsufficientFundsForFee
        | TransactionError::AccountNotFound
        | TransactionError::InvalidAccountForFee => RpcFailureKind::InsufficientFundsForFee,
        TransactionError::SignatureFailure | TransactionError::MissingSignatureForFee => {
            RpcFailureKind::BadSignature
        }
        TransactionError::AccountInUse
        | TransactionError::ClusterMaintenance
        | TransactionError::WouldExceedMaxBlockCostLimit
        | TransactionError::WouldExceedMaxAccountCostLimit
        | TransactionError::WouldExceedMaxVoteCostLimit
        | TransactionError::WouldExceedAccountDataBlockLimit
        | TransactionError::WouldExceedAccountDataTotalLimit
        | TransactionError::ProgramExecutionTemporarilyRestricted { .. }
        | TransactionError::ProgramCacheHitMaxLimit
        | TransactionError::CommitCancelled => RpcFailureKind::Congested,
        _ => RpcFailureKind::TransactionRejected,
    }
}

/// Best-effort reading of an error message when no structured code says more. Returns `None`
/// when nothing is recognised, so the caller picks its own default.
pub fn classify_message(message: &str) -> Option<RpcFailureKind> {
    let m = message.to_ascii_lowercase();
    let has = |needle: &str| m.contains(needle);
    if has("blockhash not found") || has("blockhashnotfound") {
        Some(RpcFailureKind::BlockhashNotFound)
    } else if has("already been processed") || has("alreadyprocessed") {
        Some(RpcFailureKind::AlreadyProcessed)
    } else if has("insufficient funds for fee") || has("insufficientfundsforfee") {
        Some(RpcFailureKind::InsufficientFundsForFee)
    } else if has("too many requests") || has("rate limit") || has("status 429") {
        Some(RpcFailureKind::RateLimited)
    } else if has("timed out") || has("timeout") {
        Some(RpcFailureKind::Timeout)
    } else if has("node is behind") || has("node is unhealthy") || has("behind by") {
        Some(RpcFailureKind::NodeBehind)
    } else if has("signature verification failure") || has("invalid signature") {
        Some(RpcFailureKind::BadSignature)
    } else if has("invalid params") || has("invalid param") || has("method not found") {
        Some(RpcFailureKind::InvalidParams)
    } else if has("connection refused") || has("connection reset") || has("error sending request") {
        Some(RpcFailureKind::Transport)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use solana_client::rpc_request::RpcRequest;
    use solana_client::rpc_response::RpcSimulateTransactionResult;

    fn response_error(code: i64, message: &str) -> ClientError {
        ClientError::new_with_request(
            ClientErrorKind::RpcError(RpcError::RpcResponseError {
                code,
                message: message.to_string(),
                data: RpcResponseErrorData::Empty,
            }),
            RpcRequest::SendTransaction,
        )
    }

    fn preflight_error(err: TransactionError) -> ClientError {
        let sim: RpcSimulateTransactionResult = serde_json::from_value(serde_json::json!({
            "err": serde_json::to_value(err).unwrap(),
            "logs": [],
        }))
        .unwrap();
        ClientErrorKind::RpcError(RpcError::RpcResponseError {
            code: -32002,
            message: "Transaction simulation failed".into(),
            data: RpcResponseErrorData::SendTransactionPreflightFailure(sim),
        })
        .into()
    }

    #[test]
    fn urls_in_messages_lose_path_query_and_credentials() {
        assert_eq!(
            redact_urls(
                "error sending request for url (https://rpc.example.com/v2/SECRET?api-key=SECRET2): refused"
            ),
            "error sending request for url (https://rpc.example.com/…): refused"
        );
        assert_eq!(
            redact_urls("to http://user:pw@127.0.0.1:8899 and http://h/"),
            "to http://127.0.0.1:8899 and http://h/…"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
        assert_eq!(redact_urls("https://"), "https://");
        let text = "x https://a.b/c?d y https://e.f z";
        assert_eq!(redact_urls(text), "x https://a.b/… y https://e.f z");
        assert!(!redact_urls("é https://ü.example/ä?é=ö").contains('ä'));
    }

    #[test]
    fn transport_and_timeouts_are_retryable() {
        let refused: ClientError =
            ClientErrorKind::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)).into();
        assert_eq!(classify_client_error(&refused), RpcFailureKind::Transport);
        let timed_out: ClientError =
            ClientErrorKind::Io(std::io::Error::from(std::io::ErrorKind::TimedOut)).into();
        assert_eq!(classify_client_error(&timed_out), RpcFailureKind::Timeout);
        for e in [refused, timed_out] {
            assert_eq!(
                ChainError::from_client("getSlot", &e).class(),
                ErrorClass::Retryable
            );
        }
    }

    #[test]
    fn http_statuses_are_sorted() {
        assert_eq!(classify_http_status(429), RpcFailureKind::RateLimited);
        assert_eq!(classify_http_status(408), RpcFailureKind::Timeout);
        for s in [500, 502, 503, 504] {
            assert_eq!(classify_http_status(s), RpcFailureKind::ServerError);
            assert_eq!(classify_http_status(s).class(), ErrorClass::Retryable);
        }
        for s in [400, 401, 403, 404] {
            assert_eq!(classify_http_status(s).class(), ErrorClass::Permanent);
        }
    }

    #[test]
    fn json_rpc_codes_are_sorted() {
        let cases = [
            (-32005, "Node is unhealthy", ErrorClass::Retryable),
            (
                -32004,
                "Block not available for slot 5",
                ErrorClass::Retryable,
            ),
            (
                -32016,
                "Minimum context slot has not been reached",
                ErrorClass::Retryable,
            ),
            (-32603, "Internal error", ErrorClass::Retryable),
            (
                -32602,
                "Invalid params: invalid type",
                ErrorClass::Permanent,
            ),
            (-32601, "Method not found", ErrorClass::Permanent),
            (
                -32003,
                "Transaction signature verification failure",
                ErrorClass::Permanent,
            ),
            (
                -32011,
                "Transaction history is not available",
                ErrorClass::Permanent,
            ),
            (-32429, "rate limited", ErrorClass::Retryable),
            (-39999, "something new", ErrorClass::Retryable),
        ];
        for (code, message, class) in cases {
            let e = ChainError::from_client("x", &response_error(code, message));
            assert_eq!(e.class(), class, "code {code}");
        }
    }

    #[test]
    fn preflight_transaction_errors_are_sorted() {
        let kind = |te| classify_client_error(&preflight_error(te));
        assert_eq!(
            kind(TransactionError::BlockhashNotFound),
            RpcFailureKind::BlockhashNotFound
        );
        assert_eq!(
            kind(TransactionError::AlreadyProcessed),
            RpcFailureKind::AlreadyProcessed
        );
        assert_eq!(
            kind(TransactionError::InsufficientFundsForFee),
            RpcFailureKind::InsufficientFundsForFee
        );
        assert_eq!(
            kind(TransactionError::AccountNotFound).class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            kind(TransactionError::WouldExceedMaxBlockCostLimit).class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            kind(TransactionError::InvalidProgramForExecution).class(),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn preflight_without_data_falls_back_to_message() {
        let e = response_error(-32002, "Transaction simulation failed: Blockhash not found");
        assert_eq!(classify_client_error(&e), RpcFailureKind::BlockhashNotFound);
        let e = response_error(
            -32002,
            "Transaction simulation failed: This transaction has already been processed",
        );
        assert_eq!(classify_client_error(&e), RpcFailureKind::AlreadyProcessed);
        let e = response_error(
            -32002,
            "Transaction simulation failed: Attempt to debit an account but found no record of a prior credit.",
        );
        assert_eq!(classify_client_error(&e).class(), ErrorClass::Permanent);
    }

    #[test]
    fn decode_failures_are_retryable() {
        let bad: ClientError =
            ClientErrorKind::SerdeJson(serde_json::from_str::<u64>("\"x\"").unwrap_err()).into();
        assert_eq!(classify_client_error(&bad), RpcFailureKind::Decode);
        let not_object: ClientError = ClientErrorKind::RpcError(RpcError::RpcRequestError(
            "RPC response is not a JSON object: \"Service Unavailable\"".into(),
        ))
        .into();
        assert_eq!(
            classify_client_error(&not_object).class(),
            ErrorClass::Retryable
        );
    }

    #[test]
    fn local_errors_are_permanent() {
        assert_eq!(
            ChainError::MemoTooLong {
                len: 1001,
                max: 1000
            }
            .class(),
            ErrorClass::Permanent
        );
        assert_eq!(ChainError::ReadOnly.class(), ErrorClass::Permanent);
        assert_eq!(
            ChainError::InvalidKeypair("x".into()).class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            ChainError::Timeout("airdrop".into()).class(),
            ErrorClass::Retryable
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_a_retryable_transport_error() {
        // Bind then drop a listener so the port is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let rpc = solana_client::nonblocking::rpc_client::RpcClient::new_with_timeout(
            format!("http://127.0.0.1:{port}"),
            std::time::Duration::from_secs(2),
        );
        let err = rpc.get_slot().await.unwrap_err();
        assert_eq!(classify_client_error(&err), RpcFailureKind::Transport);
    }

    #[tokio::test]
    async fn http_5xx_is_retryable_and_401_is_permanent() {
        for (status, expected) in [
            ("503 Service Unavailable", RpcFailureKind::ServerError),
            ("401 Unauthorized", RpcFailureKind::HttpClientError),
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let body =
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                if let Ok((mut s, _)) = listener.accept().await {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(body.as_bytes()).await;
                }
            });
            let rpc = solana_client::nonblocking::rpc_client::RpcClient::new_with_timeout(
                format!("http://127.0.0.1:{port}"),
                std::time::Duration::from_secs(5),
            );
            let err = rpc.get_slot().await.unwrap_err();
            assert_eq!(classify_client_error(&err), expected, "{status}: {err}");
        }
    }

    #[tokio::test]
    async fn a_silent_server_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accept and never answer.
        let _keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let rpc = solana_client::nonblocking::rpc_client::RpcClient::new_with_timeout(
            format!("http://127.0.0.1:{port}"),
            std::time::Duration::from_millis(300),
        );
        let err = rpc.get_slot().await.unwrap_err();
        assert_eq!(
            classify_client_error(&err),
            RpcFailureKind::Timeout,
            "{err}"
        );
    }
}
