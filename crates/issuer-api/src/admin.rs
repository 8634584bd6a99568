//! Operator commands (`issuer-api admin ...`): read the service's settings, connect, and call
//! `provisioning`, which owns what creating and rotating means.

use domain::sealed::MasterKey;
use domain::IssuerId;
use secrecy::ExposeSecret;
use store::Store;

pub use provisioning::{
    new_master_key, AddedApiKey, CreatedIssuer, ListedApiKey, RevokedApiKey, RotatedAnchorKey,
    RotatedMasterKey, RotatedSigningKey,
};

use crate::settings::Settings;

fn master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    MasterKey::from_base64(settings.signing.master_key.expose_secret())
        .map_err(|e| anyhow::anyhow!("signing.master_key: {e}"))
}

pub async fn add_api_key(settings: &Settings, issuer: &str) -> anyhow::Result<AddedApiKey> {
    let issuer = IssuerId::parse(issuer)?;
    let store = migrated_store(settings).await?;
    provisioning::add_api_key(&store, &issuer).await
}

pub async fn revoke_api_key(settings: &Settings, key: &str) -> anyhow::Result<RevokedApiKey> {
    let store = migrated_store(settings).await?;
    provisioning::revoke_api_key(&store, key).await
}

pub async fn list_api_keys(settings: &Settings, issuer: &str) -> anyhow::Result<Vec<ListedApiKey>> {
    let issuer = IssuerId::parse(issuer)?;
    let store = migrated_store(settings).await?;
    provisioning::list_api_keys(&store, &issuer).await
}

/// `admin rotate-master-key`: re-seal every signing seed under `signing.master_key`, opening
/// them with `signing.previous_master_keys`.
pub async fn rotate_master_key(settings: &Settings) -> anyhow::Result<RotatedMasterKey> {
    let keys = settings.signing.master_keys()?;
    let store = migrated_store(settings).await?;
    provisioning::rotate_master_key(&store, &keys).await
}

async fn migrated_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect_lazy(&settings.database)?;
    store.migrate().await?;
    Ok(store)
}

pub async fn create_issuer(
    settings: &Settings,
    id: &str,
    name: &str,
    anchor_pubkey: &str,
) -> anyhow::Result<CreatedIssuer> {
    let id = IssuerId::parse(id)?;
    let master = master_key(settings)?;
    let store = migrated_store(settings).await?;
    let chain_now = chain_clock(settings).await;
    provisioning::create_issuer(&store, &master, &id, name, anchor_pubkey, chain_now).await
}

/// `admin set-anchor-mode`: `mode` is `single`, `merkle` or `default` (clears the
/// issuer's own mode so the relay's `relay.mode` applies).
pub async fn set_anchor_mode(settings: &Settings, id: &str, mode: &str) -> anyhow::Result<()> {
    let id = IssuerId::parse(id)?;
    let mode = match mode {
        "default" => None,
        other => Some(
            other
                .parse::<domain::AnchoringMode>()
                .map_err(|e| anyhow::anyhow!(e))?,
        ),
    };
    let store = Store::connect_lazy(&settings.database)?;
    if !store.set_anchor_mode(&id, mode).await? {
        anyhow::bail!("no issuer {id}");
    }
    Ok(())
}

pub async fn rotate_anchor_key(
    settings: &Settings,
    issuer: &str,
    new_pubkey: &str,
    grace: std::time::Duration,
) -> anyhow::Result<RotatedAnchorKey> {
    let issuer = IssuerId::parse(issuer)?;
    let store = migrated_store(settings).await?;
    let chain_now = chain_clock(settings).await;
    provisioning::rotate_anchor_key(&store, &issuer, new_pubkey, grace, chain_now).await
}

pub async fn rotate_signing_key(
    settings: &Settings,
    issuer: &str,
) -> anyhow::Result<RotatedSigningKey> {
    let issuer = IssuerId::parse(issuer)?;
    let master = master_key(settings)?;
    let store = migrated_store(settings).await?;
    provisioning::rotate_signing_key(&store, &master, &issuer).await
}

/// The chain's clock, which key windows are set on when it trails the database's (see
/// `domain::anchor_keys::window_bound`). A node that cannot tell within 10 s leaves the
/// database's clock alone to set the bound, as before this rule, and says so on stderr.
async fn chain_clock(settings: &Settings) -> Option<chrono::DateTime<chrono::Utc>> {
    let client = chain::ChainClient::read_only(settings.chain.chain_config());
    match tokio::time::timeout(std::time::Duration::from_secs(10), client.clock()).await {
        Ok(Ok(Some(t))) => Some(t),
        Ok(Ok(None)) => {
            eprintln!("warning: the chain reports no time for its finalized block; the key window uses the database's clock");
            None
        }
        Ok(Err(e)) => {
            eprintln!("warning: could not read the chain's clock ({e}); the key window uses the database's clock");
            None
        }
        Err(_) => {
            eprintln!("warning: the chain's clock did not answer within 10 s; the key window uses the database's clock");
            None
        }
    }
}
