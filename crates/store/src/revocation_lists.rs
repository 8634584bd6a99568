//! Revocation lists (issue #18): an issuer in Merkle mode anchors its revocations up to
//! [`domain::MAX_REVOCATIONS_PER_MEMO`] per `ca1:v` memo.
//!
//! Sealing is the only place a revocation joins a list, and it does so at most once: its
//! outbox row gets `revocation_batch_id` under `FOR UPDATE SKIP LOCKED`, in the same commit as
//! the list row. The list is then anchored like a Merkle batch (`JobKey::RevocationList`):
//! leased, its transaction stored before the first send, re-signed only when proven unable to
//! land. Its memo is rebuilt from the members in outbox-id order, so every re-sign names the
//! same credentials in the same order. A revocation is sealed only once its credential is
//! anchored, so a list never lands before the anchors it revokes (as for `ca1:r`).

use std::time::Duration;

use domain::batching::{should_seal, AnchoringMode};
use domain::status::StatusEvent;
use domain::{BatchId, IssuerId, MAX_REVOCATIONS_PER_MEMO};

use crate::batches::{seal_outbox_rows, SealColumn};
use crate::outbox::statuses;
use crate::{Store, StoreError};

/// A list sealed by [`Store::seal_due_revocation_list`].
#[derive(Debug, Clone)]
pub struct SealedRevocationList {
    pub id: BatchId,
    pub issuer: IssuerId,
    pub members: u32,
}

/// The revocations a list may take: open, unsealed, never sent alone, their credential
/// anchored (`$1`: the statuses `RevocationAnchored` is legal from).
const SEALABLE: &str = "o.kind = 'anchor_revocation' AND o.completed_at IS NULL \
     AND o.dead_at IS NULL AND o.revocation_batch_id IS NULL AND o.available_at <= now() \
     AND (o.locked_until IS NULL OR o.locked_until < now()) \
     AND NOT EXISTS (SELECT 1 FROM anchor_transactions t WHERE t.outbox_id = o.id) \
     AND EXISTS (SELECT 1 FROM credentials c WHERE c.id = o.credential_id AND c.status = ANY($1))";

impl Store {
    /// Issuers in merkle mode (their own, else `default_mode`) with revocations to seal.
    pub async fn issuers_with_unsealed_revocations(
        &self,
        default_mode: AnchoringMode,
    ) -> Result<Vec<IssuerId>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT i.id FROM issuers i \
                     WHERE coalesce(i.anchor_mode, $2) = 'merkle' AND EXISTS ( \
                       SELECT 1 FROM outbox o WHERE o.issuer_id = i.id AND {SEALABLE})"
                ),
                &[
                    &statuses(StatusEvent::RevocationAnchored),
                    &default_mode.as_str(),
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0)?;
                IssuerId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// Seals up to ten of `issuer`'s sealable revocations into one list if [`should_seal`]
    /// says so (ten due, or the oldest waited `max_wait`).
    pub async fn seal_due_revocation_list(
        &self,
        issuer: &IssuerId,
        max_wait: Duration,
    ) -> Result<Option<SealedRevocationList>, StoreError> {
        let max = u32::try_from(MAX_REVOCATIONS_PER_MEMO).unwrap_or(u32::MAX);
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let rows = db
            .query(
                &format!(
                    "SELECT o.id, extract(epoch FROM now() - o.created_at)::float8 \
                     FROM outbox o WHERE o.issuer_id = $2 AND {SEALABLE} \
                     ORDER BY o.id LIMIT $3 FOR UPDATE OF o SKIP LOCKED"
                ),
                &[
                    &statuses(StatusEvent::RevocationAnchored),
                    &issuer.as_str(),
                    &i64::from(max),
                ],
            )
            .await?;
        let mut outbox_ids = Vec::with_capacity(rows.len());
        let mut oldest = 0f64;
        for r in &rows {
            outbox_ids.push(r.try_get::<_, i64>(0)?);
            oldest = oldest.max(r.try_get::<_, f64>(1)?);
        }
        let due = u32::try_from(outbox_ids.len()).unwrap_or(u32::MAX);
        if !should_seal(due, max, Duration::from_secs_f64(oldest.max(0.0)), max_wait) {
            return Ok(None);
        }
        let id = BatchId::new_v7();
        db.execute(
            "INSERT INTO revocation_batches (id, issuer_id, member_count) VALUES ($1, $2, $3)",
            &[
                id.as_uuid(),
                &issuer.as_str(),
                &i32::try_from(due).unwrap_or(i32::MAX),
            ],
        )
        .await?;
        // `ca1:r` never goes out for a revocation this list anchors (see `seal_outbox_rows`).
        if !seal_outbox_rows(&db, SealColumn::RevocationList, &id, &outbox_ids).await? {
            // Dropped without commit: nothing sealed; the next pass looks again.
            return Ok(None);
        }
        crate::error::commit(db).await?;
        Ok(Some(SealedRevocationList {
            id,
            issuer: issuer.clone(),
            members: due,
        }))
    }
}
