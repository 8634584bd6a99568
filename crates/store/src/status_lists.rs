//! Status lists (issue #20): reserving credentials' ordinals, what the publisher reads and
//! records, what the API serves, and the versions a verifier is judged against. The
//! decisions are `domain::status_list`'s; this module executes them.

use domain::status_list::{KnownVersion, StatusListHash, StatusOrdinal, StatusPosition};
use domain::IssuerId;

use crate::{Store, StoreError};

/// A list whose bits changed and whose debounce has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyList {
    pub issuer: IssuerId,
    pub list: u32,
}

/// What the publisher needs to sign a list: its change counter (the precondition of
/// [`Store::record_status_version`]), the set indexes and the known versions.
#[derive(Debug, Clone)]
pub struct ListState {
    pub changes: i64,
    pub revoked: Vec<u32>,
    pub versions: Vec<KnownVersion>,
}

/// A signed list credential to record.
pub struct SignedList<'a> {
    pub version: u32,
    pub hash: StatusListHash,
    pub revoked_count: u32,
    /// The list credential, byte for byte as it will be served, and its SHA-256 (the ETag).
    pub credential: &'a str,
    pub credential_sha256: [u8; 32],
}

/// What [`Store::record_status_version`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A new version and its anchoring job.
    NewVersion,
    /// A recovered version's list credential, stored (no new anchor).
    Signed,
    /// The list changed (or another publisher recorded it) since its state was read:
    /// nothing written, the list stays dirty.
    Changed,
}

/// The newest servable version of a list.
#[derive(Debug, Clone)]
pub struct ServedList {
    pub version: u32,
    pub hash: StatusListHash,
    pub credential: String,
    pub credential_sha256: [u8; 32],
}

fn list_param(list: u32) -> i64 {
    i64::from(list)
}

fn hash_from(bytes: &[u8]) -> Result<StatusListHash, StoreError> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("status list hash length".into()))?;
    Ok(StatusListHash::from_bytes(arr))
}

fn u32_from(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} out of range")))
}

impl Store {
    /// Reserves `count` consecutive ordinals of the issuer's status lists and creates the
    /// lists they fall in (new lists start dirty, so their first, empty version gets
    /// published and anchored). Its own short transaction, never the issuing one: the
    /// counter row is held for microseconds, not while a credential is signed; an ordinal
    /// reserved and never used is a bit that stays 0.
    ///
    /// The block starts past the issuer's highest ordinal in use as well as past the
    /// counter. After a failover to an asynchronous standby or a restore, the counter can be
    /// behind ordinals that API replicas reserved on the lost database and are still handing
    /// out from memory; a credential issued with one of those would make the counter hand the
    /// same ordinal out again. Reading the highest one costs one descent of the
    /// `credentials_status_ordinal` index per block.
    pub async fn reserve_status_ordinals(
        &self,
        issuer: &IssuerId,
        count: u32,
    ) -> Result<StatusOrdinal, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let count = i64::from(count.max(1));
        let start: i64 = tx
            .query_one(
                "WITH used AS ( \
                   SELECT coalesce(max(status_ordinal) + 1, 0) AS past FROM credentials \
                   WHERE issuer_id = $1 AND status_ordinal IS NOT NULL) \
                 INSERT INTO status_list_counters (issuer_id, next_ordinal) \
                   SELECT $1, used.past + $2 FROM used \
                 ON CONFLICT (issuer_id) DO UPDATE \
                   SET next_ordinal = GREATEST(status_list_counters.next_ordinal, \
                                               EXCLUDED.next_ordinal - $2) + $2 \
                 RETURNING next_ordinal - $2",
                &[&issuer.as_str(), &count],
            )
            .await?
            .try_get(0)?;
        let first = StatusOrdinal::new(u64::try_from(start).unwrap_or(u64::MAX))
            .ok_or_else(|| StoreError::Corrupt("status ordinals exhausted".into()))?;
        let last = StatusOrdinal::new(u64::try_from(start + count - 1).unwrap_or(u64::MAX))
            .ok_or_else(|| StoreError::Corrupt("status ordinals exhausted".into()))?;
        tx.execute(
            "INSERT INTO status_lists (issuer_id, list_no, dirty_since) \
             SELECT $1, g, now() FROM generate_series($2::bigint, $3::bigint) g \
             ON CONFLICT DO NOTHING",
            &[
                &issuer.as_str(),
                &list_param(first.position().list),
                &list_param(last.position().list),
            ],
        )
        .await?;
        crate::error::commit(tx).await?;
        Ok(first)
    }

    /// Lists whose first unpublished change is older than `debounce`, oldest first.
    pub async fn dirty_status_lists(
        &self,
        debounce: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<DirtyList>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT issuer_id, list_no FROM status_lists \
                 WHERE dirty_since <= now() - $1::bigint * interval '1 millisecond' \
                 ORDER BY dirty_since LIMIT $2",
                &[
                    &i64::try_from(debounce.as_millis()).unwrap_or(i64::MAX),
                    &i64::from(limit),
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DirtyList {
                    issuer: IssuerId::parse(&r.try_get::<_, String>(0)?)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    list: u32_from(r.try_get(1)?, "list_no")?,
                })
            })
            .collect()
    }

    /// The list's change counter (read first), the indexes of its revoked credentials and
    /// its known versions, in one snapshot.
    pub async fn status_list_state(
        &self,
        issuer: &IssuerId,
        list: u32,
    ) -> Result<ListState, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let changes: i64 = tx
            .query_opt(
                "SELECT changes FROM status_lists WHERE issuer_id = $1 AND list_no = $2",
                &[&issuer.as_str(), &list_param(list)],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        let range = StatusPosition::ordinals_of(list);
        let revoked = tx
            .query(
                "SELECT c.status_ordinal FROM credentials c \
                 JOIN revocations r ON r.credential_id = c.id \
                 WHERE c.issuer_id = $1 AND c.status_ordinal >= $2 AND c.status_ordinal < $3",
                &[
                    &issuer.as_str(),
                    &i64::try_from(range.start).unwrap_or(i64::MAX),
                    &i64::try_from(range.end).unwrap_or(i64::MAX),
                ],
            )
            .await?
            .iter()
            .map(|r| {
                let ordinal: i64 = r.try_get(0)?;
                u32_from(
                    ordinal - i64::try_from(range.start).unwrap_or(0),
                    "status index",
                )
            })
            .collect::<Result<Vec<u32>, StoreError>>()?;
        let versions = tx
            .query(
                "SELECT version, bits_hash, credential IS NOT NULL FROM status_list_versions \
                 WHERE issuer_id = $1 AND list_no = $2",
                &[&issuer.as_str(), &list_param(list)],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(KnownVersion {
                    version: u32_from(i64::from(r.try_get::<_, i32>(0)?), "version")?,
                    hash: hash_from(&r.try_get::<_, Vec<u8>>(1)?)?,
                    signed: r.try_get(2)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit().await?;
        Ok(ListState {
            changes,
            revoked,
            versions,
        })
    }

    /// Records what `domain::status_list::next_publication` decided from the state read
    /// with change counter `changes`, if that state is newer than the last one recorded
    /// (`published_changes`; else nothing: `Recorded::Changed`), so versions are recorded in
    /// the order of the states they state and bits only gain ones. A new version becomes an
    /// anchoring job (relay) in the same commit. The list stays dirty if it changed since
    /// `changes` was read (the next pass publishes the rest): a list under a steady stream
    /// of revocations still gets versions.
    pub async fn record_status_version(
        &self,
        issuer: &IssuerId,
        list: u32,
        changes: i64,
        signed: Option<&SignedList<'_>>,
        recovered: bool,
    ) -> Result<Recorded, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT changes, published_changes FROM status_lists \
                 WHERE issuer_id = $1 AND list_no = $2 FOR UPDATE",
                &[&issuer.as_str(), &list_param(list)],
            )
            .await?
        else {
            return Ok(Recorded::Changed);
        };
        let (current, published): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        if changes <= published {
            return Ok(Recorded::Changed);
        }
        let mut outcome = Recorded::Signed;
        if let Some(s) = signed {
            let sha = s.credential_sha256.as_slice();
            let version = i32::try_from(s.version)
                .map_err(|_| StoreError::Corrupt("status list version out of range".into()))?;
            let written = if recovered {
                tx.execute(
                    "UPDATE status_list_versions SET credential = $4, credential_sha256 = $5, \
                       revoked_count = $6, updated_at = now() \
                     WHERE issuer_id = $1 AND list_no = $2 AND bits_hash = $3 \
                       AND credential IS NULL",
                    &[
                        &issuer.as_str(),
                        &list_param(list),
                        &s.hash.as_bytes().as_slice(),
                        &s.credential,
                        &sha,
                        &i32::try_from(s.revoked_count).unwrap_or(i32::MAX),
                    ],
                )
                .await?
            } else {
                outcome = Recorded::NewVersion;
                tx.execute(
                    "INSERT INTO status_list_versions (issuer_id, list_no, version, bits_hash, \
                       revoked_count, credential, credential_sha256) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (issuer_id, list_no, bits_hash) DO NOTHING",
                    &[
                        &issuer.as_str(),
                        &list_param(list),
                        &version,
                        &s.hash.as_bytes().as_slice(),
                        &i32::try_from(s.revoked_count).unwrap_or(i32::MAX),
                        &s.credential,
                        &sha,
                    ],
                )
                .await?
            };
            if written == 0 {
                return Ok(Recorded::Changed);
            }
            if outcome == Recorded::NewVersion {
                tx.execute(
                    "SELECT pg_notify($1, 'status_list')",
                    &[&crate::OUTBOX_CHANNEL],
                )
                .await?;
            }
        }
        tx.execute(
            "UPDATE status_lists SET published_changes = $3, \
               dirty_since = CASE WHEN $4 THEN NULL ELSE dirty_since END \
             WHERE issuer_id = $1 AND list_no = $2",
            &[
                &issuer.as_str(),
                &list_param(list),
                &changes,
                &(current == changes),
            ],
        )
        .await?;
        crate::error::commit(tx).await?;
        Ok(outcome)
    }

    /// Puts a list whose publication failed (no usable signing key, say) at the back of the
    /// publisher's queue, so one issuer's broken list never holds up the others' lists.
    pub async fn defer_status_list(&self, issuer: &IssuerId, list: u32) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE status_lists SET dirty_since = now() \
                 WHERE issuer_id = $1 AND list_no = $2 AND dirty_since IS NOT NULL",
                &[&issuer.as_str(), &list_param(list)],
            )
            .await?;
        Ok(())
    }

    /// The newest version of a list that is anchored (finalized) and signed: what the API
    /// serves. A version is never served before its anchor is final, so a verifier checking
    /// a served list against the chain finds it.
    pub async fn served_status_list(
        &self,
        issuer: &IssuerId,
        list: u32,
    ) -> Result<Option<ServedList>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT version, bits_hash, credential, credential_sha256 \
                 FROM status_list_versions \
                 WHERE issuer_id = $1 AND list_no = $2 AND completed_at IS NOT NULL \
                   AND credential IS NOT NULL \
                 ORDER BY version DESC, revoked_count DESC, anchor_slot DESC NULLS LAST LIMIT 1",
                &[&issuer.as_str(), &list_param(list)],
            )
            .await?;
        row.map(|r| {
            let sha: Vec<u8> = r.try_get(3)?;
            Ok(ServedList {
                version: u32_from(i64::from(r.try_get::<_, i32>(0)?), "version")?,
                hash: hash_from(&r.try_get::<_, Vec<u8>>(1)?)?,
                credential: r.try_get(2)?,
                credential_sha256: sha
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("credential_sha256 length".into()))?,
            })
        })
        .transpose()
    }

    /// The anchored (finalized) versions of a list that `domain::status_list::judge_list`
    /// needs to judge `given`: those with its bits and those of the newest anchored number
    /// (a bounded read however long the list's history).
    pub async fn anchored_status_versions(
        &self,
        issuer: &IssuerId,
        list: u32,
        given: &StatusListHash,
    ) -> Result<Vec<domain::status_list::AnchoredVersion>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT version, bits_hash FROM status_list_versions v \
                 WHERE issuer_id = $1 AND list_no = $2 AND completed_at IS NOT NULL \
                   AND (bits_hash = $3 OR version = (SELECT max(version) \
                        FROM status_list_versions m WHERE m.issuer_id = $1 AND m.list_no = $2 \
                          AND m.completed_at IS NOT NULL))",
                &[
                    &issuer.as_str(),
                    &list_param(list),
                    &given.as_bytes().as_slice(),
                ],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(domain::status_list::AnchoredVersion {
                    version: u32_from(i64::from(r.try_get::<_, i32>(0)?), "version")?,
                    hash: hash_from(&r.try_get::<_, Vec<u8>>(1)?)?,
                })
            })
            .collect()
    }
}
