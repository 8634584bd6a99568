//! End-to-end behaviour of the Solana adapter against a real `solana-test-validator`.
//!
//! Each test funds a fresh keypair, so tests can share one validator (`$SOLANA_RPC_URL` or
//! the one `testkit::validator::chain_env` starts) and run in parallel. Assertions are on what
//! the chain reports: statuses, fetched transactions, the payer's history.

// Test helpers may fail loudly: a panic here is a failed test, not a production path.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use chain::{
    compute_unit_limit_for_memo, sign_memo_transaction, AnchorKeypair, ChainClient, ChainConfig,
    ChainError, ChainMetrics, Cluster, Commitment, Confirmation, ErrorClass, MAX_MEMO_BYTES,
};
use solana_client::nonblocking::rpc_client::RpcClient;
use solana_client::rpc_config::CommitmentConfig;
use testkit::validator::{airdrop, chain_env, ChainEnv};

const FUNDING: u64 = 2_000_000_000;

/// A chain, and a client whose fresh payer holds `FUNDING` lamports.
async fn funded_client() -> (ChainEnv, ChainClient) {
    let env = chain_env().await.expect("a local validator");
    let payer = AnchorKeypair::generate();
    airdrop(env.rpc_url(), &payer.pubkey_base58(), FUNDING)
        .await
        .expect("airdrop");
    let config = ChainConfig::new(env.rpc_url(), Cluster::Localnet);
    (env, ChainClient::new(config, payer))
}

/// A random 32-byte value in base58: a blockhash no block ever had.
fn tx_blockhash_placeholder() -> String {
    AnchorKeypair::generate().pubkey_base58()
}

fn payer_of(client: &ChainClient) -> String {
    client.payer_pubkey().expect("client has a payer")
}

/// Polls `signature_statuses` until `signature` reaches `level` (failing on a transaction
/// error) or `timeout` passes.
async fn wait_for(client: &ChainClient, signature: &str, level: Confirmation, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let statuses = client
            .signature_statuses(&[signature.to_string()])
            .await
            .expect("statuses");
        if let Some(status) = &statuses[0] {
            assert_eq!(status.err, None, "transaction {signature} failed");
            if status.confirmation >= level {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{signature} did not reach {level:?} within {timeout:?} (last: {statuses:?})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn anchor(client: &ChainClient, memo: &str) -> chain::SignedAnchorTx {
    let tx = client.build_memo_transaction(memo).await.expect("build");
    let sent = client
        .send_transaction_bytes(&tx.bytes)
        .await
        .expect("send");
    assert_eq!(sent, tx.signature);
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memo_transaction_reaches_confirmed_then_finalized() {
    let (_env, client) = funded_client().await;
    let registry = prometheus::Registry::new();
    let client = client.with_metrics(ChainMetrics::register(&registry).unwrap());

    let tx = anchor(&client, "ca1:c:test-issuer:finality").await;
    assert!(client.block_height().await.unwrap() <= tx.last_valid_block_height);

    wait_for(
        &client,
        &tx.signature,
        Confirmation::Confirmed,
        Duration::from_secs(30),
    )
    .await;
    // Finalization takes ~32 slots (~14 s on a local validator).
    wait_for(
        &client,
        &tx.signature,
        Confirmation::Finalized,
        testkit::FINALITY_DEADLINE,
    )
    .await;

    let fetched = client
        .fetch_transaction(&tx.signature, Commitment::Finalized)
        .await
        .unwrap()
        .expect("finalized transaction is found");
    assert_eq!(
        fetched.memos,
        vec!["ca1:c:test-issuer:finality".to_string()]
    );

    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    for method in [
        "getLatestBlockhash",
        "getRecentPrioritizationFees",
        "sendTransaction",
    ] {
        assert!(
            text.contains(&format!(
                "rpc_request_duration_seconds_count{{method=\"{method}\"}} 1"
            )),
            "{method} not recorded:\n{text}"
        );
    }
    assert!(!text.contains("rpc_errors_total{"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_transaction_returns_memo_payer_success_and_fee() {
    let (_env, client) = funded_client().await;
    let memo = "ca1:b:test-issuer:batch-1:3:4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziofM";
    let tx = anchor(&client, memo).await;
    wait_for(
        &client,
        &tx.signature,
        Confirmation::Confirmed,
        Duration::from_secs(30),
    )
    .await;

    let fetched = client
        .fetch_transaction(&tx.signature, Commitment::Confirmed)
        .await
        .unwrap()
        .expect("confirmed transaction is found");
    assert_eq!(fetched.signature, tx.signature);
    assert_eq!(fetched.memos, vec![memo.to_string()]);
    assert_eq!(fetched.fee_payer, payer_of(&client));
    assert!(fetched.succeeded);
    assert_eq!(fetched.fee_lamports, tx.fee_lamports_estimate());
    assert!(fetched.slot > 0);
    assert!(fetched.block_time.is_some());

    let balance = client.balance(&payer_of(&client)).await.unwrap();
    assert_eq!(balance, FUNDING - fetched.fee_lamports);

    // Unknown signatures are `None`, not errors, at both levels.
    let unknown = sign_memo_transaction(
        &AnchorKeypair::generate(),
        "never sent",
        &tx_blockhash_placeholder(),
        0,
        0,
    )
    .unwrap();
    for level in [Commitment::Confirmed, Commitment::Finalized] {
        assert_eq!(
            client
                .fetch_transaction(&unknown.signature, level)
                .await
                .unwrap(),
            None
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_fee_is_charged_as_estimated() {
    let env = chain_env().await.expect("a local validator");
    let client = ChainClient::read_only(ChainConfig::new(env.rpc_url(), Cluster::Localnet));
    // Sign with an explicit price to check the fee arithmetic against the real runtime
    // (a quiet local validator reports no recent fees, so `build` would pick 0).
    let rpc = RpcClient::new(env.rpc_url().to_string());
    let (blockhash, last_valid) = rpc
        .get_latest_blockhash_with_commitment(CommitmentConfig::confirmed())
        .await
        .unwrap();
    let memo = "x".repeat(300);
    let kp = AnchorKeypair::generate();
    airdrop(env.rpc_url(), &kp.pubkey_base58(), FUNDING)
        .await
        .unwrap();
    let tx = sign_memo_transaction(&kp, &memo, &blockhash.to_string(), last_valid, 12_345).unwrap();
    let sender = ChainClient::new(client.config().clone(), kp);
    sender.send_transaction_bytes(&tx.bytes).await.unwrap();
    wait_for(
        &client,
        &tx.signature,
        Confirmation::Confirmed,
        Duration::from_secs(30),
    )
    .await;
    let fetched = client
        .fetch_transaction(&tx.signature, Commitment::Confirmed)
        .await
        .unwrap()
        .unwrap();
    let priority = (u64::from(tx.compute_unit_limit) * 12_345).div_ceil(1_000_000);
    assert_eq!(fetched.fee_lamports, 5_000 + priority);
    assert_eq!(fetched.fee_lamports, tx.fee_lamports_estimate());
    assert_eq!(Some(fetched.fee_payer), sender.payer_pubkey());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn largest_memo_lands_within_its_compute_limit() {
    let (_env, client) = funded_client().await;
    let memo: String = (0..MAX_MEMO_BYTES)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let tx = anchor(&client, &memo).await;
    assert_eq!(
        tx.compute_unit_limit,
        compute_unit_limit_for_memo(MAX_MEMO_BYTES)
    );
    assert!(
        tx.compute_unit_limit > 200_000,
        "needs more than the default limit"
    );
    wait_for(
        &client,
        &tx.signature,
        Confirmation::Confirmed,
        Duration::from_secs(30),
    )
    .await;
    let fetched = client
        .fetch_transaction(&tx.signature, Commitment::Confirmed)
        .await
        .unwrap()
        .unwrap();
    assert!(fetched.succeeded);
    assert_eq!(fetched.memos, vec![memo.clone()]);

    let too_long = format!("{memo}!");
    let err = client.build_memo_transaction(&too_long).await.unwrap_err();
    assert!(matches!(err, ChainError::MemoTooLong { .. }));
    assert_eq!(err.class(), ErrorClass::Permanent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memo_compute_unit_limit_covers_the_simulated_cost() {
    let (_env, client) = funded_client().await;
    let mut measured = Vec::new();
    for len in [0usize, 1, 10, 50, 100, 250, 500, 566, 750, 900, 1_000] {
        let memo = "m".repeat(len);
        let units = client.simulate_memo_compute_units(&memo).await.unwrap();
        let limit = u64::from(compute_unit_limit_for_memo(len));
        measured.push((len, units, limit));
    }
    // Printed so the numbers in `fees.rs` can be refreshed from a run with --nocapture.
    eprintln!("(memo length, units consumed, our limit): {measured:?}");
    for (len, units, limit) in measured {
        assert!(
            units <= limit,
            "memo of {len} bytes uses {units} CU > limit {limit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_the_same_bytes_twice_lands_one_transaction() {
    let (_env, client) = funded_client().await;
    let tx = anchor(&client, "ca1:c:test-issuer:dedup").await;
    // Rebroadcast right away, then again after it landed: both are harmless.
    assert_eq!(
        client.send_transaction_bytes(&tx.bytes).await.unwrap(),
        tx.signature
    );
    wait_for(
        &client,
        &tx.signature,
        Confirmation::Confirmed,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        client.send_transaction_bytes(&tx.bytes).await.unwrap(),
        tx.signature
    );
    wait_for(
        &client,
        &tx.signature,
        Confirmation::Finalized,
        testkit::FINALITY_DEADLINE,
    )
    .await;
    // Give a duplicate every chance to land before looking.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let history = client
        .signatures_for_address(&payer_of(&client), None, None, 1_000)
        .await
        .unwrap();
    let memo_txs: Vec<_> = history.iter().filter(|s| s.memo.is_some()).collect();
    assert_eq!(memo_txs.len(), 1, "{history:?}");
    assert_eq!(memo_txs[0].signature, tx.signature);
    assert_eq!(
        memo_txs[0].inline_memos(),
        Some(vec!["ca1:c:test-issuer:dedup".to_string()])
    );
    assert!(!memo_txs[0].err);
    let balance = client.balance(&payer_of(&client)).await.unwrap();
    assert_eq!(
        balance,
        FUNDING - tx.fee_lamports_estimate(),
        "charged once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_for_address_pages_with_before_and_until() {
    let (_env, client) = funded_client().await;
    let mut sigs = Vec::new();
    for i in 1..=3 {
        let tx = anchor(&client, &format!("ca1:c:test-issuer:page-{i}")).await;
        // One at a time, so each lands in a later slot than the previous one.
        wait_for(
            &client,
            &tx.signature,
            Confirmation::Confirmed,
            Duration::from_secs(30),
        )
        .await;
        sigs.push(tx.signature);
    }
    for sig in &sigs {
        wait_for(
            &client,
            sig,
            Confirmation::Finalized,
            testkit::FINALITY_DEADLINE,
        )
        .await;
    }
    let payer = payer_of(&client);
    let page = |before: Option<String>, until: Option<String>, limit: usize| {
        let client = client.clone();
        let payer = payer.clone();
        async move {
            client
                .signatures_for_address(&payer, before.as_deref(), until.as_deref(), limit)
                .await
                .unwrap()
                .into_iter()
                .filter(|s| s.memo.is_some()) // drop the airdrop
                .map(|s| s.signature)
                .collect::<Vec<_>>()
        }
    };
    let (s1, s2, s3) = (sigs[0].clone(), sigs[1].clone(), sigs[2].clone());
    // Newest first.
    assert_eq!(
        page(None, None, 1_000).await,
        vec![s3.clone(), s2.clone(), s1.clone()]
    );
    assert_eq!(page(None, None, 1).await, vec![s3.clone()]);
    assert_eq!(page(Some(s3.clone()), None, 1).await, vec![s2.clone()]);
    assert_eq!(page(Some(s2.clone()), None, 1).await, vec![s1.clone()]);
    assert_eq!(
        page(None, Some(s1.clone()), 10).await,
        vec![s3.clone(), s2.clone()]
    );
    assert_eq!(
        page(Some(s3.clone()), Some(s1.clone()), 10).await,
        vec![s2.clone()]
    );
    assert!(page(Some(s1.clone()), Some(s1), 10).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_with_an_unknown_blockhash_never_lands() {
    let env = chain_env().await.expect("a local validator");
    let kp = AnchorKeypair::generate();
    airdrop(env.rpc_url(), &kp.pubkey_base58(), FUNDING)
        .await
        .unwrap();
    // A hash no block ever had: for the runtime the same as an expired blockhash.
    let tx = sign_memo_transaction(&kp, "never lands", &tx_blockhash_placeholder(), 1, 0).unwrap();
    let client = ChainClient::new(ChainConfig::new(env.rpc_url(), Cluster::Localnet), kp);
    // Without preflight the node accepts it for forwarding...
    assert_eq!(
        client.send_transaction_bytes(&tx.bytes).await.unwrap(),
        tx.signature
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    // ...but it never lands, and nothing was charged.
    let statuses = client
        .signature_statuses(std::slice::from_ref(&tx.signature))
        .await
        .unwrap();
    assert_eq!(statuses, vec![None]);
    assert_eq!(client.balance(&payer_of(&client)).await.unwrap(), FUNDING);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_client_reads_but_cannot_send() {
    let (env, client) = funded_client().await;
    let tx = anchor(&client, "ca1:c:test-issuer:read-only").await;
    let reader = ChainClient::read_only(ChainConfig::new(env.rpc_url(), Cluster::Localnet));
    reader.health().await.unwrap();
    wait_for(
        &reader,
        &tx.signature,
        Confirmation::Confirmed,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        reader.balance(&payer_of(&client)).await.unwrap(),
        FUNDING - tx.fee_lamports_estimate()
    );
    let err = reader.send_transaction_bytes(&tx.bytes).await.unwrap_err();
    assert!(matches!(err, ChainError::ReadOnly));
    assert_eq!(err.class(), ErrorClass::Permanent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airdrop_through_the_client_is_confirmed() {
    let env = chain_env().await.unwrap();
    let reader = ChainClient::read_only(ChainConfig::new(env.rpc_url(), Cluster::Localnet));
    let kp = AnchorKeypair::generate();
    reader
        .request_airdrop_and_confirm(&kp.pubkey_base58(), 123_456_789)
        .await
        .unwrap();
    assert_eq!(
        reader.balance(&kp.pubkey_base58()).await.unwrap(),
        123_456_789
    );
}
