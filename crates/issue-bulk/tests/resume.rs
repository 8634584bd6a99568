//! The bulk command against the real stack (issuer-api, outbox-relay in merkle mode,
//! PostgreSQL, local validator): killed with SIGKILL mid-upload, then re-run, it issues each
//! row exactly once and writes a valid proof bundle per row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use chain::AnchorKeypair;
use domain::proof::{check_offline, ProofBundle};
use domain::sealed::MasterKey;
use domain::{AnchoringMode, IssuerId, RetryPolicy};
use provisioning::create_issuer;
use store::DatabaseSettings;

const ROWS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_mid_upload_then_rerun_issues_each_row_once_and_writes_every_proof() {
    let db = testkit::test_db().await.unwrap();
    let chain_env = testkit::validator::chain_env().await.unwrap();
    let master = MasterKey::generate(&ring::rand::SystemRandom::new()).unwrap();
    let app = issuer_api::Application::build(issuer_api::Settings {
        http: issuer_api::settings::HttpSettings {
            host: "127.0.0.1".into(),
            port: 0,
            workers: Some(2),
            // The per-key limit has its own tests; here clients issue as fast as they can.
            rate_limit_per_second: 0,
            ..Default::default()
        },
        database: DatabaseSettings::new(&db.url),
        signing: issuer_api::settings::SigningSettings {
            master_key: master.to_base64().into(),
        },
        log: Default::default(),
        explorer: Default::default(),
        chain: Default::default(),
    })
    .await
    .unwrap();
    let api = format!("http://127.0.0.1:{}", app.port());
    let store = app.store().clone();
    tokio::spawn(app.into_server());

    let dir = tempfile::tempdir().unwrap();
    let keypair = AnchorKeypair::generate();
    let keypair_path = dir.path().join("anchor.json");
    std::fs::write(&keypair_path, keypair.to_json_string()).unwrap();
    testkit::validator::airdrop(
        chain_env.rpc_url(),
        &keypair.pubkey_base58(),
        10_000_000_000,
    )
    .await
    .unwrap();
    let issuer = create_issuer(
        &store,
        &master,
        &IssuerId::parse("uni-bulk").unwrap(),
        "Bulk University",
        &keypair.pubkey_base58(),
    )
    .await
    .unwrap();

    let relay = outbox_relay::Application::build(outbox_relay::Settings {
        database: DatabaseSettings::new(&db.url),
        chain: outbox_relay::settings::ChainSettings {
            rpc_url: chain_env.rpc_url().to_string(),
            cluster: "localnet".into(),
            keypair_path,
            priority_fee_cap_micro_lamports: 10_000,
            priority_fee_percentile: 75,
            request_timeout_ms: 3_000,
        },
        relay: outbox_relay::settings::RelaySettings {
            worker_id: Some("relay-bulk".into()),
            lease_ms: 2_000,
            poll_interval_ms: 200,
            track_interval_ms: 500,
            retry: RetryPolicy {
                base: Duration::from_millis(200),
                cap: Duration::from_secs(2),
                max_attempts: 10,
            },
            mode: AnchoringMode::Merkle,
            batch_max_members: 1000,
            batch_max_wait_ms: 500,
            ..Default::default()
        },
        probes: outbox_relay::settings::ProbeSettings {
            host: "127.0.0.1".into(),
            port: 0,
        },
        log: Default::default(),
    })
    .await
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay.run_until(async move {
        let _ = stopped.await;
    }));

    // The class: ROWS small PDFs and their CSV.
    let files = dir.path().join("pdfs");
    std::fs::create_dir_all(&files).unwrap();
    let mut csv =
        String::from("serial,recipient_id,issued_at,credential_type,title,file,honours\n");
    for i in 0..ROWS {
        std::fs::write(files.join(format!("{i}.pdf")), format!("%PDF diploma {i}")).unwrap();
        csv.push_str(&format!(
            "2026/BSC-{i},student-{i},2026-06-30T12:00:00Z,diploma,BSc Physics,{i}.pdf,{}\n",
            if i % 10 == 0 { "cum laude" } else { "" }
        ));
    }
    let csv_path = dir.path().join("graduates.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let out = dir.path().join("proofs");
    let command = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_issue-bulk"));
        c.args(["--csv", csv_path.to_str().unwrap()])
            .args(["--files", files.to_str().unwrap()])
            .args(["--api", &api])
            .args(["--out", out.to_str().unwrap()])
            .args(["--chunk-size", "10", "--timeout-secs", "120"])
            .env("ISSUER_API_KEY", &issuer.api_key)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };

    // First run: SIGKILL as soon as the first chunk is acknowledged.
    let mut first = command().spawn().unwrap();
    let stderr = first.stderr.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stderr).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(line.starts_with("chunk 1/30 sent"), "{line}");
    let after_kill = count(&db.url, "SELECT count(*) FROM credentials").await;
    assert!(
        (10..ROWS as i64).contains(&after_kill),
        "killed mid-upload: {after_kill} issued"
    );

    // Second run: resumes, waits for finality, writes every proof.
    let mut rerun = command();
    let second = tokio::task::spawn_blocking(move || rerun.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("replayed"), "{stderr}");

    assert_eq!(
        count(&db.url, "SELECT count(*) FROM credentials").await,
        ROWS as i64
    );
    assert_eq!(
        count(
            &db.url,
            "SELECT count(DISTINCT serial) FROM credentials WHERE status = 'finalized'"
        )
        .await,
        ROWS as i64
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("issue-bulk-report.json")).unwrap())
            .unwrap();
    assert!(report["chunks_replayed"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(
        report["accepted"].as_u64().unwrap() + report["duplicates"].as_u64().unwrap(),
        ROWS as u64
    );
    assert_eq!(report["proofs_written"], ROWS);
    for i in 0..ROWS {
        let path = out.join(issue_bulk::proof_file_name(&format!("2026/BSC-{i}")));
        let bundle: ProofBundle = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let file = std::fs::read(files.join(format!("{i}.pdf"))).unwrap();
        check_offline(&bundle, Some(&file)).unwrap();
    }
    let _ = stop.send(());
    relay_task.await.unwrap().unwrap();
}

async fn count(url: &str, sql: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.query_one(sql, &[]).await.unwrap().get(0)
}
