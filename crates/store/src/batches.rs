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
use domain::{
    BatchId, CredentialId, CredentialStatus, IssuerId, MerkleProof, MerkleRoot, MerkleTree,
};
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
        if !seal_outbox_rows(&db, SealColumn::Batch, &id, &outbox_ids).await? {
            // Dropped without commit: nothing sealed; the next pass looks again.
            return Ok(None);
        }
        crate::error::commit(db).await?;
        Ok(Some(SealedBatch {
            id,
            issuer: issuer.clone(),
            root,
            members: due,
        }))
    }
}

/// Which job a sealed outbox row now belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SealColumn {
    /// A Merkle batch (`outbox.batch_id`).
    Batch,
    /// A revocation list (`outbox.revocation_batch_id`).
    RevocationList,
}

/// Points the locked `outbox_ids` at the sealed job `id`, inside the sealing transaction.
/// Each gets a new claim number and no holder, so a relay that claimed one in single mode and
/// stalled past its lease (then its issuer moved to merkle) is fenced out. The "no transaction
/// of its own" condition is checked again on this statement's snapshot, with the rows locked:
/// a row such a relay signed after the sealing SELECT's snapshot is not sealed. `false` when
/// not every row could be sealed: the caller drops the transaction and nothing is sealed.
pub(crate) async fn seal_outbox_rows(
    db: &deadpool_postgres::Transaction<'_>,
    column: SealColumn,
    id: &BatchId,
    outbox_ids: &[i64],
) -> Result<bool, StoreError> {
    let column = match column {
        SealColumn::Batch => "batch_id",
        SealColumn::RevocationList => "revocation_batch_id",
    };
    let sealed = db
        .execute(
            &format!(
                "UPDATE outbox SET {column} = $1, attempts = attempts + 1, locked_by = NULL, \
                   locked_until = NULL, updated_at = now() \
                 WHERE id = ANY($2) AND NOT EXISTS \
                   (SELECT 1 FROM anchor_transactions t WHERE t.outbox_id = outbox.id)"
            ),
            &[id.as_uuid(), &outbox_ids],
        )
        .await?;
    Ok(usize::try_from(sealed).ok() == Some(outbox_ids.len()))
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
    /// The fee payer of the transaction recorded as its anchor: the anchoring
    /// key of that time, which a rotation may have retired since. `None` for a row rebuilt
    /// from the chain, whose transaction this database never stored.
    pub anchor_payer: Option<String>,
    /// The credential's signed Verifiable Credential text, if it has one.
    pub vc: Option<String>,
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
                    "SELECT {columns}, c.vc, b.id AS batch_id, b.member_count, b.root, m.proof, \
                       (SELECT t.payer FROM anchor_transactions t \
                        WHERE t.signature = c.anchor_signature) AS anchor_payer \
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
                    anchor_payer: row.try_get("anchor_payer")?,
                    vc: row.try_get("vc")?,
                })
            })
            .collect()
    }
}

/// What presenting a proof bundle did ([`Store::relink_from_bundle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relinked {
    /// The credential's row now carries the bundle's hash inputs and its anchor.
    Linked(CredentialId),
    /// Already known with this anchor: nothing to do.
    AlreadyKnown(CredentialId),
    /// No finalized anchor record matches the bundle (run the reconciler first).
    UnknownAnchor,
    /// The bundle disagrees with what the database holds (another hash, another batch, a
    /// serial taken by another credential): left for a human.
    Conflict,
}

impl Store {
    /// Re-links a credential from its proof bundle after a restore lost it. The bundle's
    /// anchor must match a finalized record the relay or the reconciler wrote (single: the
    /// backfilled row; merkle: the batch with the same root, size and signature), so a bundle
    /// can only restore what the chain already proves. The caller has checked the bundle
    /// offline (hash, signature, Merkle path) and that its issuer is the caller.
    pub async fn relink_from_bundle(
        &self,
        bundle: &domain::proof::ProofBundle,
    ) -> Result<Relinked, StoreError> {
        use domain::proof::AnchorPath;
        let mut client = self.client().await?;
        let db = client.transaction().await?;
        let f = &bundle.fields;
        let id = bundle.credential_id.as_uuid();
        let issuer = f.issuer.as_str();
        let hash = bundle.credential_hash.as_bytes().as_slice();
        let slot = i64::try_from(bundle.anchor.slot).unwrap_or(i64::MAX);
        let sig = bundle.issuer_signature.signature.as_bytes().as_slice();
        let key_id = bundle.issuer_signature.key_id.as_str();
        let digest = f.file_digest.as_bytes().as_slice();
        // The caller checked the bundle offline, so its version and salt agree.
        let scheme = bundle
            .scheme()
            .map_err(|e| StoreError::Corrupt(format!("bundle not checked: {e}")))?;
        let format = scheme.format().number();
        let salt: Option<Vec<u8>> = scheme.salt().map(|s| s.as_bytes().to_vec());
        // Without the signing key's row the FK refuses the fields: treat as unknown anchor
        // material rather than half-writing.
        let key_known = db
            .query_opt(
                "SELECT 1 FROM issuer_signing_keys WHERE issuer_id = $1 AND key_id = $2",
                &[&issuer, &key_id],
            )
            .await?
            .is_some();
        if !key_known {
            return Ok(Relinked::Conflict);
        }
        let row = db
            .query_opt(
                "SELECT issuer_id, credential_hash, status, serial IS NULL, anchor_signature \
                 FROM credentials WHERE id = $1 FOR UPDATE",
                &[id],
            )
            .await?;
        if let Some(r) = &row {
            let row_issuer: String = r.try_get(0)?;
            let row_hash: Vec<u8> = r.try_get(1)?;
            if row_issuer != issuer || row_hash != hash {
                return Ok(Relinked::Conflict);
            }
        }
        let outcome = match &bundle.anchor.mode {
            AnchorPath::Single => {
                let Some(r) = row else {
                    return Ok(Relinked::UnknownAnchor);
                };
                let status: String = r.try_get(2)?;
                let status: CredentialStatus = status
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("credential status: {e}")))?;
                let bare: bool = r.try_get(3)?;
                let anchor: Option<String> = r.try_get(4)?;
                if anchor.as_deref() != Some(bundle.anchor.signature.as_str()) {
                    return Ok(Relinked::UnknownAnchor);
                }
                if status == CredentialStatus::Recovered && bare {
                    if !fill_fields(&db, bundle, id, digest, key_id, sig, format, &salt).await? {
                        return Ok(Relinked::Conflict);
                    }
                    Relinked::Linked(bundle.credential_id)
                } else {
                    Relinked::AlreadyKnown(bundle.credential_id)
                }
            }
            AnchorPath::Merkle {
                batch_id,
                count,
                root,
                proof,
            } => {
                let batch = db
                    .query_opt(
                        "SELECT 1 FROM anchor_batches WHERE id = $1 AND issuer_id = $2 \
                           AND member_count = $3 AND root = $4 AND anchor_signature = $5 \
                           AND completed_at IS NOT NULL",
                        &[
                            batch_id.as_uuid(),
                            &issuer,
                            &i32::try_from(*count).unwrap_or(i32::MAX),
                            &root.as_bytes().as_slice(),
                            &bundle.anchor.signature,
                        ],
                    )
                    .await?;
                if batch.is_none() {
                    return Ok(Relinked::UnknownAnchor);
                }
                let member = db
                    .query_opt(
                        "SELECT batch_id FROM anchor_batch_members WHERE credential_id = $1",
                        &[id],
                    )
                    .await?;
                if let Some(m) = member {
                    let existing: Uuid = m.try_get(0)?;
                    if existing == *batch_id.as_uuid() {
                        crate::error::commit(db).await?;
                        return Ok(Relinked::AlreadyKnown(bundle.credential_id));
                    }
                    return Ok(Relinked::Conflict);
                }
                match row {
                    None => {
                        let inserted = db
                            .execute(
                                "INSERT INTO credentials (id, issuer_id, serial, recipient_id, \
                                   issued_at, file_digest, credential_hash, signing_key_id, \
                                   signature, status, anchor_signature, anchor_slot, finalized_at, \
                                   proof_format, salt) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'recovered', $10, \
                                   $11, now(), $12, $13) ON CONFLICT DO NOTHING",
                                &[
                                    id,
                                    &issuer,
                                    &f.serial.as_str(),
                                    &f.recipient.as_str(),
                                    f.issued_at.as_datetime(),
                                    &digest,
                                    &hash,
                                    &key_id,
                                    &sig,
                                    &bundle.anchor.signature,
                                    &slot,
                                    &format,
                                    &salt,
                                ],
                            )
                            .await?;
                        if inserted == 0 {
                            // The serial belongs to another credential.
                            return Ok(Relinked::Conflict);
                        }
                    }
                    Some(_) => {
                        // A row restored from a backup taken before the batch was sealed:
                        // it is anchored already, so finish it and its job here, or the
                        // relay would seal it into a second batch.
                        db.execute(
                            "UPDATE credentials SET status = 'finalized', anchor_signature = $2, \
                               anchor_slot = $3, finalized_at = coalesce(finalized_at, now()), \
                               last_error = NULL, updated_at = now() \
                             WHERE id = $1 AND status = ANY($4)",
                            &[
                                id,
                                &bundle.anchor.signature,
                                &slot,
                                &crate::reconcile::awaiting_anchor_sql(),
                            ],
                        )
                        .await?;
                        db.execute(
                            "UPDATE outbox SET completed_at = now(), locked_until = NULL, \
                               locked_by = NULL, updated_at = now() \
                             WHERE credential_id = $1 AND kind = 'anchor_credential' \
                               AND completed_at IS NULL AND batch_id IS NULL",
                            &[id],
                        )
                        .await?;
                    }
                }
                let proof =
                    serde_json::to_value(proof).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                db.execute(
                    "INSERT INTO anchor_batch_members (batch_id, leaf_index, credential_id, proof) \
                     VALUES ($1, $2, $3, $4)",
                    &[
                        batch_id.as_uuid(),
                        &i32::try_from(proof_index(&proof)).unwrap_or(i32::MAX),
                        id,
                        &proof,
                    ],
                )
                .await?;
                Relinked::Linked(bundle.credential_id)
            }
        };
        crate::error::commit(db).await?;
        Ok(outcome)
    }
}

fn proof_index(proof: &Value) -> i64 {
    proof["leaf_index"].as_i64().unwrap_or(0)
}

#[allow(clippy::too_many_arguments)] // one UPDATE's parameters, named at the call site
async fn fill_fields(
    db: &deadpool_postgres::Transaction<'_>,
    bundle: &domain::proof::ProofBundle,
    id: &Uuid,
    digest: &[u8],
    key_id: &str,
    sig: &[u8],
    format: i16,
    salt: &Option<Vec<u8>>,
) -> Result<bool, StoreError> {
    let f = &bundle.fields;
    let updated = db
        .execute(
        "UPDATE credentials SET serial = $2, recipient_id = $3, issued_at = $4, file_digest = $5, \
           signing_key_id = $6, signature = $7, proof_format = $8, salt = $9, updated_at = now() \
         WHERE id = $1",
        &[
            id,
            &f.serial.as_str(),
            &f.recipient.as_str(),
            f.issued_at.as_datetime(),
            &digest,
            &key_id,
            &sig,
            &format,
            salt,
        ],
    )
    .await;
    match updated {
        Ok(_) => Ok(true),
        // The serial belongs to another credential.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
