//! Credentials: the issuing transaction (credential + outbox row + NOTIFY, one commit),
//! reads, and keyset-paginated listing.

use chrono::{DateTime, Utc};
use domain::hash::{CredentialHash, FileDigest, HashScheme, ProofFormat, Salt};
use domain::signing::IssuerSignature;
use domain::status_list::StatusOrdinal;
use domain::{CredentialId, CredentialStatus, IssuedAt, IssuerId, KeyId, RecipientId, Serial};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::issuers::parse_key_id;
use crate::{Store, StoreError, OUTBOX_CHANNEL};

/// A credential ready to be written: hashed and signed by the caller.
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub id: CredentialId,
    pub issuer: IssuerId,
    pub serial: Serial,
    pub recipient: RecipientId,
    pub issued_at: IssuedAt,
    pub credential_type: String,
    pub title: String,
    pub metadata: Value,
    pub file_digest: FileDigest,
    /// How `hash` was computed (v2 for everything the service issues; v1 only for rows an
    /// older version wrote, or a test standing in for it).
    pub scheme: HashScheme,
    pub hash: CredentialHash,
    pub key_id: KeyId,
    pub signature: IssuerSignature,
    /// The signed Verifiable Credential (JSON text, kept byte for byte); `None` only where a
    /// test stands in for an older release.
    pub vc: Option<String>,
    /// Its bit in the issuer's status lists (`domain::status_list`), reserved with
    /// [`Store::reserve_status_ordinals`]; `None` only where a test stands in for an older
    /// release.
    pub status_ordinal: Option<StatusOrdinal>,
}

impl NewCredential {
    fn format_number(&self) -> i16 {
        self.scheme.format().number()
    }

    fn ordinal(&self) -> Option<i64> {
        self.status_ordinal
            .and_then(|o| i64::try_from(o.get()).ok())
    }

    fn salt_bytes(&self) -> Option<&[u8]> {
        match &self.scheme {
            HashScheme::V1 => None,
            HashScheme::V2 { salt, .. } => Some(salt.as_bytes().as_slice()),
        }
    }
}

/// A credential as stored. Hash inputs are optional only for rows backfilled from the chain.
#[derive(Debug, Clone)]
pub struct CredentialRecord {
    pub id: CredentialId,
    pub issuer: IssuerId,
    pub serial: Option<Serial>,
    pub recipient: Option<RecipientId>,
    pub issued_at: Option<IssuedAt>,
    pub credential_type: Option<String>,
    pub title: Option<String>,
    pub metadata: Value,
    pub file_digest: Option<FileDigest>,
    pub hash: CredentialHash,
    /// `None` only for rows backfilled from the chain (no hash inputs known).
    pub proof_format: Option<ProofFormat>,
    /// v2 only; `None` also after the salt was shredded for an erasure request.
    pub salt: Option<Salt>,
    pub key_id: Option<KeyId>,
    pub signature: Option<IssuerSignature>,
    pub status: CredentialStatus,
    pub anchor_signature: Option<String>,
    pub anchor_slot: Option<u64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finalized_at: Option<DateTime<Utc>>,
    /// Its bit in the issuer's status lists; `None` for credentials issued before them and
    /// rows rebuilt from the chain.
    pub status_ordinal: Option<StatusOrdinal>,
}

impl CredentialRecord {
    /// How this credential's hash was computed, from its stored format, salt and signing key
    /// (`public_key`: the published key of `self.key_id`). `None` for a row backfilled from
    /// the chain (format unknown) or a v2 row whose salt was erased.
    pub fn hash_scheme(&self, public_key: domain::signing::PublicKey) -> Option<HashScheme> {
        match self.proof_format? {
            ProofFormat::V1 => Some(HashScheme::V1),
            ProofFormat::V2 => Some(HashScheme::V2 {
                credential_id: self.id,
                salt: self.salt?,
                key_id: self.key_id.clone()?,
                public_key,
            }),
        }
    }

    /// Same logical credential as `new` (the content a duplicate (issuer, serial) must match).
    /// The hash cannot decide it: in v2 it includes the fresh id and salt of each attempt, so
    /// the hash inputs are compared instead (the serial is equal by construction).
    pub fn same_content_as(&self, new: &NewCredential) -> bool {
        self.file_digest == Some(new.file_digest)
            && self.recipient.as_ref() == Some(&new.recipient)
            && self.issued_at == Some(new.issued_at)
            && self.credential_type.as_deref() == Some(new.credential_type.as_str())
            && self.title.as_deref() == Some(new.title.as_str())
            && self.metadata == new.metadata
    }
}

/// The Idempotency-Key of a request and the fingerprint of what was asked.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyRequest<'a> {
    pub key: &'a str,
    pub request_hash: &'a [u8; 32],
}

/// What an issuing call did.
#[derive(Debug, Clone)]
pub enum IssueOutcome {
    /// Credential and outbox row committed together.
    Created(CredentialRecord),
    /// The same (issuer, serial) with identical content already exists: nothing written.
    Duplicate(CredentialRecord),
    /// The same (issuer, serial) exists with different content: nothing written.
    SerialConflict { existing: CredentialId },
    /// The Idempotency-Key was used before for this same request: its stored response.
    Replayed { status: u16, body: Value },
    /// The Idempotency-Key was used before for a different request.
    IdempotencyKeyReused,
}

/// Filters of `GET /v1/credentials`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub recipient: Option<RecipientId>,
    pub status: Option<CredentialStatus>,
}

/// The signing key ($1 issuer, $2 key id) is still active; locked `FOR SHARE` until commit, so
/// a rotation waits for the issuing transaction. Single and bulk issuance both check it.
const ACTIVE_KEY_FOR_SHARE: &str = "SELECT 1 FROM issuer_signing_keys \
     WHERE issuer_id = $1 AND key_id = $2 AND retired_at IS NULL FOR SHARE";

pub const CREDENTIAL_COLUMNS: &str = "id, issuer_id, serial, recipient_id, issued_at, \
     credential_type, title, metadata, file_digest, credential_hash, proof_format, salt, \
     signing_key_id, signature, status, anchor_signature, anchor_slot, last_error, created_at, updated_at, finalized_at, \
     status_ordinal";

impl Store {
    /// Writes a credential and its outbox row in ONE transaction, notifies the relay, and
    /// records the response under the Idempotency-Key (if any) in that same transaction, so
    /// an acknowledged credential always has its outbox row and its replayable answer.
    ///
    /// `render` turns the outcome into the HTTP (status, body) stored for replays.
    pub async fn issue_credential<F>(
        &self,
        new: &NewCredential,
        idempotency: Option<IdempotencyRequest<'_>>,
        render: F,
    ) -> Result<IssueOutcome, StoreError>
    where
        F: FnOnce(&IssueOutcome) -> (u16, Value),
    {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;

        if let Some(idem) = idempotency {
            // Claim the key first. A concurrent request with the same key blocks here on the
            // primary key until this transaction ends, then sees our committed answer: N
            // identical concurrent requests create exactly one credential.
            match claim_idempotency(&tx, &new.issuer, idem).await? {
                IdempotencyClaim::Fresh => {}
                IdempotencyClaim::Replayed { status, body } => {
                    return Ok(IssueOutcome::Replayed { status, body })
                }
                IdempotencyClaim::Reused => return Ok(IssueOutcome::IdempotencyKeyReused),
            }
        }

        // Key rotation: the signing key must still be active when the credential is recorded.
        // FOR SHARE makes a concurrent rotation wait for this commit (its retired_at is read
        // from the clock after the wait, so created_at < retired_at), or makes this check see
        // the retirement. Either way no credential is recorded under an already retired key.
        //
        // The statements of this hot path are prepared once per connection
        // (`prepare_cached`): an unprepared query costs a Parse round trip and a planning
        // pass in PostgreSQL on every request, which the benchmark's profile showed to be
        // most of the database's CPU per issuance (issue #10).
        let key_check = tx.prepare_cached(ACTIVE_KEY_FOR_SHARE).await?;
        let insert = tx
            .prepare_cached(&format!(
                "INSERT INTO credentials (id, issuer_id, serial, recipient_id, issued_at, \
                 credential_type, title, metadata, file_digest, credential_hash, \
                 signing_key_id, signature, proof_format, salt, vc, status_ordinal, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                   'queued') \
                 ON CONFLICT (issuer_id, serial) DO NOTHING RETURNING {CREDENTIAL_COLUMNS}"
            ))
            .await?;
        let params_issuer = new.issuer.as_str();
        let params_key = new.key_id.as_str();
        let format = new.format_number();
        let salt = new.salt_bytes();
        let ordinal = new.ordinal();
        let insert_params: [&(dyn tokio_postgres::types::ToSql + Sync); 16] = [
            new.id.as_uuid(),
            &params_issuer,
            &new.serial.as_str(),
            &new.recipient.as_str(),
            new.issued_at.as_datetime(),
            &new.credential_type,
            &new.title,
            &new.metadata,
            &new.file_digest.as_bytes().as_slice(),
            &new.hash.as_bytes().as_slice(),
            &params_key,
            &new.signature.as_bytes().as_slice(),
            &format,
            &salt,
            &new.vc,
            &ordinal,
        ];
        // The key check and the insert are pipelined (issue #10: one round trip fewer per
        // issuance): tokio-postgres writes both at once, the server runs them in order, so
        // the FOR SHARE lock is held before the row is inserted, and a retired key returns
        // before the commit, dropping the transaction and the inserted row with it.
        let (key_active, inserted) = futures_util::future::try_join(
            tx.query_opt(&key_check, &[&params_issuer, &params_key]),
            tx.query_opt(&insert, &insert_params),
        )
        .await?;
        if key_active.is_none() {
            return Err(StoreError::SigningKeyRetired(
                new.key_id.as_str().to_string(),
            ));
        }

        let outcome = match inserted {
            Some(row) => {
                // `return(kill)` SIGKILLs the API here, inside the open transaction (the
                // crash suite); plain `return` fails the request instead.
                fail::fail_point!("store::issue::after_credential_insert", |arg: Option<
                    String,
                >| {
                    crashpoint::hit(arg.as_deref());
                    Err(StoreError::Injected("after credential insert".into()))
                });
                // The outbox row and the relay's wake-up in one statement. The NOTIFY is
                // delivered only on commit, so the relay never wakes for an uncommitted row.
                let enqueue = tx
                    .prepare_cached(
                        "WITH o AS (INSERT INTO outbox (kind, credential_id, issuer_id) \
                           VALUES ('anchor_credential', $1, $2) RETURNING id) \
                         SELECT pg_notify($3, $2) FROM o",
                    )
                    .await?;
                let queued = tx
                    .query(
                        &enqueue,
                        &[new.id.as_uuid(), &new.issuer.as_str(), &OUTBOX_CHANNEL],
                    )
                    .await?;
                if queued.len() != 1 {
                    return Err(StoreError::Corrupt("outbox insert returned no row".into()));
                }
                IssueOutcome::Created(credential_from_row(&row)?)
            }
            None => {
                let row = tx
                    .query_one(
                        &format!(
                            "SELECT {CREDENTIAL_COLUMNS} FROM credentials \
                             WHERE issuer_id = $1 AND serial = $2"
                        ),
                        &[&new.issuer.as_str(), &new.serial.as_str()],
                    )
                    .await?;
                let existing = credential_from_row(&row)?;
                if existing.same_content_as(new) {
                    IssueOutcome::Duplicate(existing)
                } else {
                    IssueOutcome::SerialConflict {
                        existing: existing.id,
                    }
                }
            }
        };

        if let Some(idem) = idempotency {
            let (status, body) = render(&outcome);
            let status = i16::try_from(status).unwrap_or(500);
            tx.execute(
                "UPDATE idempotency_keys SET response_status = $3, response_body = $4 \
                 WHERE issuer_id = $1 AND key = $2",
                &[&new.issuer.as_str(), &idem.key, &status, &body],
            )
            .await?;
        }
        crate::error::commit(tx).await?;
        Ok(outcome)
    }

    /// One credential of one issuer. Another issuer's credential is simply not found.
    pub async fn credential(
        &self,
        issuer: &IssuerId,
        id: &CredentialId,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE issuer_id = $1 AND id = $2"
                ),
                &[&issuer.as_str(), id.as_uuid()],
            )
            .await?;
        row.as_ref().map(credential_from_row).transpose()
    }

    /// The signed Verifiable Credential of one credential of one issuer, as stored: `None`
    /// if there is no such credential, `Some(None)` if it has none (an older row).
    pub async fn credential_vc(
        &self,
        issuer: &IssuerId,
        id: &CredentialId,
    ) -> Result<Option<Option<String>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT vc FROM credentials WHERE issuer_id = $1 AND id = $2",
                &[&issuer.as_str(), id.as_uuid()],
            )
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        })
    }

    /// The signed Verifiable Credentials of one bulk request, in request order (ids are
    /// time-ordered), skipping rows without one.
    pub async fn batch_vcs(
        &self,
        issuer: &IssuerId,
        request_id: &Uuid,
    ) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT vc FROM credentials WHERE issuer_id = $1 AND request_batch_id = $2 \
                 AND vc IS NOT NULL ORDER BY id",
                &[&issuer.as_str(), request_id],
            )
            .await?;
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    /// Newest first, keyset-paginated by id (UUIDv7 is time-ordered): `cursor` is the last
    /// id of the previous page. Uses the (issuer_id, [filter,] id DESC) indexes.
    pub async fn list_credentials(
        &self,
        issuer: &IssuerId,
        filter: &ListFilter,
        limit: u32,
        cursor: Option<&CredentialId>,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        let client = self.client().await?;
        let recipient = filter.recipient.as_ref().map(|r| r.as_str());
        let status = filter.status.map(|s| s.as_str());
        let cursor: Option<Uuid> = cursor.map(|c| *c.as_uuid());
        let limit = i64::from(limit);
        let rows = client
            .query(
                &format!(
                    "SELECT {CREDENTIAL_COLUMNS} FROM credentials \
                     WHERE issuer_id = $1 \
                       AND ($2::text IS NULL OR recipient_id = $2) \
                       AND ($3::text IS NULL OR status = $3) \
                       AND ($4::uuid IS NULL OR id < $4) \
                     ORDER BY id DESC LIMIT $5"
                ),
                &[&issuer.as_str(), &recipient, &status, &cursor, &limit],
            )
            .await?;
        rows.iter().map(credential_from_row).collect()
    }
}

fn corrupt(what: &str) -> impl FnOnce(domain::ids::IdError) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

pub(crate) fn credential_from_row(row: &Row) -> Result<CredentialRecord, StoreError> {
    let id: Uuid = row.try_get("id")?;
    let issuer: String = row.try_get("issuer_id")?;
    let serial: Option<String> = row.try_get("serial")?;
    let recipient: Option<String> = row.try_get("recipient_id")?;
    let issued_at: Option<DateTime<Utc>> = row.try_get("issued_at")?;
    let file_digest: Option<Vec<u8>> = row.try_get("file_digest")?;
    let hash: Vec<u8> = row.try_get("credential_hash")?;
    let proof_format: Option<i16> = row.try_get("proof_format")?;
    let salt: Option<Vec<u8>> = row.try_get("salt")?;
    let key_id: Option<String> = row.try_get("signing_key_id")?;
    let signature: Option<Vec<u8>> = row.try_get("signature")?;
    let status: String = row.try_get("status")?;
    let anchor_slot: Option<i64> = row.try_get("anchor_slot")?;
    Ok(CredentialRecord {
        id: CredentialId::from_uuid(id),
        issuer: IssuerId::parse(&issuer).map_err(corrupt("issuer_id"))?,
        serial: serial
            .map(|s| Serial::parse(&s))
            .transpose()
            .map_err(corrupt("serial"))?,
        recipient: recipient
            .map(|s| RecipientId::parse(&s))
            .transpose()
            .map_err(corrupt("recipient_id"))?,
        issued_at: issued_at
            .map(IssuedAt::from_datetime)
            .transpose()
            .map_err(corrupt("issued_at"))?,
        credential_type: row.try_get("credential_type")?,
        title: row.try_get("title")?,
        metadata: row.try_get("metadata")?,
        file_digest: file_digest
            .map(|b| bytes32(&b, "file_digest").map(FileDigest::from_bytes))
            .transpose()?,
        hash: CredentialHash::from_bytes(bytes32(&hash, "credential_hash")?),
        proof_format: proof_format
            .map(|n| {
                ProofFormat::from_number(n)
                    .ok_or_else(|| StoreError::Corrupt(format!("proof_format {n}")))
            })
            .transpose()?,
        salt: salt
            .map(|b| bytes32(&b, "salt").map(Salt::from_bytes))
            .transpose()?,
        key_id: key_id.map(|k| parse_key_id(&k)).transpose()?,
        signature: signature
            .map(|b| {
                <[u8; 64]>::try_from(b.as_slice())
                    .map(IssuerSignature::from_bytes)
                    .map_err(|_| StoreError::Corrupt("signature length".into()))
            })
            .transpose()?,
        status: status
            .parse::<CredentialStatus>()
            .map_err(|_| StoreError::Corrupt(format!("status {status}")))?,
        anchor_signature: row.try_get("anchor_signature")?,
        anchor_slot: anchor_slot.and_then(|s| u64::try_from(s).ok()),
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finalized_at: row.try_get("finalized_at")?,
        status_ordinal: row
            .try_get::<_, Option<i64>>("status_ordinal")?
            .and_then(|o| u64::try_from(o).ok())
            .and_then(StatusOrdinal::new),
    })
}

fn bytes32(b: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    b.try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} length")))
}

/// One item of a bulk issuance, as the store decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkItemOutcome {
    /// Inserted with its outbox row.
    Created(CredentialId),
    /// The same (issuer, serial) with identical content already exists.
    Duplicate(CredentialId),
    /// The serial is taken by a credential with different content.
    SerialConflict(CredentialId),
}

/// What a bulk issuing call did.
#[derive(Debug, Clone)]
pub enum BulkOutcome {
    /// One outcome per item, in order.
    Done(Vec<BulkItemOutcome>),
    Replayed {
        status: u16,
        body: Value,
    },
    IdempotencyKeyReused,
}

/// A bulk request to write: its id and counts for `credential_batches`, and the valid items
/// (hashed and signed, serials unique within the request).
pub struct NewBulk<'a> {
    pub request_id: Uuid,
    pub issuer: &'a IssuerId,
    pub submitted: i32,
    /// Items refused before reaching the store (parse errors, repeated serials).
    pub invalid: i32,
    pub items: &'a [NewCredential],
}

enum IdempotencyClaim {
    Fresh,
    Replayed { status: u16, body: Value },
    Reused,
}

/// Claims an Idempotency-Key inside `tx`, for single and bulk issuance alike: a fresh key is
/// inserted (a concurrent twin blocks on its primary key until this transaction ends); a key
/// seen before answers with its stored response, or `Reused` for another request. The
/// response is written in the same transaction as the key, so a committed key without one
/// means a manual edit.
async fn claim_idempotency(
    tx: &deadpool_postgres::Transaction<'_>,
    issuer: &IssuerId,
    idem: IdempotencyRequest<'_>,
) -> Result<IdempotencyClaim, StoreError> {
    let claimed = tx
        .execute(
            "INSERT INTO idempotency_keys (issuer_id, key, request_hash) \
             VALUES ($1, $2, $3) ON CONFLICT (issuer_id, key) DO NOTHING",
            &[&issuer.as_str(), &idem.key, &idem.request_hash.as_slice()],
        )
        .await?;
    if claimed == 1 {
        return Ok(IdempotencyClaim::Fresh);
    }
    let row = tx
        .query_one(
            "SELECT request_hash, response_status, response_body \
             FROM idempotency_keys WHERE issuer_id = $1 AND key = $2",
            &[&issuer.as_str(), &idem.key],
        )
        .await?;
    let stored_hash: Vec<u8> = row.try_get(0)?;
    if stored_hash.as_slice() != idem.request_hash.as_slice() {
        return Ok(IdempotencyClaim::Reused);
    }
    let status: Option<i16> = row.try_get(1)?;
    let body: Option<Value> = row.try_get(2)?;
    match (status, body) {
        (Some(status), Some(body)) => Ok(IdempotencyClaim::Replayed {
            status: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt("idempotency status".into()))?,
            body,
        }),
        _ => Err(StoreError::Corrupt(
            "idempotency key without response".into(),
        )),
    }
}

impl Store {
    /// Writes many credentials and their outbox rows in ONE transaction (multi-row
    /// `INSERT ... SELECT FROM unnest(...)`, a few statements whatever the count), records
    /// the request in `credential_batches`, notifies the relay once, and stores the response
    /// under the Idempotency-Key in that same transaction. An item whose serial exists is a
    /// duplicate (same content) or a conflict; it never aborts the others.
    pub async fn issue_bulk<F>(
        &self,
        bulk: &NewBulk<'_>,
        idempotency: Option<IdempotencyRequest<'_>>,
        render: F,
    ) -> Result<BulkOutcome, StoreError>
    where
        F: FnOnce(&[BulkItemOutcome]) -> (u16, Value),
    {
        let mut client = self.client().await?;
        let mut tx = client.transaction().await?;
        if let Some(idem) = idempotency {
            match claim_idempotency(&tx, bulk.issuer, idem).await? {
                IdempotencyClaim::Fresh => {}
                IdempotencyClaim::Reused => return Ok(BulkOutcome::IdempotencyKeyReused),
                IdempotencyClaim::Replayed { status, body } => {
                    return Ok(BulkOutcome::Replayed { status, body })
                }
            }
        }
        let issuer = bulk.issuer.as_str();
        // The items' signing key must still be active, held FOR SHARE until the commit so a
        // rotation waits for this transaction (the rule of `issue_credential`). All items of
        // a request are signed with one key.
        if let Some(first) = bulk.items.first() {
            let active = tx
                .query_opt(ACTIVE_KEY_FOR_SHARE, &[&issuer, &first.key_id.as_str()])
                .await?;
            if active.is_none() {
                return Err(StoreError::SigningKeyRetired(
                    first.key_id.as_str().to_string(),
                ));
            }
        }
        tx.execute(
            "INSERT INTO credential_batches (id, issuer_id, submitted, accepted, duplicates, invalid) \
             VALUES ($1, $2, $3, 0, 0, $4)",
            &[&bulk.request_id, &issuer, &bulk.submitted, &bulk.invalid],
        )
        .await?;

        let items = bulk.items;
        let n = items.len();
        // Optimistic: the whole request is streamed with COPY, which costs PostgreSQL about
        // half what a multi-row `INSERT ... ON CONFLICT` does per row (issue #10), and new
        // serials are the rule (a retried request replays through its Idempotency-Key). A
        // serial already taken fails the COPY; the savepoint is rolled back and the row-wise
        // path below decides each item.
        let all: Vec<&NewCredential> = items.iter().collect();
        #[cfg(feature = "failpoints")]
        if let Some(Some(ms)) = fail::eval("store::bulk::before_copy", |arg| {
            arg.and_then(|a| a.parse::<u64>().ok())
        }) {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        let (inserted, existing) = match copy_all(&mut tx, issuer, bulk.request_id, &all).await {
            Ok(()) => {
                // Every credential and outbox row of the request is written by the COPY, the
                // transaction is still open: `return(kill)` SIGKILLs the API here.
                fail::fail_point!("store::bulk::after_copy", |arg: Option<String>| {
                    crashpoint::hit(arg.as_deref());
                    Err(StoreError::Injected("after bulk COPY".into()))
                });
                (
                    all.iter().map(|c| *c.id.as_uuid()).collect(),
                    std::collections::HashMap::new(),
                )
            }
            Err(e) if serial_taken(&e) => {
                // A serial was taken before, or by a concurrent request (COPY waited for it
                // to commit), or the two waited on each other. The savepoint is rolled back
                // (its locks with it); the row-wise path skips taken serials, and those are
                // then looked up to tell duplicates from conflicts.
                let inserted = insert_skipping_taken(&tx, issuer, bulk.request_id, &all).await?;
                let taken: Vec<&str> = all
                    .iter()
                    .filter(|c| !inserted.contains(c.id.as_uuid()))
                    .map(|c| c.serial.as_str())
                    .collect();
                (inserted, existing_by_serial(&tx, issuer, &taken).await?)
            }
            Err(e) => return Err(e.into()),
        };
        let created: Vec<Uuid> = ids_in_order(items, &inserted);
        let mut outcomes = Vec::with_capacity(n);
        for c in items {
            if inserted.contains(c.id.as_uuid()) {
                outcomes.push(BulkItemOutcome::Created(c.id));
                continue;
            }
            let record = existing
                .get(c.serial.as_str())
                .ok_or_else(|| StoreError::Corrupt("conflicting serial vanished".into()))?;
            outcomes.push(if record.same_content_as(c) {
                BulkItemOutcome::Duplicate(record.id)
            } else {
                BulkItemOutcome::SerialConflict(record.id)
            });
        }
        let accepted = i32::try_from(created.len()).unwrap_or(i32::MAX);
        let duplicates = outcomes
            .iter()
            .filter(|o| matches!(o, BulkItemOutcome::Duplicate(_)))
            .count();
        let conflicts = outcomes.len() - created.len() - duplicates;
        tx.execute(
            "UPDATE credential_batches SET accepted = $2, duplicates = $3, invalid = invalid + $4 \
             WHERE id = $1",
            &[
                &bulk.request_id,
                &accepted,
                &i32::try_from(duplicates).unwrap_or(i32::MAX),
                &i32::try_from(conflicts).unwrap_or(i32::MAX),
            ],
        )
        .await?;
        if !created.is_empty() {
            tx.execute("SELECT pg_notify($1, $2)", &[&OUTBOX_CHANNEL, &issuer])
                .await?;
        }
        if let Some(idem) = idempotency {
            let (status, body) = render(&outcomes);
            let status = i16::try_from(status).unwrap_or(500);
            tx.execute(
                "UPDATE idempotency_keys SET response_status = $3, response_body = $4 \
                 WHERE issuer_id = $1 AND key = $2",
                &[&issuer, &idem.key, &status, &body],
            )
            .await?;
        }
        crate::error::commit(tx).await?;
        Ok(BulkOutcome::Done(outcomes))
    }

    /// A bulk request of `issuer` and its credentials' counts by status.
    pub async fn credential_batch(
        &self,
        issuer: &IssuerId,
        id: &Uuid,
    ) -> Result<Option<CredentialBatchSummary>, StoreError> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(
                "SELECT submitted, accepted, duplicates, invalid, created_at \
                 FROM credential_batches WHERE id = $1 AND issuer_id = $2",
                &[id, &issuer.as_str()],
            )
            .await?
        else {
            return Ok(None);
        };
        let counts = client
            .query(
                "SELECT status, count(*) FROM credentials WHERE request_batch_id = $1 \
                 GROUP BY status ORDER BY status",
                &[id],
            )
            .await?
            .iter()
            .map(|r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(CredentialBatchSummary {
            submitted: row.try_get(0)?,
            accepted: row.try_get(1)?,
            duplicates: row.try_get(2)?,
            invalid: row.try_get(3)?,
            created_at: row.try_get(4)?,
            by_status: counts,
        }))
    }
}

/// `GET /v1/credential-batches/{id}`.
#[derive(Debug, Clone)]
pub struct CredentialBatchSummary {
    pub submitted: i32,
    pub accepted: i32,
    pub duplicates: i32,
    pub invalid: i32,
    pub created_at: DateTime<Utc>,
    /// (status, count) of the credentials the request created.
    pub by_status: Vec<(String, i64)>,
}

/// The stored credentials of `issuer` among `serials`, by serial.
async fn existing_by_serial(
    tx: &deadpool_postgres::Transaction<'_>,
    issuer: &str,
    serials: &[&str],
) -> Result<std::collections::HashMap<String, CredentialRecord>, StoreError> {
    let mut existing = std::collections::HashMap::new();
    if serials.is_empty() {
        return Ok(existing);
    }
    for row in tx
        .query(
            &format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM credentials \
                 WHERE issuer_id = $1 AND serial = ANY($2)"
            ),
            &[&issuer, &serials],
        )
        .await?
    {
        let record = credential_from_row(&row)?;
        if let Some(serial) = record.serial.clone() {
            existing.insert(serial.as_str().to_string(), record);
        }
    }
    Ok(existing)
}

/// Whether a COPY failed on a serial that is taken (or on a deadlock with a concurrent
/// request writing the same serials).
fn serial_taken(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// The ids of `items` that are in `inserted`, in request order.
fn ids_in_order(items: &[NewCredential], inserted: &std::collections::HashSet<Uuid>) -> Vec<Uuid> {
    items
        .iter()
        .map(|c| *c.id.as_uuid())
        .filter(|id| inserted.contains(id))
        .collect()
}

/// Streams `items` and their outbox rows with binary COPY inside a savepoint, so a failure
/// (a serial already taken) leaves the surrounding transaction usable.
async fn copy_all(
    tx: &mut deadpool_postgres::Transaction<'_>,
    issuer: &str,
    request_id: Uuid,
    items: &[&NewCredential],
) -> Result<(), tokio_postgres::Error> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::{ToSql, Type};
    if items.is_empty() {
        return Ok(());
    }
    let sp = tx.savepoint("bulk_copy").await?;
    let sink = sp
        .copy_in(
            "COPY credentials (id, issuer_id, serial, recipient_id, issued_at, credential_type, \
               title, metadata, file_digest, credential_hash, signing_key_id, signature, status, \
               request_batch_id, proof_format, salt, vc, status_ordinal) FROM STDIN BINARY",
        )
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::UUID,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::TEXT,
            Type::TEXT,
            Type::JSONB,
            Type::BYTEA,
            Type::BYTEA,
            Type::TEXT,
            Type::BYTEA,
            Type::TEXT,
            Type::UUID,
            Type::INT2,
            Type::BYTEA,
            Type::TEXT,
            Type::INT8,
        ],
    );
    futures_util::pin_mut!(writer);
    for c in items {
        let format = c.format_number();
        let salt = c.salt_bytes();
        let ordinal = c.ordinal();
        let row: [&(dyn ToSql + Sync); 18] = [
            c.id.as_uuid(),
            &issuer,
            &c.serial.as_str(),
            &c.recipient.as_str(),
            c.issued_at.as_datetime(),
            &c.credential_type.as_str(),
            &c.title.as_str(),
            &c.metadata,
            &c.file_digest.as_bytes().as_slice(),
            &c.hash.as_bytes().as_slice(),
            &c.key_id.as_str(),
            &c.signature.as_bytes().as_slice(),
            &"queued",
            &request_id,
            &format,
            &salt,
            &c.vc,
            &ordinal,
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;

    let sink = sp
        .copy_in("COPY outbox (kind, credential_id, issuer_id) FROM STDIN BINARY")
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::UUID, Type::TEXT]);
    futures_util::pin_mut!(writer);
    for c in items {
        writer
            .as_mut()
            .write(&[&"anchor_credential", c.id.as_uuid(), &issuer])
            .await?;
    }
    writer.finish().await?;
    sp.commit().await
}

/// The row-wise fallback: one multi-row `INSERT ... ON CONFLICT DO NOTHING` (a serial taken
/// meanwhile is skipped, never an error) and the outbox rows of what was inserted.
async fn insert_skipping_taken(
    tx: &deadpool_postgres::Transaction<'_>,
    issuer: &str,
    request_id: Uuid,
    items: &[&NewCredential],
) -> Result<std::collections::HashSet<Uuid>, StoreError> {
    let n = items.len();
    let mut ids = Vec::with_capacity(n);
    let mut serials = Vec::with_capacity(n);
    let mut recipients = Vec::with_capacity(n);
    let mut issued = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut titles = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut digests = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    let mut key_ids = Vec::with_capacity(n);
    let mut signatures = Vec::with_capacity(n);
    let mut formats = Vec::with_capacity(n);
    let mut salts = Vec::with_capacity(n);
    let mut vcs = Vec::with_capacity(n);
    let mut ordinals = Vec::with_capacity(n);
    for c in items {
        ids.push(*c.id.as_uuid());
        serials.push(c.serial.as_str());
        recipients.push(c.recipient.as_str());
        issued.push(*c.issued_at.as_datetime());
        types.push(c.credential_type.as_str());
        titles.push(c.title.as_str());
        metadata.push(&c.metadata);
        digests.push(c.file_digest.as_bytes().as_slice());
        hashes.push(c.hash.as_bytes().as_slice());
        key_ids.push(c.key_id.as_str());
        signatures.push(c.signature.as_bytes().as_slice());
        formats.push(c.format_number());
        salts.push(c.salt_bytes());
        vcs.push(c.vc.as_deref());
        ordinals.push(c.ordinal());
    }
    let inserted: std::collections::HashSet<Uuid> = tx
        .query(
            "INSERT INTO credentials (id, issuer_id, serial, recipient_id, issued_at, \
               credential_type, title, metadata, file_digest, credential_hash, \
               signing_key_id, signature, status, request_batch_id, proof_format, salt, vc, \
               status_ordinal) \
             SELECT u.id, $1, u.serial, u.recipient, u.issued, u.ctype, u.title, u.meta, \
               u.digest, u.hash, u.key_id, u.sig, 'queued', $2, u.format, u.salt, u.vc, u.ordinal \
             FROM unnest($3::uuid[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], \
               $8::text[], $9::jsonb[], $10::bytea[], $11::bytea[], $12::text[], $13::bytea[], \
               $14::int2[], $15::bytea[], $16::text[], $17::int8[]) \
               AS u(id, serial, recipient, issued, ctype, title, meta, digest, hash, key_id, sig, \
                 format, salt, vc, ordinal) \
             ON CONFLICT (issuer_id, serial) DO NOTHING RETURNING id",
            &[
                &issuer,
                &request_id,
                &ids,
                &serials,
                &recipients,
                &issued,
                &types,
                &titles,
                &metadata,
                &digests,
                &hashes,
                &key_ids,
                &signatures,
                &formats,
                &salts,
                &vcs,
                &ordinals,
            ],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let created: Vec<Uuid> = ids.into_iter().filter(|id| inserted.contains(id)).collect();
    // Credentials inserted, their outbox rows not yet: `return(kill)` SIGKILLs the API here.
    fail::fail_point!(
        "store::bulk::fallback::after_credential_insert",
        |arg: Option<String>| {
            crashpoint::hit(arg.as_deref());
            Err(StoreError::Injected("after bulk credential insert".into()))
        }
    );
    tx.execute(
        "INSERT INTO outbox (kind, credential_id, issuer_id) \
         SELECT 'anchor_credential', id, $1 FROM unnest($2::uuid[]) AS u(id)",
        &[&issuer, &created],
    )
    .await?;
    Ok(inserted)
}
