//! `POST /v1/credential-batches`: per-item results, one bad row never poisons the others,
//! duplicates and conflicts named, idempotent replays, counts by status, and proof bundles
//! only once anchored.

use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

fn item(serial: &str) -> Value {
    json!({
        "recipient_id": format!("student-{serial}"),
        "issued_at": "2026-06-30T12:00:00Z",
        "serial": serial,
        "credential_type": "diploma",
        "title": "BSc Computer Science",
        "file_base64": base64::engine::general_purpose::STANDARD.encode(format!("%PDF {serial}")),
    })
}

async fn post_batch(
    app: &TestApp,
    body: Vec<u8>,
    content_type: &str,
    key: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/v1/credential-batches"))
        .bearer_auth(&app.issuer.api_key)
        .header("Content-Type", content_type)
        .body(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    req.send().await.unwrap()
}

fn json_body(items: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "credentials": items })).unwrap()
}

#[tokio::test]
async fn a_request_with_some_invalid_rows_accepts_the_valid_ones_and_reports_the_rest() {
    let app = spawn_app().await;
    // An existing credential: same content → duplicate, different content → conflict.
    assert_eq!(
        app.post_json(&item("OLD-1"), None).await.status().as_u16(),
        202
    );
    assert_eq!(
        app.post_json(&item("OLD-2"), None).await.status().as_u16(),
        202
    );
    let mut conflicting = item("OLD-2");
    conflicting["title"] = "MSc".into();
    let mut bad_date = item("BAD-DATE");
    bad_date["issued_at"] = "2026-13-01T00:00:00Z".into();
    let mut missing = item("MISSING");
    missing.as_object_mut().unwrap().remove("recipient_id");
    let items = vec![
        item("NEW-1"),
        bad_date,
        item("OLD-1"),
        conflicting,
        missing,
        item("NEW-2"),
        item("NEW-1"),
        json!("not an object"),
    ];
    let (before, _) = app.row_counts().await;
    let resp = post_batch(&app, json_body(&items), "application/json", None).await;
    assert_eq!(resp.status().as_u16(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["submitted"], 8);
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["duplicates"], 1);
    assert_eq!(v["invalid"], 5);
    let r = &v["items"];
    assert_eq!(r[0]["status"], "accepted");
    assert_eq!(
        (r[1]["code"].as_str(), r[1]["field"].as_str()),
        (Some("invalid_field"), Some("issued_at"))
    );
    assert_eq!(r[2]["status"], "duplicate");
    assert_eq!(r[3]["code"], "serial_conflict");
    assert!(r[3]["existing_id"].is_string());
    assert_eq!(
        (r[4]["code"].as_str(), r[4]["field"].as_str()),
        (Some("missing_field"), Some("recipient_id"))
    );
    assert_eq!(r[5]["status"], "accepted");
    assert_eq!(r[6]["code"], "duplicate_in_request");
    assert_eq!(r[7]["code"], "invalid_json");
    for (i, result) in r.as_array().unwrap().iter().enumerate() {
        assert_eq!(result["index"], i);
    }
    // Exactly the accepted rows were written, each with its outbox row.
    assert_eq!(app.row_counts().await, (before + 2, before + 2));

    // The duplicate points at the existing credential.
    let old: Value = app
        .get(
            &format!("/v1/credentials/{}", r[2]["id"].as_str().unwrap()),
            &app.issuer.api_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(old["serial"], "OLD-1");

    // Counts by status.
    let summary: Value = app
        .get(&location, &app.issuer.api_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["accepted"], 2);
    assert_eq!(summary["statuses"]["queued"], 2);
    assert_eq!(summary["all_finalized"], false);

    // No proof bundle before the anchor is finalized.
    let resp = app
        .get(
            &format!("/v1/credentials/{}/proof", r[0]["id"].as_str().unwrap()),
            &app.issuer.api_key,
        )
        .await;
    assert_eq!(resp.status().as_u16(), 409);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["code"], "proof_not_available");
}

#[tokio::test]
async fn ndjson_and_file_digests_issue_the_same_credential_hash_as_the_bytes() {
    let app = spawn_app().await;
    let mut by_digest = item("D-1");
    by_digest.as_object_mut().unwrap().remove("file_base64");
    by_digest["file_sha256"] = domain::FileDigest::of(b"%PDF D-1").to_hex().into();
    let ndjson = format!("{}\n{}\n", by_digest, item("D-2"));
    let resp = post_batch(&app, ndjson.into_bytes(), "application/x-ndjson", None).await;
    assert_eq!(resp.status().as_u16(), 202);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["accepted"], 2);
    // The same credential sent with its bytes to the single endpoint is a duplicate: the
    // digest form hashed exactly like the bytes.
    let resp = app.post_json(&item("D-1"), None).await;
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn bulk_idempotency_replays_the_stored_answer_and_refuses_a_different_body() {
    let app = spawn_app().await;
    let body = json_body(&[item("I-1"), item("I-2")]);
    let first = post_batch(&app, body.clone(), "application/json", Some("chunk-1")).await;
    assert_eq!(first.status().as_u16(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = post_batch(&app, body, "application/json", Some("chunk-1")).await;
    assert_eq!(again.status().as_u16(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(app.row_counts().await, (2, 2));
    let other = post_batch(
        &app,
        json_body(&[item("I-3")]),
        "application/json",
        Some("chunk-1"),
    )
    .await;
    assert_eq!(other.status().as_u16(), 422);
    // Without a key, the same rows again are duplicates, not new credentials (200).
    let resp = post_batch(&app, json_body(&[item("I-1")]), "application/json", None).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(app.row_counts().await, (2, 2));
}

#[tokio::test]
async fn malformed_empty_and_foreign_requests_are_refused_whole_with_stable_codes() {
    let app = spawn_app().await;
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (b"{".to_vec(), "application/json", 400, "invalid_json"),
        (b"[]".to_vec(), "application/json", 400, "invalid_json"),
        (
            br#"{"credentials": []}"#.to_vec(),
            "application/json",
            400,
            "invalid_field",
        ),
        (
            br#"{"credentials": [], "x": 1}"#.to_vec(),
            "application/json",
            400,
            "invalid_json",
        ),
        (
            b"serial\n".to_vec(),
            "text/csv",
            415,
            "unsupported_media_type",
        ),
        (
            b"\n\n".to_vec(),
            "application/x-ndjson",
            400,
            "invalid_field",
        ),
    ];
    for (body, ct, status, code) in cases {
        let resp = post_batch(&app, body.clone(), ct, None).await;
        assert_eq!(
            resp.status().as_u16(),
            status,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["code"], code);
    }
    assert_eq!(app.row_counts().await, (0, 0));
    // Another issuer sees neither the batch nor its proofs.
    let resp = post_batch(&app, json_body(&[item("X-1")]), "application/json", None).await;
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let other = app.second_issuer("uni-b").await;
    for path in [location.clone(), format!("{location}/proofs")] {
        let resp = app.get(&path, &other.api_key).await;
        assert_eq!(resp.status().as_u16(), 404);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["code"], "credential_batch_not_found");
    }
    let resp = app
        .get("/v1/credential-batches/not-a-uuid", &app.issuer.api_key)
        .await;
    assert_eq!(resp.status().as_u16(), 400);
    // Unauthenticated.
    let resp = app
        .client
        .post(app.url("/v1/credential-batches"))
        .json(&json!({"credentials": [item("Z")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

/// Bulk requests stream their rows with COPY. Two requests racing over the same serials (the
/// failpoint holds both just before): the loser's COPY waits for the winner's commit, fails on
/// the unique serial, and its row-wise fallback reports each shared item as a duplicate or a
/// conflict. Every serial is written once, with one outbox row.
#[tokio::test]
async fn racing_bulk_requests_over_the_same_serials_write_each_once_and_name_the_rest() {
    let app = spawn_app().await;
    fail::cfg("store::bulk::before_copy", "return(700)").unwrap();
    let serials: Vec<String> = (0..300).map(|i| format!("RACE-{i}")).collect();
    let same: Vec<Value> = serials.iter().map(|s| item(s)).collect();
    // The second request: the same serials, every tenth with a different title, plus
    // serials of its own.
    let mut other: Vec<Value> = same.clone();
    for (i, v) in other.iter_mut().enumerate() {
        if i % 10 == 0 {
            v["title"] = "MSc".into();
        }
    }
    other.extend((0..50).map(|i| item(&format!("OWN-{i}"))));
    let (before, _) = app.row_counts().await;

    let (a, b) = tokio::join!(
        post_batch(&app, json_body(&same), "application/json", None),
        post_batch(&app, json_body(&other), "application/json", None),
    );
    fail::remove("store::bulk::before_copy");
    let (a_status, b_status) = (a.status().as_u16(), b.status().as_u16());
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    // 202 when something new was accepted, 200 when nothing was.
    for (status, v) in [(a_status, &a), (b_status, &b)] {
        let expected = if v["accepted"].as_u64() > Some(0) {
            202
        } else {
            200
        };
        assert_eq!(status, expected, "{v}");
    }

    // 300 shared serials + 50 own: each created exactly once, with its outbox row.
    assert_eq!(app.row_counts().await, (before + 350, before + 350));
    let accepted = a["accepted"].as_u64().unwrap() + b["accepted"].as_u64().unwrap();
    assert_eq!(accepted, 350, "{a}\n{b}");
    // Whichever lost the race reports the shared serials it did not write.
    let statuses = |v: &Value, pick: &dyn Fn(usize) -> bool| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(i, _)| pick(*i))
            .map(|(_, r)| {
                r["status"]
                    .as_str()
                    .filter(|s| *s != "invalid")
                    .or(r["code"].as_str())
                    .unwrap_or("?")
                    .to_string()
            })
            .collect()
    };
    // The loser wrote only what was its own: `b`'s 50 extra serials, if `b` lost.
    let (loser, own) = if a["accepted"] == 300 {
        (&b, 50)
    } else {
        assert_eq!(b["accepted"], 350, "{a}\n{b}");
        (&a, 0)
    };
    // Identical items are duplicates, retitled ones conflicts.
    for (i, s) in statuses(loser, &|i| i < 300).iter().enumerate() {
        let expected = if i % 10 == 0 {
            "serial_conflict"
        } else {
            "duplicate"
        };
        assert_eq!(s, expected, "item {i}: {loser}");
    }
    let own_statuses = statuses(loser, &|i| i >= 300);
    assert_eq!(own_statuses.len(), own);
    assert!(own_statuses.iter().all(|s| s == "accepted"));
}
