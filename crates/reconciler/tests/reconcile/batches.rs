//! Batch anchors (`ca1:b`): a relay that died after sending a batch is finalized by the
//! reconciler with all its members; a restore that lost the batch record gets it back as
//! `recovered`, and its members are re-linked when their proof bundles are presented.

use std::time::Duration;

use domain::proof::ProofBundle;
use reconciler::Since;
use serde_json::Value;

use crate::helpers::{world, World};

const HOUR: Since = Since::Window(Duration::from_secs(3_600));

async fn merkle_relay(w: &World, worker: &str) -> outbox_relay::Application {
    let mut s = w.relay_settings(w.chain_env.rpc_url(), worker);
    s.relay.mode = domain::AnchoringMode::Merkle;
    s.relay.batch_max_wait_ms = 0;
    outbox_relay::Application::build(s).await.unwrap()
}

async fn recover(w: &World, body: &Value) -> (u16, Value) {
    let resp = w
        .client
        .post(format!("{}/v1/credentials/recover", w.api))
        .bearer_auth(&w.api_key)
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn relay_dying_after_sending_a_batch_is_finalized_by_the_reconciler() {
    let w = world().await;
    let ids = vec![
        w.issue("B-DIE-1").await,
        w.issue("B-DIE-2").await,
        w.issue("B-DIE-3").await,
    ];
    let a = merkle_relay(&w, "relay-a").await;
    fail::cfg("relay::after_send", "return").unwrap();
    a.relay().run_pass().await.unwrap();
    fail::remove("relay::after_send");
    drop(a);
    assert_eq!(w.query_i64("SELECT count(*) FROM anchor_batches").await, 1);
    let signature: String = w
        .sql()
        .await
        .query_one("SELECT signature FROM anchor_transactions", &[])
        .await
        .unwrap()
        .get(0);
    w.wait_finalized_on_chain(&signature).await;

    let report = w.reconciler().await.run_once(HOUR, false).await.unwrap();
    assert_eq!(report.finalized, 1, "{report:?}");
    for id in &ids {
        assert_eq!(w.row(id).await.unwrap().0, "finalized");
    }
    assert_eq!(w.findings("pending_anchored").await, 1);
    assert_eq!(
        w.query_i64("SELECT count(*) FROM outbox WHERE completed_at IS NULL")
            .await,
        0
    );
    assert_eq!(
        w.query_i64("SELECT count(*) FROM anchor_batches WHERE completed_at IS NOT NULL")
            .await,
        1
    );
    // The members' bundles are served and name the reconciled transaction.
    let b: ProofBundle = serde_json::from_value(w.proof(&ids[0]).await).unwrap();
    assert_eq!(b.anchor.signature, signature);

    // A second run agrees with everything.
    let again = w.reconciler().await.run_once(HOUR, false).await.unwrap();
    assert_eq!(
        (again.finalized, again.backfilled, again.drift),
        (0, 0, 0),
        "{again:?}"
    );
    // The relay resumes after A's lease ends: nothing left to send.
    let b = merkle_relay(&w, "relay-b").await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(b.relay().run_pass().await.unwrap(), 0);
    assert_eq!(
        w.query_i64("SELECT count(*) FROM anchor_transactions")
            .await,
        1
    );
}

#[tokio::test]
async fn restore_before_issuance_backfills_the_batch_and_bundles_relink_its_members() {
    let w = world().await;
    let dump = w.dir.path().join("before.sql");
    w.dump(&dump);
    let ids = vec![
        w.issue("B-REST-1").await,
        w.issue("B-REST-2").await,
        w.issue("B-REST-3").await,
    ];
    let relay = merkle_relay(&w, "relay-m").await;
    w.anchor_all(&relay, &ids).await;
    drop(relay);
    let mut bundles = Vec::new();
    for id in &ids {
        bundles.push(w.proof(id).await);
    }

    w.restore(&dump).await;
    assert_eq!(w.query_i64("SELECT count(*) FROM anchor_batches").await, 0);
    let r = w.reconciler().await;
    let report = r.run_once(HOUR, false).await.unwrap();
    assert_eq!(report.backfilled, 1, "{report:?}");
    assert_eq!(w.findings("missing_row").await, 1);
    assert_eq!(
        w.query_i64(
            "SELECT count(*) FROM anchor_batches WHERE origin = 'recovered' AND member_count = 3"
        )
        .await,
        1
    );

    // A tampered bundle is refused, and one naming an unknown batch finds no anchor.
    let mut tampered = bundles[0].clone();
    tampered["fields"]["recipient"] = "someone-else".into();
    let (status, body) = recover(&w, &tampered).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_proof"))
    );
    let mut unknown = bundles[0].clone();
    unknown["anchor"]["signature"] =
        "1111111111111111111111111111111111111111111111111111111111111111".into();
    let (status, body) = recover(&w, &unknown).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("anchor_not_found"))
    );

    // Genuine bundles re-link every member; presenting one again is a no-op.
    for (id, b) in ids.iter().zip(&bundles) {
        let (status, body) = recover(&w, b).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("linked")),
            "{body}"
        );
        assert_eq!(body["id"].as_str(), Some(id.as_str()));
    }
    let (status, body) = recover(&w, &bundles[1]).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("already_known"))
    );
    assert_eq!(
        w.query_i64(
            "SELECT count(*) FROM credentials WHERE status = 'recovered' AND serial IS NOT NULL"
        )
        .await,
        3
    );
    assert_eq!(
        w.query_i64("SELECT count(*) FROM anchor_batch_members")
            .await,
        3
    );
    assert_eq!(
        w.query_i64("SELECT count(*) FROM outbox").await,
        0,
        "nothing to anchor again"
    );
}
