//! Per-API-key rate limiting: over the budget a key gets 429 `rate_limited` with
//! Retry-After and nothing is written; other keys are unaffected; the budget comes back.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{credential_json, error_code, spawn_app_with};

#[tokio::test]
async fn a_key_over_its_budget_gets_429_with_retry_after_and_writes_nothing() {
    let app = spawn_app_with(|s| {
        s.http.rate_limit_per_second = 1;
        s.http.rate_limit_burst = 3;
    })
    .await;
    let other = app.second_issuer("uni-b").await;

    let start = app.row_counts().await;
    // The burst: three requests pass (two reads, one issuance).
    for path in ["/v1/credentials", "/v1/credentials"] {
        assert_eq!(app.get(path, &app.issuer.api_key).await.status(), 200);
    }
    assert_eq!(
        app.post_json(&credential_json("RL-1"), None).await.status(),
        202
    );
    let before = (start.0 + 1, start.1 + 1);

    // Over the budget: an issuance is refused before its body is read.
    let resp = app.post_json(&credential_json("RL-2"), None).await;
    let retry_after = retry_after_secs(&resp);
    let (status, body) = error_code(resp).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")));
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // Reads are limited too, for this key only (asked at once: the budget refills in 1 s).
    let (status, _) = error_code(app.get("/v1/credentials", &app.issuer.api_key).await).await;
    assert_eq!(status, 429);
    assert_eq!(
        app.row_counts().await,
        before,
        "a limited request wrote rows"
    );
    let list = app.get("/v1/credentials", &other.api_key).await;
    assert_eq!(
        list.status(),
        200,
        "another issuer's key must not be limited"
    );

    // A wrong key is still 401, not 429: the limiter only sees authenticated keys.
    let (status, body) = error_code(
        app.get(
            "/v1/credentials",
            "cak_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .await,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));

    // After Retry-After the key may issue again, and the retried request lands once.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let resp = app.post_json(&credential_json("RL-2"), None).await;
    assert_eq!(resp.status(), 202);
    let created: Value = resp.json().await.unwrap();
    assert!(created["id"].is_string());
    assert_eq!(app.row_counts().await, (before.0 + 1, before.1 + 1));
}

#[tokio::test]
async fn zero_turns_the_limit_off() {
    let app = spawn_app_with(|s| {
        s.http.rate_limit_per_second = 0;
        s.http.rate_limit_burst = 1;
    })
    .await;
    // With any limit at burst 1 the second request would be refused.
    for _ in 0..20 {
        assert_eq!(
            app.get("/v1/credentials", &app.issuer.api_key)
                .await
                .status(),
            200
        );
    }
}

/// Failed authentications are throttled per client IP (#18): past the budget the client gets
/// 429 with Retry-After, before any key lookup; a key that authenticated on this replica in
/// the last 10 minutes still works from that address (looked up, so revocation still
/// applies); another client (behind a trusted proxy) is unaffected.
#[tokio::test]
async fn failed_authentications_are_throttled_per_client_ip() {
    let app = spawn_app_with(|s| {
        s.http.failed_auth_per_ip_per_minute = 5;
        s.public.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        // No cache of key lookups: what lets a known key through a block is not the cache.
        s.http.api_key_cache_secs = 0;
    })
    .await;
    let other = app.second_issuer("uni-b").await;
    // Warm: the issuer's key authenticated a moment ago.
    assert_eq!(
        app.get("/v1/credentials", &app.issuer.api_key)
            .await
            .status(),
        200
    );

    let bad = |app: &crate::helpers::TestApp, forwarded: Option<&'static str>| {
        let mut req = app
            .client
            .get(app.url("/v1/credentials"))
            .bearer_auth("cak_madeupid1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        if let Some(ip) = forwarded {
            req = req.header("x-forwarded-for", ip);
        }
        req.send()
    };
    // The budget: 5 failures answer 401; the 6th empties it and answers 429, as do the next.
    for _ in 0..5 {
        assert_eq!(bad(&app, None).await.unwrap().status(), 401);
    }
    for _ in 0..3 {
        let resp = bad(&app, None).await.unwrap();
        let retry_after = retry_after_secs(&resp);
        let (status, body) = error_code(resp).await;
        assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")));
        assert!((1..=13).contains(&retry_after), "{retry_after}");
    }
    // No header at all counts the same way.
    let resp = app
        .client
        .get(app.url("/v1/credentials"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);

    // The known key still works from the blocked address; a key this replica has not seen
    // work is not looked up while the address is blocked.
    assert_eq!(
        app.get("/v1/credentials", &app.issuer.api_key)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get("/v1/credentials", &other.api_key).await.status(),
        429
    );

    // A known key revoked meanwhile is refused, not let through on old knowledge.
    app.sql()
        .await
        .execute(
            "UPDATE api_keys SET revoked_at = now() WHERE issuer_id = 'uni-a'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        app.get("/v1/credentials", &app.issuer.api_key)
            .await
            .status(),
        429
    );

    // Another client behind the trusted proxy has its own budget.
    assert_eq!(bad(&app, Some("198.51.100.7")).await.unwrap().status(), 401);
    let resp = app
        .client
        .get(app.url("/v1/credentials"))
        .bearer_auth(&other.api_key)
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// The whole seconds of a 429's `Retry-After` (the test fails without one).
fn retry_after_secs(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After on 429")
}
