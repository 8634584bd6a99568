//! Happy paths: one credential end to end; three relays over 500 credentials.

use std::time::Duration;

use chain::Commitment;
use domain::memo::{decode, Decoded, Memo};

use crate::helpers::world;

#[tokio::test]
async fn issued_credential_is_finalized_and_its_memo_decodes_on_chain() {
    let w = world().await;
    let app = outbox_relay::Application::build(w.relay_settings(w.chain_env.rpc_url(), "relay-1"))
        .await
        .unwrap();
    let probes = format!("http://127.0.0.1:{}", app.port());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async move {
        let _ = stop_rx.await;
    }));

    let id = w.issue("S-E2E-1").await;
    let started = std::time::Instant::now();
    let mut seen_confirmed = false;
    let body = loop {
        let body = w.credential(&id).await;
        match body["status"].as_str().unwrap() {
            "finalized" => break body,
            "confirmed" => seen_confirmed = true,
            "failed" => panic!("failed: {body}"),
            _ => {}
        }
        assert!(
            started.elapsed() < testkit::FINALITY_DEADLINE,
            "not finalized: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "issue -> finalized in {:?} (saw confirmed: {seen_confirmed})",
        started.elapsed()
    );
    let signature = body["anchor"]["signature"].as_str().unwrap().to_string();
    assert!(body["anchor"]["slot"].as_u64().unwrap() > 0);
    let explorer = body["anchor"]["explorer_url"].as_str().unwrap();
    assert!(
        explorer.starts_with("https://explorer.solana.com/tx/") && explorer.contains(&signature),
        "{explorer}"
    );

    // Read the anchor back from the chain itself.
    let tx = w
        .chain()
        .fetch_transaction(&signature, Commitment::Finalized)
        .await
        .unwrap()
        .expect("transaction on chain");
    assert!(tx.succeeded);
    assert_eq!(tx.fee_payer, w.anchor_pubkey);
    assert!(tx.fee_lamports >= 5_000);
    assert_eq!(tx.memos.len(), 1);
    match decode(&tx.memos[0]) {
        Decoded::Ours(Memo::Credential {
            issuer,
            credential,
            hash,
        }) => {
            assert_eq!(issuer.as_str(), "uni-relay");
            assert_eq!(credential.to_string(), id);
            assert_eq!(hash.to_hex(), body["credential_hash"].as_str().unwrap());
        }
        other => panic!("unexpected memo {other:?}"),
    }

    let metrics = reqwest::get(format!("{probes}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"relay_sends_total{result="ok"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("outbox_end_to_end_seconds_count 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rpc_request_duration_seconds"),
        "{metrics}"
    );
    let ready = reqwest::get(format!("{probes}/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(w.anchors_on_chain().await.get(&id), Some(&1));
}

#[tokio::test]
async fn three_relays_over_500_credentials_anchor_each_exactly_once() {
    let w = world().await;
    const N: usize = 500;
    let mut ids = Vec::new();
    for chunk in 0..(N / 50) {
        let issued = futures_util::future::join_all(
            (0..50).map(|i| w.issue_owned(format!("S-MANY-{chunk}-{i}"))),
        )
        .await;
        ids.extend(issued);
    }
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    for r in 0..3 {
        let app = outbox_relay::Application::build(
            w.relay_settings(w.chain_env.rpc_url(), &format!("relay-{r}")),
        )
        .await
        .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        stops.push(tx);
        tasks.push(tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        })));
    }
    w.wait_all_finalized(N as i64, Duration::from_secs(300))
        .await;
    for s in stops {
        let _ = s.send(());
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Every job completed, no transaction left that could still land.
    assert_eq!(
        w.query_i64("SELECT count(*) FROM outbox WHERE completed_at IS NULL")
            .await,
        0
    );
    assert_eq!(
        w.query_i64("SELECT count(*) FROM anchor_transactions WHERE status IN ('signed','sent','confirmed')").await,
        0
    );
    // The chain is the judge: one anchor per credential, no more, no fewer.
    let counts = w.anchors_on_chain().await;
    assert_eq!(counts.len(), N, "distinct credentials anchored");
    for id in &ids {
        assert_eq!(counts.get(id), Some(&1), "credential {id}");
    }
    // Several relays really took part.
    assert!(
        w.query_i64("SELECT count(DISTINCT signed_by) FROM anchor_transactions")
            .await
            >= 2
    );
}

/// #18: a relay started with a keypair that is no issuer's active anchoring key refuses to
/// start (every memo it paid for would be refused by verifiers); after an issuer rotates to
/// that key, the same settings start.
#[tokio::test]
async fn a_relay_whose_keypair_is_no_issuers_active_key_refuses_to_start() {
    let w = world().await;
    let stranger = chain::AnchorKeypair::generate();
    let path = std::env::temp_dir().join(format!("stranger-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, stranger.to_json_string()).unwrap();
    let mut settings = w.relay_settings(w.chain_env.rpc_url(), "relay-stranger");
    settings.chain.keypair_path = Some(path.clone());

    let refused = outbox_relay::Application::build(settings.clone())
        .await
        .err()
        .expect("a stranger's keypair must not start a relay");
    let message = format!("{refused:#}");
    assert!(
        message.contains("active anchoring key of none")
            && message.contains(&stranger.pubkey_base58()),
        "{message}"
    );
    assert!(
        !message.contains(&stranger.to_json_string()[..40]),
        "the error printed the secret"
    );

    // The issuer rotates to that key (grace 0): the relay with it starts, and the stack's
    // own relay, whose key is now no issuer's, is refused in turn.
    provisioning::rotate_anchor_key(
        &w.store,
        &w.issuer_id,
        &stranger.pubkey_base58(),
        Duration::ZERO,
        w.chain_clock().await,
    )
    .await
    .unwrap();
    outbox_relay::Application::build(settings).await.unwrap();
    let old =
        outbox_relay::Application::build(w.relay_settings(w.chain_env.rpc_url(), "relay-old"))
            .await
            .err()
            .expect("the retired key's relay must not start");
    assert!(format!("{old:#}").contains("active anchoring key of none"));
    let _ = std::fs::remove_file(path);
}
