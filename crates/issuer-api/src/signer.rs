//! The issuer signing keys in use: unsealed from the database with the master key on first
//! use and cached briefly, so issuance does no extra round trip and a rotated key is picked up
//! within the cache lifetime.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use domain::sealed::{open_with_any, seal_aad, MasterKey};
use domain::signing::SigningKey;
use domain::IssuerId;
use store::Store;

use crate::error::ApiError;

const CACHE_TTL: Duration = Duration::from_secs(60);

pub struct Signer {
    /// The current master key first, then any being rotated away from.
    masters: Vec<MasterKey>,
    cache: RwLock<HashMap<IssuerId, (Instant, Arc<IssuingKey>)>>,
}

/// An issuer's active signing key and the name its credentials carry.
pub struct IssuingKey {
    pub key: SigningKey,
    pub issuer_name: String,
}

impl Signer {
    pub fn new(masters: Vec<MasterKey>) -> Self {
        Self {
            masters,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Seals a new webhook secret's bytes under the current master key, bound to its endpoint.
    pub fn seal_webhook_secret(
        &self,
        endpoint: &uuid::Uuid,
        bytes: &[u8; 32],
        rng: &dyn ring::rand::SecureRandom,
    ) -> Result<Vec<u8>, domain::sealed::SealError> {
        let master = self
            .masters
            .first()
            .ok_or(domain::sealed::SealError::SealFailed)?;
        domain::sealed::seal_seed(
            master,
            &domain::sealed::webhook_secret_aad(endpoint),
            bytes,
            rng,
        )
    }

    /// Opens a sealed webhook secret with any configured master key.
    pub fn open_webhook_secret(
        &self,
        endpoint: &uuid::Uuid,
        sealed: &[u8],
    ) -> Result<domain::webhook::WebhookSecret, String> {
        let bytes = open_with_any(
            &self.masters,
            &domain::sealed::webhook_secret_aad(endpoint),
            sealed,
        )
        .map_err(|e| e.to_string())?;
        domain::webhook::WebhookSecret::from_bytes(&bytes).map_err(|e| e.to_string())
    }

    /// Forgets the cached key of `issuer` (it was rotated): the next call reads the store.
    pub fn invalidate(&self, issuer: &IssuerId) {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(issuer);
        }
    }

    /// The active signing key of `issuer`.
    pub async fn key_for(
        &self,
        store: &Store,
        issuer: &IssuerId,
        retry_after_secs: u64,
    ) -> Result<Arc<IssuingKey>, ApiError> {
        if let Ok(cache) = self.cache.read() {
            if let Some((at, key)) = cache.get(issuer) {
                if at.elapsed() < CACHE_TTL {
                    return Ok(key.clone());
                }
            }
        }
        let active = store
            .active_signing_key(issuer)
            .await
            .map_err(|e| ApiError::from_store(e, retry_after_secs))?
            .ok_or(ApiError::SigningUnavailable)?;
        let sealed = active.sealed_seed.ok_or(ApiError::SigningUnavailable)?;
        let seed = open_with_any(&self.masters, &seal_aad(issuer, &active.key_id), &sealed).map_err(
            |e| {
                // Wrong master key or a corrupted row: an operator problem, not the client's.
                tracing::error!(issuer = %issuer, key_id = %active.key_id, error = %e, "cannot unseal signing key");
                ApiError::SigningUnavailable
            },
        )?;
        let key = SigningKey::from_seed(active.key_id.clone(), &seed)
            .map_err(|_| ApiError::SigningUnavailable)?;
        if key.public_key() != active.public_key {
            tracing::error!(issuer = %issuer, key_id = %active.key_id, "unsealed seed does not match the published public key");
            return Err(ApiError::SigningUnavailable);
        }
        let key = Arc::new(IssuingKey {
            key,
            issuer_name: active.issuer_name,
        });
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(issuer.clone(), (Instant::now(), key.clone()));
        }
        Ok(key)
    }
}
