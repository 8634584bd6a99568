//! Probes, metrics, OpenAPI, and database outages.

use serde_json::Value;

use crate::helpers::{credential_json, error_code, spawn_app, spawn_app_on};

#[tokio::test]
async fn health_ready_metrics_and_openapi_are_served() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        app.post_json(&credential_json("S-M1"), None)
            .await
            .status()
            .as_u16(),
        202
    );
    let _ = app
        .get("/v1/credentials/not-a-uuid", &app.issuer.api_key)
        .await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"credentials_issued_total{issuer="uni-a"} 1"#),
        "{metrics}"
    );
    // Labelled by route pattern, never by raw path.
    assert!(
        metrics.contains(r#"route="/v1/credentials/{id}""#),
        "{metrics}"
    );
    assert!(!metrics.contains("not-a-uuid"));
    assert!(metrics.contains("http_request_duration_seconds_bucket"));

    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/v1/credentials"]["post"].is_object(), "{doc}");
    assert!(doc["paths"]["/v1/credentials/{id}"]["get"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn database_outage_gives_503_with_retry_after_then_recovers() {
    // A server of our own, so stopping it affects no other test.
    let pg = std::sync::Arc::new(testkit::TestPostgres::start().unwrap());
    let env = testkit::PgEnv::Owned(pg.clone());
    let url = env.create_database().await.unwrap();
    let app = spawn_app_on(testkit::TestDb { url, env }, |s| {
        s.database.acquire_timeout_ms = 1000
    })
    .await;
    assert_eq!(
        app.post_json(&credential_json("S-O1"), Some("o-1"))
            .await
            .status()
            .as_u16(),
        202
    );

    pg.stop().unwrap();
    let resp = app.post_json(&credential_json("S-O2"), Some("o-2")).await;
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers()["retry-after"], "2");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "database_unavailable");
    assert!(
        !body["message"].as_str().unwrap().contains("127.0.0.1"),
        "no internals leak"
    );
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    pg.start_again().unwrap();
    // The client retries with its key and succeeds: nothing lost, nothing doubled.
    let mut status = 0;
    for _ in 0..20 {
        status = app
            .post_json(&credential_json("S-O2"), Some("o-2"))
            .await
            .status()
            .as_u16();
        if status == 202 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(status, 202);
    let (status, _) = error_code(app.post_json(&credential_json("S-O2"), Some("o-2")).await).await;
    assert_eq!(status, 202);
    assert_eq!(app.row_counts().await, (2, 2));
}
