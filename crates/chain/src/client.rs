//! The RPC client: every call this service makes to a Solana node.
//!
//! Owns `ChainClient` and the small result types of its methods. Each method is one JSON-RPC
//! method (or a short, bounded sequence of them) with the commitment level written out,
//! because the node's default (`finalized`) is rarely what a caller means. Every call is
//! timed and its failures counted in `ChainMetrics` when present. Responses are decoded into
//! our own types; nothing a node sends can make this module panic.
//!
//! It does not decide what to do about a result (retry, re-sign, mark drift): that is the
//! relay's and reconciler's job, helped by `ChainError::class()`.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use solana_client::nonblocking::rpc_client::RpcClient;
use solana_client::rpc_config::{CommitmentConfig, RpcSignaturesForAddressConfig};
use solana_client::rpc_request::{RpcRequest, MAX_GET_SIGNATURE_STATUSES_QUERY_ITEMS};
use solana_client::rpc_response::{
    RpcConfirmedTransactionStatusWithSignature, RpcSimulateTransactionResult,
    TransactionConfirmationStatus,
};
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::Signature;
use solana_sdk::signer::Signer;

use crate::anchor_tx::{decode_wire_transaction, sign_memo_transaction, SignedAnchorTx};
use crate::config::ChainConfig;
use crate::decode::{decode_get_transaction, parse_inline_memos, FetchedTx};
use crate::error::{ChainError, RpcFailureKind};
use crate::fees::{priority_fee_from_recent, MAX_COMPUTE_UNIT_LIMIT};
use crate::keypair::AnchorKeypair;
use crate::metrics::ChainMetrics;
use domain::rpc_pool::{self, EndpointHealth, Standing};

/// How many times the RPC node itself re-forwards a sent transaction. Small on purpose: the
/// relay owns rebroadcasting (same bytes, until confirmed or expired), so node-side retries
/// only smooth over a lost packet between two relay attempts.
const SEND_MAX_RETRIES: usize = 3;

/// Most signatures `getSignaturesForAddress` returns per call.
pub const MAX_SIGNATURES_PER_PAGE: usize = 1_000;

/// How long `request_airdrop_and_confirm` waits for the airdrop to be confirmed.
const AIRDROP_CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// Commitment for reads of a single transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commitment {
    /// Voted on by a supermajority; can in rare cases still be rolled back.
    Confirmed,
    /// Rooted; cannot be rolled back. The only level anchors are trusted at.
    Finalized,
}

impl Commitment {
    fn as_str(self) -> &'static str {
        match self {
            Commitment::Confirmed => "confirmed",
            Commitment::Finalized => "finalized",
        }
    }
}

/// How far a transaction has progressed. Ordered: `Processed < Confirmed < Finalized`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Confirmation {
    Processed,
    Confirmed,
    Finalized,
}

/// Status of a signature the node knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigStatus {
    pub slot: u64,
    pub confirmation: Confirmation,
    /// The transaction error, if it landed but failed (it still paid its fee).
    pub err: Option<String>,
}

/// One entry of the issuer's transaction history (`getSignaturesForAddress`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressSignature {
    pub signature: String,
    pub slot: u64,
    /// The transaction failed.
    pub err: bool,
    /// The node's memo summary, `"[len] text"` per memo joined by `"; "` (see
    /// [`AddressSignature::inline_memos`]). A hint for filtering only: anyone can write a
    /// memo that mentions this address, so trust comes from `fetch_transaction`.
    pub memo: Option<String>,
    pub block_time: Option<i64>,
}

impl AddressSignature {
    /// The memo texts of the summary, if it parses.
    pub fn inline_memos(&self) -> Option<Vec<String>> {
        self.memo.as_deref().and_then(parse_inline_memos)
    }
}

/// One configured RPC endpoint.
struct Endpoint {
    rpc: Arc<RpcClient>,
    /// The URL without path and query: the `endpoint` label of the metrics and logs.
    label: String,
}

struct Inner {
    /// The preferred endpoint first (`ChainConfig::rpc_urls`).
    endpoints: Vec<Endpoint>,
    /// What each endpoint's calls and probes showed, in the same order.
    health: std::sync::Mutex<Vec<EndpointHealth>>,
    payer: Option<AnchorKeypair>,
    config: ChainConfig,
}

/// Handle to the configured Solana RPC endpoints, optionally with the anchoring keypair.
/// Cheap to clone. With several endpoints, each call goes to the best-standing one and moves
/// on to the next when one fails for a reason of its own; the answers that decide a
/// re-signing, a finality or a verdict come from two (`domain::rpc_pool`).
#[derive(Clone)]
pub struct ChainClient {
    inner: Arc<Inner>,
    metrics: Option<ChainMetrics>,
}

impl std::fmt::Debug for ChainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainClient")
            .field(
                "endpoints",
                &self
                    .inner
                    .endpoints
                    .iter()
                    .map(|e| e.label.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("cluster", &self.inner.config.cluster)
            .field("payer", &self.payer_pubkey())
            .finish()
    }
}

/// Whether a failed call says something about the endpoint (down, slow, refusing, behind,
/// answering garbage or lies) rather than about the request: then the next endpoint is
/// asked, and the endpoint counts as failing until a call to it succeeds.
fn endpoint_fault(e: &ChainError) -> bool {
    match e {
        ChainError::Rpc { kind, .. } => matches!(
            kind,
            RpcFailureKind::Transport
                | RpcFailureKind::Timeout
                | RpcFailureKind::RateLimited
                | RpcFailureKind::ServerError
                | RpcFailureKind::NodeBehind
                | RpcFailureKind::Decode
                | RpcFailureKind::Unknown
                | RpcFailureKind::HttpClientError
                | RpcFailureKind::Unsupported
        ),
        ChainError::UnexpectedResponse { .. }
        | ChainError::Unauthentic { .. }
        | ChainError::Timeout(_) => true,
        _ => false,
    }
}

impl ChainClient {
    /// A client that can build, sign and send anchor transactions paid by `payer`.
    pub fn new(config: ChainConfig, payer: AnchorKeypair) -> Self {
        Self::build(config, Some(payer))
    }

    /// A client for reads only (reconciler, verifier); sending returns `ChainError::ReadOnly`.
    pub fn read_only(config: ChainConfig) -> Self {
        Self::build(config, None)
    }

    fn build(config: ChainConfig, payer: Option<AnchorKeypair>) -> Self {
        // The client's default commitment is `confirmed`, but every method below names its
        // commitment explicitly anyway.
        let rpcs = config
            .rpc_urls()
            .into_iter()
            .map(|url| {
                RpcClient::new_with_timeout_and_commitment(
                    url,
                    config.request_timeout,
                    CommitmentConfig::confirmed(),
                )
            })
            .collect();
        Self::from_rpcs(rpcs, config, payer)
    }

    fn from_rpcs(rpcs: Vec<RpcClient>, config: ChainConfig, payer: Option<AnchorKeypair>) -> Self {
        let mut labels: Vec<String> = Vec::new();
        let endpoints: Vec<Endpoint> = rpcs
            .into_iter()
            .map(|rpc| {
                // Two endpoints of one provider differ only in the (redacted) path.
                let base = crate::error::redact_urls(&rpc.url());
                let mut label = base.clone();
                let mut n = 1;
                while labels.contains(&label) {
                    n += 1;
                    label = format!("{base}#{n}");
                }
                labels.push(label.clone());
                Endpoint {
                    rpc: Arc::new(rpc),
                    label,
                }
            })
            .collect();
        let health = vec![EndpointHealth::default(); endpoints.len()];
        Self {
            inner: Arc::new(Inner {
                endpoints,
                health: std::sync::Mutex::new(health),
                payer,
                config,
            }),
            metrics: None,
        }
    }

    /// Each endpoint's label and standing, in configuration order (readiness, logs, tests).
    pub fn endpoint_standings(&self) -> Vec<(String, Standing)> {
        let standings = rpc_pool::standings(&self.health_snapshot(), self.inner.config.pool);
        self.inner
            .endpoints
            .iter()
            .zip(standings)
            .map(|(e, s)| (e.label.clone(), s))
            .collect()
    }

    fn health_snapshot(&self) -> Vec<EndpointHealth> {
        self.inner
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn update_health(&self, i: usize, f: impl FnOnce(&mut EndpointHealth)) {
        let mut health = self
            .inner
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = health.get_mut(i) {
            f(h);
        }
    }

    /// Asks every endpoint for `getHealth` and its finalized slot, every `every`, until the
    /// process ends; what they answer orders the endpoints (`rpc_pool::rank`) and sets the
    /// `rpc_endpoint_up` and `rpc_endpoint_finalized_slot` gauges. With one endpoint it only
    /// keeps the gauges current.
    pub fn spawn_health_probe(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let client = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                client.probe_once().await;
            }
        })
    }

    /// One health probe of every endpoint (see [`ChainClient::spawn_health_probe`]).
    pub async fn probe_once(&self) {
        let probes = (0..self.inner.endpoints.len()).map(|i| async move {
            let healthy = self
                .on(i, "getHealth", &|rpc: Arc<RpcClient>| async move {
                    rpc.get_health()
                        .await
                        .map_err(|e| ChainError::from_client("getHealth", &e))
                })
                .await
                .is_ok();
            let slot = self
                .on(i, "getSlot", &|rpc: Arc<RpcClient>| async move {
                    rpc.get_slot_with_commitment(CommitmentConfig::finalized())
                        .await
                        .map_err(|e| ChainError::from_client("getSlot", &e))
                })
                .await
                .ok();
            self.update_health(i, |h| {
                h.reported_healthy = Some(healthy);
                if slot.is_some() {
                    h.finalized_slot = slot;
                }
            });
        });
        futures_util::future::join_all(probes).await;
        self.publish_standings();
    }

    /// Sets every endpoint's `rpc_endpoint_up` and `rpc_endpoint_finalized_slot` from what
    /// is known now: after each probe and each call, so a failure shows at once.
    fn publish_standings(&self) {
        if let Some(metrics) = &self.metrics {
            let health = self.health_snapshot();
            let standings = rpc_pool::standings(&health, self.inner.config.pool);
            for ((endpoint, standing), h) in self.inner.endpoints.iter().zip(standings).zip(&health)
            {
                let up = matches!(standing, Standing::Healthy | Standing::Slow);
                metrics.set_endpoint(&endpoint.label, up, h.finalized_slot);
            }
        }
    }

    /// Records every RPC call of this client (and its clones made afterwards) in `metrics`.
    pub fn with_metrics(mut self, metrics: ChainMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn config(&self) -> &ChainConfig {
        &self.inner.config
    }

    /// The anchoring public key (base58), if this client has one.
    pub fn payer_pubkey(&self) -> Option<String> {
        self.inner.payer.as_ref().map(AnchorKeypair::pubkey_base58)
    }

    /// Explorer link for a transaction on this client's cluster and endpoint.
    pub fn explorer_tx_url(&self, signature: &str) -> String {
        self.inner
            .config
            .cluster
            .explorer_tx_url(signature, Some(&self.inner.config.rpc_url))
    }

    fn payer(&self) -> Result<&AnchorKeypair, ChainError> {
        self.inner.payer.as_ref().ok_or(ChainError::ReadOnly)
    }

    /// Runs `op` on endpoint `i`: timed, its failure counted, the endpoint's health updated.
    async fn on<T, Fut>(
        &self,
        i: usize,
        method: &'static str,
        op: &impl Fn(Arc<RpcClient>) -> Fut,
    ) -> Result<T, ChainError>
    where
        Fut: Future<Output = Result<T, ChainError>>,
    {
        let Some(endpoint) = self.inner.endpoints.get(i) else {
            return Err(ChainError::InvalidArgument("no such RPC endpoint".into()));
        };
        let start = Instant::now();
        let result = op(endpoint.rpc.clone()).await;
        let elapsed = start.elapsed();
        if let Some(metrics) = &self.metrics {
            metrics.record(method, elapsed, result.as_ref().err());
            metrics.record_endpoint(&endpoint.label, result.is_ok());
        }
        match &result {
            Ok(_) => self.update_health(i, |h| {
                h.consecutive_failures = 0;
                let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
                h.latency_ms = Some(rpc_pool::next_latency(h.latency_ms, ms));
            }),
            Err(err) => {
                tracing::debug!(method, endpoint = %endpoint.label, error = %err, "solana rpc call failed");
                if endpoint_fault(err) {
                    self.update_health(i, |h| {
                        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
                    });
                }
            }
        }
        self.publish_standings();
        result
    }

    /// Runs one RPC call on the best-standing endpoint, and on the next ones in turn while
    /// it fails for a reason of the endpoint's (`endpoint_fault`). Every call of this module
    /// that one endpoint can answer goes through here.
    async fn call<T, Fut>(
        &self,
        method: &'static str,
        op: impl Fn(Arc<RpcClient>) -> Fut,
    ) -> Result<T, ChainError>
    where
        Fut: Future<Output = Result<T, ChainError>>,
    {
        let order = rpc_pool::rank(&self.health_snapshot(), self.inner.config.pool);
        let mut last = None;
        for i in order {
            if let Some(err) = &last {
                if let Some(metrics) = &self.metrics {
                    metrics.record_failover(method);
                }
                tracing::warn!(method, endpoint = %self.inner.endpoints[i].label, error = %err, "RPC call failed over to the next endpoint");
            }
            match self.on(i, method, &op).await {
                Ok(value) => return Ok(value),
                Err(err) if endpoint_fault(&err) => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last
            .unwrap_or_else(|| ChainError::InvalidArgument("no RPC endpoint configured".into())))
    }

    /// Runs one RPC call on every endpoint that is not failing (on all when every one is), at
    /// once; the answers of those that answered. For sends and for the calls whose answers
    /// are merged (`signature_statuses`, `finalized_block_height`): fails only when none
    /// answered.
    async fn ask_all<T, Fut>(
        &self,
        method: &'static str,
        op: impl Fn(Arc<RpcClient>) -> Fut,
    ) -> Result<Vec<T>, ChainError>
    where
        Fut: Future<Output = Result<T, ChainError>>,
    {
        let standings = rpc_pool::standings(&self.health_snapshot(), self.inner.config.pool);
        let mut asked: Vec<usize> = (0..standings.len())
            .filter(|&i| standings[i] != Standing::Failing)
            .collect();
        if asked.is_empty() {
            asked = (0..standings.len()).collect();
        }
        let op = &op;
        let results =
            futures_util::future::join_all(asked.into_iter().map(|i| self.on(i, method, op))).await;
        let mut answers = Vec::with_capacity(results.len());
        let mut last = None;
        for result in results {
            match result {
                Ok(answer) => answers.push(answer),
                Err(err) => last = Some(err),
            }
        }
        match (answers.is_empty(), last) {
            (true, Some(err)) => Err(err),
            (true, None) => Err(ChainError::InvalidArgument(
                "no RPC endpoint configured".into(),
            )),
            (false, _) => Ok(answers),
        }
    }

    /// Builds and signs the anchor transaction for `memo` with a fresh `confirmed` blockhash
    /// and a priority price from the payer's recent prioritization fees. Does not send it: the
    /// caller stores the bytes first (see the design's idempotent send).
    pub async fn build_memo_transaction(&self, memo: &str) -> Result<SignedAnchorTx, ChainError> {
        let payer = self.payer()?;
        // Refuse before spending two RPC calls on a memo that cannot be sent.
        if memo.len() > crate::fees::MAX_MEMO_BYTES {
            return Err(ChainError::MemoTooLong {
                len: memo.len(),
                max: crate::fees::MAX_MEMO_BYTES,
            });
        }
        let (blockhash, last_valid_block_height) = self
            .call("getLatestBlockhash", |rpc: Arc<RpcClient>| async move {
                rpc.get_latest_blockhash_with_commitment(CommitmentConfig::confirmed())
                    .await
                    .map_err(|e| ChainError::from_client("getLatestBlockhash", &e))
            })
            .await?;
        let price = self.priority_fee_micro_lamports(payer).await?;
        sign_memo_transaction(
            payer,
            memo,
            &blockhash.to_string(),
            last_valid_block_height,
            price,
        )
    }

    /// Compute-unit price to pay now: the configured percentile of the recent non-zero fees
    /// paid by transactions that lock the payer account, capped.
    async fn priority_fee_micro_lamports(&self, payer: &AnchorKeypair) -> Result<u64, ChainError> {
        let payer_pubkey = payer.keypair().pubkey();
        let fees = self
            .call(
                "getRecentPrioritizationFees",
                |rpc: Arc<RpcClient>| async move {
                    rpc.get_recent_prioritization_fees(&[payer_pubkey])
                        .await
                        .map_err(|e| ChainError::from_client("getRecentPrioritizationFees", &e))
                },
            )
            .await?;
        let recent: Vec<u64> = fees.iter().map(|f| f.prioritization_fee).collect();
        Ok(priority_fee_from_recent(
            &recent,
            self.inner.config.priority_fee_percentile,
            self.inner.config.priority_fee_cap_micro_lamports,
        ))
    }

    /// Sends stored wire bytes and returns the transaction's signature.
    ///
    /// Preflight is skipped: a rebroadcast of a transaction that already landed would fail
    /// preflight ("already processed") although nothing is wrong, and simulating again adds
    /// nothing the relay needs. The cluster deduplicates by signature, so sending the same
    /// bytes any number of times lands at most one transaction. For the same reason an
    /// `AlreadyProcessed` answer (some nodes give it even without preflight) is returned as
    /// success with the transaction's own signature: the caller learns the outcome from
    /// `signature_statuses`, as for any send. With several endpoints the bytes go to every
    /// one that is not failing; one that accepts them is enough.
    pub async fn send_transaction_bytes(&self, bytes: &[u8]) -> Result<String, ChainError> {
        self.payer()?;
        let tx = decode_wire_transaction(bytes)?;
        let expected = tx
            .signatures
            .first()
            .map(ToString::to_string)
            .ok_or_else(|| ChainError::InvalidTransaction("no signatures".into()))?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        let params = json!([encoded, {
            "encoding": "base64",
            "skipPreflight": true,
            "preflightCommitment": "confirmed",
            "maxRetries": SEND_MAX_RETRIES,
        }]);
        let method = "sendTransaction";
        let (params, expected_ref) = (&params, &expected);
        // To every endpoint that is not failing, at once: one that withholds what it is given
        // (or is slow to forward it) cannot keep the transaction from the cluster.
        self.ask_all(method, |rpc: Arc<RpcClient>| async move {
            let expected = expected_ref;
            let sent = match rpc
                .send::<String>(RpcRequest::SendTransaction, params.clone())
                .await
            {
                Ok(signature) => signature,
                Err(e) => {
                    let err = ChainError::from_client(method, &e);
                    if err.rpc_kind() == Some(RpcFailureKind::AlreadyProcessed) {
                        expected.clone()
                    } else {
                        return Err(err);
                    }
                }
            };
            if &sent != expected {
                return Err(ChainError::UnexpectedResponse {
                    method,
                    detail: format!("node returned signature {sent}, expected {expected}"),
                });
            }
            Ok(())
        })
        .await?;
        let sent = expected;
        tracing::debug!(signature = %sent, "anchor transaction sent");
        Ok(sent)
    }

    /// Status of each signature (same order; `None` = unknown to the node), searching the
    /// node's full history so a transaction older than the status cache is still found.
    ///
    /// With several endpoints, every one that is not failing is asked and their answers are
    /// merged per signature (`rpc_pool::merged_status`): unknown only when two answered and
    /// neither has seen it, confirmed, finalized or failed only when two agree, else
    /// processed ("seen, unsettled": the relay waits). So no single endpoint can make the
    /// relay sign a second transaction, nor take an anchor that never landed for a final one.
    pub async fn signature_statuses(
        &self,
        signatures: &[String],
    ) -> Result<Vec<Option<SigStatus>>, ChainError> {
        let parsed = signatures
            .iter()
            .map(|s| parse_signature(s))
            .collect::<Result<Vec<_>, _>>()?;
        let method = "getSignatureStatuses";
        let mut out = Vec::with_capacity(parsed.len());
        for chunk in parsed.chunks(MAX_GET_SIGNATURE_STATUSES_QUERY_ITEMS) {
            let answers = self
                .ask_all(method, |rpc: Arc<RpcClient>| async move {
                    let statuses = rpc
                        .get_signature_statuses_with_history(chunk)
                        .await
                        .map_err(|e| ChainError::from_client(method, &e))?
                        .value;
                    if statuses.len() != chunk.len() {
                        return Err(ChainError::UnexpectedResponse {
                            method,
                            detail: format!(
                                "{} statuses for {} signatures",
                                statuses.len(),
                                chunk.len()
                            ),
                        });
                    }
                    Ok(statuses
                        .into_iter()
                        .map(|status| {
                            status.map(|s| SigStatus {
                                slot: s.slot,
                                confirmation: match s.confirmation_status() {
                                    TransactionConfirmationStatus::Processed => {
                                        Confirmation::Processed
                                    }
                                    TransactionConfirmationStatus::Confirmed => {
                                        Confirmation::Confirmed
                                    }
                                    TransactionConfirmationStatus::Finalized => {
                                        Confirmation::Finalized
                                    }
                                },
                                err: s.err.map(|e| e.to_string()),
                            })
                        })
                        .collect::<Vec<_>>())
                })
                .await?;
            let configured = self.inner.endpoints.len();
            out.extend((0..chunk.len()).map(|i| merge_status(&answers, i, configured)));
        }
        Ok(out)
    }

    /// Current block height at `confirmed`; a transaction whose `last_valid_block_height` is
    /// below it can no longer land.
    pub async fn block_height(&self) -> Result<u64, ChainError> {
        let method = "getBlockHeight";
        self.call(method, |rpc: Arc<RpcClient>| async move {
            rpc.get_block_height_with_commitment(CommitmentConfig::confirmed())
                .await
                .map_err(|e| ChainError::from_client(method, &e))
        })
        .await
    }

    /// Current block height at `finalized`. The relay's expiry rule uses this one: once the
    /// finalized height is past a transaction's `last_valid_block_height` and its signature is
    /// unknown, no fork can still include it, so re-signing cannot create a second anchor.
    ///
    /// With several endpoints: the lowest height of those that answered, and 0 (nothing has
    /// expired yet) unless two answered (`rpc_pool::expiry_height`), so an endpoint that
    /// inflates its height cannot hurry a re-signing.
    pub async fn finalized_block_height(&self) -> Result<u64, ChainError> {
        let method = "getBlockHeight";
        let heights = self
            .ask_all(method, |rpc: Arc<RpcClient>| async move {
                rpc.get_block_height_with_commitment(CommitmentConfig::finalized())
                    .await
                    .map_err(|e| ChainError::from_client(method, &e))
            })
            .await?;
        Ok(rpc_pool::expiry_height(
            &heights,
            self.inner.endpoints.len(),
        ))
    }

    /// The transaction with `signature` at `commitment`, decoded; `None` if the node does not
    /// have it at that level.
    pub async fn fetch_transaction(
        &self,
        signature: &str,
        commitment: Commitment,
    ) -> Result<Option<FetchedTx>, ChainError> {
        parse_signature(signature)?;
        self.call("getTransaction", get_transaction(signature, commitment))
            .await
    }

    /// A credential's anchor transaction as a verifier sees it: at `finalized` if the node
    /// has it there, else at `confirmed`, as the verdict's `SeenTx` (which says which). The
    /// one reading of an anchor for `POST /v1/verify`, the page and `credential-verify`.
    ///
    /// With several endpoints, two must answer and agree (finalized only if all the agreeing
    /// answers have it finalized); when the first two differ, the others are asked and a
    /// strict majority decides (`rpc_pool::majority`), else `ChainError::Disagreement`,
    /// never a verdict. Fewer than two answers are the last endpoint's failure.
    pub async fn fetch_anchor(
        &self,
        signature: &str,
    ) -> Result<Option<domain::verdict::SeenTx>, ChainError> {
        parse_signature(signature)?;
        let needed = rpc_pool::quorum(self.inner.endpoints.len());
        let order = rpc_pool::rank(&self.health_snapshot(), self.inner.config.pool);
        let mut answers: Vec<(usize, Option<domain::verdict::SeenTx>)> = Vec::new();
        let mut last = None;
        let mut next = 0;
        while answers.len() < needed && next < order.len() {
            // Ask as many at once as answers are still missing.
            let batch: Vec<usize> = order
                .iter()
                .skip(next)
                .take(needed - answers.len())
                .copied()
                .collect();
            next += batch.len();
            let results =
                futures_util::future::join_all(batch.iter().map(|&i| self.anchor_on(i, signature)))
                    .await;
            for (i, result) in batch.into_iter().zip(results) {
                match result {
                    Ok(seen) => answers.push((i, seen)),
                    Err(err) => last = Some(err),
                }
            }
        }
        if answers.len() < needed {
            return Err(last.unwrap_or_else(|| {
                ChainError::InvalidArgument("no RPC endpoint configured".into())
            }));
        }
        if rpc_pool::agreed(&comparable(&answers)).is_err() {
            // The first two differ: every other endpoint is asked too, and a strict majority
            // (two honest endpoints against one liar) decides; short of it, no verdict.
            let rest: Vec<usize> = order.iter().skip(next).copied().collect();
            let results =
                futures_util::future::join_all(rest.iter().map(|&i| self.anchor_on(i, signature)))
                    .await;
            answers.extend(
                rest.into_iter()
                    .zip(results)
                    .filter_map(|(i, r)| r.ok().map(|seen| (i, seen))),
            );
        }
        let compared = comparable(&answers);
        match rpc_pool::majority(&compared, self.inner.endpoints.len()) {
            Some(agreed) => Ok(agreed.clone()),
            None => Err(ChainError::Disagreement {
                method: "getTransaction",
                detail: format!(
                    "{} endpoints answer differently for {signature}: {}",
                    answers.len(),
                    answers
                        .iter()
                        .map(|(i, _)| self.inner.endpoints[*i].label.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    /// [`ChainClient::fetch_anchor`] on endpoint `i` alone.
    async fn anchor_on(
        &self,
        i: usize,
        signature: &str,
    ) -> Result<Option<domain::verdict::SeenTx>, ChainError> {
        let method = "getTransaction";
        if let Some(tx) = self
            .on(
                i,
                method,
                &get_transaction(signature, Commitment::Finalized),
            )
            .await?
        {
            return Ok(Some(tx.into_seen(true)));
        }
        Ok(self
            .on(
                i,
                method,
                &get_transaction(signature, Commitment::Confirmed),
            )
            .await?
            .map(|tx| tx.into_seen(false)))
    }

    /// One page of the finalized transactions that mention `address`, newest first, strictly
    /// older than `before` and newer than `until` (both exclusive), at most `limit` (1..=1000).
    pub async fn signatures_for_address(
        &self,
        address: &str,
        before: Option<&str>,
        until: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AddressSignature>, ChainError> {
        let pubkey = parse_pubkey(address)?;
        if !(1..=MAX_SIGNATURES_PER_PAGE).contains(&limit) {
            return Err(ChainError::InvalidArgument(format!(
                "limit {limit} is outside 1..={MAX_SIGNATURES_PER_PAGE}"
            )));
        }
        let before = before.map(parse_signature).transpose()?;
        let until = until.map(parse_signature).transpose()?;
        let config = RpcSignaturesForAddressConfig {
            before: before.map(|s| s.to_string()),
            until: until.map(|s| s.to_string()),
            limit: Some(limit),
            // `processed` is rejected by this method; `finalized` is what the reconciler trusts.
            commitment: Some(CommitmentConfig::finalized()),
            min_context_slot: None,
        };
        let method = "getSignaturesForAddress";
        let config = &config;
        let page: Vec<RpcConfirmedTransactionStatusWithSignature> = self
            .call(method, |rpc: Arc<RpcClient>| async move {
                rpc.send(
                    RpcRequest::GetSignaturesForAddress,
                    json!([pubkey.to_string(), config]),
                )
                .await
                .map_err(|e| ChainError::from_client(method, &e))
            })
            .await?;
        if page.len() > limit {
            return Err(ChainError::UnexpectedResponse {
                method,
                detail: format!("{} entries for limit {limit}", page.len()),
            });
        }
        Ok(page
            .into_iter()
            .map(|s| AddressSignature {
                signature: s.signature,
                slot: s.slot,
                err: s.err.is_some(),
                memo: s.memo,
                block_time: s.block_time,
            })
            .collect())
    }

    /// Balance of `address` in lamports at `confirmed`.
    pub async fn balance(&self, address: &str) -> Result<u64, ChainError> {
        let pubkey = parse_pubkey(address)?;
        let method = "getBalance";
        self.call(method, |rpc: Arc<RpcClient>| async move {
            rpc.get_balance_with_commitment(&pubkey, CommitmentConfig::confirmed())
                .await
                .map(|r| r.value)
                .map_err(|e| ChainError::from_client(method, &e))
        })
        .await
    }

    /// Asks the cluster's faucet for lamports and waits until the airdrop is confirmed (local
    /// validator, devnet, testnet only; for tests and the demo).
    pub async fn request_airdrop_and_confirm(
        &self,
        address: &str,
        lamports: u64,
    ) -> Result<(), ChainError> {
        let pubkey = parse_pubkey(address)?;
        let method = "requestAirdrop";
        let signature = self
            .call(method, |rpc: Arc<RpcClient>| async move {
                rpc.request_airdrop(&pubkey, lamports)
                    .await
                    .map_err(|e| ChainError::from_client(method, &e))
            })
            .await?
            .to_string();
        let deadline = Instant::now() + AIRDROP_CONFIRM_TIMEOUT;
        loop {
            let statuses = self
                .signature_statuses(std::slice::from_ref(&signature))
                .await?;
            if let Some(Some(status)) = statuses.first() {
                if let Some(err) = &status.err {
                    return Err(ChainError::Rpc {
                        method,
                        kind: RpcFailureKind::TransactionRejected,
                        message: format!("airdrop {signature} failed: {err}"),
                    });
                }
                if status.confirmation >= Confirmation::Confirmed {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(ChainError::Timeout(format!(
                    "airdrop {signature} not confirmed after {AIRDROP_CONFIRM_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The chain's clock: the block time of the newest finalized slot (Unix seconds), `None`
    /// when the node has no time for that block. Key windows are read against block times,
    /// so their bounds are set on this clock too (`domain::anchor_keys::window_bound`).
    pub async fn clock(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, ChainError> {
        let slot = self
            .call("getSlot", |rpc: Arc<RpcClient>| async move {
                rpc.get_slot_with_commitment(CommitmentConfig::finalized())
                    .await
                    .map_err(|e| ChainError::from_client("getSlot", &e))
            })
            .await?;
        let method = "getBlockTime";
        let time = self
            .call(method, |rpc: Arc<RpcClient>| async move {
                match rpc.get_block_time(slot).await {
                    Ok(t) => Ok(Some(t)),
                    // A block without a recorded time (or one the node has pruned): not a
                    // failure, just no clock to read.
                    Err(e) if e.to_string().contains("not available") => Ok(None),
                    Err(e) => Err(ChainError::from_client(method, &e)),
                }
            })
            .await?;
        Ok(time.and_then(|t| chrono::DateTime::from_timestamp(t, 0)))
    }

    /// The base58 genesis hash of the node's cluster: which chain it serves (mainnet, devnet
    /// and testnet have well-known ones; a local validator its own).
    pub async fn genesis_hash(&self) -> Result<String, ChainError> {
        let method = "getGenesisHash";
        self.call(method, |rpc: Arc<RpcClient>| async move {
            rpc.get_genesis_hash()
                .await
                .map(|hash| hash.to_string())
                .map_err(|e| ChainError::from_client(method, &e))
        })
        .await
    }

    /// `Ok` when the node reports itself healthy (caught up with the cluster).
    pub async fn health(&self) -> Result<(), ChainError> {
        let method = "getHealth";
        self.call(method, |rpc: Arc<RpcClient>| async move {
            rpc.get_health()
                .await
                .map_err(|e| ChainError::from_client(method, &e))
        })
        .await
    }

    /// Compute units the anchor transaction for `memo` consumes, measured by
    /// `simulateTransaction` with the maximum limit (so the measurement is not capped by our
    /// own formula). Needs a funded payer: simulation charges the fee payer. Diagnostics and
    /// the test that keeps `compute_unit_limit_for_memo` honest use it.
    pub async fn simulate_memo_compute_units(&self, memo: &str) -> Result<u64, ChainError> {
        let payer = self.payer()?;
        let tx = crate::anchor_tx::sign_memo_transaction_with_limit(
            payer,
            memo,
            // Replaced by the node (`replaceRecentBlockhash`), so any valid hash will do.
            &solana_sdk::hash::Hash::default().to_string(),
            0,
            // A non-zero price, so the measured transaction has every instruction a real one
            // has (the price instruction costs compute units too).
            1,
            MAX_COMPUTE_UNIT_LIMIT,
        )?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&tx.bytes);
        let params = json!([encoded, {
            "encoding": "base64",
            "sigVerify": false,
            "replaceRecentBlockhash": true,
            "commitment": "confirmed",
        }]);
        let method = "simulateTransaction";
        let params = &params;
        let result: solana_client::rpc_response::Response<RpcSimulateTransactionResult> = self
            .call(method, |rpc: Arc<RpcClient>| async move {
                rpc.send(RpcRequest::SimulateTransaction, params.clone())
                    .await
                    .map_err(|e| ChainError::from_client(method, &e))
            })
            .await?;
        let sim = result.value;
        if let Some(err) = sim.err {
            return Err(ChainError::Rpc {
                method,
                kind: RpcFailureKind::TransactionRejected,
                message: format!("simulation failed: {err:?}; logs: {:?}", sim.logs),
            });
        }
        sim.units_consumed.ok_or(ChainError::UnexpectedResponse {
            method,
            detail: "no unitsConsumed in the simulation result".into(),
        })
    }
}

/// `getTransaction` for `signature` at `commitment`, decoded, as a call on one endpoint.
fn get_transaction(
    signature: &str,
    commitment: Commitment,
) -> impl Fn(Arc<RpcClient>) -> BoxedCall<Option<FetchedTx>> {
    let method = "getTransaction";
    // base64: the signed bytes, so the decoder can check the signatures itself.
    let params = json!([signature, {
        "encoding": "base64",
        "commitment": commitment.as_str(),
        "maxSupportedTransactionVersion": 0,
    }]);
    let signature = signature.to_string();
    move |rpc: Arc<RpcClient>| {
        let (params, signature) = (params.clone(), signature.clone());
        Box::pin(async move {
            let raw: Value = rpc
                .send(RpcRequest::GetTransaction, params)
                .await
                .map_err(|e| ChainError::from_client(method, &e))?;
            decode_get_transaction(&signature, raw)
        })
    }
}

/// A call's future, boxed where a function returns the call.
type BoxedCall<T> = std::pin::Pin<Box<dyn Future<Output = Result<T, ChainError>> + Send>>;

/// The status of signature `i` from every answering endpoint's answer, out of `configured`
/// (`rpc_pool::merged_status`): its level and failure from a quorum, its slot and error text
/// from an answer that backs them (slot 0 for a status no answer backs: "seen, unsettled").
fn merge_status(
    answers: &[Vec<Option<SigStatus>>],
    i: usize,
    configured: usize,
) -> Option<SigStatus> {
    let reports: Vec<Option<&SigStatus>> = answers
        .iter()
        .map(|a| a.get(i).and_then(Option::as_ref))
        .collect();
    let votes: Vec<Option<(Confirmation, bool)>> = reports
        .iter()
        .map(|r| r.map(|s| (s.confirmation, s.err.is_some())))
        .collect();
    let (level, failed) = rpc_pool::merged_status(&votes, configured, Confirmation::Processed)?;
    let backing = reports
        .iter()
        .flatten()
        .filter(|s| s.confirmation >= level && s.err.is_some() == failed)
        .min_by_key(|s| s.confirmation);
    Some(SigStatus {
        slot: backing.map_or(0, |s| s.slot),
        confirmation: level,
        err: if failed {
            backing.and_then(|s| s.err.clone())
        } else {
            None
        },
    })
}

/// Answers made comparable: a lagging endpoint may have the transaction only at `confirmed`,
/// so the weaker level of all the answers is the one compared.
fn comparable(
    answers: &[(usize, Option<domain::verdict::SeenTx>)],
) -> Vec<Option<domain::verdict::SeenTx>> {
    let finalized = answers
        .iter()
        .all(|(_, seen)| seen.as_ref().is_none_or(|s| s.finalized));
    answers
        .iter()
        .map(|(_, seen)| {
            seen.clone().map(|mut s| {
                s.finalized = finalized;
                s
            })
        })
        .collect()
}

fn parse_signature(s: &str) -> Result<Signature, ChainError> {
    Signature::from_str(s).map_err(|e| ChainError::InvalidArgument(format!("signature {s:?}: {e}")))
}

fn parse_pubkey(s: &str) -> Result<Pubkey, ChainError> {
    Pubkey::from_str(s).map_err(|e| ChainError::InvalidArgument(format!("address {s:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cluster;
    use domain::retry::ErrorClass;

    fn offline_client() -> ChainClient {
        // Nothing listens on port 9: calls that reach the network fail fast.
        ChainClient::read_only(ChainConfig::new("http://127.0.0.1:9", Cluster::Localnet))
    }

    #[tokio::test]
    async fn read_only_clients_refuse_to_build_or_send() {
        let client = offline_client();
        let err = client.build_memo_transaction("m").await.unwrap_err();
        assert!(matches!(err, ChainError::ReadOnly));
        assert_eq!(err.class(), ErrorClass::Permanent);
        let payer = AnchorKeypair::generate();
        let tx = sign_memo_transaction(
            &payer,
            "m",
            &solana_sdk::hash::Hash::default().to_string(),
            1,
            0,
        )
        .unwrap();
        assert!(matches!(
            client.send_transaction_bytes(&tx.bytes).await,
            Err(ChainError::ReadOnly)
        ));
    }

    #[tokio::test]
    async fn bad_arguments_fail_before_any_rpc() {
        let registry = prometheus::Registry::new();
        let metrics = ChainMetrics::register(&registry).unwrap();
        let client = ChainClient::new(
            ChainConfig::new("http://127.0.0.1:9", Cluster::Localnet),
            AnchorKeypair::generate(),
        )
        .with_metrics(metrics);
        let long = "x".repeat(1_001);
        assert!(matches!(
            client.build_memo_transaction(&long).await,
            Err(ChainError::MemoTooLong { .. })
        ));
        assert!(matches!(
            client.send_transaction_bytes(b"garbage").await,
            Err(ChainError::InvalidTransaction(_))
        ));
        assert!(matches!(
            client.signature_statuses(&["nope".into()]).await,
            Err(ChainError::InvalidArgument(_))
        ));
        assert!(matches!(
            client
                .fetch_transaction("nope", Commitment::Finalized)
                .await,
            Err(ChainError::InvalidArgument(_))
        ));
        let addr = AnchorKeypair::generate().pubkey_base58();
        for limit in [0, 1_001] {
            assert!(matches!(
                client
                    .signatures_for_address(&addr, None, None, limit)
                    .await,
                Err(ChainError::InvalidArgument(_))
            ));
        }
        assert!(matches!(
            client.signatures_for_address("bad", None, None, 10).await,
            Err(ChainError::InvalidArgument(_))
        ));
        assert!(matches!(
            client.balance("bad").await,
            Err(ChainError::InvalidArgument(_))
        ));
        // None of the above reached the network, so nothing was timed.
        assert!(registry.gather().iter().all(|f| f.get_metric().is_empty()));
    }

    #[tokio::test]
    async fn unreachable_node_is_retryable_and_counted() {
        let registry = prometheus::Registry::new();
        let metrics = ChainMetrics::register(&registry).unwrap();
        let client = offline_client().with_metrics(metrics);
        let err = client.block_height().await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
        let err = client.health().await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        assert!(
            text.contains(r#"rpc_errors_total{class="retryable",method="getBlockHeight"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"rpc_request_duration_seconds_count{method="getHealth"} 1"#));
    }

    #[tokio::test]
    async fn mock_rpc_answers_are_decoded() {
        // `RpcClient::new_mock("succeeds")` answers canned values without a network.
        let client = ChainClient::from_rpcs(
            vec![RpcClient::new_mock("succeeds".to_string())],
            ChainConfig::new("mock", Cluster::Localnet),
            Some(AnchorKeypair::generate()),
        );
        let tx = client.build_memo_transaction("ca1:test").await.unwrap();
        // The mock reports recent fees; the price is taken from them, within the cap.
        assert!(tx.compute_unit_price_micro_lamports > 0);
        assert!(
            tx.compute_unit_price_micro_lamports <= client.config().priority_fee_cap_micro_lamports
        );
        assert_eq!(
            tx.compute_unit_limit,
            crate::fees::compute_unit_limit_for_memo(8)
        );
        assert!(client.block_height().await.is_ok());
        assert!(client.health().await.is_ok());
    }

    #[test]
    fn confirmation_levels_are_ordered() {
        assert!(Confirmation::Processed < Confirmation::Confirmed);
        assert!(Confirmation::Confirmed < Confirmation::Finalized);
    }

    #[test]
    fn inline_memos_of_an_address_signature() {
        let s = AddressSignature {
            signature: "s".into(),
            slot: 1,
            err: false,
            memo: Some("[7] ca1:c:x".into()),
            block_time: None,
        };
        assert_eq!(s.inline_memos(), Some(vec!["ca1:c:x".to_string()]));
    }
}
