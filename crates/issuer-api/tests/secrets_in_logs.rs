//! The real binary at `debug` log level, exercised with secrets: its captured logs must not
//! contain the API key (or its secret part), the master key, or any byte of a credential file
//! (raw, base64, or the recipient id, which is personal data).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

#[tokio::test]
async fn debug_logs_never_contain_keys_file_contents_or_recipients() {
    let db = testkit::test_db().await.unwrap();
    let bin = env!("CARGO_BIN_EXE_issuer-api");
    let master = String::from_utf8(
        Command::new(bin)
            .args(["admin", "new-master-key"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let port = testkit::ports::free_port().unwrap();
    let env = [
        ("APP__DATABASE__URL", db.url.clone()),
        ("APP__SIGNING__MASTER_KEY", master.clone()),
        ("APP__HTTP__HOST", "127.0.0.1".into()),
        ("APP__HTTP__PORT", port.to_string()),
        ("APP__LOG__FILTER", "debug".into()),
        ("APP__LOG__FORMAT", "json".into()),
        // Required of every service; nothing listens there (this test never reads the chain).
        ("APP__CHAIN__RPC_URL", "http://127.0.0.1:9".into()),
    ];
    let created = Command::new(bin)
        .args([
            "admin",
            "create-issuer",
            "--id",
            "uni-logs",
            "--name",
            "Logs University",
            "--anchor-pubkey",
            "11111111111111111111111111111112",
        ])
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let api_key = created["api_key"].as_str().unwrap().to_string();
    let secret_part = api_key.rsplit('_').next().unwrap().to_string();

    let log_path = std::env::temp_dir().join(format!("issuer-api-log-{port}.txt"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Command::new(bin)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let api = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("{api}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let file = b"%PDF-1.7 TOP-SECRET-TRANSCRIPT-CONTENT grades: A A A";
    let file_b64 = base64::engine::general_purpose::STANDARD.encode(file);
    let recipient = "student-PII-4242";
    let body = json!({
        "recipient_id": recipient, "issued_at": "2026-06-30T12:00:00Z", "serial": "LOG-1",
        "credential_type": "diploma", "title": "BSc", "file_base64": file_b64,
    });
    let ok = http
        .post(format!("{api}/v1/credentials"))
        .bearer_auth(&api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 202);
    // Failures that log: a wrong secret for a real key id, malformed bodies, a bulk request.
    let wrong = format!("{}WRONG", &api_key[..api_key.len() - 5]);
    let r = http
        .post(format!("{api}/v1/credentials"))
        .bearer_auth(&wrong)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let mut bad = body.clone();
    bad["issued_at"] = "nope".into();
    http.post(format!("{api}/v1/credentials"))
        .bearer_auth(&api_key)
        .json(&bad)
        .send()
        .await
        .unwrap();
    http.post(format!("{api}/v1/credential-batches"))
        .bearer_auth(&api_key)
        .json(&json!({"credentials": [body, bad]}))
        .send()
        .await
        .unwrap();
    http.post(format!("{api}/v1/credentials"))
        .bearer_auth(&api_key)
        .header("Content-Type", "application/json")
        .body(format!("{{\"file_base64\": \"{file_b64}\", oops"))
        .send()
        .await
        .unwrap();

    let _ = server.kill();
    let _ = server.wait();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(
        logs.lines().count() >= 5,
        "expected debug logs, got:\n{logs}"
    );
    for (what, needle) in [
        ("API key", api_key.as_str()),
        ("API key secret", secret_part.as_str()),
        ("wrong API key", wrong.as_str()),
        ("master key", master.as_str()),
        ("file contents", "TOP-SECRET-TRANSCRIPT-CONTENT"),
        ("file base64", &file_b64[..40]),
        ("recipient id", recipient),
    ] {
        let line = logs.lines().find(|l| l.contains(needle)).unwrap_or("");
        assert!(!logs.contains(needle), "{what} found in the logs: {line}");
    }
}
