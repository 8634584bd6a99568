//! One relay pass: claim due jobs, ask the chain about their live transactions, and advance
//! each job by exactly one step chosen by `domain::anchoring::next_anchor_step`.
//!
//! Every step is short (a few RPC calls) and ends by releasing the lease with the time the job
//! is next due, so no lease is held while waiting for finality and a crashed relay's jobs come
//! back after `lease_ms`. Tests drive [`Relay::run_pass`] directly.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chain::{ChainClient, ChainError, Confirmation};
use domain::anchoring::{next_anchor_step, recheck_after, AnchorStep, ChainTxState, LiveTx};
use domain::batching::MAX_BATCH_MEMBERS;
use domain::spend::{add_spend, budget_used, check_spend, SpendBudget, SpendDecision, Spent};
use domain::{
    AnchorTxEvent, AnchorTxStatus, AnchoringMode, ErrorClass, IssuerId, RetryDecision, RetryPolicy,
};
use futures_util::StreamExt;
use store::outbox::{ClaimedJob, Fenced, JobKey, LiveAnchorTx, NewAnchorTx};
use store::{Store, StoreError};

use crate::metrics::RelayMetrics;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A test failpoint simulating the process dying here: nothing more is written, the
    /// lease is not released.
    #[error("simulated crash at {0}")]
    Crash(&'static str),
    /// The anchoring key cannot pay: an operator must fund it. Retryable, so a short dip
    /// does not dead-letter a graduation day's worth of credentials at once.
    #[error(
        "anchoring key balance {balance} lamports is below the fee of {needed} lamports: fund it"
    )]
    InsufficientFunds { balance: u64, needed: u64 },
    /// This relay's keypair is not the issuer's active anchoring key (a rotation happened, or
    /// the wrong Secret is mounted): anything it paid for would not be trusted, so it signs
    /// nothing for that issuer. Retryable: deploying the right key resumes the jobs.
    #[error(
        "issuer {issuer} anchors with {active}, this relay holds {payer}: mount the issuer's active anchoring key"
    )]
    NotTheActiveAnchorKey {
        issuer: String,
        active: String,
        payer: String,
    },
}

impl StepError {
    fn class(&self) -> ErrorClass {
        match self {
            StepError::Chain(e) => e.class(),
            // Database trouble is transient from the job's point of view.
            StepError::Store(_)
            | StepError::Crash(_)
            | StepError::InsufficientFunds { .. }
            | StepError::NotTheActiveAnchorKey { .. } => ErrorClass::Retryable,
        }
    }
}

/// What one pass reads at most once, shared by its jobs.
#[derive(Default)]
struct PassContext {
    payer_balance: tokio::sync::OnceCell<u64>,
    /// Each issuer's spend, read once per pass and grown by every transaction the pass
    /// signs; behind a lock so concurrent jobs of one issuer cannot both take the last room.
    spent: tokio::sync::Mutex<HashMap<IssuerId, Spent>>,
}

/// Tunables of a pass.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub worker: String,
    pub claim_size: u32,
    pub concurrency: usize,
    pub lease: Duration,
    pub track_interval: Duration,
    /// After a first confirmation, wait this long before the next check (finality ~13 s).
    pub finality_hint: Duration,
    pub retry: RetryPolicy,
    /// Mode of issuers without their own.
    pub mode: AnchoringMode,
    pub batch_max_members: u32,
    pub batch_max_wait: Duration,
    /// Lamports each issuer may spend per hour and per day (0: no limit).
    pub spend: SpendBudget,
    /// How long a job over its issuer's budget waits before it is looked at again.
    pub spend_retry: Duration,
}

#[derive(Clone)]
pub struct Relay {
    store: Store,
    chain: ChainClient,
    config: RelayConfig,
    metrics: RelayMetrics,
    /// Issuers with a `relay_spend_budget_used_ratio` series (`refresh_spend`).
    spend_series: std::sync::Arc<std::sync::Mutex<Vec<IssuerId>>>,
}

impl Relay {
    pub fn new(
        store: Store,
        chain: ChainClient,
        config: RelayConfig,
        metrics: RelayMetrics,
    ) -> Self {
        Self {
            store,
            chain,
            config,
            metrics,
            spend_series: Default::default(),
        }
    }

    pub fn worker(&self) -> &str {
        &self.config.worker
    }

    pub fn claim_size(&self) -> u32 {
        self.config.claim_size
    }

    /// Records a pass that completed without error (the last-success gauge).
    pub fn mark_success(&self) {
        self.metrics.last_success.set(chrono_now() as f64 / 1000.0);
    }

    /// Seals due Merkle batches, then claims up to `claim_size` due jobs (single-mode
    /// credentials, sealed batches and status list versions) and advances each one step. Returns how many jobs
    /// were claimed (a full claim means more may be due right away).
    ///
    /// A sealing error does not stop the pass: single-mode credentials, revocations and
    /// batches sealed earlier are still anchored, and sealing is retried next pass (the error
    /// is returned at the end, so the pass is not counted a success). An error after jobs
    /// were claimed backs every claimed job off (recorded failure, jittered delay) instead of
    /// leaving it leased until `lease_ms` runs out.
    pub async fn run_pass(&self) -> Result<usize, StepError> {
        let started = Instant::now();
        let sealing = self.seal_batches().await;
        if let Err(e) = &sealing {
            tracing::warn!(error = %e, "sealing Merkle batches or revocation lists failed; anchoring what is due anyway");
        }
        let mut jobs = self
            .store
            .claim_due_outbox_rows(
                &self.config.worker,
                self.config.claim_size,
                self.config.lease,
                self.config.mode.as_str(),
            )
            .await?;
        let batches = self
            .store
            .claim_due_batches(
                &self.config.worker,
                self.config.claim_size,
                self.config.lease,
            )
            .await;
        match batches {
            Ok(batches) => jobs.extend(batches),
            Err(e) => return Err(self.back_off_all(&jobs, e.into()).await),
        }
        // Status list versions (issue #20): anchored exactly like a batch, one `ca1:s` memo.
        let lists = self
            .store
            .claim_due_status_lists(
                &self.config.worker,
                self.config.claim_size,
                self.config.lease,
            )
            .await;
        match lists {
            Ok(lists) => jobs.extend(lists),
            Err(e) => return Err(self.back_off_all(&jobs, e.into()).await),
        }
        // Revocation lists of Merkle-mode issuers (issue #18): one `ca1:v` memo each.
        let revocation_lists = self
            .store
            .claim_due_revocation_lists(
                &self.config.worker,
                self.config.claim_size,
                self.config.lease,
            )
            .await;
        match revocation_lists {
            Ok(lists) => jobs.extend(lists),
            Err(e) => return Err(self.back_off_all(&jobs, e.into()).await),
        }
        if jobs.is_empty() {
            return sealing.map(|()| 0);
        }
        fail::fail_point!("relay::after_claim", |arg| crash("after_claim", arg)
            .map(|()| 0));
        let claimed = jobs.len();
        let ids: Vec<JobKey> = jobs.iter().map(|j| j.key).collect();
        let mut live: HashMap<JobKey, LiveAnchorTx> = match self.store.live_anchor_txs(&ids).await {
            Ok(live) => live.into_iter().collect(),
            Err(e) => return Err(self.back_off_all(&jobs, e.into()).await),
        };

        // One status call for the whole batch, then the finalized height AFTER it: if a
        // signature is unknown and the finalized height is already past its last valid
        // height, the transaction can no longer land.
        let signatures: Vec<String> = live.values().map(|t| t.signature.clone()).collect();
        let mut states: HashMap<String, ChainTxState> = HashMap::new();
        let mut finalized_height = 0;
        if !signatures.is_empty() {
            match self.chain_view(&signatures).await {
                Ok((s, h)) => {
                    states = s;
                    finalized_height = h;
                }
                // Without the chain's view no step is safe: back off every job.
                Err(e) => return Err(self.back_off_all(&jobs, StepError::Chain(e)).await),
            }
        }

        let pass = PassContext::default();
        let pass = &pass;
        let work = jobs.into_iter().map(|job| {
            let live_tx = live.remove(&job.key);
            let state = live_tx
                .as_ref()
                .and_then(|t| states.get(&t.signature).cloned())
                .unwrap_or(ChainTxState::NotFound);
            async move {
                let step = next_anchor_step(
                    live_tx.as_ref().map(|t| LiveTx {
                        last_valid_block_height: t.last_valid_block_height,
                    }),
                    &state,
                    finalized_height,
                );
                self.metrics
                    .steps
                    .with_label_values(&[step_name(&step)])
                    .inc();
                match self.advance(&job, live_tx.as_ref(), step, pass).await {
                    Ok(()) => {}
                    Err(StepError::Crash(at)) => {
                        tracing::warn!(job = %job.key, at, "simulated crash");
                    }
                    Err(e) => self.fail_step(&job, &e).await,
                }
            }
        });
        futures_util::stream::iter(work)
            .buffer_unordered(self.config.concurrency.max(1))
            .collect::<Vec<()>>()
            .await;
        self.metrics
            .pass_duration
            .observe(started.elapsed().as_secs_f64());
        sealing.map(|()| claimed)
    }

    /// Backs off every claimed job after an error that stops the pass, and returns the error.
    async fn back_off_all(&self, jobs: &[ClaimedJob], error: StepError) -> StepError {
        for job in jobs {
            self.fail_step(job, &error).await;
        }
        error
    }

    /// Seals every Merkle batch that is due (full, or its oldest member waited
    /// `batch_max_wait`) for issuers in merkle mode. Sealing fixes members and root in one
    /// commit; anchoring the batch is then an ordinary job.
    /// Seals due Merkle batches, then due revocation lists. Each sealer runs whatever the
    /// other did: a batch that cannot be sealed does not hold up revocations (or the reverse);
    /// the first error is returned.
    async fn seal_batches(&self) -> Result<(), StepError> {
        let batches = self.seal_credential_batches().await;
        let lists = self.seal_revocation_lists().await;
        batches.and(lists)
    }

    async fn seal_credential_batches(&self) -> Result<(), StepError> {
        let max = self.config.batch_max_members.clamp(1, MAX_BATCH_MEMBERS);
        for issuer in self.store.issuers_with_unbatched(self.config.mode).await? {
            while let Some(batch) = self
                .store
                .seal_due_batch(&issuer, max, self.config.batch_max_wait)
                .await?
            {
                // The batch and its members are committed; nothing of it is anchored yet.
                fail::fail_point!("relay::after_seal", |arg| crash("after_seal", arg));
                self.metrics.batches_sealed.inc();
                self.metrics
                    .credentials_batched
                    .inc_by(u64::from(batch.members));
                tracing::info!(batch_id = %batch.id, issuer = %batch.issuer, members = batch.members, root = %batch.root.to_hex(), "Merkle batch sealed");
                if batch.members < max {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Revocations of Merkle-mode issuers, up to ten per `ca1:v` list (issue #18).
    async fn seal_revocation_lists(&self) -> Result<(), StepError> {
        for issuer in self
            .store
            .issuers_with_unsealed_revocations(self.config.mode)
            .await?
        {
            while let Some(list) = self
                .store
                .seal_due_revocation_list(&issuer, self.config.batch_max_wait)
                .await?
            {
                // The list and its members are committed; nothing of it is anchored yet.
                fail::fail_point!("relay::after_seal_revocations", |arg| crash(
                    "after_seal_revocations",
                    arg
                ));
                self.metrics.revocation_lists_sealed.inc();
                tracing::info!(list_id = %list.id, issuer = %list.issuer, members = list.members, "revocation list sealed");
                if (list.members as usize) < domain::MAX_REVOCATIONS_PER_MEMO {
                    break;
                }
            }
        }
        Ok(())
    }

    async fn chain_view(
        &self,
        signatures: &[String],
    ) -> Result<(HashMap<String, ChainTxState>, u64), ChainError> {
        let statuses = self.chain.signature_statuses(signatures).await?;
        let height = self.chain.finalized_block_height().await?;
        let states = signatures
            .iter()
            .zip(statuses)
            .map(|(sig, status)| {
                let state = match status {
                    None => ChainTxState::NotFound,
                    Some(s) => match (s.err, s.confirmation) {
                        (Some(error), c) => ChainTxState::Failed {
                            error,
                            finalized: c == Confirmation::Finalized,
                        },
                        (None, Confirmation::Processed) => ChainTxState::Processed { slot: s.slot },
                        (None, Confirmation::Confirmed) => ChainTxState::Confirmed { slot: s.slot },
                        (None, Confirmation::Finalized) => ChainTxState::Finalized { slot: s.slot },
                    },
                };
                (sig.clone(), state)
            })
            .collect();
        Ok((states, height))
    }

    async fn advance(
        &self,
        job: &ClaimedJob,
        live: Option<&LiveAnchorTx>,
        step: AnchorStep,
        pass: &PassContext,
    ) -> Result<(), StepError> {
        let fence = job.fence(&self.config.worker);
        let track = self.config.track_interval;
        match (step, live) {
            (AnchorStep::SignAndSend, _) => self.sign_and_send(job, None, None, pass).await,
            (AnchorStep::ExpireAndResign, Some(tx)) => {
                tracing::info!(job = %job.key, signature = %tx.signature, "blockhash expired and never landed: re-signing");
                // Counted as a failure: a key that cannot get transactions landed must not
                // loop silently forever.
                self.sign_and_send(
                    job,
                    Some((&tx.signature, AnchorTxEvent::Expired, None)),
                    Some("previous anchor transaction expired without landing"),
                    pass,
                )
                .await
            }
            (AnchorStep::RecordFailureAndResign { error }, Some(tx)) => {
                tracing::warn!(job = %job.key, signature = %tx.signature, %error, "anchor transaction failed on chain: re-signing");
                self.sign_and_send(
                    job,
                    Some((&tx.signature, AnchorTxEvent::Failed, Some(&error))),
                    Some(&error),
                    pass,
                )
                .await
            }
            (AnchorStep::Rebroadcast, Some(tx)) => {
                self.chain.send_transaction_bytes(&tx.tx_bytes).await?;
                self.metrics.rebroadcasts.inc();
                self.store.mark_tx_sent(&tx.signature).await?;
                self.release(job, track, None).await
            }
            (AnchorStep::Wait, _) => self.release(job, track, None).await,
            (AnchorStep::MarkConfirmed { slot }, Some(tx)) => {
                self.store
                    .mark_tx_confirmed(job.key, &tx.signature, slot)
                    .await?;
                let delay = recheck_after(
                    &AnchorStep::MarkConfirmed { slot },
                    tx.status == AnchorTxStatus::Confirmed,
                    track,
                    self.config.finality_hint,
                );
                self.release(job, delay, None).await
            }
            (AnchorStep::Finalize { slot }, Some(tx)) => {
                fail::fail_point!("relay::before_finalize", |arg| crash(
                    "before_finalize",
                    arg
                ));
                let done = self
                    .store
                    .complete_finalized(fence, &tx.signature, slot)
                    .await?;
                if let Some(ages) = done {
                    for age in &ages {
                        self.metrics.end_to_end.observe(age.max(0.0));
                    }
                    self.metrics.lamports_spent.inc_by(tx.fee_lamports);
                    tracing::info!(job = %job.key, signature = %tx.signature, slot, credentials = ages.len(), "anchor finalized");
                }
                Ok(())
            }
            // A step that needs a live transaction without one cannot come out of
            // next_anchor_step; treat it as "sign" defensively rather than panic.
            (_, None) => self.sign_and_send(job, None, None, pass).await,
        }
    }

    /// Build, sign, STORE, then send. The store step is fenced and unique per job, so if
    /// another worker got there first nothing is sent.
    async fn sign_and_send(
        &self,
        job: &ClaimedJob,
        retire: Option<(&str, AnchorTxEvent, Option<&str>)>,
        note: Option<&str>,
        pass: &PassContext,
    ) -> Result<(), StepError> {
        let memo = job.memo()?;
        let payer = self.chain.payer_pubkey();
        // Only the issuer's active anchoring key may pay: a memo paid by any other key (a
        // retired one above all) would never be trusted by a verifier or the reconciler.
        let issuer = memo.issuer().clone();
        let active = self.store.active_anchor_key(&issuer).await?;
        if let (Some(payer), active) = (payer.as_deref(), active) {
            if active.as_deref() != Some(payer) {
                return Err(StepError::NotTheActiveAnchorKey {
                    issuer: issuer.as_str().to_string(),
                    active: active.unwrap_or_else(|| "no key".into()),
                    payer: payer.to_string(),
                });
            }
        }
        let memo = memo.encode();
        let tx = self.chain.build_memo_transaction(&memo).await?;
        if let Some(reason) = self
            .reserve_spend(&issuer, tx.fee_lamports_estimate(), pass)
            .await?
        {
            // Deferred, not failed: the job keeps its place and never nears dead-lettering.
            self.metrics
                .spend_deferrals
                .with_label_values(&[issuer.as_str()])
                .inc();
            tracing::warn!(job = %job.key, issuer = %issuer, %reason, "issuer over its spend budget: deferring");
            self.store
                .defer_job(
                    job.fence(&self.config.worker),
                    self.config.spend_retry,
                    &reason,
                )
                .await?;
            return Ok(());
        }
        // With preflight skipped (rebroadcasts must be harmless), an unfunded payer's
        // transaction would be silently dropped: check the balance so the failure is visible.
        // Read once per pass, not per send: it only has to catch an empty or nearly empty key.
        if let Some(payer) = payer.clone() {
            let balance = *pass
                .payer_balance
                .get_or_try_init(|| self.chain.balance(&payer))
                .await?;
            let needed = tx.fee_lamports_estimate();
            if balance < needed {
                return Err(StepError::InsufficientFunds { balance, needed });
            }
        }
        fail::fail_point!("relay::before_persist", |arg| crash("before_persist", arg));
        let stored = self
            .store
            .record_signed_tx(
                job.fence(&self.config.worker),
                &NewAnchorTx {
                    signature: &tx.signature,
                    memo: &memo,
                    tx_bytes: &tx.bytes,
                    last_valid_block_height: tx.last_valid_block_height,
                    fee_lamports: tx.fee_lamports_estimate(),
                    payer: payer.as_deref(),
                },
                retire,
            )
            .await?;
        if stored == Fenced::LostLease {
            tracing::info!(job = %job.key, "lease lost before storing the transaction; not sending");
            return Ok(());
        }
        fail::fail_point!("relay::after_persist", |arg| crash("after_persist", arg));
        match self.chain.send_transaction_bytes(&tx.bytes).await {
            Ok(_) => self.metrics.sends.with_label_values(&["ok"]).inc(),
            Err(e) => {
                self.metrics.sends.with_label_values(&["error"]).inc();
                return Err(e.into());
            }
        }
        fail::fail_point!("relay::after_send", |arg| crash("after_send", arg));
        self.store.mark_tx_sent(&tx.signature).await?;
        tracing::info!(job = %job.key, signature = %tx.signature, "anchor transaction sent");
        self.release(job, self.config.track_interval, note).await
    }

    /// Takes `cost` from `issuer`'s budget for a new transaction, or says why it does not
    /// fit (`domain::spend`). Nothing is read when no budget is set.
    async fn reserve_spend(
        &self,
        issuer: &IssuerId,
        cost: u64,
        pass: &PassContext,
    ) -> Result<Option<String>, StepError> {
        let budget = self.config.spend;
        if budget == SpendBudget::default() {
            return Ok(None);
        }
        let mut spent = pass.spent.lock().await;
        let current = match spent.get(issuer) {
            Some(s) => *s,
            None => {
                let s = self.store.lamports_spent(issuer).await?;
                spent.insert(issuer.clone(), s);
                s
            }
        };
        Ok(match check_spend(budget, current, cost) {
            SpendDecision::Within => {
                spent.insert(issuer.clone(), add_spend(current, cost));
                None
            }
            SpendDecision::OverHourly { spent, budget } => Some(format!(
                "deferred: spend budget: {spent} of {budget} lamports used in the last hour"
            )),
            SpendDecision::OverDaily { spent, budget } => Some(format!(
                "deferred: spend budget: {spent} of {budget} lamports used in the last day"
            )),
        })
    }

    async fn release(
        &self,
        job: &ClaimedJob,
        delay: Duration,
        error: Option<&str>,
    ) -> Result<(), StepError> {
        self.store
            .release_job(job.fence(&self.config.worker), delay, error)
            .await?;
        Ok(())
    }

    /// A failed step: back off with full jitter, or dead-letter after the retry budget.
    async fn fail_step(&self, job: &ClaimedJob, error: &StepError) {
        self.fail_step_as(job, error, error.class()).await
    }

    async fn fail_step_as(&self, job: &ClaimedJob, error: &StepError, class: ErrorClass) {
        let failures = u32::try_from(job.failures).unwrap_or(0).saturating_add(1);
        let message = error.to_string();
        let decision = self.config.retry.decide(failures, class, fastrand::f64());
        let result = match decision {
            RetryDecision::RetryAfter(delay) => {
                tracing::warn!(job = %job.key, failures, delay_ms = delay.as_millis() as u64, error = %message, "step failed; backing off");
                self.store
                    .release_job(job.fence(&self.config.worker), delay, Some(&message))
                    .await
            }
            RetryDecision::DeadLetter => {
                tracing::error!(job = %job.key, failures, error = %message, "dead-lettering job");
                let r = self
                    .store
                    .dead_letter(job.fence(&self.config.worker), &message)
                    .await;
                if matches!(r, Ok(Fenced::Done)) {
                    self.metrics.dead_letters.inc();
                }
                r
            }
        };
        if let Err(e) = result {
            // The lease will expire and the job come back: nothing is lost.
            tracing::warn!(job = %job.key, error = %e, "could not record step failure");
        }
    }

    /// Refreshes the backlog gauges.
    pub async fn refresh_backlog(&self) -> Result<(), StoreError> {
        let b = self.store.outbox_backlog().await?;
        self.metrics
            .backlog
            .set(b.pending, b.dead, b.oldest_pending_age_seconds);
        Ok(())
    }

    /// With a spend budget set, every issuer's used share of it
    /// (`relay_spend_budget_used_ratio`, `domain::spend::budget_used`): read from the database
    /// on a timer of its own, not from the passes, so the share falls as spending leaves the
    /// window even when the issuer sends nothing. Every issuer has a series (0 when it spent
    /// nothing), overwritten, never reset (a scrape in between would see none); a deleted
    /// issuer's is removed.
    pub async fn refresh_spend(&self) -> Result<(), StoreError> {
        let budget = self.config.spend;
        if budget == SpendBudget::default() {
            return Ok(());
        }
        let spent = self.store.lamports_spent_by_issuer().await?;
        let gauge = &self.metrics.spend_budget_used;
        for (issuer, s) in &spent {
            for (window, share) in budget_used(budget, *s) {
                gauge
                    .with_label_values(&[issuer.as_str(), window])
                    .set(share);
            }
        }
        if let Ok(mut series) = self.spend_series.lock() {
            for gone in series
                .iter()
                .filter(|i| !spent.iter().any(|(s, _)| s == *i))
            {
                for window in ["hour", "day"] {
                    let _ = gauge.remove_label_values(&[gone.as_str(), window]);
                }
            }
            *series = spent.into_iter().map(|(issuer, _)| issuer).collect();
        }
        Ok(())
    }
}

/// A failpoint fired: `return(kill)` SIGKILLs the process right here (the crash suite);
/// plain `return` simulates the crash in-process as an early error, which the pass logs and
/// leaves to the lease to clean up, exactly as it would a dead worker.
// Unused in builds without failpoints (the macro expands to nothing there).
#[allow(dead_code)]
fn crash(at: &'static str, arg: Option<String>) -> Result<(), StepError> {
    crashpoint::hit(arg.as_deref());
    Err(StepError::Crash(at))
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn step_name(step: &AnchorStep) -> &'static str {
    match step {
        AnchorStep::SignAndSend => "sign_and_send",
        AnchorStep::Rebroadcast => "rebroadcast",
        AnchorStep::ExpireAndResign => "expire_and_resign",
        AnchorStep::RecordFailureAndResign { .. } => "failed_and_resign",
        AnchorStep::Wait => "wait",
        AnchorStep::MarkConfirmed { .. } => "confirmed",
        AnchorStep::Finalize { .. } => "finalize",
    }
}
