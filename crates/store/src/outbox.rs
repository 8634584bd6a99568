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
use domain::status::{allowed_sources, AnchorTxEvent, AnchorTxStatus, StatusEvent, UnknownStatus};

/// The live anchor-transaction statuses, as SQL (`domain::AnchorTxStatus::LIVE_SQL`).
const LIVE: &str = AnchorTxStatus::LIVE_SQL;
use domain::status_list::StatusListHash;
use domain::{BatchId, CredentialId, IssuerId, Memo, MerkleRoot, Revoked};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::{Store, StoreError, OUTBOX_CHANNEL};

/// Which row owns a job's lease and transactions: an outbox row (single mode: one credential),
/// a sealed Merkle batch (many credentials, one memo) or a status list version (no
/// credential: its memo anchors the list's bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKey {
    Outbox(i64),
    Batch(BatchId),
    StatusList(i64),
    /// A sealed revocation list (`revocation_batches`, a `ca1:v` memo).
    RevocationList(BatchId),
}

impl std::fmt::Display for JobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobKey::Outbox(id) => write!(f, "outbox:{id}"),
            JobKey::Batch(id) => write!(f, "batch:{id}"),
            JobKey::StatusList(id) => write!(f, "status-list-version:{id}"),
            JobKey::RevocationList(id) => write!(f, "revocation-list:{id}"),
        }
    }
}

/// What a job anchors, i.e. which memo it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorSubject {
    Credential {
        credential_id: CredentialId,
        hash: CredentialHash,
    },
    Batch {
        batch_id: BatchId,
        count: u32,
        root: MerkleRoot,
    },
    /// A `ca1:r` memo: the revocation of an anchored credential (issue #7). Same facts as
    /// `Credential`, different tag; the reason stays off chain (invariant 5).
    Revocation {
        credential_id: CredentialId,
        hash: CredentialHash,
    },
    /// A `ca1:s` memo: one version of a status list (issue #20).
    StatusList {
        list: u32,
        version: u32,
        hash: StatusListHash,
    },
    /// A `ca1:v` memo: up to ten revocations of a Merkle-mode issuer (issue #18), in the
    /// order sealed.
    RevocationList {
        batch_id: BatchId,
        members: Vec<Revoked>,
    },
}

/// A job claimed by one worker under a lease.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub key: JobKey,
    pub issuer: IssuerId,
    pub subject: AnchorSubject,
    /// Fencing token: the claim number.
    pub attempts: i32,
    /// Consecutive failed steps, for backoff and dead-lettering.
    pub failures: i32,
    pub created_at: DateTime<Utc>,
}

impl ClaimedJob {
    /// The memo this job anchors.
    pub fn memo(&self) -> Result<Memo, StoreError> {
        match &self.subject {
            AnchorSubject::Credential {
                credential_id,
                hash,
            } => Ok(Memo::Credential {
                issuer: self.issuer.clone(),
                credential: *credential_id,
                hash: *hash,
            }),
            AnchorSubject::Batch {
                batch_id,
                count,
                root,
            } => Memo::batch(self.issuer.clone(), *batch_id, *count, *root)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
            AnchorSubject::Revocation {
                credential_id,
                hash,
            } => Ok(Memo::Revocation {
                issuer: self.issuer.clone(),
                credential: *credential_id,
                hash: *hash,
            }),
            AnchorSubject::StatusList {
                list,
                version,
                hash,
            } => Ok(Memo::StatusList {
                issuer: self.issuer.clone(),
                list: *list,
                version: *version,
                hash: *hash,
            }),
            AnchorSubject::RevocationList { batch_id, members } => {
                Memo::revocation_list(self.issuer.clone(), *batch_id, members.clone())
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            }
        }
    }
}

/// The job's transaction that may still land.
#[derive(Debug, Clone)]
pub struct LiveAnchorTx {
    pub signature: String,
    pub tx_bytes: Vec<u8>,
    pub last_valid_block_height: u64,
    /// One of `AnchorTxStatus::LIVE`.
    pub status: AnchorTxStatus,
    pub fee_lamports: u64,
}

/// A transaction to store before its first send.
pub struct NewAnchorTx<'a> {
    pub signature: &'a str,
    pub memo: &'a str,
    pub tx_bytes: &'a [u8],
    pub last_valid_block_height: u64,
    pub fee_lamports: u64,
    /// Base58 fee payer: the anchoring key that signs it.
    pub payer: Option<&'a str>,
}

/// Identifies the claim a write belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Fence<'a> {
    pub key: JobKey,
    pub worker: &'a str,
    pub attempts: i32,
}

impl ClaimedJob {
    pub fn fence<'a>(&self, worker: &'a str) -> Fence<'a> {
        Fence {
            key: self.key,
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

pub(crate) fn statuses(event: StatusEvent) -> Vec<&'static str> {
    allowed_sources(event).iter().map(|s| s.as_str()).collect()
}

/// The anchor-transaction statuses `event` is legal from (`domain::AnchorTxStatus::sources`).
pub(crate) fn tx_sources(event: AnchorTxEvent) -> Vec<&'static str> {
    AnchorTxStatus::sources(event)
        .iter()
        .map(|s| s.as_str())
        .collect()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}")))
}

/// The lease claim of the job tables with their own lease columns (batches, status list
/// versions), as the outbox's: up to `$1` due rows of `table` that `extra` admits (SQL over
/// the row `j`), oldest first, `FOR UPDATE SKIP LOCKED`, leased to worker `$3` for `$2` ms.
/// Returns `columns` (over `j`), then attempts, failures and created_at.
fn lease_claim_sql(table: &str, extra: &str, columns: &str) -> String {
    format!(
        "WITH due AS ( \
           SELECT id FROM {table} j \
           WHERE completed_at IS NULL AND dead_at IS NULL AND available_at <= now() \
             AND (locked_until IS NULL OR locked_until < now()) {extra} \
           ORDER BY available_at, id \
           LIMIT $1 FOR UPDATE SKIP LOCKED) \
         UPDATE {table} j SET attempts = j.attempts + 1, \
                locked_until = now() + $2::bigint * interval '1 millisecond', \
                available_at = now() + $2::bigint * interval '1 millisecond', \
                locked_by = $3, updated_at = now() \
         FROM due WHERE j.id = due.id \
         RETURNING {columns}, j.attempts, j.failures, j.created_at"
    )
}

/// A row of [`lease_claim_sql`] as a claimed job: the issuer in column 1, and the lease
/// columns (attempts, failures, created_at) from column `lease_at` on.
fn leased_job(
    r: &tokio_postgres::Row,
    key: JobKey,
    subject: AnchorSubject,
    lease_at: usize,
) -> Result<ClaimedJob, StoreError> {
    let issuer: String = r.try_get(1)?;
    Ok(ClaimedJob {
        key,
        issuer: IssuerId::parse(&issuer).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        subject,
        attempts: r.try_get(lease_at)?,
        failures: r.try_get(lease_at + 1)?,
        created_at: r.try_get(lease_at + 2)?,
    })
}

/// Which credentials a job's status changes apply to (`$1` is the job's id).
fn credential_scope(key: JobKey) -> &'static str {
    match key {
        // A revocation job's transaction never changes its credential's anchor status
        // (see `complete_finalized` for what it does change).
        JobKey::Outbox(_) => {
            "id = (SELECT credential_id FROM outbox WHERE id = $1 AND kind = 'anchor_credential')"
        }
        JobKey::Batch(_) => {
            "id IN (SELECT credential_id FROM anchor_batch_members WHERE batch_id = $1)"
        }
        // A status list version changes no credential.
        JobKey::StatusList(_) => "false AND $1::bigint IS NOT NULL",
        // Nor does a revocation list's transaction (see `complete_finalized`).
        JobKey::RevocationList(_) => "false AND $1::uuid IS NOT NULL",
    }
}

/// The job's id as a query parameter.
fn key_param(key: &JobKey) -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
    match key {
        JobKey::Outbox(id) => Box::new(*id),
        JobKey::Batch(id) => Box::new(*id.as_uuid()),
        JobKey::StatusList(id) => Box::new(*id),
        JobKey::RevocationList(id) => Box::new(*id.as_uuid()),
    }
}

fn job_table(key: JobKey) -> &'static str {
    match key {
        JobKey::Outbox(_) => "outbox",
        JobKey::Batch(_) => "anchor_batches",
        JobKey::StatusList(_) => "status_list_versions",
        JobKey::RevocationList(_) => "revocation_batches",
    }
}

fn parse_hash(bytes: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} length")))
}

impl Store {
    /// Claims up to `limit` due single-mode jobs in one round trip. `FOR UPDATE SKIP LOCKED`
    /// lets N relays claim concurrently without blocking on each other; the row locks last
    /// only for this statement: what protects the job afterwards is the lease
    /// (`locked_until`), never a lock held across network calls. A crashed worker's jobs come
    /// back when its lease ends.
    ///
    /// Rows sealed into a Merkle batch are never claimed here; rows of issuers in merkle mode
    /// (their `anchor_mode`, else `default_mode`) are left for sealing — unless the row already
    /// has a single-mode transaction, which then must be carried to its end in single mode.
    ///
    /// Revocation jobs (`anchor_revocation`, issue #7) follow their issuer's mode too: in
    /// single mode one `ca1:r` memo each, in merkle mode sealed into `ca1:v` lists
    /// (`revocation_lists`). Either way they are claimed (or sealed) only once their credential
    /// is anchored, so a revocation always lands after the credential's own anchor.
    ///
    /// Cost: the claim walks the partial index `outbox_due (available_at, id)` in order and
    /// stops at the first `limit` lockable rows, so it does not grow with the backlog. Two
    /// things keep it that way: `batch_id IS NULL` is a top-level condition (only credential
    /// rows are ever sealed, so this is the same filter, but now it matches the index
    /// predicate), and the claim moves `available_at` to the lease's end, so leased rows leave
    /// the due range instead of being skipped one by one by every later claim. A crashed
    /// worker's row becomes due exactly when its lease ends, as before. Rows that stay due
    /// but are not claimable here (unbatched rows of merkle-mode issuers waiting to be
    /// sealed, revocations whose credential is not anchored yet) are still stepped over; there
    /// are few of them in practice (sealing drains the first within `batch_max_wait`).
    pub async fn claim_due_outbox_rows(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        default_mode: &str,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "WITH due AS ( \
                   SELECT o.id FROM outbox o JOIN issuers i ON i.id = o.issuer_id \
                   WHERE o.completed_at IS NULL AND o.dead_at IS NULL AND o.batch_id IS NULL \
                     AND o.revocation_batch_id IS NULL \
                     AND o.available_at <= now() \
                     AND (o.locked_until IS NULL OR o.locked_until < now()) \
                     AND (coalesce(i.anchor_mode, $4) = 'single' \
                          OR EXISTS (SELECT 1 FROM anchor_transactions t WHERE t.outbox_id = o.id)) \
                     AND (o.kind = 'anchor_credential' \
                          OR (o.kind = 'anchor_revocation' AND EXISTS (SELECT 1 FROM credentials rc \
                                WHERE rc.id = o.credential_id \
                                  AND rc.status = ANY($5)))) \
                   ORDER BY o.available_at, o.id \
                   LIMIT $1 FOR UPDATE OF o SKIP LOCKED) \
                 UPDATE outbox o SET attempts = o.attempts + 1, \
                        locked_until = now() + $2::bigint * interval '1 millisecond', \
                        available_at = now() + $2::bigint * interval '1 millisecond', \
                        locked_by = $3, updated_at = now() \
                 FROM due WHERE o.id = due.id \
                 RETURNING o.id, o.credential_id, o.issuer_id, \
                           (SELECT c.credential_hash FROM credentials c WHERE c.id = o.credential_id), \
                           o.attempts, o.failures, o.created_at, o.kind",
                // A revocation is claimable once `RevocationAnchored` is legal for its
                // credential, i.e. once the credential is anchored.
                &[
                    &i64::from(limit),
                    &ms(lease),
                    &worker,
                    &default_mode,
                    &statuses(StatusEvent::RevocationAnchored),
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let hash: Vec<u8> = r.try_get(3)?;
                let issuer: String = r.try_get(2)?;
                let kind: String = r.try_get(7)?;
                let credential_id = CredentialId::from_uuid(r.try_get::<_, Uuid>(1)?);
                let hash = CredentialHash::from_bytes(parse_hash(&hash, "credential_hash")?);
                Ok(ClaimedJob {
                    key: JobKey::Outbox(r.try_get(0)?),
                    issuer: IssuerId::parse(&issuer)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    subject: match kind.as_str() {
                        "anchor_credential" => AnchorSubject::Credential {
                            credential_id,
                            hash,
                        },
                        "anchor_revocation" => AnchorSubject::Revocation {
                            credential_id,
                            hash,
                        },
                        other => return Err(StoreError::Corrupt(format!("outbox kind {other}"))),
                    },
                    attempts: r.try_get(4)?,
                    failures: r.try_get(5)?,
                    created_at: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// Claims up to `limit` due sealed batches, exactly as [`Store::claim_due_outbox_rows`].
    pub async fn claim_due_batches(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &lease_claim_sql(
                    "anchor_batches",
                    "",
                    "j.id, j.issuer_id, j.member_count, j.root",
                ),
                &[&i64::from(limit), &ms(lease), &worker],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let root: Vec<u8> = r.try_get(3)?;
                let count: i32 = r.try_get(2)?;
                let subject = AnchorSubject::Batch {
                    batch_id: BatchId::from_uuid(r.try_get(0)?),
                    count: u32::try_from(count)
                        .map_err(|_| StoreError::Corrupt("member_count".into()))?,
                    root: MerkleRoot::from_bytes(parse_hash(&root, "root")?),
                };
                leased_job(
                    r,
                    JobKey::Batch(BatchId::from_uuid(r.try_get(0)?)),
                    subject,
                    4,
                )
            })
            .collect()
    }

    /// Claims up to `limit` due status list versions, exactly as [`Store::claim_due_batches`],
    /// but never a version while an older one of the same list is still on its way: versions
    /// land on chain in order, which `credential-verify` relies on (it reads the history
    /// newest first and stops at the list it was given).
    pub async fn claim_due_status_lists(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let client = self.client().await?;
        let older_on_its_way = "AND NOT EXISTS (SELECT 1 FROM status_list_versions o \
               WHERE o.issuer_id = j.issuer_id AND o.list_no = j.list_no \
                 AND o.version < j.version AND o.completed_at IS NULL AND o.dead_at IS NULL)";
        let rows = client
            .query(
                &lease_claim_sql(
                    "status_list_versions",
                    older_on_its_way,
                    "j.id, j.issuer_id, j.list_no, j.version, j.bits_hash",
                ),
                &[&i64::from(limit), &ms(lease), &worker],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let hash: Vec<u8> = r.try_get(4)?;
                let subject = AnchorSubject::StatusList {
                    list: u32::try_from(r.try_get::<_, i64>(2)?)
                        .map_err(|_| StoreError::Corrupt("list_no".into()))?,
                    version: u32::try_from(r.try_get::<_, i32>(3)?)
                        .map_err(|_| StoreError::Corrupt("version".into()))?,
                    hash: StatusListHash::from_bytes(parse_hash(&hash, "bits_hash")?),
                };
                leased_job(r, JobKey::StatusList(r.try_get(0)?), subject, 5)
            })
            .collect()
    }

    /// Claims up to `limit` due sealed revocation lists, exactly as
    /// [`Store::claim_due_batches`], with their members in the order sealed (outbox id).
    pub async fn claim_due_revocation_lists(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let client = self.client().await?;
        let members = "(SELECT coalesce(array_agg(o.credential_id ORDER BY o.id), '{}') \
               FROM outbox o WHERE o.revocation_batch_id = j.id), \
             (SELECT coalesce(array_agg(c.credential_hash ORDER BY o.id), '{}') \
               FROM outbox o JOIN credentials c ON c.id = o.credential_id \
               WHERE o.revocation_batch_id = j.id)";
        let rows = client
            .query(
                &lease_claim_sql(
                    "revocation_batches",
                    "",
                    &format!("j.id, j.issuer_id, j.member_count, {members}"),
                ),
                &[&i64::from(limit), &ms(lease), &worker],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let id = BatchId::from_uuid(r.try_get(0)?);
                let count: i32 = r.try_get(2)?;
                let ids: Vec<Uuid> = r.try_get(3)?;
                let hashes: Vec<Vec<u8>> = r.try_get(4)?;
                if usize::try_from(count).ok() != Some(ids.len()) || ids.len() != hashes.len() {
                    return Err(StoreError::Corrupt(format!(
                        "revocation list {id}: {count} members recorded, {} found",
                        ids.len()
                    )));
                }
                let members = ids
                    .into_iter()
                    .zip(hashes)
                    .map(|(id, hash)| {
                        Ok(Revoked {
                            credential: CredentialId::from_uuid(id),
                            hash: CredentialHash::from_bytes(parse_hash(&hash, "credential_hash")?),
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let subject = AnchorSubject::RevocationList {
                    batch_id: id,
                    members,
                };
                leased_job(r, JobKey::RevocationList(id), subject, 5)
            })
            .collect()
    }

    /// The live transactions of the given jobs (at most one each, by the unique indexes).
    pub async fn live_anchor_txs(
        &self,
        keys: &[JobKey],
    ) -> Result<Vec<(JobKey, LiveAnchorTx)>, StoreError> {
        fn ids<T>(keys: &[JobKey], pick: impl Fn(&JobKey) -> Option<T>) -> Vec<T> {
            keys.iter().filter_map(pick).collect()
        }
        let outbox_ids: Vec<i64> = ids(keys, |k| match k {
            JobKey::Outbox(id) => Some(*id),
            _ => None,
        });
        let batch_ids: Vec<Uuid> = ids(keys, |k| match k {
            JobKey::Batch(id) => Some(*id.as_uuid()),
            _ => None,
        });
        let list_ids: Vec<i64> = ids(keys, |k| match k {
            JobKey::StatusList(id) => Some(*id),
            _ => None,
        });
        let revocation_list_ids: Vec<Uuid> = ids(keys, |k| match k {
            JobKey::RevocationList(id) => Some(*id.as_uuid()),
            _ => None,
        });
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT outbox_id, batch_id, signature, tx_bytes, last_valid_block_height, \
                       status, fee_lamports, status_list_version_id, revocation_batch_id \
                     FROM anchor_transactions \
                     WHERE (outbox_id = ANY($1) OR batch_id = ANY($2) \
                            OR status_list_version_id = ANY($3) \
                            OR revocation_batch_id = ANY($4)) AND status IN {LIVE}"
                ),
                &[&outbox_ids, &batch_ids, &list_ids, &revocation_list_ids],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let outbox: Option<i64> = r.try_get(0)?;
                let batch: Option<Uuid> = r.try_get(1)?;
                let list: Option<i64> = r.try_get(7)?;
                let revocations: Option<Uuid> = r.try_get(8)?;
                let key = match (outbox, batch, list, revocations) {
                    (Some(id), _, _, _) => JobKey::Outbox(id),
                    (None, Some(id), _, _) => JobKey::Batch(BatchId::from_uuid(id)),
                    (None, None, Some(id), _) => JobKey::StatusList(id),
                    (None, None, None, Some(id)) => JobKey::RevocationList(BatchId::from_uuid(id)),
                    (None, None, None, None) => {
                        return Err(StoreError::Corrupt("ownerless transaction".into()))
                    }
                };
                Ok((
                    key,
                    LiveAnchorTx {
                        signature: r.try_get(2)?,
                        tx_bytes: r.try_get(3)?,
                        last_valid_block_height: to_u64(r.try_get(4)?, "block height")?,
                        status: r
                            .try_get::<_, String>(5)?
                            .parse()
                            .map_err(|e: UnknownStatus| StoreError::Corrupt(e.to_string()))?,
                        fee_lamports: to_u64(r.try_get(6)?, "fee")?,
                    },
                ))
            })
            .collect()
    }

    /// Stores a signed transaction before its first send, under the fence, and moves the
    /// job's credentials to `submitted`. `retire` names a previous live transaction proven
    /// unable to land (expired or failed), retired in the same commit.
    pub async fn record_signed_tx(
        &self,
        fence: Fence<'_>,
        tx: &NewAnchorTx<'_>,
        retire: Option<(&str, AnchorTxEvent, Option<&str>)>,
    ) -> Result<Fenced, StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        if !fence_holds(&db, fence).await? {
            return Ok(Fenced::LostLease);
        }
        if let Some((signature, event, error)) = retire {
            // Failed or Expired: from the live set (`AnchorTxStatus::sources`), spelled as the
            // literal the partial unique indexes carry.
            let status = matches!(event, AnchorTxEvent::Failed | AnchorTxEvent::Expired)
                .then(|| AnchorTxStatus::Signed.after(event))
                .flatten()
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("{event:?} does not retire a live transaction"))
                })?;
            let retired = db
                .execute(
                    &format!(
                        "UPDATE anchor_transactions SET status = $2, error = $3 \
                         WHERE signature = $1 AND status IN {LIVE}"
                    ),
                    &[&signature, &status.as_str(), &error],
                )
                .await?;
            if retired == 0 {
                // Someone else already changed it: do not guess, let the next pass look again.
                return Ok(Fenced::LostLease);
            }
        }
        let (outbox_id, batch_id, list_id, revocation_list_id): (
            Option<i64>,
            Option<Uuid>,
            Option<i64>,
            Option<Uuid>,
        ) = match fence.key {
            JobKey::Outbox(id) => (Some(id), None, None, None),
            JobKey::Batch(id) => (None, Some(*id.as_uuid()), None, None),
            JobKey::StatusList(id) => (None, None, Some(id), None),
            JobKey::RevocationList(id) => (None, None, None, Some(*id.as_uuid())),
        };
        let inserted = db
            .execute(
                "INSERT INTO anchor_transactions (signature, outbox_id, credential_id, batch_id, \
                   memo, tx_bytes, last_valid_block_height, fee_lamports, status, signed_by, \
                   payer, status_list_version_id, revocation_batch_id) \
                 VALUES ($1, $2, (SELECT credential_id FROM outbox WHERE id = $2), $3, $4, $5, \
                   $6, $7, 'signed', $8, $9, $10, $11)",
                &[
                    &tx.signature,
                    &outbox_id,
                    &batch_id,
                    &tx.memo,
                    &tx.tx_bytes,
                    &i64::try_from(tx.last_valid_block_height).unwrap_or(i64::MAX),
                    &i64::try_from(tx.fee_lamports).unwrap_or(i64::MAX),
                    &fence.worker,
                    &tx.payer,
                    &list_id,
                    &revocation_list_id,
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
        let key = key_param(&fence.key);
        db.execute(
            &format!(
                "UPDATE credentials SET status = 'submitted', updated_at = now() \
                 WHERE {} AND status = ANY($2)",
                credential_scope(fence.key)
            ),
            &[key.as_ref(), &statuses(StatusEvent::TxSubmitted)],
        )
        .await?;
        crate::error::commit(db).await?;
        Ok(Fenced::Done)
    }

    /// The RPC accepted the transaction (first send or rebroadcast).
    pub async fn mark_tx_sent(&self, signature: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE anchor_transactions SET status = $2, sent_at = coalesce(sent_at, now()) \
                 WHERE signature = $1 AND status = ANY($3)",
                &[
                    &signature,
                    &AnchorTxStatus::Sent.as_str(),
                    &tx_sources(AnchorTxEvent::Sent),
                ],
            )
            .await?;
        Ok(())
    }

    /// Confirmed on chain: recorded on the transaction and the job's credentials.
    pub async fn mark_tx_confirmed(
        &self,
        key: JobKey,
        signature: &str,
        slot: u64,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let slot = i64::try_from(slot).unwrap_or(i64::MAX);
        db.execute(
            "UPDATE anchor_transactions SET status = $3, slot = $2, \
               confirmed_at = coalesce(confirmed_at, now()) \
             WHERE signature = $1 AND status = ANY($4)",
            &[
                &signature,
                &slot,
                &AnchorTxStatus::Confirmed.as_str(),
                &tx_sources(AnchorTxEvent::Confirmed),
            ],
        )
        .await?;
        let id = key_param(&key);
        db.execute(
            &format!(
                "UPDATE credentials SET status = 'confirmed', anchor_signature = $2, anchor_slot = $3, \
                   updated_at = now() WHERE {} AND status = ANY($4)",
                credential_scope(key)
            ),
            &[
                id.as_ref(),
                &signature,
                &slot,
                &statuses(StatusEvent::TxConfirmed),
            ],
        )
        .await?;
        crate::error::commit(db).await?;
        Ok(())
    }

    /// Finalized: the transaction, the job's credentials (signature, slot) and its outbox
    /// rows complete in ONE commit, fenced. Returns the completed outbox rows' ages (seconds)
    /// for the end-to-end histogram, or `None` when the lease was lost.
    pub async fn complete_finalized(
        &self,
        fence: Fence<'_>,
        signature: &str,
        slot: u64,
    ) -> Result<Option<Vec<f64>>, StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        if !fence_holds(&db, fence).await? {
            return Ok(None);
        }
        let slot = i64::try_from(slot).unwrap_or(i64::MAX);
        db.execute(
            "UPDATE anchor_transactions SET status = $3, slot = $2, \
               confirmed_at = coalesce(confirmed_at, now()), finalized_at = now() \
             WHERE signature = $1 AND status = ANY($4)",
            &[
                &signature,
                &slot,
                &AnchorTxStatus::Finalized.as_str(),
                &tx_sources(AnchorTxEvent::Finalized),
            ],
        )
        .await?;
        let id = key_param(&fence.key);
        db.execute(
            &format!(
                "UPDATE credentials SET status = 'finalized', anchor_signature = $2, anchor_slot = $3, \
                   finalized_at = now(), last_error = NULL, updated_at = now() \
                 WHERE {} AND status = ANY($4)",
                credential_scope(fence.key)
            ),
            &[
                id.as_ref(),
                &signature,
                &slot,
                &statuses(StatusEvent::TxFinalized),
            ],
        )
        .await?;
        if let JobKey::Outbox(_) = fence.key {
            // A revocation job: record its transaction and only now move the credential to
            // `revoked` (its own anchor_signature stays the issuance anchor). Both statements
            // match nothing for an `anchor_credential` job.
            let revoked =
                "(SELECT credential_id FROM outbox WHERE id = $1 AND kind = 'anchor_revocation')";
            db.execute(
                &format!(
                    "UPDATE revocations SET anchor_signature = $2, anchor_slot = $3, \
                       finalized_at = coalesce(finalized_at, now()) WHERE credential_id = {revoked}"
                ),
                &[id.as_ref(), &signature, &slot],
            )
            .await?;
            db.execute(
                &format!(
                    "UPDATE credentials SET status = 'revoked', updated_at = now() \
                     WHERE id = {revoked} AND status = ANY($2)"
                ),
                &[id.as_ref(), &statuses(StatusEvent::RevocationAnchored)],
            )
            .await?;
        }
        if let JobKey::RevocationList(_) = fence.key {
            // A revocation list: every member's credential moves to `revoked` and its
            // revocation is anchored by this transaction (one the reconciler already finalized
            // from the chain keeps its signature). Credentials first, as `store::revoke`
            // locks them: a client revoking a member again queues instead of deadlocking.
            let members = "(SELECT credential_id FROM outbox WHERE revocation_batch_id = $1)";
            db.execute(
                &format!(
                    "UPDATE credentials SET status = 'revoked', updated_at = now() \
                     WHERE id IN {members} AND status = ANY($2)"
                ),
                &[id.as_ref(), &statuses(StatusEvent::RevocationAnchored)],
            )
            .await?;
            db.execute(
                &format!(
                    "UPDATE revocations SET anchor_signature = $2, anchor_slot = $3, \
                       finalized_at = coalesce(finalized_at, now()) \
                     WHERE credential_id IN {members} AND anchor_signature IS NULL"
                ),
                &[id.as_ref(), &signature, &slot],
            )
            .await?;
        }
        if !matches!(fence.key, JobKey::Outbox(_)) {
            // A batch, a status list version or a revocation list: the job's own row records
            // its anchor.
            db.execute(
                &format!(
                    "UPDATE {} SET completed_at = now(), locked_until = NULL, locked_by = NULL, \
                       last_error = NULL, anchor_signature = $2, anchor_slot = $3, \
                       updated_at = now() WHERE id = $1",
                    job_table(fence.key)
                ),
                &[id.as_ref(), &signature, &slot],
            )
            .await?;
        }
        let completed = match fence.key {
            JobKey::Outbox(_) => "id = $1",
            JobKey::Batch(_) => "batch_id = $1",
            // No outbox row belongs to a list version.
            JobKey::StatusList(_) => "false AND $1::bigint IS NOT NULL",
            JobKey::RevocationList(_) => "revocation_batch_id = $1",
        };
        let ages = db
            .query(
                &format!(
                    "UPDATE outbox SET completed_at = now(), locked_until = NULL, locked_by = NULL, \
                       last_error = NULL, updated_at = now() WHERE {completed} \
                       AND completed_at IS NULL \
                     RETURNING extract(epoch FROM now() - created_at)::float8"
                ),
                &[id.as_ref()],
            )
            .await?
            .iter()
            .map(|r| r.try_get::<_, f64>(0))
            .collect::<Result<Vec<f64>, _>>()?;
        crate::error::commit(db).await?;
        Ok(Some(ages))
    }

    /// Lamports the issuer's anchor transactions cost (or will: signed ones count) over the
    /// last hour and the last day. Expired transactions never landed and cost nothing.
    pub async fn lamports_spent(
        &self,
        issuer: &IssuerId,
    ) -> Result<domain::spend::Spent, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT coalesce(sum(t.fee_lamports) FILTER (WHERE t.created_at >= now() - interval '1 hour'), 0)::bigint, \
                        coalesce(sum(t.fee_lamports), 0)::bigint \
                 FROM anchor_transactions t \
                 LEFT JOIN outbox o ON o.id = t.outbox_id \
                 LEFT JOIN anchor_batches b ON b.id = t.batch_id \
                 LEFT JOIN status_list_versions v ON v.id = t.status_list_version_id \
                 LEFT JOIN revocation_batches r ON r.id = t.revocation_batch_id \
                 WHERE coalesce(o.issuer_id, b.issuer_id, v.issuer_id, r.issuer_id) = $1 AND t.status <> $2 \
                   AND t.created_at >= now() - interval '1 day'",
                &[&issuer.as_str(), &AnchorTxStatus::Expired.as_str()],
            )
            .await?;
        Ok(domain::spend::Spent {
            last_hour: to_u64(row.try_get(0)?, "lamports")?,
            last_day: to_u64(row.try_get(1)?, "lamports")?,
        })
    }

    /// `lamports_spent` of every issuer (zero for one that spent nothing in the last day), in
    /// one statement: the relay's budget gauges.
    pub async fn lamports_spent_by_issuer(
        &self,
    ) -> Result<Vec<(IssuerId, domain::spend::Spent)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT i.id, \
                        coalesce(sum(s.fee_lamports) FILTER (WHERE s.created_at >= now() - interval '1 hour'), 0)::bigint, \
                        coalesce(sum(s.fee_lamports), 0)::bigint \
                 FROM issuers i LEFT JOIN ( \
                     SELECT coalesce(o.issuer_id, b.issuer_id, v.issuer_id, r.issuer_id) AS issuer_id, \
                            t.fee_lamports, t.created_at \
                     FROM anchor_transactions t \
                     LEFT JOIN outbox o ON o.id = t.outbox_id \
                     LEFT JOIN anchor_batches b ON b.id = t.batch_id \
                     LEFT JOIN status_list_versions v ON v.id = t.status_list_version_id \
                     LEFT JOIN revocation_batches r ON r.id = t.revocation_batch_id \
                     WHERE t.status <> $1 AND t.created_at >= now() - interval '1 day' \
                 ) s ON s.issuer_id = i.id \
                 GROUP BY i.id ORDER BY i.id",
                &[&AnchorTxStatus::Expired.as_str()],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let issuer: String = row.try_get(0)?;
                Ok((
                    IssuerId::parse(&issuer).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    domain::spend::Spent {
                        last_hour: to_u64(row.try_get(1)?, "lamports")?,
                        last_day: to_u64(row.try_get(2)?, "lamports")?,
                    },
                ))
            })
            .collect()
    }

    /// Puts a job back for later *without* counting a failure (a spend budget deferral):
    /// it keeps its place, never nears dead-lettering, and says why in `last_error`.
    pub async fn defer_job(
        &self,
        fence: Fence<'_>,
        delay: Duration,
        reason: &str,
    ) -> Result<Fenced, StoreError> {
        self.put_back(fence, delay, "failures", Some(reason)).await
    }

    /// Ends this worker's lease and makes the job due again after `delay`. `error` counts
    /// a failed step (for backoff) and is kept as `last_error`; `None` resets the count.
    pub async fn release_job(
        &self,
        fence: Fence<'_>,
        delay: Duration,
        error: Option<&str>,
    ) -> Result<Fenced, StoreError> {
        let failures = "CASE WHEN $5::text IS NULL THEN 0 ELSE failures + 1 END";
        self.put_back(fence, delay, failures, error).await
    }

    /// The fenced release both of the above share: `failures` is the SQL of the new count,
    /// `note` (`$5`) replaces `last_error` when given.
    async fn put_back(
        &self,
        fence: Fence<'_>,
        delay: Duration,
        failures: &str,
        note: Option<&str>,
    ) -> Result<Fenced, StoreError> {
        let client = self.client().await?;
        let id = key_param(&fence.key);
        let n = client
            .execute(
                &format!(
                    "UPDATE {} SET locked_until = NULL, locked_by = NULL, \
                       available_at = now() + $4::bigint * interval '1 millisecond', \
                       failures = {failures}, \
                       last_error = coalesce($5, last_error), updated_at = now() \
                     WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND completed_at IS NULL",
                    job_table(fence.key)
                ),
                &[
                    id.as_ref(),
                    &fence.worker,
                    &fence.attempts,
                    &ms(delay),
                    &note,
                ],
            )
            .await?;
        Ok(if n == 1 {
            Fenced::Done
        } else {
            Fenced::LostLease
        })
    }

    /// Gives up on a job after too many failures: the job leaves the queue and its
    /// credentials become `failed` with the error kept. Any live transaction record is kept,
    /// so a later requeue first checks it and never signs a second one while it could land.
    /// A batch stays sealed: requeueing it resends the same batch.
    pub async fn dead_letter(&self, fence: Fence<'_>, error: &str) -> Result<Fenced, StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let id = key_param(&fence.key);
        let n = db
            .execute(
                &format!(
                    "UPDATE {} SET dead_at = now(), locked_until = NULL, locked_by = NULL, \
                       failures = failures + 1, last_error = $4, updated_at = now() \
                     WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND completed_at IS NULL",
                    job_table(fence.key)
                ),
                &[id.as_ref(), &fence.worker, &fence.attempts, &error],
            )
            .await?;
        if n == 0 {
            return Ok(Fenced::LostLease);
        }
        let members = match fence.key {
            JobKey::Batch(_) => Some("batch_id"),
            JobKey::RevocationList(_) => Some("revocation_batch_id"),
            JobKey::Outbox(_) | JobKey::StatusList(_) => None,
        };
        if let Some(column) = members {
            // The members' jobs show as dead letters too (backlog gauges, requeue).
            db.execute(
                &format!(
                    "UPDATE outbox SET dead_at = now(), last_error = $2, updated_at = now() \
                     WHERE {column} = $1 AND completed_at IS NULL"
                ),
                &[id.as_ref(), &error],
            )
            .await?;
        }
        db.execute(
            &format!(
                "UPDATE credentials SET status = 'failed', last_error = $2, updated_at = now() \
                 WHERE {} AND status = ANY($3)",
                credential_scope(fence.key)
            ),
            &[id.as_ref(), &error, &statuses(StatusEvent::DeadLettered)],
        )
        .await?;
        crate::error::commit(db).await?;
        Ok(Fenced::Done)
    }

    /// Operator retry: puts dead-lettered jobs (all, or one credential's) back in the queue;
    /// a dead batch comes back whole. Returns how many credentials were requeued.
    pub async fn requeue_failed(
        &self,
        credential: Option<&CredentialId>,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let id: Option<Uuid> = credential.map(|c| *c.as_uuid());
        // A member of a dead batch requeues its whole batch: the batch is the unit anchored.
        let batches: Vec<Uuid> = db
            .query(
                "UPDATE anchor_batches SET dead_at = NULL, failures = 0, available_at = now(), \
                   updated_at = now() \
                 WHERE dead_at IS NOT NULL AND completed_at IS NULL \
                   AND ($1::uuid IS NULL OR id IN \
                        (SELECT batch_id FROM anchor_batch_members WHERE credential_id = $1)) \
                 RETURNING id",
                &[&id],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        // Likewise a revocation of a dead list requeues the list.
        let revocation_lists: Vec<Uuid> = db
            .query(
                "UPDATE revocation_batches SET dead_at = NULL, failures = 0, available_at = now(), \
                   updated_at = now() \
                 WHERE dead_at IS NOT NULL AND completed_at IS NULL \
                   AND ($1::uuid IS NULL OR id IN (SELECT revocation_batch_id FROM outbox \
                        WHERE credential_id = $1 AND revocation_batch_id IS NOT NULL)) \
                 RETURNING id",
                &[&id],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let rows = db
            .query(
                "UPDATE outbox SET dead_at = NULL, failures = 0, available_at = now(), updated_at = now() \
                 WHERE dead_at IS NOT NULL AND completed_at IS NULL \
                   AND ($1::uuid IS NULL OR credential_id = $1 OR batch_id = ANY($2) \
                        OR revocation_batch_id = ANY($3)) \
                 RETURNING credential_id",
                &[&id, &batches, &revocation_lists],
            )
            .await?;
        let ids: Vec<Uuid> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        // Status list versions belong to no credential: all come back with a full requeue.
        let lists = db
            .execute(
                "UPDATE status_list_versions SET dead_at = NULL, failures = 0, \
                   available_at = now(), updated_at = now() \
                 WHERE $1::uuid IS NULL AND dead_at IS NOT NULL AND completed_at IS NULL",
                &[&id],
            )
            .await?;
        // A job with a live transaction goes back to `submitted`, one without to `queued`.
        db.execute(
            &format!(
                "UPDATE credentials c SET status = CASE WHEN EXISTS (SELECT 1 FROM anchor_transactions t \
                     WHERE (t.credential_id = c.id OR t.batch_id = \
                            (SELECT m.batch_id FROM anchor_batch_members m WHERE m.credential_id = c.id)) \
                       AND t.status IN {LIVE}) \
                   THEN 'submitted' ELSE 'queued' END, updated_at = now() \
                 WHERE c.id = ANY($1) AND c.status = ANY($2)"
            ),
            &[&ids, &statuses(StatusEvent::Requeued)],
        )
        .await?;
        if !ids.is_empty() || lists > 0 {
            db.execute("SELECT pg_notify($1, 'requeue')", &[&OUTBOX_CHANNEL])
                .await?;
        }
        crate::error::commit(db).await?;
        Ok(ids.len() as u64)
    }

    /// Backlog for the outbox_pending / oldest-age / dead-letter gauges. Members of a sealed
    /// batch stay pending until the batch finalizes.
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
    let id = key_param(&fence.key);
    let row = db
        .query_opt(
            &format!(
                "SELECT 1 FROM {} WHERE id = $1 AND locked_by = $2 AND attempts = $3 \
                   AND completed_at IS NULL FOR UPDATE",
                job_table(fence.key)
            ),
            &[id.as_ref(), &fence.worker, &fence.attempts],
        )
        .await?;
    Ok(row.is_some())
}
