//! Status lists on the API side (issue #20): handing out credentials' ordinals, and the
//! publisher that signs a new version of a list when its bits changed.
//!
//! Ordinals come from the store in blocks (`reserve_status_ordinals`, a short transaction of
//! its own) and are handed out from memory, so single issuance does not queue on one
//! counter row; a block left unused at shutdown is a run of bits that stay 0. A bulk
//! request reserves one per well-formed item.
//!
//! The publisher runs in every API replica: it lists the lists whose first unpublished
//! change is older than the debounce, reads each one's state, lets
//! `domain::status_list::next_publication` decide, signs the list credential with the
//! issuer's active key (the same key cache as issuance) and records it only if the state it
//! read is newer than the last one recorded (`store::record_status_version`), so versions
//! never go back in bits whichever replica is slower; a revocation that committed meanwhile
//! keeps the list dirty for the next pass. The relay anchors every new version, in order;
//! the list is served once its anchor is finalized.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use domain::status_list::{Bitstring, Publication, StatusOrdinal};
use domain::IssuerId;
use serde::Deserialize;
use store::status_lists::{Recorded, SignedList};
use store::{Store, StoreError};

use crate::signer::Signer;

/// `[status_lists]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct StatusListSettings {
    /// Milliseconds a list waits after its first unpublished change before a new version is
    /// signed: a burst of revocations becomes one version (and one anchor).
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
    /// Milliseconds between the publisher's looks for changed lists.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Ordinals a replica reserves at once for single issuance.
    #[serde(default = "default_block")]
    pub ordinal_block: u32,
}

impl Default for StatusListSettings {
    fn default() -> Self {
        StatusListSettings {
            debounce_ms: default_debounce_ms(),
            interval_ms: default_interval_ms(),
            ordinal_block: default_block(),
        }
    }
}

fn default_debounce_ms() -> u64 {
    2_000
}
fn default_interval_ms() -> u64 {
    1_000
}
fn default_block() -> u32 {
    64
}

/// Ordinals reserved by this replica and not handed out yet, per issuer.
#[derive(Debug)]
pub struct OrdinalAllocator {
    block: u32,
    free: Mutex<HashMap<IssuerId, (u64, u64)>>,
}

impl OrdinalAllocator {
    pub fn new(block: u32) -> Self {
        OrdinalAllocator {
            block: block.max(1),
            free: Mutex::new(HashMap::new()),
        }
    }

    /// One ordinal for a single issuance.
    pub async fn next(
        &self,
        store: &Store,
        issuer: &IssuerId,
    ) -> Result<StatusOrdinal, StoreError> {
        if let Some(ordinal) = self.take(issuer) {
            return Ok(ordinal);
        }
        let first = store.reserve_status_ordinals(issuer, self.block).await?;
        let start = first.get();
        if let Ok(mut free) = self.free.lock() {
            free.insert(issuer.clone(), (start + 1, start + u64::from(self.block)));
        }
        Ok(first)
    }

    /// Drops the issuer's block: one of its ordinals was found in use (the database lost
    /// the reservation in a failover or a restore), so the rest of it may be too.
    pub fn forget(&self, issuer: &IssuerId) {
        if let Ok(mut free) = self.free.lock() {
            free.remove(issuer);
        }
    }

    fn take(&self, issuer: &IssuerId) -> Option<StatusOrdinal> {
        let mut free = self.free.lock().ok()?;
        let (next, end) = free.get_mut(issuer)?;
        if *next >= *end {
            return None;
        }
        let ordinal = StatusOrdinal::new(*next)?;
        *next += 1;
        Some(ordinal)
    }
}

/// The publisher's loop: runs until the process ends.
pub async fn run_publisher(
    store: Store,
    signer: std::sync::Arc<Signer>,
    base: domain::vc::PublicBase,
    settings: StatusListSettings,
) {
    let debounce = Duration::from_millis(settings.debounce_ms);
    let mut tick = tokio::time::interval(Duration::from_millis(settings.interval_ms.max(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = publish_due(&store, &signer, &base, debounce).await {
            tracing::warn!(error = %e, "status list publication failed; retrying next tick");
        }
    }
}

/// One pass: every list due for a version. Returns how many versions (or re-signed
/// recovered versions) were recorded.
pub async fn publish_due(
    store: &Store,
    signer: &Signer,
    base: &domain::vc::PublicBase,
    debounce: Duration,
) -> Result<usize, StoreError> {
    let mut recorded = 0;
    for list in store.dirty_status_lists(debounce, 32).await? {
        match publish_list(store, signer, base, &list.issuer, list.list).await {
            Ok(true) => recorded += 1,
            Ok(false) => {}
            // One issuer's problem (no active key) must not hold up the others' lists.
            Err(e) => {
                tracing::warn!(issuer = %list.issuer, list = list.list, error = %e, "cannot publish status list; retried after the others");
                store.defer_status_list(&list.issuer, list.list).await?;
            }
        }
    }
    Ok(recorded)
}

#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no usable signing key")]
    Key,
    #[error("cannot sign the list credential: {0}")]
    Sign(String),
}

async fn publish_list(
    store: &Store,
    signer: &Signer,
    base: &domain::vc::PublicBase,
    issuer: &IssuerId,
    list: u32,
) -> Result<bool, PublishError> {
    let state = store.status_list_state(issuer, list).await?;
    let bits = Bitstring::with_set(state.revoked.iter().copied());
    let hash = bits.anchored_hash(issuer, list);
    let (version, recovered) = match domain::status_list::next_publication(&hash, &state.versions) {
        Publication::UpToDate => {
            store
                .record_status_version(issuer, list, state.changes, None, false)
                .await?;
            return Ok(false);
        }
        Publication::New { version } => (version, false),
        Publication::SignRecovered { version } => (version, true),
    };
    let key = signer
        .key_for(store, issuer, 1)
        .await
        .map_err(|_| PublishError::Key)?;
    let valid_from = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let unsigned =
        domain::vc::status_list_credential(base, issuer, list, &valid_from, &bits.encode());
    let options = vc::ProofOptions {
        verification_method: base.did(issuer).signing_method(key.key.key_id()),
        created: valid_from,
    };
    // One RDFC canonicalization of a ~20 KiB document: off the async workers.
    let credential = tokio::task::spawn_blocking(move || {
        vc::attach_proof(&unsigned, &options, |data| {
            key.key.sign_data_integrity(data)
        })
        .map(|v| v.to_string())
    })
    .await
    .map_err(|e| PublishError::Sign(e.to_string()))?
    .map_err(|e| PublishError::Sign(e.to_string()))?;
    let mut sha = [0u8; 32];
    sha.copy_from_slice(
        ring::digest::digest(&ring::digest::SHA256, credential.as_bytes()).as_ref(),
    );
    let signed = SignedList {
        version,
        hash,
        revoked_count: bits.count_set(),
        credential: &credential,
        credential_sha256: sha,
    };
    let outcome = store
        .record_status_version(issuer, list, state.changes, Some(&signed), recovered)
        .await?;
    if outcome != Recorded::Changed {
        tracing::info!(%issuer, list, version, recovered, revoked = signed.revoked_count, "status list version recorded");
    }
    Ok(outcome != Recorded::Changed)
}
