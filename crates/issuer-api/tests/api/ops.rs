//! Probes, metrics, OpenAPI, and database outages.

use serde_json::Value;

use crate::helpers::{credential_json, error_code, spawn_app, spawn_app_on, spawn_app_with};

/// An RPC endpoint nobody listens on (a real closed port, as the demo once hit) degrades
/// verification only: readiness stays 200 so issuance keeps its pods, and says which
/// endpoint is unreachable, with the path (where providers put API keys) hidden.
#[tokio::test]
async fn readiness_names_an_unreachable_rpc_endpoint_without_becoming_unready() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = spawn_app_with(|s| {
        s.chain.rpc_url = format!("http://127.0.0.1:{port}/secret-api-key");
        s.chain.request_timeout_ms = 1_000;
    })
    .await;
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["chain"]["reachable"], false, "{body}");
    assert_eq!(body["degraded"], serde_json::json!(["verify"]));
    let rpc = body["chain"]["rpc"].as_str().unwrap();
    assert!(rpc.contains(&format!("127.0.0.1:{port}")), "{rpc}");
    assert!(!body.to_string().contains("secret-api-key"), "{body}");
    // Issuance is unaffected.
    assert_eq!(
        app.post_json(&credential_json("S-RPC1"), None)
            .await
            .status()
            .as_u16(),
        202
    );
}

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
    let metrics = app.metrics().await;
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

/// One `GET path` on an open connection; `None` when the server has closed it.
async fn get_on(stream: &mut tokio::net::TcpStream, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Some(text);
            }
        }
    }
}

/// actix closes idle connections after 5 s by default; clients (reqwest keeps them 90 s) and
/// load balancers (often 60 s) reuse them longer, and a request racing the close is lost
/// (`IncompleteMessage`, a 502 at the ingress). The default keeps them open longer than
/// those, and the setting is what the server applies.
#[tokio::test]
async fn idle_keep_alive_connections_outlive_the_actix_default_and_follow_the_setting() {
    let default = spawn_app().await;
    let short = spawn_app_with(|s| s.http.keep_alive_secs = 1).await;
    let address =
        |app: &crate::helpers::TestApp| app.url("").trim_start_matches("http://").to_string();
    let mut kept = tokio::net::TcpStream::connect(address(&default))
        .await
        .unwrap();
    let mut closed = tokio::net::TcpStream::connect(address(&short))
        .await
        .unwrap();
    for stream in [&mut kept, &mut closed] {
        let first = get_on(stream, "/healthz").await.expect("first response");
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    }

    tokio::time::sleep(std::time::Duration::from_secs(7)).await;

    let again = get_on(&mut kept, "/healthz")
        .await
        .expect("the default keeps an idle connection open past 5 s");
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    assert_eq!(
        get_on(&mut closed, "/healthz").await,
        None,
        "keep_alive_secs = 1 closes the idle connection"
    );
}

#[tokio::test]
async fn the_old_explorer_cluster_and_a_signing_keypair_are_refused_at_start_up() {
    let db = testkit::test_db().await.unwrap();
    let master = domain::sealed::MasterKey::generate(&ring::rand::SystemRandom::new()).unwrap();
    // A configuration from before the one [chain] section: refused, never silently verifying
    // against the default cluster.
    let mut moved = crate::helpers::settings_for(&db.url, &master);
    moved.explorer.cluster = Some(chain::Cluster::MainnetBeta);
    let err = issuer_api::Application::build(moved)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("chain.cluster"), "{err}");
    // The API never signs: a keypair in its configuration is a key where it is not needed.
    let mut keyed = crate::helpers::settings_for(&db.url, &master);
    keyed.chain.keypair_path = Some("/var/run/secrets/anchor/keypair.json".into());
    let err = issuer_api::Application::build(keyed)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("never signs"), "{err}");
    // The cluster now comes from chain.cluster.
    let mut devnet = crate::helpers::settings_for(&db.url, &master);
    devnet.chain.cluster = chain::Cluster::Devnet;
    assert!(issuer_api::Application::build(devnet).await.is_ok());
}

#[tokio::test]
async fn metrics_are_served_on_their_own_port_only() {
    let app = spawn_app().await;
    // The public port does not serve them, however the path is spelled: the same 404 as any
    // unknown path.
    for path in ["/metrics", "/%6Detrics", "/%6d%65trics", "/metrics?x=1"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "route_not_found", "{path}: {body}");
    }
    // The metrics port serves nothing else.
    for path in ["/v1/credentials", "/healthz", "/verify", "/openapi.json"] {
        let resp = app
            .client
            .get(format!("{}{path}", app.metrics_address))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path} on the metrics port");
    }
    assert!(app.metrics().await.contains("http_requests_total"));
}
