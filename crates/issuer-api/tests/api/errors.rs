//! Bad input: each case is a 4xx with its stable code and nothing written.

use serde_json::{json, Value};

use crate::helpers::{credential_json, error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn malformed_bodies_get_stable_codes_naming_the_field() {
    let app = spawn_app().await;
    let mut cases: Vec<(Vec<u8>, u16, &str, Option<&str>)> = vec![
        (b"{".to_vec(), 400, "invalid_json", None),
        (b"[]".to_vec(), 400, "invalid_json", None),
        (b"".to_vec(), 400, "invalid_json", None),
        (b"\xff\xfe".to_vec(), 400, "invalid_json", None),
    ];
    let drop_field = |field: &'static str| {
        let mut v = credential_json("S-E");
        v.as_object_mut().unwrap().remove(field);
        (
            serde_json::to_vec(&v).unwrap(),
            400,
            "missing_field",
            Some(field),
        )
    };
    for f in [
        "recipient_id",
        "issued_at",
        "serial",
        "credential_type",
        "title",
        "file_base64",
    ] {
        cases.push(drop_field(f));
    }
    let with = |field: &str, value: Value, code: &'static str, named: &'static str| {
        let mut v = credential_json("S-E");
        v[field] = value;
        (serde_json::to_vec(&v).unwrap(), 400, code, Some(named))
    };
    cases.push(with(
        "file_base64",
        json!("!!notbase64!!"),
        "invalid_field",
        "file_base64",
    ));
    cases.push(with(
        "file_base64",
        json!(""),
        "invalid_field",
        "file_base64",
    ));
    cases.push(with(
        "issued_at",
        json!("2026-02-30T00:00:00Z"),
        "invalid_field",
        "issued_at",
    ));
    cases.push(with(
        "issued_at",
        json!("yesterday"),
        "invalid_field",
        "issued_at",
    ));
    cases.push(with(
        "issued_at",
        json!("2026-06-30T12:00:00.5Z"),
        "invalid_field",
        "issued_at",
    ));
    cases.push(with(
        "serial",
        json!("has space"),
        "invalid_field",
        "serial",
    ));
    cases.push(with(
        "serial",
        json!("x".repeat(65)),
        "invalid_field",
        "serial",
    ));
    cases.push(with("serial", json!(12), "invalid_field", "serial"));
    cases.push(with(
        "recipient_id",
        json!("a\u{0000}b"),
        "invalid_field",
        "recipient_id",
    ));
    cases.push(with("title", json!(""), "invalid_field", "title"));
    cases.push(with(
        "title",
        json!("t".repeat(600)),
        "invalid_field",
        "title",
    ));
    cases.push(with(
        "metadata",
        json!("string"),
        "invalid_field",
        "metadata",
    ));
    cases.push(with(
        "credential_type",
        json!(null),
        "missing_field",
        "credential_type",
    ));
    for (i, (body, status, code, field)) in cases.into_iter().enumerate() {
        let resp = app.post_raw("application/json", body).await;
        let (got_status, got) = error_code(resp).await;
        assert_eq!(got_status, status, "case {i}: {got}");
        assert_eq!(got["code"].as_str(), Some(code), "case {i}: {got}");
        if let Some(field) = field {
            assert_eq!(got["field"].as_str(), Some(field), "case {i}: {got}");
        }
        assert!(got["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(app.row_counts().await, (0, 0));
}

#[tokio::test]
async fn unknown_fields_and_wrong_content_types_are_rejected() {
    let app = spawn_app().await;
    let mut v = credential_json("S-U");
    v["surprise"] = json!(1);
    let (status, body) = error_code(
        app.post_raw("application/json", serde_json::to_vec(&v).unwrap())
            .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = error_code(app.post_raw("text/plain", b"hello".to_vec()).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let (status, body) = error_code(
        app.post_raw("multipart/form-data; boundary=xyz", b"garbage".to_vec())
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_multipart"))
    );
    let (status, body) = error_code(
        app.post_raw("multipart/form-data", b"no boundary".to_vec())
            .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(app.row_counts().await, (0, 0));
}

#[tokio::test]
async fn multipart_without_file_or_with_extra_parts_is_400() {
    let app = spawn_app().await;
    let mut meta = credential_json("S-MP");
    meta.as_object_mut().unwrap().remove("file_base64");
    let form = reqwest::multipart::Form::new().text("metadata", meta.to_string());
    let resp = app.post_form(form).await;
    let (status, body) = error_code(resp).await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (400, Some("missing_field"), Some("file"))
    );
    let form = reqwest::multipart::Form::new()
        .text("metadata", meta.to_string())
        .part("file", reqwest::multipart::Part::bytes(b"x".to_vec()))
        .text("evil", "1");
    let resp = app.post_form(form).await;
    let (status, body) = error_code(resp).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_multipart"))
    );
    assert_eq!(app.row_counts().await, (0, 0));
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_for_json_and_multipart() {
    let app = spawn_app_with(|s| s.http.body_limit_bytes = 4096).await;
    let mut v = credential_json("S-BIG");
    v["file_base64"] = json!("A".repeat(8000));
    let (status, body) = error_code(app.post_json(&v, None).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let mut meta = credential_json("S-BIG");
    meta.as_object_mut().unwrap().remove("file_base64");
    let form = reqwest::multipart::Form::new()
        .text("metadata", meta.to_string())
        .part("file", reqwest::multipart::Part::bytes(vec![1u8; 10_000]));
    let resp = app.post_form(form).await;
    let (status, body) = error_code(resp).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert_eq!(app.row_counts().await, (0, 0));
}

#[tokio::test]
async fn unknown_routes_and_methods_have_json_errors() {
    let app = spawn_app().await;
    let (status, body) = error_code(app.get("/v1/nope", &app.issuer.api_key).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("route_not_found"))
    );
    let resp = app
        .client
        .delete(app.url("/v1/credentials"))
        .bearer_auth(&app.issuer.api_key)
        .send()
        .await
        .unwrap();
    let (status, body) = error_code(resp).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn a_failure_between_credential_and_outbox_insert_leaves_neither_row() {
    let app = spawn_app().await;
    fail::cfg("store::issue::after_credential_insert", "return").unwrap();
    let (status, body) =
        error_code(app.post_json(&credential_json("S-FP"), Some("fp-1")).await).await;
    fail::remove("store::issue::after_credential_insert");
    assert_eq!(
        (status, body["code"].as_str()),
        (500, Some("internal_error"))
    );
    // The internal error is not leaked to the client.
    assert!(!body["message"].as_str().unwrap().contains("injected"));
    assert_eq!(app.row_counts().await, (0, 0));
    // And the idempotency key was rolled back with it: the retry goes through.
    let resp = app.post_json(&credential_json("S-FP"), Some("fp-1")).await;
    assert_eq!(resp.status().as_u16(), 202);
    assert_eq!(app.row_counts().await, (1, 1));
}
