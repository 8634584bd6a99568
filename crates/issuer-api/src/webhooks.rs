//! The webhook delivery worker (issue #24): at-least-once delivery of the events the V14
//! triggers record, signed as Standard Webhooks.
//!
//! Why in the issuer-api process: the endpoint secrets are sealed under the API's master key,
//! which only this service holds (the relay holds the payer key and nothing of the issuers'),
//! and its replicas already scale with the portal's traffic. Replicas share the work through
//! leases, like the outbox: an endpoint is leased to one worker at a time, which sends at most
//! `concurrency_per_endpoint` requests to it at once, each bounded by `timeout_ms`; endpoints
//! are delivered to by separate tasks, so a receiver that hangs only ever holds its own lease.
//! A worker killed mid-delivery leaves the lease to expire and another (or its restart)
//! delivers again: a duplicate, with the same `webhook-id`.
//!
//! Rules live in `domain::webhook` (signature, retry schedule, outcome, destination policy);
//! this module does the I/O, `store::webhooks` executes its decisions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::webhook::{
    after_attempt, destination, message_id, signature_header, AttemptResult, NextStep, Refusal,
    WebhookSecret,
};
use futures_util::StreamExt as _;
use serde::Deserialize;
use store::webhooks::{DueDelivery, LeasedEndpoint};
use store::Store;
use uuid::Uuid;

use crate::metrics::ApiMetrics;
use crate::signer::Signer;

/// `webhooks.*` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    /// Run the delivery worker in this replica.
    #[serde(default = "default_true")]
    pub worker: bool,
    /// Accept (and deliver to) `http://` URLs. Off in production: tests and the demo only.
    #[serde(default)]
    pub allow_http: bool,
    /// Deliver to loopback, link-local, private and reserved addresses (an on-premises
    /// portal, tests). Off: a registered URL cannot make us call into our own network.
    #[serde(default)]
    pub allow_private: bool,
    /// Whole-request timeout of one attempt (connect, send, answer).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Requests in flight to one endpoint at once.
    #[serde(default = "default_concurrency")]
    pub concurrency_per_endpoint: usize,
    /// Endpoints one replica delivers to at once.
    #[serde(default = "default_endpoints_in_flight")]
    pub endpoints_in_flight: usize,
    /// Endpoints of one issuer leased at once, by all replicas together.
    #[serde(default = "default_endpoints_per_issuer")]
    pub endpoints_per_issuer: usize,
    /// Days a delivered or dead delivery (and then its event) is kept, listed and replayable.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// How often the worker looks for due deliveries.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Multiplies the retry schedule (`domain::webhook::RETRY_SCHEDULE`, about 27.6 h):
    /// 1.0 in production, small in tests. Clamped to 0..=1.
    #[serde(default = "default_retry_scale")]
    pub retry_scale: f64,
    /// How long a rotated-away secret still signs deliveries (default one day).
    #[serde(default = "default_grace_secs")]
    pub rotation_grace_secs: u64,
    /// Bytes of a receiver's answer read at most (the rest is dropped unread).
    #[serde(default = "default_response_limit")]
    pub response_body_limit: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            worker: true,
            allow_http: false,
            allow_private: false,
            timeout_ms: default_timeout_ms(),
            concurrency_per_endpoint: default_concurrency(),
            endpoints_in_flight: default_endpoints_in_flight(),
            endpoints_per_issuer: default_endpoints_per_issuer(),
            retention_days: default_retention_days(),
            poll_ms: default_poll_ms(),
            retry_scale: default_retry_scale(),
            rotation_grace_secs: default_grace_secs(),
            response_body_limit: default_response_limit(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_concurrency() -> usize {
    4
}
fn default_endpoints_in_flight() -> usize {
    32
}
fn default_endpoints_per_issuer() -> usize {
    8
}
fn default_retention_days() -> u32 {
    30
}
fn default_poll_ms() -> u64 {
    500
}
fn default_retry_scale() -> f64 {
    1.0
}
fn default_grace_secs() -> u64 {
    86_400
}
fn default_response_limit() -> usize {
    4_096
}

/// The most a worker keeps an endpoint before giving others a turn.
const MAX_HOLD: Duration = Duration::from_secs(30);
/// What a lease adds to two attempts' timeout.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// How often the oldest-pending gauge is refreshed.
const GAUGE_EVERY: Duration = Duration::from_secs(5);
/// How often old deliveries and events are purged, and how many rows a purge step deletes.
const PURGE_EVERY: Duration = Duration::from_secs(600);
const PURGE_BATCH: i64 = 5_000;

/// The destination policy on every resolved address: a host name that resolves to a
/// refused address is never connected to (checked at connect time, so a name changed after
/// registration, or DNS rebinding, does not get through).
struct GuardedResolver {
    allow_private: bool,
}

/// The name resolved to no address a delivery may reach (or to none at all).
#[derive(Debug, thiserror::Error)]
#[error("destination refused: the host has no public address")]
struct DestinationRefused;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            // A name that does not resolve and one that resolves only to refused addresses
            // get the same answer: a tenant cannot map our internal names through
            // `last_error`.
            let resolved: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await
            {
                Ok(addrs) => addrs.collect(),
                Err(_) => Vec::new(),
            };
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| destination(a.ip(), allow_private).is_ok())
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(DestinationRefused) as _);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client of the worker: no redirects, no proxy from the environment, the guarded
/// resolver, a timeout per attempt.
pub fn http_client(settings: &WebhookSettings) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private: settings.allow_private,
        }))
        .timeout(Duration::from_millis(settings.timeout_ms.max(1)))
        .connect_timeout(Duration::from_millis(settings.timeout_ms.clamp(1, 5_000)))
        .pool_max_idle_per_host(settings.concurrency_per_endpoint.max(1))
        .user_agent("credential-anchor-webhooks/1")
        .build()
}

struct Worker {
    store: Store,
    signer: Arc<Signer>,
    settings: WebhookSettings,
    metrics: Arc<ApiMetrics>,
    client: reqwest::Client,
    name: String,
    lease: Duration,
}

/// Runs the worker forever (spawned by `Application::build` when `webhooks.worker`).
pub async fn run_worker(
    store: Store,
    signer: Arc<Signer>,
    settings: WebhookSettings,
    metrics: Arc<ApiMetrics>,
) {
    let client = match http_client(&settings) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client: no webhook is delivered by this replica");
            return;
        }
    };
    // Two attempts' time and a margin: the lease is extended after every wave, so it only
    // has to outlive one; a killed worker's endpoint is free again this soon.
    let lease = Duration::from_millis(settings.timeout_ms.saturating_mul(2)) + LEASE_MARGIN;
    let worker = Arc::new(Worker {
        name: format!("api-{}-{}", std::process::id(), Uuid::new_v4().simple()),
        store,
        signer,
        metrics,
        client,
        lease,
        settings,
    });
    let mut tick = tokio::time::interval(Duration::from_millis(worker.settings.poll_ms.max(20)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = tokio::task::JoinSet::new();
    let mut busy: HashMap<tokio::task::Id, Uuid> = HashMap::new();
    let mut gauge_at: Option<Instant> = None;
    let mut purge_at: Option<Instant> = None;
    loop {
        tick.tick().await;
        while let Some(done) = tasks.try_join_next_with_id() {
            let id = match done {
                Ok((id, ())) => id,
                Err(e) => {
                    tracing::error!(error = %e, "webhook delivery task ended abnormally");
                    e.id()
                }
            };
            busy.remove(&id);
        }
        if purge_at.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            purge_at = Some(Instant::now());
            purge(&worker).await;
        }
        if gauge_at.is_none_or(|at| at.elapsed() >= GAUGE_EVERY) {
            gauge_at = Some(Instant::now());
            match worker.store.oldest_pending_webhook_age().await {
                Ok(age) => worker.metrics.webhook_oldest_pending.set(age),
                Err(e) => tracing::warn!(error = %e, "cannot read the webhook backlog"),
            }
        }
        let room = worker
            .settings
            .endpoints_in_flight
            .max(1)
            .saturating_sub(busy.len());
        if room == 0 {
            continue;
        }
        let held: Vec<Uuid> = busy.values().copied().collect();
        let claimed = match worker
            .store
            .claim_webhook_endpoints(
                &worker.name,
                worker.lease,
                i64::try_from(room).unwrap_or(i64::MAX),
                i64::try_from(worker.settings.endpoints_per_issuer.max(1)).unwrap_or(i64::MAX),
                &held,
            )
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim webhook endpoints; retrying");
                continue;
            }
        };
        for endpoint in claimed {
            let id = endpoint.id;
            let handle = tasks.spawn(deliver_endpoint(worker.clone(), endpoint));
            busy.insert(handle.id(), id);
        }
    }
}

/// Deletes what is past `retention_days`, a batch at a time (every replica may run it; the
/// deletes are idempotent).
async fn purge(worker: &Worker) {
    let retention = Duration::from_secs(u64::from(worker.settings.retention_days) * 86_400);
    loop {
        match worker
            .store
            .purge_webhook_history(retention, PURGE_BATCH)
            .await
        {
            Ok((deliveries, events)) => {
                if deliveries > 0 || events > 0 {
                    tracing::info!(deliveries, events, "purged webhook history past retention");
                }
                if deliveries < PURGE_BATCH.unsigned_abs() && events < PURGE_BATCH.unsigned_abs() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot purge webhook history; retried later");
                return;
            }
        }
    }
}

/// The endpoint's secrets, opened: the current one, then the previous one in its grace period.
fn open_secrets(worker: &Worker, endpoint: &LeasedEndpoint) -> Option<Vec<WebhookSecret>> {
    let mut secrets = Vec::new();
    for sealed in std::iter::once(&endpoint.secret_sealed).chain(endpoint.previous_sealed.iter()) {
        match worker.signer.open_webhook_secret(&endpoint.id, sealed) {
            Ok(secret) => secrets.push(secret),
            Err(e) => {
                // Wrong master key or a corrupted row: an operator problem. The deliveries
                // wait (the lease expires and they are tried again).
                tracing::error!(endpoint = %endpoint.id, error = %e, "cannot unseal a webhook secret");
                return None;
            }
        }
    }
    Some(secrets)
}

/// Delivers what is due to one leased endpoint, `concurrency_per_endpoint` at a time, until
/// nothing is due, the lease is lost, an answer could not be recorded, or `MAX_HOLD` has
/// passed; then releases it. The endpoint (URL, secrets) is read again with every extension,
/// so a PATCHed URL or a rotated secret applies from the next wave.
async fn deliver_endpoint(worker: Arc<Worker>, mut endpoint: LeasedEndpoint) {
    let started = Instant::now();
    let wave = worker.settings.concurrency_per_endpoint.max(1);
    loop {
        let Some(secrets) = open_secrets(&worker, &endpoint) else {
            return;
        };
        let due = match worker
            .store
            .due_webhook_deliveries(endpoint.id, i64::try_from(wave).unwrap_or(1))
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(endpoint = %endpoint.id, error = %e, "cannot read due webhook deliveries");
                break;
            }
        };
        if due.is_empty() {
            break;
        }
        let recorded: Vec<bool> = futures_util::stream::iter(due)
            .map(|delivery| attempt(&worker, &endpoint, &secrets, delivery))
            .buffer_unordered(wave)
            .collect()
            .await;
        // An answer not recorded leaves its delivery due: sending it again at once, wave
        // after wave, would flood the receiver. Stop; it is retried after a later claim.
        if recorded.contains(&false) || started.elapsed() >= MAX_HOLD {
            break;
        }
        match worker
            .store
            .extend_webhook_lease(endpoint.id, &worker.name, worker.lease)
            .await
        {
            Ok(Some(fresh)) => endpoint = fresh,
            // Lost (disabled by a 410, deleted, or taken after expiry): stop here.
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(endpoint = %endpoint.id, error = %e, "cannot extend a webhook lease");
                return;
            }
        }
    }
    if let Err(e) = worker
        .store
        .release_webhook_endpoint(endpoint.id, &worker.name)
        .await
    {
        tracing::warn!(endpoint = %endpoint.id, error = %e, "cannot release a webhook lease; it expires");
    }
}

/// One attempt: sign now, send, and record what `after_attempt` decides. False when the
/// outcome could not be recorded.
async fn attempt(
    worker: &Worker,
    endpoint: &LeasedEndpoint,
    secrets: &[WebhookSecret],
    delivery: DueDelivery,
) -> bool {
    let id = message_id(delivery.event_id);
    let timestamp = chrono::Utc::now().timestamp();
    let refs: Vec<&WebhookSecret> = secrets.iter().collect();
    let signature = signature_header(&refs, &id, timestamp, delivery.body.as_bytes());
    let (result, status, note) =
        send(worker, endpoint, &id, timestamp, &signature, delivery.body).await;
    let attempts = u32::try_from(delivery.attempts)
        .unwrap_or(0)
        .saturating_add(1);
    let jitter = f64::from(rand_u16()) / f64::from(u16::MAX);
    let step = after_attempt(result, attempts, jitter, worker.settings.retry_scale);
    let label = match (result, step) {
        (_, NextStep::Delivered) => "delivered",
        (_, NextStep::Gone) => "gone",
        (_, NextStep::DeadLetter) => "failed",
        (AttemptResult::Refused, NextStep::RetryIn(_)) => "refused",
        (_, NextStep::RetryIn(_)) => "retrying",
    };
    worker
        .metrics
        .webhook_deliveries
        .with_label_values(&[label])
        .inc();
    if step != NextStep::Delivered {
        tracing::info!(endpoint = %endpoint.id, issuer = %endpoint.issuer, delivery = delivery.id, webhook_id = %id, result = label, status, note = note.as_deref().unwrap_or(""), "webhook not delivered");
    }
    match worker
        .store
        .record_webhook_attempt(
            delivery.id,
            delivery.attempts,
            endpoint.id,
            step,
            status,
            note.as_deref(),
        )
        .await
    {
        Ok(()) => true,
        Err(e) => {
            // Not recorded: due again after a later claim (a duplicate, same id).
            tracing::warn!(delivery = delivery.id, error = %e, "cannot record a webhook attempt");
            false
        }
    }
}

fn rand_u16() -> u16 {
    let mut b = [0u8; 2];
    // A failing system RNG only loses the jitter.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u16::from_le_bytes(b)
}

/// Whether the URL may be called now (the settings may have changed since it was registered;
/// an IP literal is never resolved, so the policy is applied here).
fn url_allowed(url: &reqwest::Url, settings: &WebhookSettings) -> Result<(), &'static str> {
    match url.scheme() {
        "https" => {}
        "http" if settings.allow_http => {}
        _ => return Err("scheme"),
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => std::net::IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => std::net::IpAddr::V6(v6),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err("no host"),
    };
    destination(ip, settings.allow_private).map_err(Refusal::as_str)
}

async fn send(
    worker: &Worker,
    endpoint: &LeasedEndpoint,
    id: &str,
    timestamp: i64,
    signature: &str,
    body: String,
) -> (AttemptResult, Option<u16>, Option<String>) {
    let url = match reqwest::Url::parse(&endpoint.url) {
        Ok(url) => url,
        Err(_) => return (AttemptResult::Refused, None, Some("invalid URL".into())),
    };
    if let Err(why) = url_allowed(&url, &worker.settings) {
        return (
            AttemptResult::Refused,
            None,
            Some(format!("destination refused: {why}")),
        );
    }
    let sent = worker
        .client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(e) => return classify(&e),
    };
    let status = response.status().as_u16();
    // Read a little of the answer for the issuer's diagnostics, never all of it.
    let mut snippet = Vec::new();
    let limit = worker.settings.response_body_limit;
    while snippet.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(limit - snippet.len());
                snippet.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    drop(response);
    let note = (!snippet.is_empty()).then(|| String::from_utf8_lossy(&snippet).into_owned());
    (AttemptResult::Answered(status), Some(status), note)
}

fn classify(e: &reqwest::Error) -> (AttemptResult, Option<u16>, Option<String>) {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<DestinationRefused>() {
            return (AttemptResult::Refused, None, Some(refused.to_string()));
        }
        source = err.source();
    }
    if e.is_timeout() {
        (AttemptResult::TimedOut, None, Some("timed out".into()))
    } else {
        // Without the URL: a query string may carry the portal's own token, and this text
        // is logged and shown in the deliveries list.
        let mut text = "request failed".to_string();
        let mut source = std::error::Error::source(e);
        while let Some(err) = source {
            text = format!("{text}: {err}");
            source = err.source();
        }
        (AttemptResult::Unreachable, None, Some(text))
    }
}
