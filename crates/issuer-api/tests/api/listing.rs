//! GET /v1/credentials: filters and keyset pagination.

use serde_json::Value;

use crate::helpers::{credential_json, error_code, spawn_app};

#[tokio::test]
async fn pages_cover_every_credential_once_newest_first() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut body = credential_json(&format!("S-L{i}"));
        if i % 2 == 0 {
            body["recipient_id"] = "student-even".into();
        }
        let resp: Value = app.post_json(&body, None).await.json().await.unwrap();
        ids.push(resp["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut path = "/v1/credentials?limit=3".to_string();
    loop {
        let page: Value = app
            .get(&path, &app.issuer.api_key)
            .await
            .json()
            .await
            .unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/credentials?limit=3&cursor={c}"),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);

    let page: Value = app
        .get(
            "/v1/credentials?recipient_id=student-even",
            &app.issuer.api_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 4);
    let page: Value = app
        .get(
            "/v1/credentials?status=queued&limit=500",
            &app.issuer.api_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 7);
    let page: Value = app
        .get("/v1/credentials?status=finalized", &app.issuer.api_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn invalid_query_parameters_are_400_naming_the_parameter() {
    let app = spawn_app().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("status=lost", "status"),
        ("cursor=zzz", "cursor"),
        ("bogus=1", "query"),
    ] {
        let (status, body) = error_code(
            app.get(&format!("/v1/credentials?{query}"), &app.issuer.api_key)
                .await,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_query")),
            "{query}: {body}"
        );
        assert_eq!(body["field"].as_str(), Some(field), "{query}");
    }
}
