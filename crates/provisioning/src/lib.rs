//! Issuer provisioning: create an issuer with its API key, its first signing key (sealed
//! under the master key) and its anchoring key; rotate its signing or anchoring key; mint a
//! master key.
//!
//! A library of its own so the `issuer-api admin` commands, the end-to-end test stack and the
//! bench provision issuers the same way without linking the API's HTTP crate. The rules it
//! applies (key formats, sealing, the anchoring-key check) are `domain`'s; the writes are
//! `store`'s.

use chrono::{DateTime, Utc};
use domain::anchor_keys::parse_anchor_pubkey;
use domain::api_key::ApiKey;
use domain::sealed::{seal_aad, seal_seed, MasterKey};
use domain::signing::SigningKey;
use domain::{IssuerId, KeyId};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use store::issuers::{CreateIssuerOutcome, NewIssuer, NewSigningKey};
use store::Store;

/// What `admin create-issuer` prints once. The API key is never shown again.
#[derive(Debug, Serialize)]
pub struct CreatedIssuer {
    pub issuer_id: String,
    pub api_key: String,
    pub signing_key_id: String,
    pub signing_public_key: String,
}

/// Creates the issuer, refusing a malformed anchoring key before anything is written.
/// `chain_now` is the chain's clock (`chain::ChainClient::clock`) when the caller can read
/// it: the anchoring key's window starts at the earlier of it and the database's clock
/// (`domain::anchor_keys::window_bound`).
pub async fn create_issuer(
    store: &Store,
    master: &MasterKey,
    id: &IssuerId,
    name: &str,
    anchor_pubkey: &str,
    chain_now: Option<DateTime<Utc>>,
) -> anyhow::Result<CreatedIssuer> {
    // Refused before anything is written: a malformed key would make every anchor of the
    // issuer untrustworthy and once stopped the reconciler's scan of every other issuer.
    let anchor_pubkey =
        parse_anchor_pubkey(anchor_pubkey).map_err(|e| anyhow::anyhow!("--anchor-pubkey: {e}"))?;
    let anchor_pubkey = anchor_pubkey.as_str();
    let rng = SystemRandom::new();
    let (api_key, api_key_id, api_key_hash) =
        ApiKey::generate(&rng).map_err(|e| anyhow::anyhow!("api key: {e}"))?;
    let key_id = new_key_id(id, &rng)?;
    let (signing_key, seed) =
        SigningKey::generate(key_id.clone(), &rng).map_err(|e| anyhow::anyhow!("{e}"))?;
    let sealed = seal_seed(master, &seal_aad(id, &key_id), &seed, &rng)
        .map_err(|e| anyhow::anyhow!("sealing the signing key: {e}"))?;
    let public = signing_key.public_key();
    let outcome = store
        .create_issuer(&NewIssuer {
            id,
            name,
            anchor_pubkey,
            api_key_id: &api_key_id,
            api_key_hash: &api_key_hash,
            signing_key_id: &key_id,
            signing_public_key: &public,
            sealed_seed: &sealed,
            chain_now,
        })
        .await?;
    if outcome == CreateIssuerOutcome::AlreadyExists {
        anyhow::bail!("issuer {id} already exists");
    }
    Ok(CreatedIssuer {
        issuer_id: id.as_str().to_string(),
        api_key: api_key.expose().to_string(),
        signing_key_id: key_id.as_str().to_string(),
        signing_public_key: public.to_base58(),
    })
}

/// What `admin rotate-anchor-key` prints.
#[derive(Debug, Serialize)]
pub struct RotatedAnchorKey {
    pub issuer_id: String,
    /// The key that was active until now (absent if the issuer had none).
    pub retired_pubkey: Option<String>,
    /// RFC 3339: from when the old key vouches for nothing (`rotated_at` + the grace).
    pub retired_at: Option<String>,
    pub new_pubkey: String,
    /// RFC 3339: the new key's valid_from.
    pub rotated_at: String,
}

/// Validates `new_pubkey` and rotates (see `Store::rotate_anchor_key`); `chain_now` as for
/// [`create_issuer`].
pub async fn rotate_anchor_key(
    store: &Store,
    issuer: &IssuerId,
    new_pubkey: &str,
    grace: std::time::Duration,
    chain_now: Option<DateTime<Utc>>,
) -> anyhow::Result<RotatedAnchorKey> {
    let new_pubkey =
        parse_anchor_pubkey(new_pubkey).map_err(|e| anyhow::anyhow!("--new-pubkey: {e}"))?;
    match store
        .rotate_anchor_key(issuer, &new_pubkey, grace, chain_now)
        .await?
    {
        store::issuers::RotatedAnchorKey::Rotated { retired, at } => Ok(RotatedAnchorKey {
            issuer_id: issuer.as_str().to_string(),
            retired_pubkey: retired.as_ref().map(|(pubkey, _)| pubkey.clone()),
            retired_at: retired.map(|(_, t)| t.to_rfc3339()),
            new_pubkey,
            rotated_at: at.to_rfc3339(),
        }),
        store::issuers::RotatedAnchorKey::AlreadyActive => {
            anyhow::bail!("{new_pubkey} is already the active anchoring key of {issuer}")
        }
        store::issuers::RotatedAnchorKey::PreviouslyRetired => anyhow::bail!(
            "{new_pubkey} was an anchoring key of {issuer} and is retired: a retired key never returns"
        ),
        store::issuers::RotatedAnchorKey::NoSuchIssuer => anyhow::bail!("no issuer {issuer}"),
    }
}

/// What `admin rotate-signing-key` prints.
#[derive(Debug, Serialize)]
pub struct RotatedSigningKey {
    pub issuer_id: String,
    /// The key that was active until now (absent if the issuer had none).
    pub retired_key_id: Option<String>,
    pub new_key_id: String,
    pub new_public_key: String,
    /// RFC 3339: the old key's retired_at = the new key's valid_from.
    pub rotated_at: String,
}

/// Retires the issuer's active signing key and creates a new sealed one, in one transaction.
/// Credentials signed before stay valid; issuance picks the new key up at once (a cached old
/// key is refused by the store and replaced).
pub async fn rotate_signing_key(
    store: &Store,
    master: &MasterKey,
    issuer: &IssuerId,
) -> anyhow::Result<RotatedSigningKey> {
    let rng = SystemRandom::new();
    let key_id = new_key_id(issuer, &rng)?;
    let (signing_key, seed) =
        SigningKey::generate(key_id.clone(), &rng).map_err(|e| anyhow::anyhow!("{e}"))?;
    let sealed = seal_seed(master, &seal_aad(issuer, &key_id), &seed, &rng)
        .map_err(|e| anyhow::anyhow!("sealing the signing key: {e}"))?;
    let public = signing_key.public_key();
    let rotated = store
        .rotate_signing_key(
            issuer,
            &NewSigningKey {
                key_id: &key_id,
                public_key: &public,
                sealed_seed: &sealed,
            },
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("no issuer {issuer}"))?;
    Ok(RotatedSigningKey {
        issuer_id: issuer.as_str().to_string(),
        retired_key_id: rotated.retired.map(|k| k.as_str().to_string()),
        new_key_id: key_id.as_str().to_string(),
        new_public_key: public.to_base58(),
        rotated_at: rotated.at.to_rfc3339(),
    })
}

/// What `admin add-api-key` prints once. The key is never shown again.
#[derive(Debug, Serialize)]
pub struct AddedApiKey {
    pub issuer_id: String,
    pub api_key: String,
    pub api_key_id: String,
}

/// A new API key for an existing issuer (its other keys keep working: a portal rolls over to
/// the new key, then the old one is revoked).
pub async fn add_api_key(store: &Store, issuer: &IssuerId) -> anyhow::Result<AddedApiKey> {
    let (api_key, id, hash) =
        ApiKey::generate(&SystemRandom::new()).map_err(|e| anyhow::anyhow!("api key: {e}"))?;
    if !store.add_api_key(issuer, &id, &hash).await? {
        anyhow::bail!("no issuer {issuer}");
    }
    Ok(AddedApiKey {
        issuer_id: issuer.as_str().to_string(),
        api_key: api_key.expose().to_string(),
        api_key_id: id.as_str().to_string(),
    })
}

/// What `admin revoke-api-key` prints.
#[derive(Debug, Serialize)]
pub struct RevokedApiKey {
    pub api_key_id: String,
    pub issuer_id: String,
    /// RFC 3339.
    pub revoked_at: String,
    /// `false` when the key had been revoked before (the earlier instant is kept).
    pub newly_revoked: bool,
}

/// Revokes a key by its id (`cak_<id>_<secret>`: the id, or the whole key, is accepted; the
/// secret is never needed to revoke).
pub async fn revoke_api_key(store: &Store, key: &str) -> anyhow::Result<RevokedApiKey> {
    let id = match ApiKey::parse(key.trim()) {
        Ok((id, _secret)) => id,
        Err(_) => domain::api_key::ApiKeyId::parse(key.trim())
            .map_err(|e| anyhow::anyhow!("--key-id: {e}"))?,
    };
    let (issuer, at, newly_revoked) = match store.revoke_api_key(&id).await? {
        store::issuers::RevokedApiKey::Revoked { issuer, at } => (issuer, at, true),
        store::issuers::RevokedApiKey::AlreadyRevoked { issuer, at } => (issuer, at, false),
        store::issuers::RevokedApiKey::NoSuchKey => anyhow::bail!("no API key {id}"),
    };
    Ok(RevokedApiKey {
        api_key_id: id.as_str().to_string(),
        issuer_id: issuer.as_str().to_string(),
        revoked_at: at.to_rfc3339(),
        newly_revoked,
    })
}

/// One line of `admin list-api-keys`.
#[derive(Debug, Serialize)]
pub struct ListedApiKey {
    pub api_key_id: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

pub async fn list_api_keys(store: &Store, issuer: &IssuerId) -> anyhow::Result<Vec<ListedApiKey>> {
    if store.issuer(issuer).await?.is_none() {
        anyhow::bail!("no issuer {issuer}");
    }
    Ok(store
        .api_keys_of(issuer)
        .await?
        .into_iter()
        .map(|k| ListedApiKey {
            api_key_id: k.key_id,
            created_at: k.created_at.to_rfc3339(),
            revoked_at: k.revoked_at.map(|t| t.to_rfc3339()),
        })
        .collect())
}

/// What `admin rotate-master-key` prints.
#[derive(Debug, Serialize)]
pub struct RotatedMasterKey {
    /// Seeds that were sealed under a previous key and now are under the current one.
    pub resealed: usize,
    /// Seeds already under the current key (a rotation run again does nothing).
    pub already_current: usize,
}

/// Re-seals every signing seed under `keys[0]` (the current master key), opening each with
/// any of `keys[1..]`, in one transaction (`domain::sealed::reseal`): if any seed opens under
/// none of them, nothing is changed and the error names that key.
pub async fn rotate_master_key(
    store: &Store,
    keys: &[MasterKey],
) -> anyhow::Result<RotatedMasterKey> {
    let (current, previous) = keys
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("no master key"))?;
    let rng = SystemRandom::new();
    let outcome = store
        .reseal_signing_seeds(|issuer, key_id, sealed| {
            domain::sealed::reseal(current, previous, &seal_aad(issuer, key_id), sealed, &rng)
                .map_err(|e| (issuer.clone(), key_id.clone(), e))
        })
        .await?;
    match outcome {
        Ok(count) => Ok(RotatedMasterKey {
            resealed: count.resealed,
            already_current: count.unchanged,
        }),
        Err((issuer, key_id, e)) => anyhow::bail!(
            "signing key {key_id} of {issuer} opens under none of the given master keys ({e}); \
             nothing was changed: add the key it is sealed under to signing.previous_master_keys"
        ),
    }
}

/// `<issuer>-<8 hex>`: unique per issuer with overwhelming probability, and readable.
fn new_key_id(issuer: &IssuerId, rng: &SystemRandom) -> anyhow::Result<KeyId> {
    let mut suffix = [0u8; 4];
    rng.fill(&mut suffix)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(KeyId::parse(&format!(
        "{}-{}",
        issuer.as_str(),
        hex::encode(suffix)
    ))?)
}

/// A fresh random master key, base64 (for `APP__SIGNING__MASTER_KEY`).
pub fn new_master_key() -> anyhow::Result<String> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}
