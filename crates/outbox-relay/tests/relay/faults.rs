//! Faults: a relay dying after send, an RPC outage, an expired blockhash.

use std::time::Duration;

use outbox_relay::Application;
use testkit::proxy::TcpProxy;

use crate::helpers::world;

async fn pass_until_finalized(app: &Application, w: &crate::helpers::World, id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let _ = app.relay().run_pass().await;
        if w.credential(id).await["status"] == "finalized" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not finalized: {}",
            w.credential(id).await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn relay_dying_right_after_send_does_not_anchor_twice() {
    let w = world().await;
    let id = w.issue("S-CRASH").await;
    let a = Application::build(w.relay_settings(w.chain_env.rpc_url(), "relay-a"))
        .await
        .unwrap();
    // Relay A sends, then "dies": no further database write, its lease is not released.
    fail::cfg("relay::after_send", "return").unwrap();
    assert_eq!(a.relay().run_pass().await.unwrap(), 1);
    fail::remove("relay::after_send");
    drop(a);
    assert_eq!(
        w.query_i64("SELECT count(*) FROM anchor_transactions WHERE status = 'signed'")
            .await,
        1
    );

    // Relay B takes over once the lease ends and follows the stored transaction.
    let b = Application::build(w.relay_settings(w.chain_env.rpc_url(), "relay-b"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    pass_until_finalized(&b, &w, &id).await;
    assert_eq!(
        w.query_i64("SELECT count(*) FROM anchor_transactions")
            .await,
        1,
        "no second transaction signed"
    );
    assert_eq!(w.anchors_on_chain().await.get(&id), Some(&1));
}

#[tokio::test]
async fn rpc_outage_backs_off_without_dead_letters_then_drains() {
    let w = world().await;
    let target = w
        .chain_env
        .rpc_url()
        .trim_start_matches("http://")
        .to_string();
    let proxy = TcpProxy::start(target).await.unwrap();
    let app = Application::build(w.relay_settings(&proxy.url(), "relay-outage"))
        .await
        .unwrap();
    let ids = vec![w.issue("S-OUT-1").await, w.issue("S-OUT-2").await];

    proxy.set_enabled(false);
    let mut passes = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        if app.relay().run_pass().await.unwrap_or(0) > 0 {
            passes += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Fewer claims than polls: the jobs waited out a growing backoff.
    assert!((2..40).contains(&passes), "passes {passes}");
    assert!(
        w.query_i64("SELECT max(failures)::bigint FROM outbox")
            .await
            >= 2
    );
    assert_eq!(
        w.query_i64("SELECT count(*) FROM outbox WHERE dead_at IS NOT NULL")
            .await,
        0
    );
    assert_eq!(
        w.query_i64("SELECT count(*) FROM credentials WHERE status = 'queued'")
            .await,
        2
    );
    let last_error = w.credential(&ids[0]).await;
    assert_eq!(last_error["status"], "queued");

    proxy.set_enabled(true);
    for id in &ids {
        pass_until_finalized(&app, &w, id).await;
    }
    let counts = w.anchors_on_chain().await;
    for id in &ids {
        assert_eq!(counts.get(id), Some(&1));
    }
}

#[tokio::test]
async fn expired_blockhash_is_resigned_once_and_anchors_once() {
    let w = world().await;
    let id = w.issue("S-EXPIRE").await;
    let a = Application::build(w.relay_settings(w.chain_env.rpc_url(), "relay-a"))
        .await
        .unwrap();
    // A stores its signed transaction and dies before sending it: it never reaches the chain.
    fail::cfg("relay::after_persist", "return").unwrap();
    a.relay().run_pass().await.unwrap();
    fail::remove("relay::after_persist");
    drop(a);
    let lvbh = w
        .query_i64("SELECT last_valid_block_height FROM anchor_transactions")
        .await as u64;

    // Wait for the real expiry: the finalized block height passes lastValidBlockHeight.
    let chain = w.chain();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while chain.finalized_block_height().await.unwrap() <= lvbh {
        assert!(
            std::time::Instant::now() < deadline,
            "blockhash did not expire in time"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let b = Application::build(w.relay_settings(w.chain_env.rpc_url(), "relay-b"))
        .await
        .unwrap();
    pass_until_finalized(&b, &w, &id).await;
    assert_eq!(
        w.query_i64("SELECT count(*) FROM anchor_transactions WHERE status = 'expired'")
            .await,
        1
    );
    assert_eq!(
        w.query_i64("SELECT count(*) FROM anchor_transactions WHERE status = 'finalized'")
            .await,
        1
    );
    assert_eq!(
        w.query_i64("SELECT count(*) FROM anchor_transactions")
            .await,
        2
    );
    assert_eq!(w.anchors_on_chain().await.get(&id), Some(&1));
}

#[tokio::test]
async fn permanent_failures_dead_letter_and_requeue_puts_them_back() {
    let w = world().await;
    let id = w.issue("S-DEAD").await;
    let mut settings = w.relay_settings(w.chain_env.rpc_url(), "relay-dead");
    settings.relay.retry.max_attempts = 2;
    // An unfunded keypair: the node answers, but nothing can be paid for.
    let poor = chain::AnchorKeypair::generate();
    let poor_path = w.keypair_path.with_file_name("poor.json");
    std::fs::write(&poor_path, poor.to_json_string()).unwrap();
    settings.chain.keypair_path = poor_path;
    let app = Application::build(settings).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while w.credential(&id).await["status"] != "failed" {
        let _ = app.relay().run_pass().await;
        assert!(
            std::time::Instant::now() < deadline,
            "never dead-lettered: {}",
            w.credential(&id).await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let body = w.credential(&id).await;
    assert!(
        body["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );

    // The operator funds the right key and requeues: the credential anchors once.
    let n = w.store.requeue_failed(None).await.unwrap();
    assert_eq!(n, 1);
    let good = Application::build(w.relay_settings(w.chain_env.rpc_url(), "relay-good"))
        .await
        .unwrap();
    pass_until_finalized(&good, &w, &id).await;
    assert_eq!(w.anchors_on_chain().await.get(&id), Some(&1));
}
