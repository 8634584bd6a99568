//! Revocations: the revoking transaction (revocation row + `anchor_revocation` outbox row +
//! NOTIFY, one commit, like issuance) and reads.
//!
//! The credential's status changes to `revoked` only when the relay finalizes the `ca1:r`
//! memo, or the `ca1:v` list it was sealed into (`outbox::complete_finalized`), never here:
//! until then the revocation is pending.

use chrono::{DateTime, Utc};
use domain::{CredentialId, IssuerId};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{Store, StoreError, OUTBOX_CHANNEL};

/// A revocation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    pub credential_id: CredentialId,
    pub issuer: IssuerId,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
    /// The finalized `ca1:r` (or `ca1:v` list) transaction, or `None` while pending.
    pub anchor_signature: Option<String>,
    pub anchor_slot: Option<u64>,
    pub finalized_at: Option<DateTime<Utc>>,
}

impl RevocationRecord {
    /// Anchored (finalized on chain) rather than pending.
    pub fn is_anchored(&self) -> bool {
        self.finalized_at.is_some() && self.anchor_signature.is_some()
    }
}

/// What a revoke call did.
#[derive(Debug, Clone)]
pub enum RevokeOutcome {
    /// Revocation and its outbox row committed together.
    Created(RevocationRecord),
    /// The credential was revoked before: that revocation, unchanged.
    Existing(RevocationRecord),
    /// No such credential for this issuer.
    NotFound,
}

const REVOCATION_COLUMNS: &str =
    "credential_id, issuer_id, reason, requested_at, anchor_signature, anchor_slot, finalized_at";

impl Store {
    /// Records a revocation and its anchoring job in ONE transaction (invariant 1 for
    /// revocations: an acknowledged revocation always has its outbox row).
    pub async fn revoke_credential(
        &self,
        issuer: &IssuerId,
        credential: &CredentialId,
        reason: &str,
    ) -> Result<RevokeOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Lock the credential row: two concurrent revokes serialise here, and the second
        // then finds the first one's revocation.
        let exists = tx
            .query_opt(
                "SELECT 1 FROM credentials WHERE id = $1 AND issuer_id = $2 FOR UPDATE",
                &[credential.as_uuid(), &issuer.as_str()],
            )
            .await?;
        if exists.is_none() {
            return Ok(RevokeOutcome::NotFound);
        }
        let inserted = tx
            .query_opt(
                &format!(
                    "INSERT INTO revocations (credential_id, issuer_id, reason) VALUES ($1, $2, $3) \
                     ON CONFLICT (credential_id) DO NOTHING RETURNING {REVOCATION_COLUMNS}"
                ),
                &[credential.as_uuid(), &issuer.as_str(), &reason],
            )
            .await?;
        let Some(row) = inserted else {
            let row = tx
                .query_one(
                    &format!(
                        "SELECT {REVOCATION_COLUMNS} FROM revocations WHERE credential_id = $1"
                    ),
                    &[credential.as_uuid()],
                )
                .await?;
            return Ok(RevokeOutcome::Existing(revocation_from_row(&row)?));
        };
        let record = revocation_from_row(&row)?;
        tx.execute(
            "INSERT INTO outbox (kind, credential_id, issuer_id) VALUES ('anchor_revocation', $1, $2)",
            &[credential.as_uuid(), &issuer.as_str()],
        )
        .await?;
        tx.execute("SELECT pg_notify($1, 'revocation')", &[&OUTBOX_CHANNEL])
            .await?;
        crate::error::commit(tx).await?;
        Ok(RevokeOutcome::Created(record))
    }

    /// The revocation of a credential, if any (no issuer scope: verification is public).
    pub async fn revocation(
        &self,
        credential: &CredentialId,
    ) -> Result<Option<RevocationRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {REVOCATION_COLUMNS} FROM revocations WHERE credential_id = $1"),
                &[credential.as_uuid()],
            )
            .await?;
        row.as_ref().map(revocation_from_row).transpose()
    }
}

fn revocation_from_row(row: &Row) -> Result<RevocationRecord, StoreError> {
    let id: Uuid = row.try_get("credential_id")?;
    let issuer: String = row.try_get("issuer_id")?;
    let slot: Option<i64> = row.try_get("anchor_slot")?;
    Ok(RevocationRecord {
        credential_id: CredentialId::from_uuid(id),
        issuer: IssuerId::parse(&issuer).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        reason: row.try_get("reason")?,
        requested_at: row.try_get("requested_at")?,
        anchor_signature: row.try_get("anchor_signature")?,
        anchor_slot: slot.and_then(|s| u64::try_from(s).ok()),
        finalized_at: row.try_get("finalized_at")?,
    })
}
