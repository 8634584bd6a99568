//! Issuers, their API keys (hashed) and their signing keys (public part + sealed seed).

use chrono::{DateTime, Utc};
use domain::api_key::{ApiKeyHash, ApiKeyId};
use domain::key_validity::KeyWindow;
use domain::signing::PublicKey;
use domain::{IssuerId, KeyId};

use crate::{Store, StoreError};

/// What the admin bootstrap writes for a new issuer, in one transaction.
pub struct NewIssuer<'a> {
    pub id: &'a IssuerId,
    pub name: &'a str,
    /// Base58 anchoring key, validated by the caller (`domain::anchor_keys::parse_anchor_pubkey`).
    pub anchor_pubkey: &'a str,
    pub api_key_id: &'a ApiKeyId,
    pub api_key_hash: &'a ApiKeyHash,
    pub signing_key_id: &'a KeyId,
    pub signing_public_key: &'a PublicKey,
    pub sealed_seed: &'a [u8],
    /// The chain's clock when it could be read: the anchoring key's window starts at the
    /// earlier of it and the database's (`domain::anchor_keys::window_bound`).
    pub chain_now: Option<DateTime<Utc>>,
}

/// The signing key an issuer currently issues with.
pub struct ActiveSigningKey {
    pub key_id: KeyId,
    pub public_key: PublicKey,
    pub sealed_seed: Option<Vec<u8>>,
    /// The issuer's display name, which its Verifiable Credentials carry.
    pub issuer_name: String,
}

pub struct IssuerRecord {
    pub id: IssuerId,
    pub name: String,
    /// The active anchoring key (`issuer_anchor_keys` row not retired), if any.
    pub anchor_pubkey: Option<String>,
}

/// What an anchoring-key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotatedAnchorKey {
    Rotated {
        /// The key that was active, with its retirement (`None` if the issuer had none).
        retired: Option<(String, DateTime<Utc>)>,
        /// The new key's `valid_from`.
        at: DateTime<Utc>,
    },
    /// The new key is the active key already: nothing changed.
    AlreadyActive,
    /// The new key was this issuer's before and was retired: a retired key never returns
    /// (whoever may hold it since must not regain the issuer's voice).
    PreviouslyRetired,
    NoSuchIssuer,
}

/// One signing key as the issuer profile publishes it (no seed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub key_id: KeyId,
    pub public_key: PublicKey,
    pub window: KeyWindow,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedKey {
    /// The key that was active and is now retired (`None` if the issuer had no active key).
    pub retired: Option<KeyId>,
    /// The retirement time of the old key = `valid_from` of the new one.
    pub at: DateTime<Utc>,
}

/// A new signing key to install by rotation.
pub struct NewSigningKey<'a> {
    pub key_id: &'a KeyId,
    pub public_key: &'a PublicKey,
    pub sealed_seed: &'a [u8],
}

#[derive(Debug, PartialEq, Eq)]
pub enum CreateIssuerOutcome {
    Created,
    AlreadyExists,
}

impl Store {
    /// Creates an issuer with its first API key and signing key, atomically.
    pub async fn create_issuer(
        &self,
        new: &NewIssuer<'_>,
    ) -> Result<CreateIssuerOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let inserted = tx
            .execute(
                // anchor_pubkey: the previous release's column, mirrored for a rolling upgrade.
                "INSERT INTO issuers (id, name, anchor_pubkey) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
                &[&new.id.as_str(), &new.name, &new.anchor_pubkey],
            )
            .await?;
        if inserted == 0 {
            return Ok(CreateIssuerOutcome::AlreadyExists);
        }
        let database_now: DateTime<Utc> = tx
            .query_one("SELECT clock_timestamp()", &[])
            .await?
            .try_get(0)?;
        let valid_from = domain::anchor_keys::window_bound(database_now, new.chain_now);
        tx.execute(
            "INSERT INTO issuer_anchor_keys (issuer_id, pubkey, valid_from) VALUES ($1, $2, $3)",
            &[&new.id.as_str(), &new.anchor_pubkey, &valid_from],
        )
        .await?;
        tx.execute(
            "INSERT INTO issuer_signing_keys (issuer_id, key_id, public_key, sealed_seed) \
             VALUES ($1, $2, $3, $4)",
            &[
                &new.id.as_str(),
                &new.signing_key_id.as_str(),
                &new.signing_public_key.as_bytes().as_slice(),
                &new.sealed_seed,
            ],
        )
        .await?;
        tx.execute(
            "INSERT INTO api_keys (id, issuer_id, secret_hash) VALUES ($1, $2, $3)",
            &[
                &new.api_key_id.as_str(),
                &new.id.as_str(),
                &new.api_key_hash.as_bytes().as_slice(),
            ],
        )
        .await?;
        crate::error::commit(tx).await?;
        Ok(CreateIssuerOutcome::Created)
    }

    /// Looks an unrevoked API key up by its public id. The caller compares the secret's hash
    /// in constant time; the id alone authorises nothing.
    pub async fn find_api_key(
        &self,
        key_id: &ApiKeyId,
    ) -> Result<Option<(IssuerId, ApiKeyHash)>, StoreError> {
        let client = self.client().await?;
        // Every authenticated request runs this: prepared once per connection.
        let stmt = client
            .prepare_cached(
                "SELECT issuer_id, secret_hash FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
            )
            .await?;
        let row = client.query_opt(&stmt, &[&key_id.as_str()]).await?;
        let Some(row) = row else { return Ok(None) };
        let issuer: String = row.try_get(0)?;
        let hash: Vec<u8> = row.try_get(1)?;
        let issuer = IssuerId::parse(&issuer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let hash = ApiKeyHash::from_slice(&hash)
            .map_err(|_| StoreError::Corrupt("api key hash length".into()))?;
        Ok(Some((issuer, hash)))
    }

    pub async fn active_signing_key(
        &self,
        issuer: &IssuerId,
    ) -> Result<Option<ActiveSigningKey>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT k.key_id, k.public_key, k.sealed_seed, i.name \
                 FROM issuer_signing_keys k JOIN issuers i ON i.id = k.issuer_id \
                 WHERE k.issuer_id = $1 AND k.retired_at IS NULL",
                &[&issuer.as_str()],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let key_id: String = row.try_get(0)?;
        let public: Vec<u8> = row.try_get(1)?;
        let sealed_seed: Option<Vec<u8>> = row.try_get(2)?;
        Ok(Some(ActiveSigningKey {
            key_id: parse_key_id(&key_id)?,
            public_key: parse_public_key(&public)?,
            sealed_seed,
            issuer_name: row.try_get(3)?,
        }))
    }

    pub async fn issuer(&self, id: &IssuerId) -> Result<Option<IssuerRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT i.id, i.name, k.pubkey FROM issuers i \
                 LEFT JOIN issuer_anchor_keys k ON k.issuer_id = i.id AND k.retired_at IS NULL \
                 WHERE i.id = $1",
                &[&id.as_str()],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let id: String = row.try_get(0)?;
        Ok(Some(IssuerRecord {
            id: IssuerId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            name: row.try_get(1)?,
            anchor_pubkey: row.try_get(2)?,
        }))
    }
}

impl Store {
    /// Every anchoring key of `issuer` with its window, oldest first (the issuer profile and
    /// the verifier's facts).
    pub async fn anchor_keys_of(
        &self,
        issuer: &IssuerId,
    ) -> Result<Vec<domain::anchor_keys::AnchorKeyWindow>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT pubkey, valid_from, retired_at FROM issuer_anchor_keys \
                 WHERE issuer_id = $1 ORDER BY valid_from, pubkey",
                &[&issuer.as_str()],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(domain::anchor_keys::AnchorKeyWindow {
                    pubkey: row.try_get(0)?,
                    valid_from: row.try_get(1)?,
                    retired_at: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// The issuer's active anchoring key, if it has one (what the relay must sign with).
    pub async fn active_anchor_key(&self, issuer: &IssuerId) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT pubkey FROM issuer_anchor_keys WHERE issuer_id = $1 AND retired_at IS NULL",
            )
            .await?;
        Ok(client
            .query_opt(&stmt, &[&issuer.as_str()])
            .await?
            .map(|row| row.try_get(0))
            .transpose()?)
    }

    /// Activates `pubkey` (validated by the caller) now and retires the issuer's active
    /// anchoring key `grace` later, in ONE transaction. The grace covers transactions the
    /// relay signed with the old key just before and that land up to a blockhash lifetime
    /// later (and clock skew between PostgreSQL and the validators); zero when the old key
    /// is compromised. "Now" is the earlier of the database's clock and `chain_now`, never
    /// before the active key's start (`domain::anchor_keys::rotation_bound`): the windows
    /// are read against block times.
    pub async fn rotate_anchor_key(
        &self,
        issuer: &IssuerId,
        pubkey: &str,
        grace: std::time::Duration,
        chain_now: Option<DateTime<Utc>>,
    ) -> Result<RotatedAnchorKey, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let exists = tx
            .query_opt(
                "SELECT 1 FROM issuers WHERE id = $1 FOR UPDATE",
                &[&issuer.as_str()],
            )
            .await?;
        if exists.is_none() {
            return Ok(RotatedAnchorKey::NoSuchIssuer);
        }
        let known = tx
            .query_opt(
                "SELECT retired_at IS NULL FROM issuer_anchor_keys \
                 WHERE issuer_id = $1 AND pubkey = $2",
                &[&issuer.as_str(), &pubkey],
            )
            .await?;
        if let Some(row) = known {
            let active: bool = row.try_get(0)?;
            return Ok(if active {
                RotatedAnchorKey::AlreadyActive
            } else {
                RotatedAnchorKey::PreviouslyRetired
            });
        }
        let database_now: DateTime<Utc> = tx
            .query_one("SELECT clock_timestamp()", &[])
            .await?
            .try_get(0)?;
        let active_since: Option<DateTime<Utc>> = tx
            .query_opt(
                "SELECT valid_from FROM issuer_anchor_keys \
                 WHERE issuer_id = $1 AND retired_at IS NULL",
                &[&issuer.as_str()],
            )
            .await?
            .map(|row| row.try_get(0))
            .transpose()?;
        let at = domain::anchor_keys::rotation_bound(database_now, chain_now, active_since);
        let retired_at = at + chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::zero());
        let retired: Option<String> = tx
            .query_opt(
                "UPDATE issuer_anchor_keys SET retired_at = $2 \
                 WHERE issuer_id = $1 AND retired_at IS NULL RETURNING pubkey",
                &[&issuer.as_str(), &retired_at],
            )
            .await?
            .map(|row| row.try_get(0))
            .transpose()?;
        tx.execute(
            "INSERT INTO issuer_anchor_keys (issuer_id, pubkey, valid_from) VALUES ($1, $2, $3)",
            &[&issuer.as_str(), &pubkey, &at],
        )
        .await?;
        // The previous release's column, mirrored for a rolling upgrade.
        tx.execute(
            "UPDATE issuers SET anchor_pubkey = $2 WHERE id = $1",
            &[&issuer.as_str(), &pubkey],
        )
        .await?;
        crate::error::commit(tx).await?;
        Ok(RotatedAnchorKey::Rotated {
            retired: retired.map(|pubkey| (pubkey, retired_at)),
            at,
        })
    }

    /// Every signing key of `issuer`, oldest first (the issuer profile).
    pub async fn signing_keys(
        &self,
        issuer: &IssuerId,
    ) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT key_id, public_key, valid_from, retired_at FROM issuer_signing_keys \
                 WHERE issuer_id = $1 ORDER BY valid_from, key_id",
                &[&issuer.as_str()],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let key_id: String = row.try_get(0)?;
                let public: Vec<u8> = row.try_get(1)?;
                Ok(SigningKeyRecord {
                    key_id: parse_key_id(&key_id)?,
                    public_key: parse_public_key(&public)?,
                    window: KeyWindow {
                        valid_from: row.try_get(2)?,
                        retired_at: row.try_get(3)?,
                    },
                })
            })
            .collect()
    }

    /// Retires the issuer's active signing key and installs `new` in ONE transaction; the
    /// old key's `retired_at` equals the new key's `valid_from`. `None` if there is no such
    /// issuer.
    pub async fn rotate_signing_key(
        &self,
        issuer: &IssuerId,
        new: &NewSigningKey<'_>,
    ) -> Result<Option<RotatedKey>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let exists = tx
            .query_opt(
                "SELECT 1 FROM issuers WHERE id = $1 FOR UPDATE",
                &[&issuer.as_str()],
            )
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        // Lock the active key first (waiting for in-flight issuances holding it FOR SHARE),
        // THEN read the clock: every credential recorded under the old key committed before
        // this instant (see `issue_credential`).
        let old = tx
            .query_opt(
                "SELECT key_id FROM issuer_signing_keys \
                 WHERE issuer_id = $1 AND retired_at IS NULL FOR UPDATE",
                &[&issuer.as_str()],
            )
            .await?;
        let at: DateTime<Utc> = tx
            .query_one("SELECT clock_timestamp()", &[])
            .await?
            .try_get(0)?;
        let retired = match old {
            Some(row) => {
                let key_id: String = row.try_get(0)?;
                tx.execute(
                    "UPDATE issuer_signing_keys SET retired_at = $3 \
                     WHERE issuer_id = $1 AND key_id = $2",
                    &[&issuer.as_str(), &key_id, &at],
                )
                .await?;
                Some(parse_key_id(&key_id)?)
            }
            None => None,
        };
        tx.execute(
            "INSERT INTO issuer_signing_keys (issuer_id, key_id, public_key, sealed_seed, valid_from) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &issuer.as_str(),
                &new.key_id.as_str(),
                &new.public_key.as_bytes().as_slice(),
                &new.sealed_seed,
                &at,
            ],
        )
        .await?;
        crate::error::commit(tx).await?;
        Ok(Some(RotatedKey { retired, at }))
    }

    /// How many issuers exist, and those whose active anchoring key is `pubkey` (the relay's
    /// start-up check, `domain::anchor_keys::relay_key_check`).
    pub async fn anchor_key_holders(
        &self,
        pubkey: &str,
    ) -> Result<(usize, Vec<IssuerId>), StoreError> {
        let client = self.client().await?;
        let total: i64 = client
            .query_one("SELECT count(*) FROM issuers", &[])
            .await?
            .try_get(0)?;
        let rows = client
            .query(
                "SELECT issuer_id FROM issuer_anchor_keys \
                 WHERE pubkey = $1 AND retired_at IS NULL ORDER BY issuer_id",
                &[&pubkey],
            )
            .await?;
        let holders = rows
            .iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                IssuerId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((usize::try_from(total).unwrap_or(usize::MAX), holders))
    }

    /// Adds an API key to an existing issuer; `false` if there is no such issuer (nothing
    /// written). The plaintext never reaches the database, only its hash.
    pub async fn add_api_key(
        &self,
        issuer: &IssuerId,
        key_id: &ApiKeyId,
        hash: &ApiKeyHash,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "INSERT INTO api_keys (id, issuer_id, secret_hash) \
                 SELECT $1, id, $3 FROM issuers WHERE id = $2",
                &[
                    &key_id.as_str(),
                    &issuer.as_str(),
                    &hash.as_bytes().as_slice(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Revokes an API key by its public id. Replicas stop accepting it once their
    /// `http.api_key_cache_secs` cache entry expires.
    pub async fn revoke_api_key(&self, key_id: &ApiKeyId) -> Result<RevokedApiKey, StoreError> {
        let client = self.client().await?;
        // One statement that takes the row lock: the first revocation sets the instant, a
        // later (or concurrent, once the first committed) one keeps it and says so. `now()`
        // is this transaction's start, so "set now" is told by equality.
        let row = client
            .query_opt(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 \
                 RETURNING issuer_id, revoked_at, revoked_at = now()",
                &[&key_id.as_str()],
            )
            .await?;
        let Some(row) = row else {
            return Ok(RevokedApiKey::NoSuchKey);
        };
        let issuer: String = row.try_get(0)?;
        let issuer = IssuerId::parse(&issuer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let at: DateTime<Utc> = row.try_get(1)?;
        let newly: bool = row.try_get(2)?;
        Ok(if newly {
            RevokedApiKey::Revoked { issuer, at }
        } else {
            RevokedApiKey::AlreadyRevoked { issuer, at }
        })
    }

    /// Every API key of an issuer (ids and dates only: secrets are never readable).
    pub async fn api_keys_of(&self, issuer: &IssuerId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, created_at, revoked_at FROM api_keys WHERE issuer_id = $1 \
                 ORDER BY created_at, id",
                &[&issuer.as_str()],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ApiKeyRecord {
                    key_id: row.try_get(0)?,
                    created_at: row.try_get(1)?,
                    revoked_at: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// Replaces every sealed signing seed by what `reseal` makes of it, in ONE transaction
    /// with the rows locked: either every seed is re-sealed or none is (the first `Err` rolls
    /// everything back and is returned). `reseal` answers `Ok(None)` for a seed it leaves as
    /// it is (already sealed under the new key). The rule is the caller's
    /// (`domain::sealed::reseal`); the store only executes it.
    pub async fn reseal_signing_seeds<E>(
        &self,
        mut reseal: impl FnMut(&IssuerId, &KeyId, &[u8]) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<Result<ResealCount, E>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT issuer_id, key_id, sealed_seed FROM issuer_signing_keys \
                 WHERE sealed_seed IS NOT NULL ORDER BY issuer_id, key_id FOR UPDATE",
                &[],
            )
            .await?;
        let mut count = ResealCount::default();
        for row in &rows {
            let issuer: String = row.try_get(0)?;
            let key_id: String = row.try_get(1)?;
            let sealed: Vec<u8> = row.try_get(2)?;
            let issuer =
                IssuerId::parse(&issuer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let key = parse_key_id(&key_id)?;
            match reseal(&issuer, &key, &sealed) {
                Err(e) => return Ok(Err(e)), // dropping `tx` rolls back
                Ok(None) => count.unchanged += 1,
                Ok(Some(new)) => {
                    tx.execute(
                        "UPDATE issuer_signing_keys SET sealed_seed = $3 \
                         WHERE issuer_id = $1 AND key_id = $2",
                        &[&issuer.as_str(), &key_id, &new],
                    )
                    .await?;
                    count.resealed += 1;
                }
            }
        }
        crate::error::commit(tx).await?;
        Ok(Ok(count))
    }

    /// Sets (or clears, with `None`) an issuer's own anchoring mode. Credentials already
    /// sealed into a batch or sent in single mode finish the way they started.
    pub async fn set_anchor_mode(
        &self,
        issuer: &IssuerId,
        mode: Option<domain::AnchoringMode>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE issuers SET anchor_mode = $2 WHERE id = $1",
                &[&issuer.as_str(), &mode.map(|m| m.as_str())],
            )
            .await?;
        Ok(n == 1)
    }
}

/// What `revoke_api_key` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokedApiKey {
    Revoked { issuer: IssuerId, at: DateTime<Utc> },
    AlreadyRevoked { issuer: IssuerId, at: DateTime<Utc> },
    NoSuchKey,
}

/// One row of `api_keys_of`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What `reseal_signing_seeds` changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResealCount {
    pub resealed: usize,
    pub unchanged: usize,
}

pub(crate) fn parse_key_id(s: &str) -> Result<KeyId, StoreError> {
    KeyId::parse(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn parse_public_key(bytes: &[u8]) -> Result<PublicKey, StoreError> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("public key length".into()))?;
    Ok(PublicKey::from_bytes(arr))
}
