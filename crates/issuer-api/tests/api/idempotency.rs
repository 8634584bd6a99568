//! Idempotency-Key semantics, including concurrent identical requests.

use serde_json::Value;

use crate::helpers::{credential_json, error_code, spawn_app};

#[tokio::test]
async fn same_key_and_body_replays_the_first_response() {
    let app = spawn_app().await;
    let first = app.post_json(&credential_json("S-I1"), Some("key-1")).await;
    assert_eq!(first.status().as_u16(), 202);
    let first: Value = first.json().await.unwrap();
    let second = app.post_json(&credential_json("S-I1"), Some("key-1")).await;
    // A replay is the same answer, status included: the client cannot tell it retried.
    assert_eq!(second.status().as_u16(), 202);
    assert!(second.headers().contains_key("location"));
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(app.row_counts().await, (1, 1));
}

#[tokio::test]
async fn same_key_with_a_different_body_is_422_and_writes_nothing() {
    let app = spawn_app().await;
    assert_eq!(
        app.post_json(&credential_json("S-I2"), Some("key-2"))
            .await
            .status()
            .as_u16(),
        202
    );
    let (status, body) =
        error_code(app.post_json(&credential_json("S-I3"), Some("key-2")).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    assert_eq!(app.row_counts().await, (1, 1));
}

#[tokio::test]
async fn keys_are_scoped_per_issuer() {
    let app = spawn_app().await;
    let other = app.second_issuer("uni-b").await;
    assert_eq!(
        app.post_json(&credential_json("S-I4"), Some("shared"))
            .await
            .status()
            .as_u16(),
        202
    );
    let resp = app
        .client
        .post(app.url("/v1/credentials"))
        .bearer_auth(&other.api_key)
        .header("Idempotency-Key", "shared")
        .json(&credential_json("S-I4"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    assert_eq!(app.row_counts().await, (2, 2));
}

#[tokio::test]
async fn concurrent_identical_requests_with_one_key_create_one_credential() {
    let app = spawn_app().await;
    let body = credential_json("S-CONC");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let client = app.client.clone();
        let url = app.url("/v1/credentials");
        let key = app.issuer.api_key.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(key)
                .header("Idempotency-Key", "conc-1")
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (status, body["id"].as_str().unwrap().to_string())
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (status, id) = t.await.unwrap();
        assert_eq!(status, 202);
        ids.insert(id);
    }
    assert_eq!(ids.len(), 1, "every response names the same credential");
    assert_eq!(app.row_counts().await, (1, 1));
}

#[tokio::test]
async fn concurrent_requests_without_key_but_same_serial_create_one_credential() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = app.client.clone();
        let url = app.url("/v1/credentials");
        let key = app.issuer.api_key.clone();
        let body = credential_json("S-RACE");
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 200),
        "{statuses:?}"
    );
    assert_eq!(app.row_counts().await, (1, 1));
}

#[tokio::test]
async fn malformed_idempotency_keys_are_400() {
    let app = spawn_app().await;
    let long = "k".repeat(256);
    for key in ["has space", long.as_str()] {
        let (status, body) =
            error_code(app.post_json(&credential_json("S-I5"), Some(key)).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_idempotency_key")),
            "{key}"
        );
    }
    assert_eq!(app.row_counts().await, (0, 0));
}
