//! Anchoring keys (issue #17): rotation with validity windows, a retired key's later memos,
//! and a malformed stored key that must not stop the scan of every other key.

use std::time::Duration;

use chain::{AnchorKeypair, ChainClient, ChainConfig, Cluster};
use domain::memo::Memo;
use domain::proof::ProofBundle;
use domain::IssuerId;
use reconciler::Since;
use serde_json::Value;
use store::{DatabaseSettings, Store};

use crate::helpers::{world, World, ISSUER};

const HOUR: Since = Since::Window(Duration::from_secs(3_600));

async fn proof(w: &World, id: &str) -> ProofBundle {
    serde_json::from_value(w.proof(id).await).unwrap()
}

async fn verify(w: &World, serial: &str, bundle: &ProofBundle) -> Value {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(format!("%PDF diploma {serial}").into_bytes())
                .file_name("diploma.pdf"),
        )
        .text("proof", serde_json::to_string(bundle).unwrap());
    w.client
        .post(format!("{}/v1/verify", w.api))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A credential anchored before and one after an anchoring-key rotation both verify; the
/// issuer profile publishes both keys with their windows; a relay still holding the old key
/// signs nothing; and a memo the old key pays for after its retirement is trusted by neither
/// the reconciler (finding `retired_key`, the credential stays unanchored) nor the verifier
/// (`tampered`, `anchor_key_retired`).
#[tokio::test]
async fn rotation_keeps_old_anchors_valid_and_distrusts_the_old_key_afterwards() {
    let w = world().await;
    let rpc = w.chain_env.rpc_url().to_string();
    let store = Store::connect_lazy(&DatabaseSettings::new(&w.db.url)).unwrap();
    let issuer = IssuerId::parse(ISSUER).unwrap();
    let old_key = w.anchor_pubkey.clone();

    let before = w.issue("S-ROT-1").await;
    let relay = w.relay("relay-rot-old").await;
    w.anchor_all(&relay, std::slice::from_ref(&before)).await;
    // Block times have one-second granularity: keep the retirement clearly after this anchor.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let new = AnchorKeypair::generate();
    testkit::validator::airdrop(&rpc, &new.pubkey_base58(), 10_000_000_000)
        .await
        .unwrap();
    let new_path = w.dir.path().join("anchor-new.json");
    std::fs::write(&new_path, new.to_json_string()).unwrap();
    // No grace: as when the old key is compromised (the default 120 s lets transactions the
    // relay signed just before land inside the old key's window).
    let rotated = provisioning::rotate_anchor_key(
        &store,
        &issuer,
        &new.pubkey_base58(),
        Duration::ZERO,
        w.chain_clock().await,
    )
    .await
    .unwrap();
    assert_eq!(rotated.retired_pubkey.as_deref(), Some(old_key.as_str()));
    assert_eq!(
        rotated.retired_at.as_deref(),
        Some(rotated.rotated_at.as_str())
    );
    // Rotating to the same key again, back to a retired key, or to garbage is refused.
    for bad in [
        new.pubkey_base58(),
        old_key.clone(),
        "not-a-key".to_string(),
    ] {
        assert!(
            provisioning::rotate_anchor_key(&store, &issuer, &bad, Duration::ZERO, None)
                .await
                .is_err(),
            "{bad}"
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A relay still holding the old key signs nothing for this issuer now.
    let pending = w.issue("S-ROT-2").await;
    let _ = relay.relay().run_pass().await;
    let row = w.sql().await.query_one(
        "SELECT c.status, o.last_error FROM credentials c JOIN outbox o ON o.credential_id = c.id \
         WHERE c.id = $1",
        &[&pending.parse::<uuid::Uuid>().unwrap()],
    ).await.unwrap();
    let (status, error): (String, Option<String>) = (row.get(0), row.get(1));
    assert_eq!(status, "queued");
    assert!(
        error.as_deref().unwrap_or("").contains("anchors with"),
        "{error:?}"
    );
    drop(relay);

    // The relay with the new key anchors it.
    let mut settings = w.relay_settings(w.chain_env.rpc_url(), "relay-rot-new");
    settings.chain.keypair_path = Some(new_path.clone());
    let relay = outbox_relay::Application::build(settings).await.unwrap();
    w.anchor_all(&relay, std::slice::from_ref(&pending)).await;

    // Both verify, each bundle naming the key that paid for it.
    for (id, serial, key) in [
        (&before, "S-ROT-1", &old_key),
        (&pending, "S-ROT-2", &new.pubkey_base58()),
    ] {
        let bundle = proof(&w, id).await;
        assert_eq!(&bundle.anchor.anchor_pubkey, key, "{serial}");
        let v = verify(&w, serial, &bundle).await;
        assert_eq!(v["verdict"], "valid", "{serial}: {v}");
    }
    // The profile publishes both keys: the old one retired at the new one's start.
    let profile: Value = w
        .client
        .get(format!("{}/v1/issuers/{ISSUER}", w.api))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = profile["anchor_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{profile}");
    assert_eq!(keys[0]["pubkey"], old_key.as_str());
    assert_eq!(keys[0]["retired_at"], keys[1]["valid_from"]);
    assert_eq!(keys[1]["pubkey"], new.pubkey_base58());
    assert!(keys[1]["retired_at"].is_null());
    assert_eq!(profile["anchor_pubkey"], new.pubkey_base58());

    // Whoever still holds the old key anchors a third credential with it, after retirement
    // by the chain's clock (block times), which is the clock the key windows are read against.
    let retired_at = chrono::DateTime::parse_from_rfc3339(rotated.retired_at.as_deref().unwrap())
        .unwrap()
        .timestamp();
    testkit::validator::wait_chain_clock_past(&rpc, retired_at)
        .await
        .unwrap();
    let third = w.issue("S-ROT-3").await;
    let credential: Value = w
        .client
        .get(format!("{}/v1/credentials/{third}", w.api))
        .bearer_auth(&w.api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hash =
        domain::CredentialHash::from_hex(credential["credential_hash"].as_str().unwrap()).unwrap();
    let memo = Memo::Credential {
        issuer: issuer.clone(),
        credential: third.parse().unwrap(),
        hash,
    }
    .encode();
    let old = AnchorKeypair::from_json_file(&w.keypair_path).unwrap();
    let thief = ChainClient::new(ChainConfig::new(&rpc, Cluster::Localnet), old);
    let tx = thief.build_memo_transaction(&memo).await.unwrap();
    let signature = thief.send_transaction_bytes(&tx.bytes).await.unwrap();
    w.wait_finalized_on_chain(&signature).await;
    let landed = w
        .chain()
        .fetch_transaction(&signature, chain::Commitment::Finalized)
        .await
        .unwrap()
        .unwrap();
    // The premise holds: by the chain's clock the thief's transaction came after retirement.
    assert!(
        landed.block_time >= Some(retired_at),
        "{landed:?} {retired_at}"
    );

    // The reconciler does not take it as the credential's anchor.
    let r = w.reconciler().await;
    let report = r.run_once(HOUR, false).await.unwrap();
    assert_eq!(report.retired_key, 1, "{report:?}");
    assert_eq!(report.finalized, 0, "{report:?}");
    assert_eq!(w.row(&third).await.unwrap().0, "queued");
    assert_eq!(w.findings("retired_key").await, 1);
    assert_eq!(
        r.metrics()
            .inconsistencies
            .with_label_values(&["retired_key"])
            .get(),
        1
    );
    // The earlier anchors, by both keys, are consistent (the old key's history is scanned).
    assert!(report.consistent >= 2, "{report:?}");

    // Nor does the verifier: a bundle built around that transaction is tampered.
    let mut bundle = proof(&w, &before).await;
    let slot = landed.slot;
    let salt = domain::Salt::from_hex(credential["salt"].as_str().unwrap()).unwrap();
    bundle.credential_id = third.parse().unwrap();
    bundle.salt = Some(salt);
    bundle.fields.serial = domain::Serial::parse("S-ROT-3").unwrap();
    bundle.fields.recipient = domain::RecipientId::parse("student-S-ROT-3").unwrap();
    bundle.fields.file_digest = domain::FileDigest::of(b"%PDF diploma S-ROT-3");
    bundle.credential_hash = hash;
    bundle.issuer_signature.signature =
        domain::IssuerSignature::from_base58(credential["signature"].as_str().unwrap()).unwrap();
    bundle.anchor.signature = signature.clone();
    bundle.anchor.slot = slot;
    bundle.anchor.anchor_pubkey = old_key.clone();
    bundle.anchor.mode = domain::proof::AnchorPath::Single;
    bundle.anchor.memo = memo.clone();
    domain::check_offline(&bundle, Some(b"%PDF diploma S-ROT-3")).unwrap();
    let v = verify(&w, "S-ROT-3", &bundle).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("tampered"), Some("anchor_key_retired")),
        "{v}"
    );

    // The credential anchored by the old key is revoked now: the revocation is paid by the
    // new key. The API says revoked; offline, pinning the keys the profile lists searches
    // both histories and finds it.
    let status = w
        .client
        .post(format!("{}/v1/credentials/{before}/revoke", w.api))
        .bearer_auth(&w.api_key)
        .json(&serde_json::json!({"reason": "withdrawn"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 202);
    w.relay_until(&relay, std::slice::from_ref(&before), "revoked")
        .await;
    let bundle = proof(&w, &before).await;
    assert_eq!(verify(&w, "S-ROT-1", &bundle).await["verdict"], "revoked");
    let mut request = w.offline_request(b"%PDF diploma S-ROT-1".to_vec(), bundle);
    request.rpcs = vec![rpc.clone()];
    request.pinned_issuer_keys = vec![old_key.clone(), new.pubkey_base58()];
    let report = verifier::verify(&request).await.unwrap();
    assert_eq!(report.verdict.as_str(), "revoked", "{report:?}");
    assert_eq!(
        report.revocation_scan.len(),
        2,
        "both keys' histories searched"
    );
}

/// Key windows are read against block times. When the chain's clock trails the database's
/// (a stalled cluster's does; so did this machine's validator after 40 minutes of the crash
/// suite, by more than the 10 minutes of slack a key's start has), `issuer-api admin
/// rotate-anchor-key` sets the old key's end and the new key's start on the chain's clock:
/// the old key stops vouching from the chain's "now", not minutes after it, and the new key's
/// first anchors are inside its window. A clock ahead of the database's moves nothing later.
#[tokio::test]
async fn a_rotation_sets_the_key_windows_on_the_chain_clock_when_it_lags() {
    let w = world().await;
    let master = domain::sealed::MasterKey::generate(&ring::rand::SystemRandom::new()).unwrap();
    const LAG: i64 = 1800;
    // A fake only for what no real node does on demand: block times 30 minutes off. Every
    // other answer is the real validator's.
    let node = |shift: i64| {
        testkit::proxy::rewriting_rpc(w.chain_env.rpc_url().to_string(), move |request, answer| {
            if request["method"] == "getBlockTime" {
                if let Some(t) = answer["result"].as_i64() {
                    answer["result"] = serde_json::json!(t + shift);
                }
            }
        })
    };
    let lagging = node(-LAG).await.unwrap();
    let settings = stack::api_settings(&w.db.url, &master, &lagging);
    let lagging_uni = IssuerId::parse("uni-lagging").unwrap();
    let original = AnchorKeypair::generate().pubkey_base58();
    // The real validator's own clock may trail the wall clock too (by minutes on a loaded
    // machine): the bound must be the lagging node's clock, so it is compared with the real
    // chain's clock read just before and just after, shifted by the lag.
    let real_clock = || async { w.chain_clock().await.unwrap() };
    let lagged_within = |t: chrono::DateTime<chrono::Utc>,
                         from: chrono::DateTime<chrono::Utc>,
                         to: chrono::DateTime<chrono::Utc>| {
        let lag = chrono::Duration::seconds(LAG);
        from - lag - chrono::Duration::seconds(2) <= t
            && t <= to - lag + chrono::Duration::seconds(2)
    };
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };

    // Created through a lagging node: the first key's window starts on the chain's clock.
    let from = real_clock().await;
    issuer_api::admin::create_issuer(&settings, "uni-lagging", "Lagging University", &original)
        .await
        .unwrap();
    let to = real_clock().await;
    let store = Store::connect_lazy(&DatabaseSettings::new(&w.db.url)).unwrap();
    let since = store.anchor_keys_of(&lagging_uni).await.unwrap()[0].valid_from;
    assert!(
        lagged_within(since, from, to),
        "valid_from {since}, chain clock {from}..{to}"
    );

    // Rotated through the same node: the old key ends, the new begins, on the chain's clock.
    let first = AnchorKeypair::generate().pubkey_base58();
    let from = real_clock().await;
    let rotated =
        issuer_api::admin::rotate_anchor_key(&settings, "uni-lagging", &first, Duration::ZERO)
            .await
            .unwrap();
    let to = real_clock().await;
    let at = parse(&rotated.rotated_at);
    assert!(
        lagged_within(at, from, to),
        "{rotated:?}, chain clock {from}..{to}"
    );
    assert_eq!(
        rotated.retired_at.as_deref(),
        Some(rotated.rotated_at.as_str())
    );

    // A node lagging twice as far: the bound stops at the active key's start, so no window
    // ends before it began.
    let further = node(-2 * LAG).await.unwrap();
    let settings = stack::api_settings(&w.db.url, &master, &further);
    let second = AnchorKeypair::generate().pubkey_base58();
    let clamped =
        issuer_api::admin::rotate_anchor_key(&settings, "uni-lagging", &second, Duration::ZERO)
            .await
            .unwrap();
    assert_eq!(clamped.rotated_at, rotated.rotated_at, "{clamped:?}");

    // A node whose clock runs ahead: the database's clock sets the bound.
    let ahead = node(LAG).await.unwrap();
    let settings = stack::api_settings(&w.db.url, &master, &ahead);
    let before = chrono::Utc::now();
    let third = AnchorKeypair::generate().pubkey_base58();
    let rotated =
        issuer_api::admin::rotate_anchor_key(&settings, "uni-lagging", &third, Duration::ZERO)
            .await
            .unwrap();
    let off = (parse(&rotated.rotated_at) - before).num_seconds().abs();
    assert!(off < 60, "{rotated:?}: {off} s from the database's clock");

    // The windows the reconciler and the verifier read: each key ends where the next begins.
    let windows = store.anchor_keys_of(&lagging_uni).await.unwrap();
    let window = |key: &str| windows.iter().find(|k| k.pubkey == key).unwrap().clone();
    assert_eq!(windows.len(), 4, "{windows:?}");
    assert_eq!(
        window(&original).retired_at,
        Some(window(&first).valid_from)
    );
    assert_eq!(window(&first).retired_at, Some(window(&second).valid_from));
    assert_eq!(window(&second).retired_at, Some(window(&third).valid_from));
    assert_eq!(window(&third).retired_at, None);
}

/// `--grace-secs` (default 120): the old key keeps vouching for a while after the rotation,
/// so a transaction the relay signed with it just before still lands inside its window.
#[tokio::test]
async fn a_rotation_with_grace_retires_the_old_key_later() {
    let w = world().await;
    let store = Store::connect_lazy(&DatabaseSettings::new(&w.db.url)).unwrap();
    let issuer = IssuerId::parse(ISSUER).unwrap();
    let new = AnchorKeypair::generate().pubkey_base58();
    let rotated =
        provisioning::rotate_anchor_key(&store, &issuer, &new, Duration::from_secs(120), None)
            .await
            .unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(&rotated.rotated_at).unwrap();
    let retired =
        chrono::DateTime::parse_from_rfc3339(rotated.retired_at.as_deref().unwrap()).unwrap();
    assert_eq!((retired - at).num_seconds(), 120);
    // The new key is the active one at once: the relay signs only with it from now on.
    assert_eq!(store.active_anchor_key(&issuer).await.unwrap(), Some(new));
}

/// A stored anchoring key that is not a public key (written before keys were validated, or
/// by hand) is recorded as a finding and skipped; every other key is still scanned.
#[tokio::test]
async fn a_malformed_anchoring_key_is_skipped_and_the_other_keys_are_scanned() {
    let w = world().await;
    let id = w.issue("S-MAL-1").await;
    let relay = w.relay("relay-mal").await;
    w.anchor_all(&relay, std::slice::from_ref(&id)).await;
    drop(relay);
    // Lose the anchor's record so the scan has something to repair.
    let db = w.sql().await;
    db.execute(
        "UPDATE credentials SET status = 'submitted', anchor_signature = NULL, anchor_slot = NULL, \
           finalized_at = NULL WHERE id = $1",
        &[&id.parse::<uuid::Uuid>().unwrap()],
    )
    .await
    .unwrap();
    // A second issuer whose key is base58 of 31 bytes: shaped like a key, not one.
    let malformed = bs58::encode([9u8; 31]).into_string();
    db.batch_execute(&format!(
        "INSERT INTO issuers (id, name) VALUES ('broken-uni', 'Broken'); \
         INSERT INTO issuer_anchor_keys (issuer_id, pubkey, valid_from) \
           VALUES ('broken-uni', '{malformed}', now());"
    ))
    .await
    .unwrap();

    let r = w.reconciler().await;
    let report = r.run_once(HOUR, false).await.unwrap();
    assert_eq!(report.malformed_keys, 1, "{report:?}");
    assert_eq!(report.keys, 2, "{report:?}");
    assert_eq!(report.finalized, 1, "{report:?}");
    assert_eq!(w.row(&id).await.unwrap().0, "finalized");
    assert_eq!(w.findings("malformed_key").await, 1);
    // Again: still one finding, still a successful run.
    r.run_once(HOUR, false).await.unwrap();
    assert_eq!(w.findings("malformed_key").await, 1);
}
