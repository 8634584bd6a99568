//! Webhooks end to end (issue #24): every status change of 1,000 credentials, anchored on the
//! real validator in single and Merkle mode, some revoked (by `ca1:r` memos and by `ca1:v`
//! lists), reaches a real receiver on loopback that checks every delivery with the published
//! `standardwebhooks` library (`testkit::webhook_receiver`). The events are recorded by the
//! database triggers in the transactions of the relay's finalizations; the worker in the
//! stack's issuer-api delivers them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use outbox_relay::Application;
use testkit::webhook_receiver::Receiver;

use crate::helpers::{world, World};

const SINGLE: usize = 100;
const MERKLE: usize = 900;

/// Polls `sql` (a count) until it is `want`, running nothing itself (the relay runs in its
/// own task).
async fn wait_count(w: &World, sql: &str, want: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let n = w.query_i64(sql).await;
        if n == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {n} of {want}\n{}",
            w.outbox_diagnostics().await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn every_status_change_of_a_thousand_credentials_arrives_signed_and_none_is_missing() {
    let w = world().await;
    let receiver = Receiver::start();
    let (_endpoint, secret) = w.register_webhook(&receiver.url("portal")).await;
    receiver
        .configure("portal", std::slice::from_ref(&secret), 200, 0)
        .await;
    let relay = Application::build(w.merkle_settings(w.chain_env.rpc_url(), "relay-wh", 256, 500))
        .await
        .unwrap();
    let relay_task = tokio::spawn(relay.run_until(std::future::pending()));

    // Single mode: 100 credentials, one anchor each; 10 revoked by ca1:r memos.
    w.execute(&format!(
        "UPDATE issuers SET anchor_mode = 'single' WHERE id = '{}'",
        w.issuer_id.as_str()
    ))
    .await;
    let singles = w.issue_bulk("WH-S", SINGLE).await;
    wait_count(
        &w,
        "SELECT count(*) FROM credentials WHERE serial LIKE 'WH-S-%' AND status = 'finalized'",
        i64::try_from(SINGLE).unwrap(),
        "single credentials finalized",
    )
    .await;
    for id in &singles[..10] {
        assert_eq!(w.revoke(id, "issued in error").await, 202);
    }
    wait_count(
        &w,
        "SELECT count(*) FROM credentials WHERE serial LIKE 'WH-S-%' AND status = 'revoked'",
        10,
        "single revocations anchored",
    )
    .await;

    // Merkle mode: 900 credentials in batches; 20 revoked in ca1:v lists.
    w.execute(&format!(
        "UPDATE issuers SET anchor_mode = 'merkle' WHERE id = '{}'",
        w.issuer_id.as_str()
    ))
    .await;
    let merkles = w.issue_bulk("WH-M", MERKLE).await;
    wait_count(
        &w,
        "SELECT count(*) FROM credentials WHERE serial LIKE 'WH-M-%' AND status = 'finalized'",
        i64::try_from(MERKLE).unwrap(),
        "merkle credentials finalized",
    )
    .await;
    for id in &merkles[..20] {
        assert_eq!(w.revoke(id, "issued in error").await, 202);
    }
    wait_count(
        &w,
        "SELECT count(*) FROM credentials WHERE serial LIKE 'WH-M-%' AND status = 'revoked'",
        20,
        "merkle revocations anchored",
    )
    .await;
    // Read from the chain: each single credential anchored once, each revocation once.
    let on_chain = w.anchors_on_chain().await;
    for id in &singles {
        assert_eq!(on_chain.get(id), Some(&1), "{id} anchors on chain");
    }
    let revoked_on_chain = w.revocations_on_chain().await;
    for id in singles[..10].iter().chain(&merkles[..20]) {
        assert_eq!(
            revoked_on_chain.get(id),
            Some(&1),
            "{id} revocations on chain"
        );
    }
    let batch_txs: BTreeSet<String> = w
        .batch_anchors_on_chain()
        .await
        .into_iter()
        .map(|(signature, _)| signature)
        .collect();

    // What must arrive: finalized for all 1,000, revoked for the 30, and each of the two
    // bulk requests completed.
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    for id in singles.iter().chain(&merkles) {
        expected.insert(("credential.finalized".into(), id.clone()));
    }
    for id in singles[..10].iter().chain(&merkles[..20]) {
        expected.insert(("credential.revoked".into(), id.clone()));
    }
    let requests: Vec<String> = {
        let client = w.sql().await;
        client
            .query(
                "SELECT id::text FROM credential_batches WHERE issuer_id = $1",
                &[&w.issuer_id.as_str()],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(requests.len(), 2);
    for r in &requests {
        expected.insert(("credential_batch.completed".into(), r.clone()));
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    let received = loop {
        let deliveries = receiver.deliveries("portal").await;
        let got: BTreeSet<(String, String)> = deliveries
            .iter()
            .map(|d| {
                let subject = d.data["credential_id"]
                    .as_str()
                    .or_else(|| d.data["batch_id"].as_str())
                    .unwrap_or_default()
                    .to_string();
                (d.r#type.clone().unwrap_or_default(), subject)
            })
            .collect();
        if expected.is_subset(&got) {
            break deliveries;
        }
        assert!(
            Instant::now() < deadline,
            "missing {} events, e.g. {:?}",
            expected.difference(&got).count(),
            expected.difference(&got).next()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    relay_task.abort();

    // Every delivery verified by the reference library, nothing unexpected, and a duplicate
    // (if any) carries its original's webhook-id.
    let mut ids: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for d in &received {
        assert!(d.valid, "signature refused: {d:?}");
        let kind = d.r#type.clone().unwrap_or_default();
        let subject = d.data["credential_id"]
            .as_str()
            .or_else(|| d.data["batch_id"].as_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            expected.contains(&(kind.clone(), subject.clone())),
            "unexpected event {kind} {subject}"
        );
        ids.entry((kind, subject))
            .or_default()
            .insert(d.webhook_id.clone().unwrap_or_default());
    }
    for (event, webhook_ids) in &ids {
        assert_eq!(
            webhook_ids.len(),
            1,
            "{event:?} arrived under {webhook_ids:?}"
        );
    }
    // The bodies carry what a portal needs without a poll.
    let finalized = received
        .iter()
        .find(|d| d.r#type.as_deref() == Some("credential.finalized"))
        .unwrap();
    assert_eq!(finalized.data["status"], "finalized");
    assert!(finalized.data["anchor_signature"].is_string());
    assert!(finalized.data["url"]
        .as_str()
        .unwrap()
        .starts_with("/v1/credentials/"));
    let revoked = received
        .iter()
        .find(|d| d.r#type.as_deref() == Some("credential.revoked"))
        .unwrap();
    assert_eq!(revoked.data["status"], "revoked");
    assert!(revoked.data["anchor_signature"].is_string());
    // Each Merkle credential's event names a batch transaction found on the chain.
    for d in &received {
        let id = d.data["credential_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if d.r#type.as_deref() == Some("credential.finalized") && merkles.contains(&id) {
            let signature = d.data["anchor_signature"].as_str().unwrap_or_default();
            assert!(
                batch_txs.contains(signature),
                "{id}: {signature} is no batch on chain"
            );
        }
    }
    // And the database agrees: every delivery delivered, none pending or dead.
    assert_eq!(
        w.query_i64("SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL")
            .await,
        0
    );
}
