//! The reconciler's queries: anchoring keys to scan, scan checkpoints, findings, and the
//! execution of a `domain::reconcile::Repair` in one transaction each.
//!
//! The store decides nothing here: each `repair_*` reads the record a trusted memo names under
//! its row lock, hands it to the caller's decision (`domain::reconcile::decide_*`), and executes
//! what that returns, with its finding, before COMMIT. Every repair is idempotent and guarded
//! by the row's current status (sources from `domain::status`), so two overlapping scans (or a
//! scan racing the relay) converge on the same rows; findings are deduplicated by the
//! `reconciliation_findings_once` index.

use chrono::{DateTime, Utc};
use domain::hash::CredentialHash;
use domain::{BatchId, CredentialId, IssuerId, MerkleRoot};

use domain::reconcile::{
    awaiting_anchor, BatchClaim, CredentialClaim, RecordedBatch, RecordedCredential,
    RecordedRevocation, Repair, Subject,
};
use domain::{CredentialStatus, StatusEvent};

pub use domain::reconcile::FindingKind;

use crate::outbox::statuses;
use crate::{Store, StoreError};

/// Names the reconciler's session advisory lock (pg advisory locks are keyed by i64).
const RECONCILER_LOCK_KEY: i64 = 0x6361_7265_636f_6e63; // "careconc"

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

impl TrustedAnchor<'_> {
    pub fn claim(&self) -> CredentialClaim<'_> {
        CredentialClaim {
            issuer: self.issuer,
            hash: &self.hash,
            signature: self.signature,
        }
    }
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

impl TrustedBatch<'_> {
    pub fn claim(&self) -> BatchClaim<'_> {
        BatchClaim {
            issuer: self.issuer,
            count: self.count,
            root: &self.root,
            signature: self.signature,
        }
    }
}

/// A trusted on-chain revocation (a `ca1:r` memo, or one entry of a `ca1:v` list, from the
/// anchoring key).
#[derive(Debug, Clone)]
pub struct TrustedRevocation<'a> {
    pub issuer: &'a IssuerId,
    pub credential: CredentialId,
    pub hash: CredentialHash,
    /// The revocation list (`ca1:v`) the memo names; `None` for a `ca1:r` memo.
    pub list: Option<domain::BatchId>,
    pub signature: &'a str,
    pub slot: u64,
    pub block_time: Option<DateTime<Utc>>,
}

impl TrustedRevocation<'_> {
    pub fn claim(&self) -> CredentialClaim<'_> {
        CredentialClaim {
            issuer: self.issuer,
            hash: &self.hash,
            signature: self.signature,
        }
    }
}

/// What executing a repair did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Executed {
    /// The repair executed (`Consistent` when a credential backfill found the row already
    /// inserted by a concurrent writer; a batch backfill that finds its record inserted
    /// meanwhile stays `Backfill`, as it always did).
    pub repair: Repair,
    /// The finding it amounts to was recorded for the first time (a re-scan finds it again).
    pub new_finding: bool,
}

/// The reason stored for a revocation rebuilt from the chain: the reason itself is never
/// written on chain (invariant 5), so a restore cannot bring it back.
pub const RECOVERED_REVOCATION_REASON: &str =
    "recovered from the chain by the reconciler (the reason is never written on chain)";

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

    /// Executes what `decide` makes of a trusted credential anchor, in one transaction with
    /// the credential row locked: backfill the missing row as `recovered`, finalize the
    /// pending one (its open job and live transactions with it), or only record the finding.
    pub async fn repair_anchor(
        &self,
        anchor: &TrustedAnchor<'_>,
        decide: impl FnOnce(Option<&RecordedCredential>) -> Repair,
    ) -> Result<Executed, StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let id = anchor.credential.as_uuid();
        let slot = slot_i64(anchor.slot);
        let row = db
            .query_opt(
                "SELECT issuer_id, credential_hash, status, anchor_signature FROM credentials \
                 WHERE id = $1 FOR UPDATE",
                &[id],
            )
            .await?
            .map(|r| recorded_credential(&r))
            .transpose()?;
        let mut repair = decide(row.as_ref());
        match repair {
            Repair::Consistent | Repair::Drift(_) => {}
            Repair::Backfill => {
                // ON CONFLICT: a concurrent issuance of the same id (impossible for UUIDv7 in
                // practice) wins; the row then exists and there is nothing to rebuild.
                let inserted = db
                    .execute(
                        "INSERT INTO credentials (id, issuer_id, credential_hash, status, \
                           anchor_signature, anchor_slot, finalized_at) \
                         VALUES ($1, $2, $3, $7, $4, $5, coalesce($6, now())) \
                         ON CONFLICT (id) DO NOTHING",
                        &[
                            id,
                            &anchor.issuer.as_str(),
                            &anchor.hash.as_bytes().as_slice(),
                            &anchor.signature,
                            &slot,
                            &anchor.block_time,
                            &CredentialStatus::initial_for_backfill().as_str(),
                        ],
                    )
                    .await?;
                if inserted == 0 {
                    repair = Repair::Consistent;
                } else {
                    skip_to_a_fresh_list(&db, anchor.issuer, None).await?;
                }
            }
            Repair::Finalize => finalize_pending(&db, anchor, slot).await?,
            Repair::MarkRevoked => return Err(inapplicable(repair, Subject::Credential)),
        }
        finish_repair(
            db,
            repair,
            Subject::Credential,
            anchor.signature,
            anchor.slot,
            Some(anchor.credential),
            anchor.issuer,
        )
        .await
    }

    /// Executes what `decide` makes of a trusted revocation memo, in one transaction with the
    /// open revocation job, the credential and the revocation locked: finalize the pending
    /// revocation (its open job completed, its other live transactions retired), rebuild a
    /// missing one (lost with a restore), mark the credential `revoked`, or only record the
    /// finding. Call it after the run's credential and batch anchors are applied.
    pub async fn repair_revocation(
        &self,
        revocation: &TrustedRevocation<'_>,
        decide: impl FnOnce(Option<&RecordedCredential>, &RecordedRevocation) -> Repair,
    ) -> Result<Executed, StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let id = revocation.credential.as_uuid();
        let slot = slot_i64(revocation.slot);
        // Lock order as the relay's `complete_finalized` (the open job's own row first: the
        // revocation list it was sealed into, else its outbox row): both finalizing the same
        // revocation at once queue here instead of deadlocking.
        db.execute(
            "SELECT 1 FROM revocation_batches WHERE id = (SELECT o.revocation_batch_id \
               FROM outbox o WHERE o.credential_id = $1 AND o.kind = 'anchor_revocation' \
                 AND o.completed_at IS NULL) FOR UPDATE",
            &[id],
        )
        .await?;
        db.execute(
            "SELECT 1 FROM outbox WHERE credential_id = $1 AND kind = 'anchor_revocation' \
               AND completed_at IS NULL FOR UPDATE",
            &[id],
        )
        .await?;
        let credential = db
            .query_opt(
                "SELECT issuer_id, credential_hash, status, anchor_signature FROM credentials \
                 WHERE id = $1 FOR UPDATE",
                &[id],
            )
            .await?
            .map(|r| recorded_credential(&r))
            .transpose()?;
        let recorded = match db
            .query_opt(
                "SELECT anchor_signature FROM revocations WHERE credential_id = $1 FOR UPDATE",
                &[id],
            )
            .await?
        {
            None => RecordedRevocation::None,
            Some(row) => match row.try_get::<_, Option<String>>(0)? {
                None => RecordedRevocation::Pending,
                Some(signature) => RecordedRevocation::Anchored(signature),
            },
        };
        let repair = decide(credential.as_ref(), &recorded);
        let revocable = statuses(StatusEvent::RevocationAnchored);
        match repair {
            Repair::Consistent | Repair::Drift(_) => {}
            Repair::MarkRevoked => set_revoked(&db, id, &revocable).await?,
            Repair::Finalize => {
                db.execute(
                    "UPDATE revocations SET anchor_signature = $2, anchor_slot = $3, \
                       finalized_at = coalesce($4, now()) WHERE credential_id = $1",
                    &[id, &revocation.signature, &slot, &revocation.block_time],
                )
                .await?;
                // The list this memo anchors, when the revocation was sealed into it: the
                // memo is that list's anchor, so the whole list completes here as the relay's
                // `complete_finalized` would (every member anchored and revoked, its
                // transaction and row done), leaving the relay nothing to send and no member
                // behind. Sealed into another list, that list still anchors its members; this
                // revocation keeps the anchor found first.
                if let Some(list) = revocation.list {
                    let list = list.as_uuid();
                    let ours = db
                        .execute(
                            "UPDATE revocation_batches SET completed_at = now(), \
                               locked_until = NULL, locked_by = NULL, dead_at = NULL, \
                               last_error = NULL, anchor_signature = $2, anchor_slot = $3, \
                               updated_at = now() \
                             WHERE id = $1 AND completed_at IS NULL AND id = ( \
                               SELECT o.revocation_batch_id FROM outbox o \
                               WHERE o.credential_id = $4 AND o.kind = 'anchor_revocation' \
                                 AND o.completed_at IS NULL)",
                            &[list, &revocation.signature, &slot, id],
                        )
                        .await?;
                    if ours == 1 {
                        retire_live_txs(
                            &db,
                            "revocation_batch_id = $1",
                            list,
                            revocation.signature,
                            slot,
                        )
                        .await?;
                        // Credentials first, as the relay's completion and `store::revoke`.
                        let members =
                            "(SELECT credential_id FROM outbox WHERE revocation_batch_id = $1)";
                        db.execute(
                            &format!(
                                "UPDATE credentials SET status = 'revoked', updated_at = now() \
                                 WHERE id IN {members} AND status = ANY($2)"
                            ),
                            &[list, &revocable],
                        )
                        .await?;
                        db.execute(
                            &format!(
                                "UPDATE revocations SET anchor_signature = $2, anchor_slot = $3, \
                                   finalized_at = coalesce($4, now()) \
                                 WHERE credential_id IN {members} AND anchor_signature IS NULL"
                            ),
                            &[list, &revocation.signature, &slot, &revocation.block_time],
                        )
                        .await?;
                        db.execute(
                            "UPDATE outbox SET completed_at = now(), locked_until = NULL, \
                               locked_by = NULL, dead_at = NULL, last_error = NULL, \
                               updated_at = now() \
                             WHERE revocation_batch_id = $1 AND completed_at IS NULL",
                            &[list],
                        )
                        .await?;
                    }
                }
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
            }
            Repair::Backfill => {
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
            }
        }
        finish_repair(
            db,
            repair,
            Subject::Revocation,
            revocation.signature,
            revocation.slot,
            Some(revocation.credential),
            revocation.issuer,
        )
        .await
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
    /// The credential rows of `ids` that exist, for the reconciler's per-page prefilter.
    pub async fn recorded_credentials(
        &self,
        ids: &[CredentialId],
    ) -> Result<std::collections::HashMap<CredentialId, RecordedCredential>, StoreError> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let uuids: Vec<uuid::Uuid> = ids.iter().map(|c| *c.as_uuid()).collect();
        let client = self.client().await?;
        client
            .query(
                "SELECT issuer_id, credential_hash, status, anchor_signature, id \
                 FROM credentials WHERE id = ANY($1)",
                &[&uuids],
            )
            .await?
            .iter()
            .map(|r| {
                Ok((
                    CredentialId::from_uuid(r.try_get(4)?),
                    recorded_credential(r)?,
                ))
            })
            .collect()
    }

    /// Executes what `decide` makes of a trusted batch anchor, in one transaction with the
    /// batch record locked: finalize a sealed batch still pending with all its members (the
    /// relay crashed after sending), backfill a batch with no record as `recovered` (its
    /// members are re-linked when their proof bundles are presented), or only record the
    /// finding.
    pub async fn repair_batch(
        &self,
        anchor: &TrustedBatch<'_>,
        decide: impl FnOnce(Option<&RecordedBatch>) -> Repair,
    ) -> Result<Executed, StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let id = anchor.batch.as_uuid();
        let slot = slot_i64(anchor.slot);
        let row = db
            .query_opt(
                "SELECT issuer_id, member_count, root, completed_at IS NOT NULL, anchor_signature \
                 FROM anchor_batches WHERE id = $1 FOR UPDATE",
                &[id],
            )
            .await?
            .map(|r| -> Result<RecordedBatch, StoreError> {
                Ok(RecordedBatch {
                    issuer: r.try_get(0)?,
                    member_count: i64::from(r.try_get::<_, i32>(1)?),
                    root: r.try_get(2)?,
                    completed: r.try_get(3)?,
                    anchor_signature: r.try_get(4)?,
                })
            })
            .transpose()?;
        let repair = decide(row.as_ref());
        match repair {
            Repair::Consistent | Repair::Drift(_) => {}
            Repair::Backfill => {
                let count = i32::try_from(anchor.count).unwrap_or(i32::MAX);
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
                skip_to_a_fresh_list(&db, anchor.issuer, None).await?;
            }
            Repair::Finalize => finalize_pending_batch(&db, anchor, slot).await?,
            Repair::MarkRevoked => return Err(inapplicable(repair, Subject::Batch)),
        }
        finish_repair(
            db,
            repair,
            Subject::Batch,
            anchor.signature,
            anchor.slot,
            None,
            anchor.issuer,
        )
        .await
    }
}

/// A trusted `ca1:s` memo, as the reconciler hands it to [`Store::repair_status_version`].
#[derive(Debug, Clone, Copy)]
pub struct TrustedStatusList<'a> {
    pub issuer: &'a IssuerId,
    pub list: u32,
    pub version: u32,
    pub hash: &'a domain::status_list::StatusListHash,
    pub signature: &'a str,
    pub slot: u64,
    pub block_time: Option<DateTime<Utc>>,
}

/// A list whose newest servable (signed) version is older than its newest anchored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleList {
    pub issuer: String,
    pub list: i64,
    pub served_version: Option<i32>,
    pub anchored_version: i32,
    pub anchored_signature: String,
}

impl Store {
    /// Executes what `decide` makes of a trusted status list memo, with the record of the
    /// same bits locked: backfill a version the database lost (a restore: recorded as
    /// anchored, `recovered`, with no signed credential; its list is marked changed so the
    /// publisher re-signs the bits, which the revocations rebuilt from the chain recreate),
    /// finalize one still pending, or only record the finding.
    pub async fn repair_status_version(
        &self,
        anchor: &TrustedStatusList<'_>,
        decide: impl FnOnce(Option<&domain::reconcile::RecordedStatusVersion>) -> Repair,
    ) -> Result<Executed, StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let list = i64::from(anchor.list);
        let hash = anchor.hash.as_bytes().as_slice();
        let slot = slot_i64(anchor.slot);
        let row = db
            .query_opt(
                "SELECT id, version, completed_at IS NOT NULL, anchor_signature \
                 FROM status_list_versions \
                 WHERE issuer_id = $1 AND list_no = $2 AND bits_hash = $3 FOR UPDATE",
                &[&anchor.issuer.as_str(), &list, &hash],
            )
            .await?;
        let id: Option<i64> = row.as_ref().map(|r| r.try_get(0)).transpose()?;
        let recorded = row
            .map(
                |r| -> Result<domain::reconcile::RecordedStatusVersion, StoreError> {
                    Ok(domain::reconcile::RecordedStatusVersion {
                        version: u32::try_from(r.try_get::<_, i32>(1)?).unwrap_or(0),
                        completed: r.try_get(2)?,
                        anchor_signature: r.try_get(3)?,
                    })
                },
            )
            .transpose()?;
        let repair = decide(recorded.as_ref());
        match (repair, id) {
            (Repair::Consistent | Repair::Drift(_), _) => {}
            (Repair::Backfill, _) => {
                // The issuer's status lists may be newer than the dump too.
                db.execute(
                    "INSERT INTO status_lists (issuer_id, list_no, dirty_since) VALUES ($1, $2, now()) \
                     ON CONFLICT (issuer_id, list_no) DO UPDATE \
                       SET dirty_since = coalesce(status_lists.dirty_since, now()), \
                           changes = status_lists.changes + 1",
                    &[&anchor.issuer.as_str(), &list],
                )
                .await?;
                let version = i32::try_from(anchor.version).unwrap_or(i32::MAX);
                db.execute(
                    "INSERT INTO status_list_versions (issuer_id, list_no, version, bits_hash, \
                       revoked_count, origin, completed_at, anchor_signature, anchor_slot) \
                     VALUES ($1, $2, $3, $4, 0, 'recovered', coalesce($5, now()), $6, $7) \
                     ON CONFLICT (issuer_id, list_no, bits_hash) DO NOTHING",
                    &[
                        &anchor.issuer.as_str(),
                        &list,
                        &version,
                        &hash,
                        &anchor.block_time,
                        &anchor.signature,
                        &slot,
                    ],
                )
                .await?;
                skip_to_a_fresh_list(&db, anchor.issuer, Some(anchor.list)).await?;
            }
            (Repair::Finalize, Some(id)) => {
                db.execute(
                    "UPDATE status_list_versions SET completed_at = coalesce($4, now()), \
                       anchor_signature = $2, anchor_slot = $3, locked_until = NULL, \
                       locked_by = NULL, dead_at = NULL, last_error = NULL, updated_at = now() \
                     WHERE id = $1",
                    &[&id, &anchor.signature, &slot, &anchor.block_time],
                )
                .await?;
                db.execute(
                    &format!(
                        "UPDATE anchor_transactions SET \
                           status = CASE WHEN signature = $2 THEN 'finalized' ELSE 'expired' END, \
                           slot = CASE WHEN signature = $2 THEN $3 ELSE slot END, \
                           finalized_at = CASE WHEN signature = $2 THEN now() ELSE finalized_at END, \
                           error = CASE WHEN signature = $2 THEN error ELSE 'superseded: reconciler found the anchor' END \
                         WHERE status_list_version_id = $1 AND (signature = $2 OR status IN {live})",
                        live = domain::AnchorTxStatus::LIVE_SQL
                    ),
                    &[&id, &anchor.signature, &slot],
                )
                .await?;
            }
            (other, _) => return Err(inapplicable(other, Subject::StatusList)),
        }
        finish_repair(
            db,
            repair,
            Subject::StatusList,
            anchor.signature,
            anchor.slot,
            None,
            anchor.issuer,
        )
        .await
    }

    /// Lists whose newest signed, anchored version is older than their newest anchored
    /// version: what a verifier is served is behind the chain.
    pub async fn stale_status_lists(&self) -> Result<Vec<StaleList>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                // The newest anchored version of each list, against the newest one that can
                // be served (signed): two passes over the table, not one lookup per row.
                "SELECT a.issuer_id, a.list_no, s.served, a.version, a.anchor_signature \
                 FROM (SELECT DISTINCT ON (issuer_id, list_no) issuer_id, list_no, version, \
                         anchor_signature FROM status_list_versions \
                       WHERE completed_at IS NOT NULL AND anchor_signature IS NOT NULL \
                       ORDER BY issuer_id, list_no, version DESC) a \
                 LEFT JOIN (SELECT issuer_id, list_no, max(version) AS served \
                            FROM status_list_versions \
                            WHERE completed_at IS NOT NULL AND credential IS NOT NULL \
                            GROUP BY issuer_id, list_no) s USING (issuer_id, list_no) \
                 WHERE s.served IS NULL OR s.served < a.version",
                &[],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(StaleList {
                    issuer: r.try_get(0)?,
                    list: r.try_get(1)?,
                    served_version: r.try_get(2)?,
                    anchored_version: r.try_get(3)?,
                    anchored_signature: r.try_get(4)?,
                })
            })
            .collect()
    }
}

/// After a backfill the database was behind the chain (a restore): credentials issued after
/// the backup hold status-list bits the restored counter would hand out again. New
/// credentials therefore start a list of their own, past every list in use and past `list`
/// (one seen on chain): a shared bit would let one credential's revocation revoke another.
async fn skip_to_a_fresh_list(
    db: &deadpool_postgres::Transaction<'_>,
    issuer: &IssuerId,
    list: Option<u32>,
) -> Result<(), StoreError> {
    let size = i64::from(domain::status_list::LIST_SIZE);
    db.execute(
        "INSERT INTO status_list_counters (issuer_id, next_ordinal) \
         SELECT $1, (greatest(coalesce(max(list_no), -1), coalesce($2::bigint, -1)) + 1) * $3::bigint \
         FROM status_lists WHERE issuer_id = $1 \
         ON CONFLICT (issuer_id) DO UPDATE \
           SET next_ordinal = greatest(status_list_counters.next_ordinal, excluded.next_ordinal)",
        &[&issuer.as_str(), &list.map(i64::from), &size],
    )
    .await?;
    Ok(())
}

/// A credential row as the reconciler's decisions read it.
fn recorded_credential(r: &tokio_postgres::Row) -> Result<RecordedCredential, StoreError> {
    let status: String = r.try_get(2)?;
    Ok(RecordedCredential {
        issuer: r.try_get(0)?,
        hash: r.try_get(1)?,
        status: status
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("credential status: {e}")))?,
        anchor_signature: r.try_get(3)?,
    })
}

/// A decision that names a repair with no meaning for its subject (only a revocation can be
/// `MarkRevoked`): nothing is written, the transaction rolls back.
fn inapplicable(repair: Repair, subject: Subject) -> StoreError {
    StoreError::Corrupt(format!("repair {repair:?} does not apply to a {subject:?}"))
}

/// Records the finding a repair amounts to (none for `Consistent`) and commits the repair
/// with it: every `repair_*` ends here.
async fn finish_repair(
    db: deadpool_postgres::Transaction<'_>,
    repair: Repair,
    subject: Subject,
    signature: &str,
    slot: u64,
    credential: Option<CredentialId>,
    issuer: &IssuerId,
) -> Result<Executed, StoreError> {
    let new_finding = match repair.finding(subject) {
        None => false,
        Some((kind, detail)) => {
            insert_finding(
                &db,
                &NewFinding {
                    kind,
                    signature,
                    slot: Some(slot),
                    credential,
                    issuer: Some(issuer.as_str()),
                    detail,
                },
            )
            .await?
        }
    };
    crate::error::commit(db).await?;
    Ok(Executed {
        repair,
        new_finding,
    })
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
           AND status = ANY($5)",
        &[
            id,
            &anchor.signature,
            &slot,
            &anchor.block_time,
            &awaiting_anchor_sql(),
        ],
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
/// (`signature`) is finalized (`AnchorTxEvent::Finalized`: from any status) and every
/// other still-live one retired as expired (`AnchorTxEvent::Superseded`: from the live set,
/// spelled as the literal the partial unique indexes carry), so the relay never rebroadcasts
/// or re-signs.
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
         WHERE id = $1 AND status = ANY($5)",
        &[
            id,
            &anchor.signature,
            &slot,
            &anchor.block_time,
            &awaiting_anchor_sql(),
        ],
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

/// The statuses a trusted anchor finalizes (`domain::reconcile::awaiting_anchor`), as the
/// text the guarded updates compare with.
pub(crate) fn awaiting_anchor_sql() -> Vec<&'static str> {
    awaiting_anchor().map(CredentialStatus::as_str).collect()
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
