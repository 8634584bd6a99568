//! The bulk command against the real stack (issuer-api, outbox-relay in merkle mode,
//! PostgreSQL, local validator): killed with SIGKILL mid-upload, then re-run, it issues each
//! row exactly once and writes a valid proof bundle per row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use domain::proof::{check_offline, ProofBundle};

const ROWS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_mid_upload_then_rerun_issues_each_row_once_and_writes_every_proof() {
    let w = stack::Stack::builder()
        .issuer("uni-bulk", "Bulk University")
        .lamports(10_000_000_000)
        .start()
        .await;
    let (api, issuer, dir) = (&w.api, &w.issuer, &w.dir);
    let mut settings = w.merkle_settings(w.chain_env.rpc_url(), "relay-bulk", 1000, 500);
    settings.relay.retry.max_attempts = 10;
    let relay = outbox_relay::Application::build(settings).await.unwrap();
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
            .args(["--api", api])
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
    let after_kill = count(&w.db.url, "SELECT count(*) FROM credentials").await;
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
        count(&w.db.url, "SELECT count(*) FROM credentials").await,
        ROWS as i64
    );
    assert_eq!(
        count(
            &w.db.url,
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
        // The VC beside it: the bytes the API stored, matching this bundle.
        let vc_path = out.join(issue_bulk::vc_file_name(&format!("2026/BSC-{i}")));
        let vc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&vc_path).unwrap()).unwrap();
        assert_eq!(bundle.vc.as_ref(), Some(&vc));
        verifier::check_vc(&bundle, &vc).unwrap();
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
