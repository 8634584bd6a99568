//! Status lists after a restore (issue #20): the database comes back from a dump taken
//! before the newest list version was anchored. The served list is then behind the chain
//! (`stale` for a verifier that fetches it); one reconciler run rebuilds the anchored version
//! from its `ca1:s` memo and the revocations from their `ca1:r` memos, reports the stale
//! list, and the API's publisher re-signs the same bits, so the served list is the anchored
//! version again, without a new anchor.

use crate::helpers::{World, ISSUER};

const HOUR: reconciler::Since = reconciler::Since::Window(std::time::Duration::from_secs(3_600));

fn file_of(serial: &str) -> Vec<u8> {
    format!("%PDF diploma {serial}").into_bytes()
}

#[tokio::test]
async fn a_restored_database_serves_the_anchored_status_list_again() {
    use verifier::status::ListSource;
    let w = World::builder()
        .issuer(ISSUER, "Reconciled University")
        .status_lists()
        .start()
        .await;
    let ids = vec![
        w.issue("SLR-1").await,
        w.issue("SLR-2").await,
        w.issue("SLR-3").await,
    ];
    let relay = w.relay("relay-slr").await;
    w.anchor_all(&relay, &ids).await;
    let (v1, _, _) = w.relay_until_list(&relay, 0, |_, _| true).await;
    let dump = w.dir.path().join("before-revocations.sql");
    w.dump(&dump);

    // After the backup: two revocations, one list version (debounced) anchored with them.
    assert_eq!(w.revoke(&ids[0], "issued in error").await, 202);
    assert_eq!(w.revoke(&ids[2], "duplicate").await, 202);
    let (v2, anchored_text, anchored_bits) = w
        .relay_until_list(&relay, 0, |_, bits| bits.count_set() == 2)
        .await;
    w.relay_until(&relay, &[ids[0].clone(), ids[2].clone()], "revoked")
        .await;
    assert!(v2 > v1);
    drop(relay);
    let anchored_hash = anchored_bits.anchored_hash(&w.issuer_id, 0);
    let bundle = {
        let resp = w
            .client
            .get(format!("{}/v1/credentials/{}/proof", w.api, ids[1]))
            .bearer_auth(&w.api_key)
            .send()
            .await
            .unwrap();
        resp.json::<domain::proof::ProofBundle>().await.unwrap()
    };
    let fetch = || {
        let mut request = w.offline_request(file_of("SLR-2"), bundle.clone());
        request.status_list = Some(ListSource::Fetch);
        async move { verifier::verify(&request).await.unwrap() }
    };
    assert_eq!(fetch().await.verdict.as_str(), "valid");

    // The restore: the database knows version 1 only; what it serves is behind the chain.
    w.restore(&dump).await;
    assert_eq!(w.served_status_list(0).await.unwrap().0, v1);
    let r = fetch().await;
    assert_eq!(r.verdict.as_str(), "stale", "{}", r.detail);

    let report = w.reconciler().await.run_once(HOUR, false).await.unwrap();
    assert_eq!(report.status_lists, 1, "{report:?}");
    assert_eq!(report.revocations, 2, "{report:?}");
    assert_eq!(w.findings("status_list_recovered").await, 1);
    assert!(w.findings("status_list_stale").await >= 1);

    // The publisher re-signs the rebuilt bits as the anchored version: served again, the
    // same bits the chain anchors, and no new version or anchor was made for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (version, text, bits) = loop {
        if let Some(served) = w.served_status_list(0).await {
            if served.0 == v2 {
                break served;
            }
        }
        assert!(std::time::Instant::now() < deadline, "never re-signed");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(version, v2);
    assert_eq!(bits.anchored_hash(&w.issuer_id, 0), anchored_hash);
    assert_ne!(text, "", "a signed list credential is served");
    let _ = anchored_text;
    assert_eq!(
        w.query_i64("SELECT count(*) FROM status_list_versions WHERE completed_at IS NULL")
            .await,
        0,
        "nothing new to anchor"
    );
    let r = fetch().await;
    assert_eq!(r.verdict.as_str(), "valid", "{}", r.detail);
    // The next run finds the list in agreement with the chain.
    let again = w.reconciler().await.run_once(HOUR, false).await.unwrap();
    assert_eq!(
        (again.status_lists, again.stale_status_lists),
        (0, 0),
        "{again:?}"
    );
}
