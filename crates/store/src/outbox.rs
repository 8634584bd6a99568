//! The transactional outbox, as the relay sees it: lease-based claims, the live anchor
//! transaction of each job, and fenced state changes.
//!
//! Fencing: every claim increments `attempts` and records `locked_by`; every later write of
//! that worker carries (worker, attempts) and matches zero rows if another worker has since
//! claimed the job. A stale worker therefore cannot overwrite a newer one, and — because the
//! signed transaction is inserted under that fence and the live-transaction index allows one
//! per job — cannot create a second transaction either.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::hash::CredentialHash;
use domain::status::{allowed_sources, StatusEvent};
use domain::{CredentialId, IssuerId};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::{Store, StoreError, OUTBOX_CHANNEL};

/// What an outbox job anchors (the `outbox.kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// A `ca1:c` memo: the credential's own anchor.
    AnchorCredential,
    /// A `ca1:r` memo: the credential's revocation (issue #7).
    AnchorRevocation,
}

impl JobKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            JobKind::AnchorCredential => "anchor_credential",
            JobKind::AnchorRevocation => "anchor_revocation",
        }
    }

    fn parse(s: &str) -> Result<JobKind, StoreError> {
        match s {
            "anchor_credential" => Ok(JobKind::AnchorCredential),
            "anchor_revocation" => Ok(JobKind::AnchorRevocation),
            other => Err(StoreError::Corrupt(format!("outbox kind {other}"))),
        }
    }
}

/// A job claimed by one worker under a lease.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub outbox_id: i64,
    pub kind: JobKind,
    pub credential_id: CredentialId,
    pub issuer: IssuerId,
    pub hash: CredentialHash,
    /// Fencing token: the claim number.
    pub attempts: i32,
    /// Consecutive failed steps, for backoff and dead-lettering.
    pub failures: i32,
    pub created_at: DateTime<Utc>,
}

/// The job's transaction that may still land.
#[derive(Debug, Clone)]
pub struct LiveAnchorTx {
    pub signature: String,
    pub tx_bytes: Vec<u8>,
    pub last_valid_block_height: u64,
    pub status: String,
    pub fee_lamports: u64,
}

/// A transaction to store before its first send.
pub struct NewAnchorTx<'a> {
    pub signature: &'a str,
    pub memo: &'a str,
    pub tx_bytes: &'a [u8],
    pub last_valid_block_height: u64,
    pub fee_lamports: u64,
}

/// Identifies the claim a write belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Fence<'a> {
    pub outbox_id: i64,
    pub worker: &'a str,
    pub attempts: i32,
}

impl ClaimedJob {
    pub fn fence<'a>(&self, worker: &'a str) -> Fence<'a> {
        Fence {
            outbox_id: self.outbox_id,
            worker,
            attempts: self.attempts,
        }
    }
}

/// Result of a fenced write.
#[derive(Debug, PartialEq, Eq)]
pub enum Fenced {
    Done,
    /// Another worker owns the job now (or it completed): drop it without side effects.
    LostLease,
}

/// Backlog figures for metrics.
#[derive(Debug, Clone, Copy)]
pub struct Backlog {
    pub pending: i64,
    pub dead: i64,
    pub oldest_pending_age_seconds: f64,
}

fn statuses(event: StatusEvent) -> Vec<&'static str> {
    allowed_sources(event).iter().map(|s| s.as_str()).collect()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}")))
}

impl Store {
    /// Claims up to `limit` due jobs in one round trip. `FOR UPDATE SKIP LOCKED` lets N relays
    /// claim concurrently without blocking on each other; the row locks last only for this
    /// statement: what protects the job afterwards is the lease (`locked_until`), never a lock
    /// held across network calls. A crashed worker's jobs come back when its lease ends.
    ///
    /// A revocation job is claimed only once its credential is anchored, so the `ca1:r` memo
    /// always lands after the credential's own anchor (a verifier reading the key's history
    /// never sees a revocation of something not yet anchored).
    pub async fn claim_due_outbox_rows(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "WITH due AS ( \
                   SELECT id FROM outbox \
                   WHERE completed_at IS NULL AND dead_at IS NULL AND available_at <= now() \
                     AND (kind = 'anchor_credential' \
                          OR (kind = 'anchor_revocation' AND EXISTS ( \
                               SELECT 1 FROM credentials rc WHERE rc.id = outbox.credential_id \
                                 AND rc.status IN ('finalized', 'recovered', 'revoked')))) \
                     AND (locked_until IS NULL OR locked_until < now()) \
                   ORDER BY available_at, id \
                   LIMIT $1 FOR UPDATE SKIP LOCKED) \
                 UPDATE outbox o SET attempts = o.attempts + 1, \
                        locked_until = now() + $2::bigint * interval '1 millisecond', \
                        locked_by = $3, updated_at = now() \
                 FROM due, credentials c \
                 WHERE o.id = due.id AND c.id = o.credential_id \
                 RETURNING o.id, o.credential_id, o.issuer_id, c.credential_hash, o.attempts, \
                           o.failures, o.created_at, o.kind",
                &[&i64::from(limit), &ms(lease), &worker],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let hash: Vec<u8> = r.try_get(3)?;
                let hash: [u8; 32] = hash
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("credential_hash length".into()))?;
                let issuer: String = r.try_get(2)?;
                let kind: String = r.try_get(7)?;
                Ok(ClaimedJob {
                    outbox_id: r.try_get(0)?,
                    kind: JobKind::parse(&kind)?,
                    credential_id: CredentialId::from_uuid(r.try_get::<_, Uuid>(1)?),
                    issuer: IssuerId::parse(&issuer)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    hash: CredentialHash::from_bytes(hash),
                    attempts: r.try_get(4)?,
                    failures: r.try_get(5)?,
                    created_at: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// The live transactions of the given jobs (at most one each, by the unique index).
    pub async fn live_anchor_txs(
        &self,
        outbox_ids: &[i64],
    ) -> Result<Vec<(i64, LiveAnchorTx)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT outbox_id, signature, tx_bytes, last_valid_block_height, status, fee_lamports \
                 FROM anchor_transactions \
                 WHERE outbox_id = ANY($1) AND status IN ('signed', 'sent', 'confirmed')",
                &[&outbox_ids],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    LiveAnchorTx {
                        signature: r.try_get(1)?,
                        tx_bytes: r.try_get(2)?,
                        last_valid_block_height: to_u64(r.try_get(3)?, "block height")?,
                        status: r.try_get(4)?,
                        fee_lamports: to_u64(r.try_get(5)?, "fee")?,
                    },
                ))
            })
            .collect()
    }

    /// Stores a signed transaction before its first send, under the fence, and moves the
    /// credential to `submitted`. `retire` names a previous live transaction proven unable to
    /// land (expired or failed), retired in the same commit.
    pub async fn record_signed_tx(
        &self,
        fence: Fence<'_>,
        credential: &CredentialId,
        tx: &NewAnchorTx<'_>,
        retire: Option<(&str, &str, Option<&str>)>,
    ) -> Result<Fenced, StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        if !fence_holds(&db, fence).await? {
            return Ok(Fenced::LostLease);
        }
        if let Some((signature, status, error)) = retire {
            let retired = db
                .execute(
                    "UPDATE anchor_transactions SET status = $2, error = $3 \
                     WHERE signature = $1 AND status IN ('signed', 'sent', 'confirmed')",
                    &[&signature, &status, &error],
                )
                .await?;
            if retired == 0 {
                // Someone else already changed it: do not guess, let the next pass look again.
                return Ok(Fenced::LostLease);
            }
        }
        let inserted = db
            .execute(
                "INSERT INTO anchor_transactions (signature, outbox_id, credential_id, memo, tx_bytes, \
                   last_valid_block_height, fee_lamports, status, signed_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'signed', $8)",
                &[
                    &tx.signature,
                    &fence.outbox_id,
                    credential.as_uuid(),
                    &tx.memo,
                    &tx.tx_bytes,
                    &i64::try_from(tx.last_valid_block_height).unwrap_or(i64::MAX),
                    &i64::try_from(tx.fee_lamports).unwrap_or(i64::MAX),
                    &fence.worker,
                ],
            )
            .await;
        match inserted {
            Ok(_) => {}
            // Another live transaction exists for this job: never create a second one.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                return Ok(Fenced::LostLease)
            }
            Err(e) => return Err(e.into()),
        }
        // A revocation's transaction leaves the (anchored) credential's status alone.
        db.execute(
            "UPDATE credentials SET status = 'submitted', updated_at = now() \
             WHERE id = $1 AND status = ANY($2) \
               AND (SELECT kind FROM outbox WHERE id = $3) = 'anchor_credential'",
            &[
                credential.as_uuid(),
                &statuses(StatusEvent::TxSubmitted),
                &fence.outbox_id,
            ],
        )
        .await?;
        db.commit().await?;
        Ok(Fenced::Done)
    }

    /// The RPC accepted the transaction (first send or rebroadcast).
    pub async fn mark_tx_sent(&self, signature: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE anchor_transactions SET status = 'sent', sent_at = coalesce(sent_at, now()) \
                 WHERE signature = $1 AND status = 'signed'",
                &[&signature],
            )
            .await?;
        Ok(())
    }

    /// Confirmed on chain: recorded on the transaction and the credential.
    pub async fn mark_tx_confirmed(
        &self,
        credential: &CredentialId,
        signature: &str,
        slot: u64,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let slot = i64::try_from(slot).unwrap_or(i64::MAX);
        db.execute(
            "UPDATE anchor_transactions SET status = 'confirmed', slot = $2, \
               confirmed_at = coalesce(confirmed_at, now()) \
             WHERE signature = $1 AND status IN ('signed', 'sent')",
            &[&signature, &slot],
        )
        .await?;
        db.execute(
            "UPDATE credentials SET status = 'confirmed', anchor_signature = $2, anchor_slot = $3, \
               updated_at = now() WHERE id = $1 AND status = ANY($4)",
            &[
                credential.as_uuid(),
                &signature,
                &slot,
                &statuses(StatusEvent::TxConfirmed),
            ],
        )
        .await?;
        db.commit().await?;
        Ok(())
    }

    /// Finalized: the transaction, the credential (signature, slot) and the outbox job
    /// complete in ONE commit, fenced. Returns the job's age for the end-to-end histogram.
    pub async fn complete_finalized(
        &self,
        fence: Fence<'_>,
        credential: &CredentialId,
        signature: &str,
        slot: u64,
    ) -> Result<Fenced, StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        if !fence_holds(&db, fence).await? {
            return Ok(Fenced::LostLease);
        }
        let slot = i64::try_from(slot).unwrap_or(i64::MAX);
        db.execute(
            "UPDATE anchor_transactions SET status = 'finalized', slot = $2, \
               confirmed_at = coalesce(confirmed_at, now()), finalized_at = now() \
             WHERE signature = $1",
            &[&signature, &slot],
        )
        .await?;
        let kind: String = db
            .query_one("SELECT kind FROM outbox WHERE id = $1", &[&fence.outbox_id])
            .await?
            .try_get(0)?;
        if JobKind::parse(&kind)? == JobKind::AnchorRevocation {
            // The revocation is anchored: record its transaction and only now move the
            // credential to `revoked` (its own anchor_signature stays the issuance anchor).
            db.execute(
                "UPDATE revocations SET anchor_signature = $2, anchor_slot = $3, \
                   finalized_at = coalesce(finalized_at, now()) WHERE credential_id = $1",
                &[credential.as_uuid(), &signature, &slot],
            )
            .await?;
            db.execute(
                "UPDATE credentials SET status = 'revoked', updated_at = now() \
                 WHERE id = $1 AND status = ANY($2)",
                &[
                    credential.as_uuid(),
                    &statuses(StatusEvent::RevocationAnchored),
                ],
            )
            .await?;
        } else {
            db.execute(
            "UPDATE credentials SET status = 'finalized', anchor_signature = $2, anchor_slot = $3, \
               finalized_at = now(), last_error = NULL, updated_at = now() \
             WHERE id = $1 AND status = ANY($4)",
            &[
                credential.as_uuid(),
                &signature,
                &slot,
                &statuses(StatusEvent::TxFinalized),
            ],
        )
        .await?;
        }
        db.execute(
            "UPDATE outbox SET completed_at = now(), locked_until = NULL, locked_by = NULL, \
               last_error = NULL, updated_at = now() WHERE id = $1",
            &[&fence.outbox_id],
        )
        .await?;
        db.commit().await?;
        Ok(Fenced::Done)
    }

    /// Ends this worker's lease and makes the job due again after `delay`. `error` counts
    /// a failed step (for backoff) and is kept as `last_error`; `None` resets the count.
    pub async fn release_job(
        &self,
        fence: Fence<'_>,
        delay: Duration,
        error: Option<&str>,
    ) -> Result<Fenced, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE outbox SET locked_until = NULL, locked_by = NULL, \
                   available_at = now() + $4::bigint * interval '1 millisecond', \
                   failures = CASE WHEN $5::text IS NULL THEN 0 ELSE failures + 1 END, \
                   last_error = coalesce($5, last_error), updated_at = now() \
                 WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND completed_at IS NULL",
                &[
                    &fence.outbox_id,
                    &fence.worker,
                    &fence.attempts,
                    &ms(delay),
                    &error,
                ],
            )
            .await?;
        Ok(if n == 1 {
            Fenced::Done
        } else {
            Fenced::LostLease
        })
    }

    /// Gives up on a job after too many failures: the job leaves the queue and the
    /// credential becomes `failed` with the error kept. Any live transaction record is kept,
    /// so a later requeue first checks it and never signs a second one while it could land.
    pub async fn dead_letter(
        &self,
        fence: Fence<'_>,
        credential: &CredentialId,
        error: &str,
    ) -> Result<Fenced, StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let n = db
            .execute(
                "UPDATE outbox SET dead_at = now(), locked_until = NULL, locked_by = NULL, \
                   failures = failures + 1, last_error = $4, updated_at = now() \
                 WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND completed_at IS NULL",
                &[&fence.outbox_id, &fence.worker, &fence.attempts, &error],
            )
            .await?;
        if n == 0 {
            return Ok(Fenced::LostLease);
        }
        db.execute(
            "UPDATE credentials SET status = 'failed', last_error = $2, updated_at = now() \
             WHERE id = $1 AND status = ANY($3)",
            &[
                credential.as_uuid(),
                &error,
                &statuses(StatusEvent::DeadLettered),
            ],
        )
        .await?;
        db.commit().await?;
        Ok(Fenced::Done)
    }

    /// Operator retry: puts dead-lettered jobs (all, or one credential's) back in the queue.
    /// Returns how many were requeued.
    pub async fn requeue_failed(
        &self,
        credential: Option<&CredentialId>,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let id: Option<Uuid> = credential.map(|c| *c.as_uuid());
        let rows = db
            .query(
                "UPDATE outbox SET dead_at = NULL, failures = 0, available_at = now(), updated_at = now() \
                 WHERE dead_at IS NOT NULL AND completed_at IS NULL \
                   AND ($1::uuid IS NULL OR credential_id = $1) \
                 RETURNING credential_id",
                &[&id],
            )
            .await?;
        let ids: Vec<Uuid> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        // A job with a live transaction goes back to `submitted`, one without to `queued`.
        db.execute(
            "UPDATE credentials c SET status = CASE WHEN EXISTS (SELECT 1 FROM anchor_transactions t \
                 WHERE t.credential_id = c.id AND t.status IN ('signed','sent','confirmed')) \
               THEN 'submitted' ELSE 'queued' END, updated_at = now() \
             WHERE c.id = ANY($1) AND c.status = ANY($2)",
            &[&ids, &statuses(StatusEvent::Requeued)],
        )
        .await?;
        if !ids.is_empty() {
            db.execute("SELECT pg_notify($1, 'requeue')", &[&OUTBOX_CHANNEL])
                .await?;
        }
        db.commit().await?;
        Ok(ids.len() as u64)
    }

    /// Backlog for the outbox_pending / oldest-age / dead-letter gauges.
    pub async fn outbox_backlog(&self) -> Result<Backlog, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE dead_at IS NULL), count(*) FILTER (WHERE dead_at IS NOT NULL), \
                   coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE dead_at IS NULL)), 0)::float8 \
                 FROM outbox WHERE completed_at IS NULL",
                &[],
            )
            .await?;
        Ok(Backlog {
            pending: row.try_get(0)?,
            dead: row.try_get(1)?,
            oldest_pending_age_seconds: row.try_get(2)?,
        })
    }
}

/// True when the job is still claimed by this worker under this claim number. `FOR UPDATE`
/// holds the row for the rest of the (short, local) transaction so the fence cannot change
/// between this check and the writes after it.
async fn fence_holds(
    db: &deadpool_postgres::Transaction<'_>,
    fence: Fence<'_>,
) -> Result<bool, StoreError> {
    let row = db
        .query_opt(
            "SELECT 1 FROM outbox WHERE id = $1 AND locked_by = $2 AND attempts = $3 \
               AND completed_at IS NULL FOR UPDATE",
            &[&fence.outbox_id, &fence.worker, &fence.attempts],
        )
        .await?;
    Ok(row.is_some())
}
