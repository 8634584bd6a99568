//! Merkle batches: sealing due credentials into a batch (members, root and proofs fixed in
//! one commit, before any transaction is signed for it), and reading a credential's batch for
//! its proof bundle.
//!
//! Sealing is the only place a credential joins a batch, and it does so at most once: the
//! member's outbox row gets `batch_id` under `FOR UPDATE SKIP LOCKED` and
//! `anchor_batch_members.outbox_id` is unique. A relay that crashes after sealing leaves a
//! sealed batch that the next relay anchors as it is, never a second, overlapping batch.

use std::time::Duration;

use domain::batching::{should_seal, AnchoringMode};
use domain::hash::CredentialHash;
use domain::{BatchId, CredentialId, IssuerId, MerkleProof, MerkleRoot, MerkleTree};
use serde_json::Value;
use uuid::Uuid;

use crate::{Store, StoreError};

/// A batch sealed by [`Store::seal_due_batch`].
#[derive(Debug, Clone)]
pub struct SealedBatch {
    pub id: BatchId,
    pub issuer: IssuerId,
    pub root: MerkleRoot,
    pub members: u32,
}

/// A credential's place in its batch, for its proof bundle.
#[derive(Debug, Clone)]
pub struct BatchMembership {
    pub batch_id: BatchId,
    pub count: u32,
    pub root: MerkleRoot,
    pub proof: MerkleProof,
}

impl Store {
    /// Issuers with unbatched due credentials whose mode (their own, else `default_mode`) is
    /// merkle: the candidates for [`Store::seal_due_batch`].
    pub async fn issuers_with_unbatched(
        &self,
        default_mode: AnchoringMode,
    ) -> Result<Vec<IssuerId>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT i.id FROM issuers i \
                 WHERE coalesce(i.anchor_mode, $1) = 'merkle' AND EXISTS ( \
                   SELECT 1 FROM outbox o WHERE o.issuer_id = i.id AND o.completed_at IS NULL \
                     AND o.dead_at IS NULL AND o.batch_id IS NULL \
                     AND o.kind = 'anchor_credential' AND o.available_at <= now())",
                &[&default_mode.as_str()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0)?;
                IssuerId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// Seals up to `max_members` of `issuer`'s due, unbatched credentials into one batch if
    /// [`should_seal`] says so (a full batch, or the oldest waited `max_wait`). Rows that
    /// ever had a single-mode transaction, or that another worker holds, are left alone.
    pub async fn seal_due_batch(
        &self,
        issuer: &IssuerId,
        max_members: u32,
        max_wait: Duration,
    ) -> Result<Option<SealedBatch>, StoreError> {
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let rows = db
            .query(
                "SELECT o.id, o.credential_id, c.credential_hash, \
                   extract(epoch FROM now() - o.created_at)::float8 \
                 FROM outbox o JOIN credentials c ON c.id = o.credential_id \
                 WHERE o.issuer_id = $1 AND o.completed_at IS NULL AND o.dead_at IS NULL \
                   AND o.batch_id IS NULL AND o.kind = 'anchor_credential' \
                   AND o.available_at <= now() \
                   AND (o.locked_until IS NULL OR o.locked_until < now()) \
                   AND NOT EXISTS (SELECT 1 FROM anchor_transactions t WHERE t.outbox_id = o.id) \
                 ORDER BY o.id LIMIT $2 FOR UPDATE OF o SKIP LOCKED",
                &[&issuer.as_str(), &i64::from(max_members.max(1))],
            )
            .await?;
        let mut outbox_ids = Vec::with_capacity(rows.len());
        let mut credential_ids: Vec<Uuid> = Vec::with_capacity(rows.len());
        let mut leaves = Vec::with_capacity(rows.len());
        let mut oldest = 0f64;
        for r in &rows {
            outbox_ids.push(r.try_get::<_, i64>(0)?);
            credential_ids.push(r.try_get(1)?);
            let hash: Vec<u8> = r.try_get(2)?;
            let hash: [u8; 32] = hash
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("credential_hash length".into()))?;
            leaves.push(CredentialHash::from_bytes(hash));
            oldest = oldest.max(r.try_get::<_, f64>(3)?);
        }
        let due = u32::try_from(leaves.len()).unwrap_or(u32::MAX);
        let age = Duration::from_secs_f64(oldest.max(0.0));
        if !should_seal(due, max_members, age, max_wait) {
            return Ok(None);
        }
        let tree = MerkleTree::build(&leaves).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let root = tree.root();
        let mut proofs: Vec<Value> = Vec::with_capacity(leaves.len());
        for i in 0..leaves.len() {
            let proof = tree
                .proof(i)
                .ok_or_else(|| StoreError::Corrupt("proof index".into()))?;
            proofs.push(
                serde_json::to_value(&proof).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
        }
        let indexes: Vec<i32> = (0..leaves.len())
            .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
            .collect();
        let id = BatchId::new_v7();
        let count = i32::try_from(due).unwrap_or(i32::MAX);
        db.execute(
            "INSERT INTO anchor_batches (id, issuer_id, member_count, root) VALUES ($1, $2, $3, $4)",
            &[
                id.as_uuid(),
                &issuer.as_str(),
                &count,
                &root.as_bytes().as_slice(),
            ],
        )
        .await?;
        db.execute(
            "INSERT INTO anchor_batch_members (batch_id, leaf_index, credential_id, outbox_id, proof) \
             SELECT $1, * FROM unnest($2::int4[], $3::uuid[], $4::int8[], $5::jsonb[])",
            &[
                id.as_uuid(),
                &indexes,
                &credential_ids,
                &outbox_ids,
                &proofs,
            ],
        )
        .await?;
        db.execute(
            "UPDATE outbox SET batch_id = $1, updated_at = now() WHERE id = ANY($2)",
            &[id.as_uuid(), &outbox_ids],
        )
        .await?;
        db.commit().await?;
        Ok(Some(SealedBatch {
            id,
            issuer: issuer.clone(),
            root,
            members: due,
        }))
    }

    /// The batch a credential was sealed into, with its inclusion proof.
    pub async fn batch_membership(
        &self,
        credential: &CredentialId,
    ) -> Result<Option<BatchMembership>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT b.id, b.member_count, b.root, m.proof \
                 FROM anchor_batch_members m JOIN anchor_batches b ON b.id = m.batch_id \
                 WHERE m.credential_id = $1",
                &[credential.as_uuid()],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let root: Vec<u8> = row.try_get(2)?;
        let root: [u8; 32] = root
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("root length".into()))?;
        let count: i32 = row.try_get(1)?;
        let proof: Value = row.try_get(3)?;
        Ok(Some(BatchMembership {
            batch_id: BatchId::from_uuid(row.try_get(0)?),
            count: u32::try_from(count).map_err(|_| StoreError::Corrupt("member_count".into()))?,
            root: MerkleRoot::from_bytes(root),
            proof: serde_json::from_value(proof)
                .map_err(|e| StoreError::Corrupt(format!("stored proof: {e}")))?,
        }))
    }
}

/// Which credentials [`Store::proof_records`] reads.
#[derive(Debug, Clone, Copy)]
pub enum ProofScope<'a> {
    Credential(&'a CredentialId),
    /// Every credential a bulk request created.
    Request(&'a Uuid),
}

/// A credential with its batch membership, for proof bundles.
#[derive(Debug, Clone)]
pub struct ProofRecord {
    pub credential: crate::credentials::CredentialRecord,
    pub membership: Option<BatchMembership>,
}

impl Store {
    /// Credentials of `issuer` in `scope`, with their batch and inclusion proof (one query).
    pub async fn proof_records(
        &self,
        issuer: &IssuerId,
        scope: ProofScope<'_>,
    ) -> Result<Vec<ProofRecord>, StoreError> {
        let client = self.client().await?;
        let (filter, id): (&str, Uuid) = match scope {
            ProofScope::Credential(id) => ("c.id = $2", *id.as_uuid()),
            ProofScope::Request(id) => ("c.request_batch_id = $2", *id),
        };
        let columns = crate::credentials::CREDENTIAL_COLUMNS
            .split(", ")
            .map(|c| format!("c.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = client
            .query(
                &format!(
                    "SELECT {columns}, b.id AS batch_id, b.member_count, b.root, m.proof \
                     FROM credentials c \
                     LEFT JOIN anchor_batch_members m ON m.credential_id = c.id \
                     LEFT JOIN anchor_batches b ON b.id = m.batch_id \
                     WHERE c.issuer_id = $1 AND {filter} ORDER BY c.id"
                ),
                &[&issuer.as_str(), &id],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let credential = crate::credentials::credential_from_row(row)?;
                let batch: Option<Uuid> = row.try_get("batch_id")?;
                let membership = match batch {
                    None => None,
                    Some(batch) => {
                        let root: Vec<u8> = row.try_get("root")?;
                        let root: [u8; 32] = root
                            .as_slice()
                            .try_into()
                            .map_err(|_| StoreError::Corrupt("root length".into()))?;
                        let count: i32 = row.try_get("member_count")?;
                        let proof: Value = row.try_get("proof")?;
                        Some(BatchMembership {
                            batch_id: BatchId::from_uuid(batch),
                            count: u32::try_from(count)
                                .map_err(|_| StoreError::Corrupt("member_count".into()))?,
                            root: MerkleRoot::from_bytes(root),
                            proof: serde_json::from_value(proof)
                                .map_err(|e| StoreError::Corrupt(format!("stored proof: {e}")))?,
                        })
                    }
                };
                Ok(ProofRecord {
                    credential,
                    membership,
                })
            })
            .collect()
    }

    /// Every signing public key of an issuer, by key id (active and retired).
    pub async fn signing_public_keys(
        &self,
        issuer: &IssuerId,
    ) -> Result<std::collections::HashMap<String, domain::signing::PublicKey>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT key_id, public_key FROM issuer_signing_keys WHERE issuer_id = $1",
                &[&issuer.as_str()],
            )
            .await?
            .iter()
            .map(|r| {
                let key: Vec<u8> = r.try_get(1)?;
                let key: [u8; 32] = key
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("public key length".into()))?;
                Ok((
                    r.try_get::<_, String>(0)?,
                    domain::signing::PublicKey::from_bytes(key),
                ))
            })
            .collect()
    }
}
