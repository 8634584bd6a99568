//! One reconciliation run: page each anchoring key's finalized history, classify every
//! transaction that carries a memo of ours (`domain::reconcile`), apply trusted anchors to
//! PostgreSQL (`store::reconcile`), then the trusted revocations (a restore loses those too),
//! then ask the chain about rows that claim an anchor.
//!
//! Only one run at a time does work: the run holds a PostgreSQL advisory lock, so two
//! replicas (or an operator's `run-once` next to the loop) cannot interleave repairs. Every
//! repair is idempotent anyway, so a run cut short is simply repeated by the next one.

use std::str::FromStr;
use std::time::{Duration, Instant};

use chain::{AddressSignature, ChainClient, Commitment, FetchedTx};
use chrono::{DateTime, Utc};
use domain::memo::{decode_rpc_memo_field, Memo};
use domain::reconcile::{
    check_recorded_anchor, classify, decide_anchor, decide_batch, decide_revocation,
    decide_status_version, records_exactly, AnchorVerdict, CredentialClaim, ObservedAnchor,
    RecordedCredential, Repair, SignatureOnChain,
};
use domain::CredentialId;
use futures_util::{StreamExt, TryStreamExt};
use store::reconcile::{
    AnchorKey, Executed, FindingKind, NewFinding, TrustedAnchor, TrustedBatch, TrustedRevocation,
    TrustedStatusList,
};
use store::Store;

use crate::metrics::ReconcilerMetrics;

/// `getSignaturesForAddress` maximum page size.
pub const PAGE_SIZE: usize = 1_000;
/// `getTransaction` calls in flight per page: enough to hide RPC latency, few enough not to
/// be rate limited by a public endpoint.
const FETCH_CONCURRENCY: usize = 32;
/// Tries for a history entry the node lists at finalized but does not return yet, waiting
/// `UNRETRIEVABLE_BACKOFF` × the try number before each: about 10 s in all.
const UNRETRIEVABLE_RETRIES: u32 = 6;
const UNRETRIEVABLE_BACKOFF: Duration = Duration::from_millis(500);

/// How far back a run looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Transactions whose block time is within this long before now.
    Window(Duration),
    /// Transactions at or after this slot.
    Slot(u64),
}

impl FromStr for Since {
    type Err = String;

    /// `90s`, `30m`, `1h`, `2d`, or `slot N` / `slot:N` / `slot=N`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("slot") {
            let digits = rest.trim_start_matches([' ', ':', '=']);
            return digits
                .parse()
                .map(Since::Slot)
                .map_err(|_| format!("invalid slot in {text:?}"));
        }
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("{text:?} lacks a unit (s, m, h, d)"))?;
        let (number, unit) = text.split_at(split);
        let n: u64 = number
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        let secs = match unit {
            "s" => n,
            "m" => n.saturating_mul(60),
            "h" => n.saturating_mul(3_600),
            "d" => n.saturating_mul(86_400),
            _ => return Err(format!("unknown unit {unit:?} in {text:?} (s, m, h, d)")),
        };
        Ok(Since::Window(Duration::from_secs(secs)))
    }
}

/// Where a fetched transaction landed.
struct Landed<'a> {
    signature: &'a str,
    slot: u64,
    block_time: Option<DateTime<Utc>>,
}

/// A trusted revocation memo seen during the scan, applied once every anchor is.
#[derive(Debug, Clone)]
struct DeferredRevocation {
    issuer: domain::IssuerId,
    credential: CredentialId,
    hash: domain::hash::CredentialHash,
    /// The `ca1:v` list it came from (`None`: a `ca1:r` memo).
    list: Option<domain::BatchId>,
    signature: String,
    slot: u64,
    block_time: Option<DateTime<Utc>>,
}

/// What one run saw and did (`run-once` prints it as JSON for scripts and runbooks).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunReport {
    /// Another reconciler held the lock: this run did nothing.
    pub skipped: bool,
    pub keys: usize,
    pub pages: u64,
    pub transactions: u64,
    /// Transactions fetched because their memo hint was ours.
    pub fetched: u64,
    pub finalized: u64,
    pub backfilled: u64,
    pub forged: u64,
    /// Memos paid by an issuer's anchoring key after the issuer retired it (never trusted).
    pub retired_key: u64,
    /// Stored anchoring keys that are not valid public keys: skipped, the others scanned.
    pub malformed_keys: u64,
    pub failed: u64,
    pub drift: u64,
    /// Rows already in agreement with the chain.
    pub consistent: u64,
    /// History entries the node listed at finalized but did not return at first: asked
    /// again (the run's `elapsed_ms` includes those waits, at least 0.5 s).
    pub retried: u64,
    /// Of those, the ones still not returned after `UNRETRIEVABLE_RETRIES` tries: nothing
    /// was decided for them.
    pub unretrievable: u64,
    /// Revocations finalized or rebuilt from their `ca1:r` memo or `ca1:v` list entry (not in `finalized` or
    /// `backfilled`, which count credentials and batches).
    pub revocations: u64,
    /// Status list versions finalized or rebuilt from their `ca1:s` memo.
    pub status_lists: u64,
    /// Lists whose newest servable version is behind the newest anchored one (a
    /// `status_list_stale` finding each; the publisher catches up after a restore).
    pub stale_status_lists: u64,
    pub elapsed_ms: u128,
}

#[derive(Clone)]
pub struct Reconciler {
    store: Store,
    chain: ChainClient,
    metrics: ReconcilerMetrics,
}

impl Reconciler {
    pub fn new(store: Store, chain: ChainClient, metrics: ReconcilerMetrics) -> Self {
        Self {
            store,
            chain,
            metrics,
        }
    }

    pub fn metrics(&self) -> &ReconcilerMetrics {
        &self.metrics
    }

    /// One run over `since`. With `use_checkpoints`, each key's scan also stops at the
    /// newest signature a previous run saw (the loop); without, the whole window is
    /// re-examined (an operator's `run-once`).
    pub async fn run_once(&self, since: Since, use_checkpoints: bool) -> anyhow::Result<RunReport> {
        let started = Instant::now();
        let Some(_lock) = self.store.try_reconciler_lock().await? else {
            tracing::info!("another reconciler is running: skipping this run");
            return Ok(RunReport {
                skipped: true,
                ..RunReport::default()
            });
        };
        // Tests hold the lock a while here to make two runs overlap deterministically.
        if let Some(ms) = held_lock_ms() {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let mut report = RunReport::default();
        let (cutoff, min_slot) = match since {
            Since::Window(d) => (
                Some(Utc::now() - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)),
                None,
            ),
            Since::Slot(s) => (None, Some(s)),
        };
        let keys = self.store.anchor_keys().await?;
        report.keys = keys.len();
        let mut revocations = Vec::new();
        let mut checkpoints = Vec::new();
        for key in &keys {
            // One bad key (written before keys were validated, or by hand) must not stop the
            // scan of every other issuer's key: it is recorded and skipped.
            if let Err(e) = domain::anchor_keys::parse_anchor_pubkey(&key.pubkey) {
                report.malformed_keys += 1;
                tracing::error!(anchor_pubkey = %key.pubkey, error = %e, "anchoring key cannot be scanned");
                let issuers: Vec<&str> = key.holders.iter().map(|h| h.issuer.as_str()).collect();
                let new = self
                    .store
                    .record_finding(&NewFinding {
                        kind: FindingKind::MalformedKey,
                        // No transaction: the key itself is the subject (one finding per key).
                        signature: &key.pubkey,
                        slot: None,
                        credential: None,
                        issuer: issuers.first().copied(),
                        detail: &format!("{e}; held by {}", issuers.join(", ")),
                    })
                    .await?;
                self.count(FindingKind::MalformedKey, new);
                continue;
            }
            if let Some(newest) = self
                .scan_key(
                    key,
                    cutoff,
                    min_slot,
                    use_checkpoints,
                    &mut revocations,
                    &mut report,
                )
                .await?
            {
                checkpoints.push((key.pubkey.clone(), newest));
            }
        }
        // Revocations last: the scan runs newest first, so a revocation is seen before the
        // (older) anchor of its credential, which a restore may have lost too. Oldest first
        // across all keys, so a credential revoked twice on chain keeps its first revocation.
        revocations.sort_by(|a, b| (a.slot, &a.signature).cmp(&(b.slot, &b.signature)));
        for revocation in &revocations {
            self.apply_revocation(revocation, &mut report).await?;
        }
        self.report_stale_status_lists(&mut report).await?;
        // Only now, with every memo of the window applied: a run that fails before this point
        // leaves the checkpoints where they were, so the next run sees the same memos again.
        for (pubkey, (signature, slot)) in checkpoints {
            self.store
                .save_reconciler_checkpoint(&pubkey, &signature, slot)
                .await?;
        }
        self.check_drift(cutoff, min_slot, &mut report).await?;
        report.elapsed_ms = started.elapsed().as_millis();
        self.metrics
            .duration
            .observe(started.elapsed().as_secs_f64());
        // A run that could not read every listed entry did not reconcile its window: it is
        // not a success, so the staleness alert fires if that persists.
        if report.unretrievable == 0 {
            self.metrics.last_success.set(Utc::now().timestamp());
        }
        tracing::info!(?report, "reconciliation run done");
        Ok(report)
    }

    async fn scan_key(
        &self,
        key: &AnchorKey,
        cutoff: Option<DateTime<Utc>>,
        min_slot: Option<u64>,
        use_checkpoints: bool,
        revocations: &mut Vec<DeferredRevocation>,
        report: &mut RunReport,
    ) -> anyhow::Result<Option<(String, u64)>> {
        let until = if use_checkpoints {
            self.store.reconciler_checkpoint(&key.pubkey).await?
        } else {
            None
        };
        let until_sig = until.as_ref().map(|(s, _)| s.as_str());
        let mut before: Option<String> = None;
        let mut newest: Option<(String, u64)> = None;
        // Set when an entry could not be examined: the checkpoint then stays put so the next
        // run looks at it again instead of skipping past it for good.
        let mut incomplete = false;
        loop {
            let page = self
                .chain
                .signatures_for_address(&key.pubkey, before.as_deref(), until_sig, PAGE_SIZE)
                .await?;
            report.pages += 1;
            self.metrics.pages.inc();
            let Some(last) = page.last() else { break };
            if newest.is_none() {
                newest = page.first().map(|e| (e.signature.clone(), e.slot));
            }
            let full = page.len() == PAGE_SIZE;
            before = Some(last.signature.clone());
            // Newest first: the first entry older than the window ends the scan.
            let in_window: Vec<&AddressSignature> = page
                .iter()
                .take_while(|e| {
                    min_slot.is_none_or(|s| e.slot >= s)
                        && match (cutoff, e.block_time) {
                            (Some(c), Some(t)) => t >= c.timestamp(),
                            _ => true,
                        }
                })
                .collect();
            let reached_start = in_window.len() < page.len();
            report.transactions += in_window.len() as u64;
            self.metrics.transactions.inc_by(in_window.len() as u64);
            // The memo summary is only a hint to skip unrelated traffic without a fetch;
            // what is trusted is decided on the fetched transaction.
            let hinted: Vec<(&AddressSignature, Vec<Memo>)> = in_window
                .into_iter()
                .filter_map(|e| {
                    let memos = decode_rpc_memo_field(e.memo.as_deref()?);
                    (!memos.is_empty()).then_some((e, memos))
                })
                .collect();
            // Steady state of every periodic scan: the rows the hints name already record
            // exactly this signature. Such an entry is the very transaction the database
            // trusted earlier (from the relay's own send or an earlier verified fetch), so
            // fetching it again can teach nothing: it is counted consistent without a
            // `getTransaction`. Anything else (unknown row, other signature, other hash, a
            // failed entry, batch memos) is fetched and judged on the transaction itself.
            // What this gives up: a row whose recorded signature was tampered with in the
            // database to name another payer's transaction is not re-judged here; anchor
            // signatures are written only from the relay's own sends and verified fetches.
            // Profiling the benchmark showed the fetches were the whole cost of a scan.
            let hinted_ids: Vec<CredentialId> = hinted
                .iter()
                .flat_map(|(_, memos)| memos.iter())
                .filter_map(|m| match m {
                    Memo::Credential { credential, .. } => Some(*credential),
                    _ => None,
                })
                .collect();
            let known_before = self.store.recorded_credentials(&hinted_ids).await?;
            let mut candidates: Vec<(String, Option<i64>)> = Vec::with_capacity(hinted.len());
            for (entry, memos) in hinted {
                // A listed failure is always fetched and judged: a row that records a failed
                // transaction as its anchor is a finding, never "consistent".
                let already = !entry.err
                    && memos.iter().all(|m| match m {
                        Memo::Credential {
                            issuer,
                            credential,
                            hash,
                        } => known_before.get(credential).is_some_and(|row| {
                            records_exactly(
                                &CredentialClaim {
                                    issuer,
                                    hash,
                                    signature: &entry.signature,
                                },
                                row,
                            )
                        }),
                        _ => false,
                    });
                if already {
                    report.consistent += memos.len() as u64;
                } else {
                    candidates.push((entry.signature.clone(), entry.block_time));
                }
            }
            // Owned inputs and a cloned client: the buffered futures must not borrow across
            // the stream (that makes the run's future not provably Send).
            let chain = self.chain.clone();
            let mut fetched: Vec<_> = futures_util::stream::iter(candidates)
                .map(move |(signature, block_time)| {
                    let chain = chain.clone();
                    async move {
                        chain
                            .fetch_transaction(&signature, Commitment::Finalized)
                            .await
                            .map(|tx| (signature, block_time, tx))
                    }
                })
                .buffered(FETCH_CONCURRENCY)
                .try_collect()
                .await?;
            // Listed at finalized but not retrievable yet: under load a node's transaction
            // status index trails its signature index (seen in the crash suite: a restore's
            // run-once found 220 of its anchors "not retrievable" and recovered none of
            // them). Asked again a few times, all at once, before the run gives up on them;
            // a failed retry leaves the entry missing rather than failing the run.
            for attempt in 1..=UNRETRIEVABLE_RETRIES {
                let missing: Vec<usize> = (0..fetched.len())
                    .filter(|&i| fetched[i].2.is_none())
                    .collect();
                if missing.is_empty() {
                    break;
                }
                if attempt == 1 {
                    report.retried += missing.len() as u64;
                }
                tokio::time::sleep(UNRETRIEVABLE_BACKOFF * attempt).await;
                let chain = self.chain.clone();
                let again: Vec<(usize, Option<FetchedTx>)> =
                    futures_util::stream::iter(missing.into_iter().map(|i| (i, fetched[i].0.clone())))
                        .map(move |(i, signature)| {
                            let chain = chain.clone();
                            async move {
                                match chain.fetch_transaction(&signature, Commitment::Finalized).await {
                                    Ok(tx) => (i, tx),
                                    Err(e) => {
                                        tracing::warn!(%signature, error = %e, "retry of a history entry failed");
                                        (i, None)
                                    }
                                }
                            }
                        })
                        .buffered(FETCH_CONCURRENCY)
                        .collect()
                        .await;
                for (i, tx) in again {
                    fetched[i].2 = tx;
                }
            }
            // The rows these memos name were read above from the hints; only a memo the hint
            // did not show (a truncated or odd summary) needs one more query. A row that
            // already records exactly this anchor then needs no per-row transaction.
            let hinted_set: std::collections::HashSet<CredentialId> =
                hinted_ids.into_iter().collect();
            let unseen: Vec<CredentialId> = fetched
                .iter()
                .filter_map(|(_, _, tx)| tx.as_ref())
                .flat_map(|tx| tx.memos.iter())
                .filter_map(|m| match domain::memo::decode(m) {
                    domain::Decoded::Ours(Memo::Credential { credential, .. }) => Some(credential),
                    _ => None,
                })
                .filter(|id| !hinted_set.contains(id))
                .collect();
            let mut known = known_before;
            if !unseen.is_empty() {
                known.extend(self.store.recorded_credentials(&unseen).await?);
            }
            for (signature, listed_time, tx) in fetched {
                report.fetched += 1;
                let Some(tx) = tx else {
                    // Still not retrievable: the node pruned it or is far behind. Nothing
                    // can be proven from it; counted, so `run-once` exits non-zero, and the
                    // scheduled loop keeps its checkpoint so the next run retries.
                    tracing::warn!(%signature, "history entry not retrievable");
                    report.unretrievable += 1;
                    incomplete = true;
                    continue;
                };
                let block_time = tx
                    .block_time
                    .or(listed_time)
                    .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0));
                let verdict = classify(
                    ObservedAnchor {
                        fee_payer: &tx.fee_payer,
                        succeeded: tx.succeeded,
                        memos: &tx.memos,
                        block_time,
                    },
                    &key.pubkey,
                    &key.holders,
                );
                self.apply(
                    verdict,
                    Landed {
                        signature: &tx.signature,
                        slot: tx.slot,
                        block_time,
                    },
                    &known,
                    revocations,
                    report,
                )
                .await?;
            }
            if reached_start || !full {
                break;
            }
        }
        // The checkpoint to save once the whole run is applied (see `run_once`).
        Ok(if incomplete { None } else { newest })
    }

    async fn apply(
        &self,
        verdict: AnchorVerdict,
        landed: Landed<'_>,
        known: &std::collections::HashMap<CredentialId, RecordedCredential>,
        revocations: &mut Vec<DeferredRevocation>,
        report: &mut RunReport,
    ) -> anyhow::Result<()> {
        let Landed {
            signature,
            slot,
            block_time,
        } = landed;
        match verdict {
            AnchorVerdict::NotOurs => {}
            AnchorVerdict::Trusted(memos) => {
                for memo in memos {
                    let (executed, subject) = match memo {
                        Memo::Credential {
                            issuer,
                            credential,
                            hash,
                        } => {
                            let anchor = TrustedAnchor {
                                issuer: &issuer,
                                credential,
                                hash,
                                signature,
                                slot,
                                block_time,
                            };
                            // The rows were read for the page already: one that records
                            // exactly this anchor needs no transaction of its own.
                            if known
                                .get(&credential)
                                .is_some_and(|row| records_exactly(&anchor.claim(), row))
                            {
                                report.consistent += 1;
                                continue;
                            }
                            let executed = self
                                .store
                                .repair_anchor(&anchor, |row| decide_anchor(&anchor.claim(), row))
                                .await?;
                            (executed, format!("credential {credential}"))
                        }
                        Memo::Batch {
                            issuer,
                            batch,
                            count,
                            root,
                        } => {
                            let anchor = TrustedBatch {
                                issuer: &issuer,
                                batch,
                                count,
                                root,
                                signature,
                                slot,
                                block_time,
                            };
                            let executed = self
                                .store
                                .repair_batch(&anchor, |row| decide_batch(&anchor.claim(), row))
                                .await?;
                            (executed, format!("batch {batch} ({count} credentials)"))
                        }
                        Memo::StatusList {
                            issuer,
                            list,
                            version,
                            hash,
                        } => {
                            let anchor = TrustedStatusList {
                                issuer: &issuer,
                                list,
                                version,
                                hash: &hash,
                                signature,
                                slot,
                                block_time,
                            };
                            let executed = self
                                .store
                                .repair_status_version(&anchor, |row| {
                                    decide_status_version(version, signature, row)
                                })
                                .await?;
                            match executed.repair {
                                Repair::Backfill | Repair::Finalize => {
                                    report.status_lists += 1;
                                    tracing::warn!(%issuer, list, version, %signature, repair = ?executed.repair, "status list version repaired from the chain");
                                }
                                Repair::Consistent => report.consistent += 1,
                                Repair::Drift(reason) => {
                                    report.drift += 1;
                                    tracing::error!(%issuer, list, version, %signature, ?reason, "status list version disagrees with its anchor");
                                }
                                Repair::MarkRevoked => {}
                            }
                            self.count_repair(executed, domain::reconcile::Subject::StatusList);
                            continue;
                        }
                        // `ca1:r` and `ca1:v`: each credential named is one revocation,
                        // applied after the credentials of this run.
                        memo @ (Memo::Revocation { .. } | Memo::RevocationList { .. }) => {
                            let list = match &memo {
                                Memo::RevocationList { batch, .. } => Some(*batch),
                                _ => None,
                            };
                            for revoked in memo.revoked() {
                                revocations.push(DeferredRevocation {
                                    issuer: memo.issuer().clone(),
                                    credential: revoked.credential,
                                    hash: revoked.hash,
                                    list,
                                    signature: signature.to_string(),
                                    slot,
                                    block_time,
                                });
                            }
                            continue;
                        }
                    };
                    self.tally(executed, &subject, signature, report);
                }
            }
            AnchorVerdict::Forged(memos) => {
                report.forged += 1;
                tracing::warn!(%signature, "memo in our format from another key ignored");
                self.record_each(
                    FindingKind::Forged,
                    &memos,
                    signature,
                    slot,
                    "fee payer or issuer does not match the anchoring key",
                )
                .await?;
            }
            AnchorVerdict::RetiredKey(memos) => {
                report.retired_key += 1;
                tracing::warn!(%signature, "memo paid by a retired anchoring key ignored");
                self.record_each(
                    FindingKind::RetiredKey,
                    &memos,
                    signature,
                    slot,
                    "paid by the issuer's anchoring key after the issuer retired it",
                )
                .await?;
            }
            AnchorVerdict::Failed(memos) => {
                report.failed += 1;
                self.record_each(
                    FindingKind::FailedTx,
                    &memos,
                    signature,
                    slot,
                    "transaction failed: anchors nothing",
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Records a `status_list_stale` finding for every list whose newest servable version is
    /// older than its newest anchored one (after a restore, until the publisher re-signs).
    async fn report_stale_status_lists(&self, report: &mut RunReport) -> anyhow::Result<()> {
        for stale in self.store.stale_status_lists().await? {
            report.stale_status_lists += 1;
            let detail = format!(
                "list {} serves version {}, but version {} is anchored",
                stale.list,
                stale
                    .served_version
                    .map_or_else(|| "none".to_string(), |v| v.to_string()),
                stale.anchored_version
            );
            tracing::warn!(issuer = %stale.issuer, %detail, "status list served behind the chain");
            let new = self
                .store
                .record_finding(&NewFinding {
                    kind: FindingKind::StatusListStale,
                    signature: &stale.anchored_signature,
                    slot: None,
                    credential: None,
                    issuer: Some(&stale.issuer),
                    detail: &detail,
                })
                .await?;
            self.count(FindingKind::StatusListStale, new);
        }
        Ok(())
    }

    /// Applies one trusted revocation (deferred to the end of the run, see `run_once`).
    async fn apply_revocation(
        &self,
        r: &DeferredRevocation,
        report: &mut RunReport,
    ) -> anyhow::Result<()> {
        let revocation = TrustedRevocation {
            issuer: &r.issuer,
            credential: r.credential,
            hash: r.hash,
            list: r.list,
            signature: &r.signature,
            slot: r.slot,
            block_time: r.block_time,
        };
        let executed = self
            .store
            .repair_revocation(&revocation, |credential, recorded| {
                decide_revocation(&revocation.claim(), credential, recorded)
            })
            .await?;
        let subject = format!("revocation of {}", r.credential);
        match executed.repair {
            // Counted apart from anchors: dashboards read `backfilled` as credentials.
            Repair::Finalize | Repair::Backfill | Repair::MarkRevoked => {
                report.revocations += 1;
                tracing::warn!(%subject, signature = %r.signature, repair = ?executed.repair, "revocation repaired from the chain");
                self.count_repair(executed, domain::reconcile::Subject::Revocation);
            }
            _ => self.tally(executed, &subject, &r.signature, report),
        }
        Ok(())
    }

    /// Counts what executing one repair did, in the report, the logs and the metrics.
    fn tally(&self, executed: Executed, subject: &str, signature: &str, report: &mut RunReport) {
        match executed.repair {
            Repair::Finalize | Repair::MarkRevoked => {
                report.finalized += 1;
                tracing::warn!(%subject, %signature, "pending anchor found on chain: finalized");
            }
            Repair::Backfill => {
                report.backfilled += 1;
                self.metrics.backfilled.inc();
                tracing::warn!(%subject, %signature, "anchor with no row backfilled from the chain");
            }
            Repair::Drift(reason) => {
                report.drift += 1;
                tracing::error!(%subject, %signature, ?reason, "row disagrees with its anchor");
            }
            Repair::Consistent => report.consistent += 1,
        }
        // The subject only changes the detail text, never the finding's kind.
        self.count_repair(executed, domain::reconcile::Subject::Credential);
    }

    /// Counts the finding a repair recorded, once.
    fn count_repair(&self, executed: Executed, subject: domain::reconcile::Subject) {
        if let Some((kind, _)) = executed.repair.finding(subject) {
            self.count(kind, executed.new_finding);
        }
    }

    async fn record_each(
        &self,
        kind: FindingKind,
        memos: &[Memo],
        signature: &str,
        slot: u64,
        detail: &str,
    ) -> anyhow::Result<()> {
        for memo in memos {
            // A finding names one credential: a revocation list gets one per entry.
            let credentials: Vec<Option<CredentialId>> = match memo {
                Memo::Credential { credential, .. } => vec![Some(*credential)],
                Memo::Revocation { .. } | Memo::RevocationList { .. } => {
                    memo.revoked().iter().map(|r| Some(r.credential)).collect()
                }
                Memo::Batch { .. } | Memo::StatusList { .. } => vec![None],
            };
            for credential in credentials {
                let new = self
                    .store
                    .record_finding(&NewFinding {
                        kind,
                        signature,
                        slot: Some(slot),
                        credential,
                        issuer: Some(memo.issuer().as_str()),
                        detail,
                    })
                    .await?;
                self.count(kind, new);
            }
        }
        Ok(())
    }

    /// Counts a finding once: a re-scan of the same window finds it again but it is not a
    /// new inconsistency.
    fn count(&self, kind: FindingKind, new: bool) {
        if new {
            self.metrics.finding(kind);
        }
    }

    /// Rows that claim an anchor in the window, checked against the node's full history: a
    /// signature the chain does not know (or that failed) is drift.
    async fn check_drift(
        &self,
        cutoff: Option<DateTime<Utc>>,
        min_slot: Option<u64>,
        report: &mut RunReport,
    ) -> anyhow::Result<()> {
        let rows = self.store.finalized_rows_since(cutoff, min_slot).await?;
        let (valid, malformed): (Vec<_>, Vec<_>) = rows
            .iter()
            .partition(|r| domain::reconcile::is_signature_text(&r.signature));
        let signatures: Vec<String> = valid.iter().map(|r| r.signature.clone()).collect();
        let statuses = if signatures.is_empty() {
            Vec::new()
        } else {
            self.chain.signature_statuses(&signatures).await?
        };
        let observed = malformed
            .into_iter()
            .map(|row| (row, SignatureOnChain::Unknown))
            .chain(valid.into_iter().zip(statuses).map(|(row, status)| {
                let on_chain = match status {
                    None => SignatureOnChain::Unknown,
                    Some(s) if s.err.is_some() => SignatureOnChain::Failed,
                    Some(_) => SignatureOnChain::Succeeded,
                };
                (row, on_chain)
            }));
        let drifted: Vec<(&store::reconcile::FinalizedRow, &str)> = observed
            .filter_map(|(row, on_chain)| {
                check_recorded_anchor(&row.signature, on_chain)
                    .map(|reason| (row, reason.detail(domain::reconcile::Subject::Credential)))
            })
            .collect();
        for (row, detail) in drifted {
            report.drift += 1;
            tracing::error!(credential = %row.credential, signature = %row.signature, detail, "drift");
            let new = self
                .store
                .record_finding(&NewFinding {
                    kind: FindingKind::Drift,
                    signature: &row.signature,
                    slot: row.slot.and_then(|s| u64::try_from(s).ok()),
                    credential: Some(row.credential),
                    issuer: Some(&row.issuer),
                    detail,
                })
                .await?;
            self.count(FindingKind::Drift, new);
        }
        Ok(())
    }
}

/// `reconciler::hold_lock_ms` failpoint: `return(<ms>)` makes a run sleep with the lock held.
fn held_lock_ms() -> Option<u64> {
    fail::fail_point!("reconciler::hold_lock_ms", |arg| arg
        .and_then(|ms| ms.parse().ok()));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_parses_durations_and_slots() {
        assert_eq!(
            "1h".parse::<Since>(),
            Ok(Since::Window(Duration::from_secs(3_600)))
        );
        assert_eq!(
            "30m".parse::<Since>(),
            Ok(Since::Window(Duration::from_secs(1_800)))
        );
        assert_eq!("slot 42".parse::<Since>(), Ok(Since::Slot(42)));
        assert_eq!("slot:42".parse::<Since>(), Ok(Since::Slot(42)));
        assert!("1w".parse::<Since>().is_err());
        assert!("12".parse::<Since>().is_err());
        assert!("slot x".parse::<Since>().is_err());
    }
}
