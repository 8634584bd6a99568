//! Spend control (#18): an issuer over its lamport budget has its new transactions deferred
//! (never failed, never dead-lettered) while another issuer on the same wallet goes on; with
//! room again, the deferred jobs anchor, each exactly once (counted on the chain).

use std::time::Duration;

use domain::spend::SpendBudget;
use outbox_relay::Application;

use crate::helpers::world;

async fn status(w: &crate::helpers::World, id: &str) -> String {
    let id: uuid::Uuid = id.parse().unwrap();
    w.sql()
        .await
        .query_one("SELECT status FROM credentials WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn an_issuer_over_its_budget_is_deferred_not_failed_and_another_goes_on() {
    let w = world().await;
    let master = domain::sealed::MasterKey::from_base64(&w.master_key_b64).unwrap();
    // A second issuer on the same anchoring wallet.
    let other = provisioning::create_issuer(
        &w.store,
        &master,
        &domain::IssuerId::parse("uni-frugal").unwrap(),
        "Frugal University",
        &w.anchor_pubkey,
        w.chain_clock().await,
    )
    .await
    .unwrap();
    let greedy: Vec<String> = [
        w.issue("S-SPEND-1").await,
        w.issue("S-SPEND-2").await,
        w.issue("S-SPEND-3").await,
    ]
    .into();
    let frugal = w.issue_as(&other.api_key, "F-SPEND-1").await;

    // Room for one transaction per issuer and hour (a memo costs 5,000 lamports here).
    let mut settings = w.relay_settings(w.chain_env.rpc_url(), "relay-budget");
    settings.relay.spend = SpendBudget {
        lamports_per_hour: 7_000,
        lamports_per_day: 0,
    };
    settings.relay.spend_retry_secs = 1;
    let relay = Application::build(settings).await.unwrap();
    let deadline = std::time::Instant::now() + testkit::FINALITY_DEADLINE;
    loop {
        let _ = relay.relay().run_pass().await;
        let mut finalized = Vec::new();
        for id in greedy.iter().chain([&frugal]) {
            finalized.push(status(&w, id).await == "finalized");
        }
        if finalized[3] && finalized.iter().filter(|f| **f).count() == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{finalized:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A few more passes: the greedy issuer stays deferred, its jobs intact.
    for _ in 0..5 {
        let _ = relay.relay().run_pass().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut waiting = 0;
    for id in &greedy {
        if status(&w, id).await == "queued" {
            waiting += 1;
        }
    }
    assert_eq!(waiting, 2, "one anchored, two deferred");
    let deferred = w
        .query_i64(
            "SELECT count(*) FROM outbox WHERE issuer_id = 'uni-relay' AND completed_at IS NULL \
             AND failures = 0 AND dead_at IS NULL AND last_error LIKE 'deferred: spend budget%'",
        )
        .await;
    assert_eq!(deferred, 2, "{}", w.outbox_diagnostics().await);
    drop(relay);

    // The budget allows more (a new window, or an operator raising it): they anchor, once.
    let relay = Application::build(w.relay_settings(w.chain_env.rpc_url(), "relay-room"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + testkit::FINALITY_DEADLINE;
    loop {
        let _ = relay.relay().run_pass().await;
        let mut done = true;
        for id in &greedy {
            done &= status(&w, id).await == "finalized";
        }
        if done {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deferred jobs did not resume"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let on_chain = w.anchors_on_chain().await;
    for id in greedy.iter().chain([&frugal]) {
        assert_eq!(on_chain.get(id).copied(), Some(1), "{id} anchored once");
    }
}
