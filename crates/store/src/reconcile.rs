//! The reconciler's queries: anchoring keys to scan, scan checkpoints, findings, and the
//! repairs (finalize a pending row or revocation, backfill a missing one) applied in one transaction each.
//!
//! Every repair is idempotent and guarded by the row's current status, so two overlapping
//! scans (or a scan racing the relay) converge on the same rows; findings are deduplicated
//! by the `reconciliation_findings_once` index.

use chrono::{DateTime, Utc};
use domain::hash::CredentialHash;
use domain::{BatchId, CredentialId, IssuerId, MerkleRoot};

use domain::StatusEvent;

use crate::outbox::statuses;
use crate::{Store, StoreError};

/// Names the reconciler's session advisory lock (pg advisory locks are keyed by i64).
const RECONCILER_LOCK_KEY: i64 = 0x6361_7265_636f_6e63; // "careconc"

/// Kind of a recorded disagreement; the text is the `kind` column and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    PendingAnchored,
    MissingRow,
    Drift,
    Forged,
    FailedTx,
    /// A memo paid by an issuer's anchoring key after the issuer retired it.
    RetiredKey,
    /// A stored anchoring key that is not a valid public key: its history cannot be read.
    MalformedKey,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::PendingAnchored => "pending_anchored",
            FindingKind::MissingRow => "missing_row",
            FindingKind::Drift => "drift",
            FindingKind::Forged => "forged",
            FindingKind::FailedTx => "failed_tx",
            FindingKind::RetiredKey => "retired_key",
            FindingKind::MalformedKey => "malformed_key",
        }
    }
}

/// One finding to record.
#[derive(Debug, Clone)]
pub struct NewFinding<'a> {
    pub kind: FindingKind,
    pub signature: &'a str,
    pub slot: Option<u64>,
    pub credential: Option<CredentialId>,
    pub issuer: Option<&'a str>,
    pub detail: &'a str,
}

/// An anchoring key and the issuers that anchor with it.
#[derive(Debug, Clone)]
pub struct AnchorKey {
    pub pubkey: String,
    /// The issuers that anchor or anchored with this key, each with its window.
    pub holders: Vec<domain::reconcile::KeyHolder>,
}

/// A trusted on-chain credential anchor.
#[derive(Debug, Clone)]
pub struct TrustedAnchor<'a> {
    pub issuer: &'a IssuerId,
    pub credential: CredentialId,
    pub hash: CredentialHash,
    pub signature: &'a str,
    pub slot: u64,
    pub block_time: Option<DateTime<Utc>>,
}

/// A trusted on-chain batch anchor (`ca1:b` memo).
#[derive(Debug, Clone)]
pub struct TrustedBatch<'a> {
    pub issuer: &'a IssuerId,
    pub batch: BatchId,
    pub count: u32,
    pub root: MerkleRoot,
    pub signature: &'a str,
    pub slot: u64,
    pub block_time: Option<DateTime<Utc>>,
}

/// A trusted on-chain revocation (`ca1:r` memo from the anchoring key).
#[derive(Debug, Clone)]
pub struct TrustedRevocation<'a> {
    pub issuer: &'a IssuerId,
    pub credential: CredentialId,
    pub hash: CredentialHash,
    pub signature: &'a str,
    pub slot: u64,
    pub block_time: Option<DateTime<Utc>>,
}

/// The reason stored for a revocation rebuilt from the chain: the reason itself is never
/// written on chain (invariant 5), so a restore cannot bring it back.
pub const RECOVERED_REVOCATION_REASON: &str =
    "recovered from the chain by the reconciler (the reason is never written on chain)";

/// A credential row as far as an anchor is concerned (`Store::anchored_rows`).
#[derive(Debug, Clone)]
pub struct AnchoredRow {
    pub issuer: String,
    pub hash: Vec<u8>,
    pub anchor_signature: Option<String>,
    pub status: String,
}

impl AnchoredRow {
    /// The row already records exactly this anchor: nothing to repair, nothing to report.
    pub fn agrees_with(&self, issuer: &str, hash: &CredentialHash, signature: &str) -> bool {
        self.issuer == issuer
            && self.hash.as_slice() == hash.as_bytes().as_slice()
            && self.anchor_signature.as_deref() == Some(signature)
            && matches!(self.status.as_str(), "finalized" | "recovered" | "revoked")
    }
}

/// What applying a trusted anchor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A queued/submitted/confirmed/failed row was finalized with the anchor.
    Finalized,
    /// No row existed: one was inserted as `recovered`.
    Backfilled,
    /// The row already records an anchor (this one or another): nothing to do.
    Consistent,
    /// The row exists but disagrees with the memo (issuer or hash), or already records a
    /// different anchor: recorded as drift, the row is left alone for a human.
    Mismatch,
}

/// A row that claims to be finalized, for the drift check.
#[derive(Debug, Clone)]
pub struct FinalizedRow {
    pub credential: CredentialId,
    pub issuer: String,
    pub signature: String,
    pub slot: Option<i64>,
}

/// The reconciler's exclusive lock, held on a connection taken out of the pool for the
/// whole run. Dropping it closes that connection, which releases the lock even on error.
pub struct ReconcilerLock {
    _client: deadpool_postgres::ClientWrapper,
}

fn slot_i64(slot: u64) -> i64 {
    i64::try_from(slot).unwrap_or(i64::MAX)
}

impl Store {
    /// `pg_try_advisory_lock` on a dedicated connection: `None` if another reconciler holds it.
    pub async fn try_reconciler_lock(&self) -> Result<Option<ReconcilerLock>, StoreError> {
        let object = self.client().await?;
        // Taken out of the pool so the session lock never leaks to another pool user.
        let client = deadpool_postgres::Object::take(object);
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&RECONCILER_LOCK_KEY])
            .await?;
        let acquired: bool = row.get(0);
        Ok(acquired.then_some(ReconcilerLock { _client: client }))
    }

    /// Every distinct anchoring key, active or retired, with the issuers that hold or held
    /// it and its window for each.
    pub async fn anchor_keys(&self) -> Result<Vec<AnchorKey>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT pubkey, issuer_id, valid_from, retired_at FROM issuer_anchor_keys \
                 ORDER BY pubkey, issuer_id",
                &[],
            )
            .await?;
        let mut keys: Vec<AnchorKey> = Vec::new();
        for row in &rows {
            let pubkey: String = row.try_get(0)?;
            let issuer: String = row.try_get(1)?;
            let holder = domain::reconcile::KeyHolder {
                issuer: IssuerId::parse(&issuer)
                    .map_err(|e| StoreError::Corrupt(format!("issuer id: {e}")))?,
                window: domain::anchor_keys::AnchorKeyWindow {
                    pubkey: pubkey.clone(),
                    valid_from: row.try_get(2)?,
                    retired_at: row.try_get(3)?,
                },
            };
            match keys.last_mut() {
                Some(last) if last.pubkey == pubkey => last.holders.push(holder),
                _ => keys.push(AnchorKey {
                    pubkey,
                    holders: vec![holder],
                }),
            }
        }
        Ok(keys)
    }

    /// The newest signature scanned for `pubkey`, if any.
    pub async fn reconciler_checkpoint(
        &self,
        pubkey: &str,
    ) -> Result<Option<(String, u64)>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT last_signature, last_slot FROM reconciler_checkpoints WHERE anchor_pubkey = $1",
                &[&pubkey],
            )
            .await?;
        Ok(row.map(|r| {
            let slot: i64 = r.get(1);
            (r.get(0), u64::try_from(slot).unwrap_or(0))
        }))
    }

    /// Moves the checkpoint forward (never back: a slower overlapping run cannot rewind it).
    pub async fn save_reconciler_checkpoint(
        &self,
        pubkey: &str,
        signature: &str,
        slot: u64,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO reconciler_checkpoints (anchor_pubkey, last_signature, last_slot) \
                 VALUES ($1, $2, $3) ON CONFLICT (anchor_pubkey) DO UPDATE \
                 SET last_signature = EXCLUDED.last_signature, last_slot = EXCLUDED.last_slot, \
                     updated_at = now() \
                 WHERE reconciler_checkpoints.last_slot <= EXCLUDED.last_slot",
                &[&pubkey, &signature, &slot_i64(slot)],
            )
            .await?;
        Ok(())
    }

    /// Records a finding; `true` if it is new (a re-scan of the same window returns `false`).
    pub async fn record_finding(&self, finding: &NewFinding<'_>) -> Result<bool, StoreError> {
        let client = self.client().await?;
        insert_finding(&client, finding).await
    }

    /// Applies a trusted anchor to its credential row in one transaction, recording the
    /// finding it amounts to. Returns what was done and whether the finding is new.
    pub async fn apply_trusted_anchor(
        &self,
        anchor: &TrustedAnchor<'_>,
    ) -> Result<(Applied, bool), StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let id = anchor.credential.as_uuid();
        let slot = slot_i64(anchor.slot);
        let row = db
            .query_opt(
                "SELECT status, issuer_id, credential_hash, anchor_signature FROM credentials \
                 WHERE id = $1 FOR UPDATE",
                &[id],
            )
            .await?;
        let finding = |kind, detail: &'static str| NewFinding {
            kind,
            signature: anchor.signature,
            slot: Some(anchor.slot),
            credential: Some(anchor.credential),
            issuer: Some(anchor.issuer.as_str()),
            detail,
        };
        let (applied, new) = match row {
            None => {
                // ON CONFLICT: a concurrent issuance of the same id (impossible for UUIDv7 in
                // practice) or another reconciler wins; either way the row then exists.
                let inserted = db
                    .execute(
                        "INSERT INTO credentials (id, issuer_id, credential_hash, status, \
                           anchor_signature, anchor_slot, finalized_at) \
                         VALUES ($1, $2, $3, 'recovered', $4, $5, coalesce($6, now())) \
                         ON CONFLICT (id) DO NOTHING",
                        &[
                            id,
                            &anchor.issuer.as_str(),
                            &anchor.hash.as_bytes().as_slice(),
                            &anchor.signature,
                            &slot,
                            &anchor.block_time,
                        ],
                    )
                    .await?;
                if inserted == 0 {
                    (Applied::Consistent, false)
                } else {
                    let new = insert_finding(
                        &db,
                        &finding(FindingKind::MissingRow, "backfilled as recovered"),
                    )
                    .await?;
                    (Applied::Backfilled, new)
                }
            }
            Some(row) => {
                let status: String = row.get(0);
                let issuer: String = row.get(1);
                let hash: Vec<u8> = row.get(2);
                if issuer != anchor.issuer.as_str() || hash != anchor.hash.as_bytes().as_slice() {
                    let new = insert_finding(
                        &db,
                        &finding(FindingKind::Drift, "row disagrees with its on-chain memo"),
                    )
                    .await?;
                    (Applied::Mismatch, new)
                } else if matches!(
                    status.as_str(),
                    "queued" | "submitted" | "confirmed" | "failed"
                ) {
                    finalize_pending(&db, anchor, slot).await?;
                    let new = insert_finding(
                        &db,
                        &finding(FindingKind::PendingAnchored, "finalized by the reconciler"),
                    )
                    .await?;
                    (Applied::Finalized, new)
                } else if row
                    .get::<_, Option<String>>(3)
                    .is_some_and(|recorded| recorded != anchor.signature)
                {
                    // Two successful anchors of one credential: invariant 2 was broken
                    // somewhere. The row keeps its anchor; a human must see this.
                    let new = insert_finding(
                        &db,
                        &finding(
                            FindingKind::Drift,
                            "a second anchor of an anchored credential",
                        ),
                    )
                    .await?;
                    (Applied::Mismatch, new)
                } else {
                    (Applied::Consistent, false)
                }
            }
        };
        db.commit().await?;
        Ok((applied, new))
    }

    /// Applies a trusted revocation memo in one transaction: a pending revocation is
    /// finalized with it (its open job completed, its other live transactions retired), a
    /// missing one (lost with a restore) is rebuilt, and the credential becomes `revoked`.
    /// Call it after the run's credential and batch anchors are applied: a revocation is
    /// only ever sent for an anchored credential, so its credential row must say anchored.
    pub async fn apply_trusted_revocation(
        &self,
        revocation: &TrustedRevocation<'_>,
    ) -> Result<(Applied, bool), StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let id = revocation.credential.as_uuid();
        let slot = slot_i64(revocation.slot);
        let finding = |kind, detail: &'static str| NewFinding {
            kind,
            signature: revocation.signature,
            slot: Some(revocation.slot),
            credential: Some(revocation.credential),
            issuer: Some(revocation.issuer.as_str()),
            detail,
        };
        // Lock order as the relay's `complete_finalized` (the open job's outbox row first):
        // both finalizing the same revocation at once queue here instead of deadlocking.
        db.execute(
            "SELECT 1 FROM outbox WHERE credential_id = $1 AND kind = 'anchor_revocation' \
               AND completed_at IS NULL FOR UPDATE",
            &[id],
        )
        .await?;
        let credential = db
            .query_opt(
                "SELECT status, issuer_id, credential_hash FROM credentials WHERE id = $1 FOR UPDATE",
                &[id],
            )
            .await?;
        let Some(credential) = credential else {
            // Its own anchor was not rebuilt: older than the scanned window, or a member of a
            // batch (members come back only with their proof bundles). Rebuild the credential
            // (`run-once --since` over its anchor, or `POST /v1/credentials/recover`), then
            // `run-once` over this memo again: a checkpointed loop will not see it twice.
            let new = insert_finding(
                &db,
                &finding(
                    FindingKind::Drift,
                    "revocation on chain for a credential with no row: rebuild the credential, then run-once again",
                ),
            )
            .await?;
            db.commit().await?;
            return Ok((Applied::Mismatch, new));
        };
        let status: String = credential.get(0);
        let issuer: String = credential.get(1);
        let hash: Vec<u8> = credential.get(2);
        let revocable = statuses(StatusEvent::RevocationAnchored);
        let mismatch = if issuer != revocation.issuer.as_str()
            || hash != revocation.hash.as_bytes().as_slice()
        {
            Some("row disagrees with its on-chain revocation memo")
        } else if !revocable.contains(&status.as_str()) {
            Some("revocation on chain for a credential not anchored here: rebuild its anchor, then run-once again")
        } else {
            None
        };
        if let Some(detail) = mismatch {
            let new = insert_finding(&db, &finding(FindingKind::Drift, detail)).await?;
            db.commit().await?;
            return Ok((Applied::Mismatch, new));
        }
        let existing: Option<Option<String>> = db
            .query_opt(
                "SELECT anchor_signature FROM revocations WHERE credential_id = $1 FOR UPDATE",
                &[id],
            )
            .await?
            .map(|r| r.get(0));
        let (applied, new) = match existing {
            Some(Some(recorded)) if recorded == revocation.signature => {
                if status == "revoked" {
                    (Applied::Consistent, false)
                } else {
                    set_revoked(&db, id, &revocable).await?;
                    let new = insert_finding(
                        &db,
                        &finding(
                            FindingKind::PendingAnchored,
                            "anchored revocation's credential was not revoked",
                        ),
                    )
                    .await?;
                    (Applied::Finalized, new)
                }
            }
            Some(Some(_)) => {
                let new = insert_finding(
                    &db,
                    &finding(
                        FindingKind::Drift,
                        "a second revocation anchor of a credential",
                    ),
                )
                .await?;
                (Applied::Mismatch, new)
            }
            Some(None) => {
                db.execute(
                    "UPDATE revocations SET anchor_signature = $2, anchor_slot = $3, \
                       finalized_at = coalesce($4, now()) WHERE credential_id = $1",
                    &[id, &revocation.signature, &slot, &revocation.block_time],
                )
                .await?;
                // Only the revocation job's transactions: the issuance anchor stays.
                retire_live_txs(
                    &db,
                    "outbox_id IN (SELECT o.id FROM outbox o WHERE o.credential_id = $1 \
                       AND o.kind = 'anchor_revocation')",
                    id,
                    revocation.signature,
                    slot,
                )
                .await?;
                db.execute(
                    "UPDATE outbox SET completed_at = now(), locked_until = NULL, locked_by = NULL, \
                       dead_at = NULL, last_error = NULL, updated_at = now() \
                     WHERE credential_id = $1 AND kind = 'anchor_revocation' AND completed_at IS NULL",
                    &[id],
                )
                .await?;
                set_revoked(&db, id, &revocable).await?;
                let new = insert_finding(
                    &db,
                    &finding(
                        FindingKind::PendingAnchored,
                        "revocation finalized by the reconciler",
                    ),
                )
                .await?;
                (Applied::Finalized, new)
            }
            None => {
                db.execute(
                    "INSERT INTO revocations (credential_id, issuer_id, reason, requested_at, \
                       anchor_signature, anchor_slot, finalized_at) \
                     VALUES ($1, $2, $3, coalesce($6, now()), $4, $5, coalesce($6, now()))",
                    &[
                        id,
                        &revocation.issuer.as_str(),
                        &RECOVERED_REVOCATION_REASON,
                        &revocation.signature,
                        &slot,
                        &revocation.block_time,
                    ],
                )
                .await?;
                set_revoked(&db, id, &revocable).await?;
                let new = insert_finding(
                    &db,
                    &finding(FindingKind::MissingRow, "revocation rebuilt from the chain"),
                )
                .await?;
                (Applied::Backfilled, new)
            }
        };
        db.commit().await?;
        Ok((applied, new))
    }

    /// Credentials that claim an anchor, finalized since `since_time` or anchored at or after
    /// `since_slot` (whichever is given): the drift check asks the chain about each.
    pub async fn finalized_rows_since(
        &self,
        since_time: Option<DateTime<Utc>>,
        since_slot: Option<u64>,
    ) -> Result<Vec<FinalizedRow>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, issuer_id, anchor_signature, anchor_slot FROM credentials \
                 WHERE status = 'finalized' AND anchor_signature IS NOT NULL \
                   AND ($1::timestamptz IS NULL OR finalized_at >= $1) \
                   AND ($2::bigint IS NULL OR anchor_slot >= $2) \
                 ORDER BY finalized_at",
                &[&since_time, &since_slot.map(slot_i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| FinalizedRow {
                credential: CredentialId::from_uuid(r.get(0)),
                issuer: r.get(1),
                signature: r.get(2),
                slot: r.get(3),
            })
            .collect())
    }
}

impl Store {
    /// The rows of `ids` that exist, for the reconciler's per-page prefilter.
    pub async fn anchored_rows(
        &self,
        ids: &[CredentialId],
    ) -> Result<std::collections::HashMap<CredentialId, AnchoredRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let uuids: Vec<uuid::Uuid> = ids.iter().map(|c| *c.as_uuid()).collect();
        let client = self.client().await?;
        client
            .query(
                "SELECT id, issuer_id, credential_hash, anchor_signature, status \
                 FROM credentials WHERE id = ANY($1)",
                &[&uuids],
            )
            .await?
            .iter()
            .map(|r| {
                Ok((
                    CredentialId::from_uuid(r.try_get(0)?),
                    AnchoredRow {
                        issuer: r.try_get(1)?,
                        hash: r.try_get(2)?,
                        anchor_signature: r.try_get(3)?,
                        status: r.try_get(4)?,
                    },
                ))
            })
            .collect()
    }

    /// Applies a trusted batch anchor in one transaction: a sealed batch still pending is
    /// finalized with all its members (the relay crashed after sending); a batch with no
    /// record is backfilled as `recovered` (its members are re-linked when their proof
    /// bundles are presented); a record that disagrees with the memo is drift.
    pub async fn apply_trusted_batch(
        &self,
        anchor: &TrustedBatch<'_>,
    ) -> Result<(Applied, bool), StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let id = anchor.batch.as_uuid();
        let slot = slot_i64(anchor.slot);
        let count = i32::try_from(anchor.count).unwrap_or(i32::MAX);
        let finding = |kind, detail: &'static str| NewFinding {
            kind,
            signature: anchor.signature,
            slot: Some(anchor.slot),
            credential: None,
            issuer: Some(anchor.issuer.as_str()),
            detail,
        };
        let row = db
            .query_opt(
                "SELECT issuer_id, member_count, root, completed_at IS NOT NULL, anchor_signature \
                 FROM anchor_batches WHERE id = $1 FOR UPDATE",
                &[id],
            )
            .await?;
        let (applied, new) = match row {
            None => {
                db.execute(
                    "INSERT INTO anchor_batches (id, issuer_id, member_count, root, origin, \
                       completed_at, anchor_signature, anchor_slot) \
                     VALUES ($1, $2, $3, $4, 'recovered', coalesce($5, now()), $6, $7) \
                     ON CONFLICT (id) DO NOTHING",
                    &[
                        id,
                        &anchor.issuer.as_str(),
                        &count,
                        &anchor.root.as_bytes().as_slice(),
                        &anchor.block_time,
                        &anchor.signature,
                        &slot,
                    ],
                )
                .await?;
                let new = insert_finding(
                    &db,
                    &finding(
                        FindingKind::MissingRow,
                        "batch backfilled as recovered; members are re-linked from their proof bundles",
                    ),
                )
                .await?;
                (Applied::Backfilled, new)
            }
            Some(row) => {
                let issuer: String = row.try_get(0)?;
                let members: i32 = row.try_get(1)?;
                let root: Vec<u8> = row.try_get(2)?;
                let completed: bool = row.try_get(3)?;
                let recorded: Option<String> = row.try_get(4)?;
                if issuer != anchor.issuer.as_str()
                    || members != count
                    || root != anchor.root.as_bytes().as_slice()
                {
                    let new = insert_finding(
                        &db,
                        &finding(
                            FindingKind::Drift,
                            "batch record disagrees with its on-chain memo",
                        ),
                    )
                    .await?;
                    (Applied::Mismatch, new)
                } else if !completed {
                    finalize_pending_batch(&db, anchor, slot).await?;
                    let new = insert_finding(
                        &db,
                        &finding(
                            FindingKind::PendingAnchored,
                            "batch finalized by the reconciler",
                        ),
                    )
                    .await?;
                    (Applied::Finalized, new)
                } else if recorded.is_some_and(|r| r != anchor.signature) {
                    let new = insert_finding(
                        &db,
                        &finding(FindingKind::Drift, "a second anchor of an anchored batch"),
                    )
                    .await?;
                    (Applied::Mismatch, new)
                } else {
                    (Applied::Consistent, false)
                }
            }
        };
        db.commit().await?;
        Ok((applied, new))
    }
}

/// Finalizes a sealed batch found on chain: the batch, its members' credentials and outbox
/// rows, and its transactions (the landed one finalized, any other live one retired).
async fn finalize_pending_batch(
    db: &deadpool_postgres::Transaction<'_>,
    anchor: &TrustedBatch<'_>,
    slot: i64,
) -> Result<(), StoreError> {
    let id = anchor.batch.as_uuid();
    db.execute(
        "UPDATE anchor_batches SET completed_at = coalesce($4, now()), anchor_signature = $2, \
           anchor_slot = $3, locked_until = NULL, locked_by = NULL, dead_at = NULL, \
           last_error = NULL, updated_at = now() WHERE id = $1",
        &[id, &anchor.signature, &slot, &anchor.block_time],
    )
    .await?;
    db.execute(
        "UPDATE credentials SET status = 'finalized', anchor_signature = $2, anchor_slot = $3, \
           finalized_at = coalesce($4, now()), last_error = NULL, updated_at = now() \
         WHERE id IN (SELECT credential_id FROM anchor_batch_members WHERE batch_id = $1) \
           AND status IN ('queued', 'submitted', 'confirmed', 'failed')",
        &[id, &anchor.signature, &slot, &anchor.block_time],
    )
    .await?;
    // The same retirement as a single credential's (it also stamps `confirmed_at`, which a
    // copy of it here once forgot).
    retire_live_txs(db, "batch_id = $1", id, anchor.signature, slot).await?;
    db.execute(
        "UPDATE outbox SET completed_at = now(), locked_until = NULL, locked_by = NULL, \
           dead_at = NULL, last_error = NULL, updated_at = now() \
         WHERE batch_id = $1 AND completed_at IS NULL",
        &[id],
    )
    .await?;
    Ok(())
}

/// The credential of an anchored revocation becomes `revoked` (from any status the event
/// allows; `revoked` itself is a no-op).
async fn set_revoked(
    db: &deadpool_postgres::Transaction<'_>,
    id: &uuid::Uuid,
    revocable: &[&str],
) -> Result<(), StoreError> {
    db.execute(
        "UPDATE credentials SET status = 'revoked', updated_at = now() \
         WHERE id = $1 AND status = ANY($2) AND status <> 'revoked'",
        &[id, &revocable],
    )
    .await?;
    Ok(())
}

/// Among the anchor transactions `scope` selects (SQL over `$1` = `id`), the one that landed
/// (`signature`) is finalized and every other still-live one retired as expired, so the
/// relay never rebroadcasts or re-signs.
async fn retire_live_txs(
    db: &deadpool_postgres::Transaction<'_>,
    scope: &str,
    id: &uuid::Uuid,
    signature: &str,
    slot: i64,
) -> Result<(), StoreError> {
    db.execute(
        &format!(
            "UPDATE anchor_transactions SET \
               status = CASE WHEN signature = $2 THEN 'finalized' ELSE 'expired' END, \
               slot = CASE WHEN signature = $2 THEN $3 ELSE slot END, \
               confirmed_at = CASE WHEN signature = $2 THEN coalesce(confirmed_at, now()) ELSE confirmed_at END, \
               finalized_at = CASE WHEN signature = $2 THEN now() ELSE finalized_at END, \
               error = CASE WHEN signature = $2 THEN error ELSE 'superseded: reconciler found the anchor' END \
             WHERE {scope} AND (signature = $2 OR status IN {live})",
            live = domain::AnchorTxStatus::LIVE_SQL
        ),
        &[id, &signature, &slot],
    )
    .await?;
    Ok(())
}

/// Finalizes a pending credential with the anchor found on chain, completes its open outbox
/// job and retires its live transactions, so the relay has nothing left to send.
async fn finalize_pending(
    db: &deadpool_postgres::Transaction<'_>,
    anchor: &TrustedAnchor<'_>,
    slot: i64,
) -> Result<(), StoreError> {
    let id = anchor.credential.as_uuid();
    db.execute(
        "UPDATE credentials SET status = 'finalized', anchor_signature = $2, anchor_slot = $3, \
           finalized_at = coalesce($4, now()), last_error = NULL, updated_at = now() \
         WHERE id = $1 AND status IN ('queued', 'submitted', 'confirmed', 'failed')",
        &[id, &anchor.signature, &slot, &anchor.block_time],
    )
    .await?;
    retire_live_txs(db, "credential_id = $1", id, anchor.signature, slot).await?;
    db.execute(
        "UPDATE outbox SET completed_at = now(), locked_until = NULL, locked_by = NULL, \
           last_error = NULL, updated_at = now() \
         WHERE credential_id = $1 AND kind = 'anchor_credential' AND completed_at IS NULL",
        &[id],
    )
    .await?;
    Ok(())
}

async fn insert_finding(
    client: &impl deadpool_postgres::GenericClient,
    f: &NewFinding<'_>,
) -> Result<bool, StoreError> {
    let n = client
        .execute(
            "INSERT INTO reconciliation_findings (kind, signature, slot, credential_id, issuer_id, detail) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (kind, signature, credential_id) DO NOTHING",
            &[
                &f.kind.as_str(),
                &f.signature,
                &f.slot.map(slot_i64),
                &f.credential.map(|c| *c.as_uuid()),
                &f.issuer,
                &f.detail,
            ],
        )
        .await?;
    Ok(n == 1)
}
