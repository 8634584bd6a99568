//! A short-lived cache of API-key lookups. Every authenticated request needs its key's row;
//! reading it from PostgreSQL each time was one of the five statements an issuance cost the
//! database (issue #10's profile: PostgreSQL was the busiest process). Only keys whose secret
//! matched are cached, so guessed ids never take memory, and the secret is still compared in
//! constant time on every request. The price: a key revoked in the database keeps working on
//! a replica for at most the TTL (`http.api_key_cache_secs`, 5 s; 0 turns the cache off).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use domain::api_key::{ApiKeyHash, ApiKeyId};
use domain::IssuerId;

/// More distinct live keys than any registrar has: past this the cache is emptied rather
/// than grown (correct either way; it only costs lookups).
const MAX_ENTRIES: usize = 10_000;

pub struct ApiKeyCache {
    ttl: Duration,
    entries: RwLock<HashMap<ApiKeyId, (Instant, IssuerId, ApiKeyHash)>>,
}

impl ApiKeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The cached row of `id`, if it was stored less than the TTL before `now`.
    pub fn get(&self, id: &ApiKeyId, now: Instant) -> Option<(IssuerId, ApiKeyHash)> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().ok()?;
        let (at, issuer, hash) = entries.get(id)?;
        (now.saturating_duration_since(*at) < self.ttl).then(|| (issuer.clone(), *hash))
    }

    /// Remembers a key whose secret just matched.
    pub fn put(&self, id: &ApiKeyId, issuer: &IssuerId, hash: ApiKeyHash, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(id) {
                entries.clear();
            }
            entries.insert(id.clone(), (now, issuer.clone(), hash));
        }
    }

    pub fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (ApiKeyId, IssuerId, ApiKeyHash) {
        let (key, id, hash) =
            domain::api_key::ApiKey::generate(&ring::rand::SystemRandom::new()).unwrap();
        drop(key);
        (id, IssuerId::parse("uni-a").unwrap(), hash)
    }

    #[test]
    fn entries_live_for_the_ttl_only() {
        let cache = ApiKeyCache::new(Duration::from_secs(5));
        let (id, issuer, hash) = key();
        let t0 = Instant::now();
        assert!(cache.get(&id, t0).is_none());
        cache.put(&id, &issuer, hash, t0);
        assert_eq!(
            cache.get(&id, t0 + Duration::from_secs(4)).map(|e| e.0),
            Some(issuer)
        );
        assert!(cache.get(&id, t0 + Duration::from_secs(5)).is_none());
        // A clock reading from before the entry is not "expired by underflow".
        assert!(cache
            .get(&id, t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0))
            .is_some());
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = ApiKeyCache::new(Duration::ZERO);
        let (id, issuer, hash) = key();
        let now = Instant::now();
        cache.put(&id, &issuer, hash, now);
        assert!(cache.is_empty());
        assert!(cache.get(&id, now).is_none());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = ApiKeyCache::new(Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..MAX_ENTRIES + 5 {
            let (id, issuer, hash) = key();
            cache.put(&id, &issuer, hash, now);
        }
        assert!(cache.len() <= MAX_ENTRIES);
        assert!(!cache.is_empty());
    }
}
