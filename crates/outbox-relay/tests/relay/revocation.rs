//! Revocation (issue #7): recorded with its outbox row, anchored as a `ca1:r` memo by the
//! relay, and only then shown as `revoked`.

use std::time::Duration;

use chain::Commitment;
use domain::memo::{decode, Decoded, Memo};
use outbox_relay::Application;
use serde_json::{json, Value};

use crate::helpers::{world, World};

pub async fn revoke(w: &World, id: &str, key: &str, reason: &str) -> (u16, Value) {
    let resp = w
        .client
        .post(format!("{}/v1/credentials/{id}/revoke", w.api))
        .bearer_auth(key)
        .json(&json!({ "reason": reason }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Runs relay passes until `done(credential body)` holds.
async fn pass_until(app: &Application, w: &World, id: &str, done: impl Fn(&Value) -> bool) {
    let deadline = std::time::Instant::now() + testkit::FINALITY_DEADLINE;
    loop {
        let _ = app.relay().run_pass().await;
        let body = w.credential(id).await;
        if done(&body) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn revocation_is_pending_until_its_memo_finalizes_then_revoked_on_chain() {
    let w = world().await;
    let app = Application::build(w.relay_settings(w.chain_env.rpc_url(), "relay-rev"))
        .await
        .unwrap();
    let id = w.issue("S-REV-1").await;

    // Revoked before its anchor finalized: recorded at once, anchored only after the
    // credential's own anchor (the claim waits for it).
    let (status, first) = revoke(&w, &id, &w.api_key, "issued in error").await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["status"], "pending");
    assert_eq!(first["reason"], "issued in error");
    assert!(first["anchor"].is_null());
    assert_eq!(
        w.query_i64(&format!(
            "SELECT count(*) FROM outbox WHERE kind = 'anchor_revocation' AND credential_id = '{id}'"
        ))
        .await,
        1
    );

    // Idempotent: same revocation, 200, first reason kept, no second job.
    let (status, again) = revoke(&w, &id, &w.api_key, "another reason").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["reason"], "issued in error");
    assert_eq!(again["requested_at"], first["requested_at"]);
    assert_eq!(
        w.query_i64("SELECT count(*) FROM outbox WHERE kind = 'anchor_revocation'")
            .await,
        1
    );

    pass_until(&app, &w, &id, |b| b["status"] == "finalized").await;
    let body = w.credential(&id).await;
    assert_eq!(body["revocation"]["status"], "pending", "{body}");
    let issuance_sig = body["anchor"]["signature"].as_str().unwrap().to_string();

    pass_until(&app, &w, &id, |b| b["status"] == "revoked").await;
    let body = w.credential(&id).await;
    assert_eq!(body["revocation"]["status"], "anchored", "{body}");
    // The credential keeps its issuance anchor; the revocation has its own transaction.
    assert_eq!(body["anchor"]["signature"], issuance_sig.as_str());
    let rev_sig = body["revocation"]["anchor"]["signature"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(rev_sig, issuance_sig);
    assert!(body["revocation"]["anchor"]["explorer_url"]
        .as_str()
        .unwrap()
        .contains(&rev_sig));

    // Read the revocation back from the chain: finalized, paid by the anchoring key, memo
    // `ca1:r` naming this credential and its hash.
    let tx = w
        .chain()
        .fetch_transaction(&rev_sig, Commitment::Finalized)
        .await
        .unwrap()
        .expect("revocation transaction on chain");
    assert!(tx.succeeded);
    assert_eq!(tx.fee_payer, w.anchor_pubkey);
    assert_eq!(tx.memos.len(), 1);
    match decode(&tx.memos[0]) {
        Decoded::Ours(Memo::Revocation {
            credential, hash, ..
        }) => {
            assert_eq!(credential.to_string(), id);
            assert_eq!(hash.to_hex(), body["credential_hash"].as_str().unwrap());
        }
        other => panic!("not a revocation memo: {other:?} ({:?})", tx.memos),
    }
    // The reason never reaches the chain.
    assert!(!tx.memos[0].contains("error"));
    assert_eq!(
        w.query_i64("SELECT count(*) FROM outbox WHERE completed_at IS NULL")
            .await,
        0
    );

    // A revoked credential keeps its proof bundle (its issuance anchor is still on chain).
    let proof = w
        .client
        .get(format!("{}/v1/credentials/{id}/proof", w.api))
        .bearer_auth(&w.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(proof.status().as_u16(), 200);
    let proof: Value = proof.json().await.unwrap();
    assert_eq!(proof["anchor"]["signature"], issuance_sig.as_str());

    // Revoking again after anchoring is still the same revocation.
    let (status, last) = revoke(&w, &id, &w.api_key, "x").await;
    assert_eq!(status, 200);
    assert_eq!(last["status"], "anchored");
    assert_eq!(last["anchor"]["signature"], rev_sig.as_str());
}

#[tokio::test]
async fn revocation_is_scoped_to_the_issuer_and_validates_its_body() {
    let w = world().await;
    let id = w.issue("S-REV-2").await;
    let other = provisioning::create_issuer(
        &w.store,
        &domain::sealed::MasterKey::generate(&ring::rand::SystemRandom::new()).unwrap(),
        &domain::IssuerId::parse("other-uni").unwrap(),
        "Other University",
        &w.anchor_pubkey,
        w.chain_clock().await,
    )
    .await
    .unwrap();
    let (status, body) = revoke(&w, &id, &other.api_key, "not mine").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "credential_not_found");
    let (status, body) = revoke(&w, &id, &w.api_key, "  ").await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_field");
    assert_eq!(body["field"], "reason");
    let (status, body) = revoke(&w, &id, "cak_bad_key", "x").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        w.query_i64("SELECT count(*) FROM revocations").await,
        0,
        "nothing recorded by refused calls"
    );
}

/// Merkle mode (issue #18): 25 revocations anchor in three `ca1:v` lists of 10, 10 and 5, read
/// from the chain, instead of 25 transactions. Each credential is revoked exactly once on chain,
/// every revocation record points at its list's transaction, and the offline verifier
/// (`credential-verify`'s library, reading only the chain) finds a revocation in the first
/// list and in the last, while a member of the same Merkle batch that was not revoked stays
/// valid.
#[tokio::test]
async fn merkle_mode_revocations_anchor_ten_per_list_memo_counted_on_the_chain() {
    use crate::verify::{bundle_for, file_of};
    let w = world().await;
    let relay = Application::build(w.merkle_settings(w.chain_env.rpc_url(), "relay-rl", 100, 0))
        .await
        .unwrap();
    let serials: Vec<String> = (0..26).map(|i| format!("S-RL-{i}")).collect();
    let mut ids = Vec::new();
    for serial in &serials {
        ids.push(w.issue(serial).await);
    }
    w.anchor_all(&relay, &ids).await;
    let (revoked, kept) = ids.split_at(25);
    for id in revoked {
        let (status, body) = revoke(&w, id, &w.api_key, "withdrawn").await;
        assert_eq!(status, 202, "{body}");
    }
    w.relay_until(&relay, revoked, "revoked").await;
    assert_eq!(w.credential(&kept[0]).await["status"], "finalized");

    // From the chain: three lists, 25 entries, one per revoked credential, no `ca1:r`.
    let lists = w.revocation_lists_on_chain().await;
    let mut sizes: Vec<usize> = lists.iter().map(|m| m.revoked().len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![5, 10, 10], "{lists:?}");
    let on_chain = w.revocations_on_chain().await;
    assert_eq!(on_chain.len(), 25, "{on_chain:?}");
    for id in revoked {
        assert_eq!(on_chain.get(id), Some(&1), "{id} revoked once on chain");
    }
    assert!(!on_chain.contains_key(&kept[0]));

    // The database agrees: three list transactions, every revocation anchored by one, every
    // job done.
    assert_eq!(
        w.query_i64(
            "SELECT count(DISTINCT anchor_signature) FROM revocations WHERE anchor_signature IS NOT NULL"
        )
        .await,
        3
    );
    assert_eq!(
        w.query_i64("SELECT count(*) FROM revocations WHERE anchor_signature IS NULL")
            .await,
        0
    );
    assert_eq!(
        w.query_i64("SELECT count(*) FROM revocation_batches WHERE completed_at IS NOT NULL")
            .await,
        3
    );
    assert_eq!(
        w.query_i64("SELECT count(*) FROM outbox WHERE completed_at IS NULL")
            .await,
        0
    );

    // The offline verifier finds each revocation in its list, from the chain alone.
    for (serial, id) in [(&serials[0], &revoked[0]), (&serials[24], &revoked[24])] {
        let bundle = bundle_for(&w, id).await;
        let report = verifier::verify(&w.offline_request(file_of(serial), bundle))
            .await
            .unwrap();
        assert_eq!(report.verdict.as_str(), "revoked", "{}", report.detail);
    }
    let bundle = bundle_for(&w, &kept[0]).await;
    let report = verifier::verify(&w.offline_request(file_of(&serials[25]), bundle))
        .await
        .unwrap();
    assert_eq!(report.verdict.as_str(), "valid", "{}", report.detail);
}
