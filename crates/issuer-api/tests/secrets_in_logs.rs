//! The real binary at `debug` log level, exercised with secrets: its captured logs must not
//! contain the API key (or its secret part), the master key, or any byte of a credential file
//! (raw, base64, or the recipient id, which is personal data).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // each suite reads the fields it needs
#[path = "common/binary.rs"]
mod binary;

use base64::Engine;
use serde_json::json;

#[tokio::test]
async fn debug_logs_never_contain_keys_file_contents_or_recipients() {
    let log_path = std::env::temp_dir().join(format!(
        "issuer-api-log-{}.txt",
        uuid::Uuid::new_v4().simple()
    ));
    let binary::Served {
        db: _db,
        api,
        api_key,
        master_key: master,
        child: mut server,
        ..
    } = binary::serve("uni-logs", "debug", Some(&log_path)).await;
    // `cak_<hex id>_<base64url secret>`: the secret may itself contain '_' (and end with one,
    // which made `rsplit('_')` yield an empty needle that every line contains: this test then
    // failed about once in 64 runs).
    let secret_part = api_key.splitn(3, '_').nth(2).unwrap().to_string();
    assert!(secret_part.len() > 20, "{api_key}");
    let http = reqwest::Client::new();

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
