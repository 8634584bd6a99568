//! The bad-input corpus: hundreds of malformed, hostile or unauthenticated requests across
//! every write and read endpoint. Each must get a 4xx with a documented stable code, no
//! request may get a 5xx, and nothing may be written.

use base64::Engine;
use issuer_api::error::all_codes;
use serde_json::{json, Value};

use crate::helpers::{credential_json, spawn_app_with, TestApp, FILE};

/// One request of the corpus.
struct Case {
    name: String,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    auth: Auth,
    body: Vec<u8>,
}

#[derive(Clone)]
enum Auth {
    Good,
    None,
    Header(String),
}

fn json_case(name: impl Into<String>, body: &Value) -> Case {
    Case {
        name: name.into(),
        method: "POST",
        path: "/v1/credentials".into(),
        content_type: Some("application/json"),
        auth: Auth::Good,
        body: serde_json::to_vec(body).unwrap(),
    }
}

fn raw_case(name: impl Into<String>, path: &str, ct: &'static str, body: &[u8]) -> Case {
    Case {
        name: name.into(),
        method: "POST",
        path: path.into(),
        content_type: Some(ct),
        auth: Auth::Good,
        body: body.to_vec(),
    }
}

fn with(field: &str, value: Value) -> Value {
    let mut v = credential_json("S-CORPUS");
    v[field] = value;
    v
}

fn without(field: &str) -> Value {
    let mut v = credential_json("S-CORPUS");
    v.as_object_mut().unwrap().remove(field);
    v
}

fn multipart(parts: &[(&str, &[u8])], boundary: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, bytes) in parts {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    let fields = [
        "recipient_id",
        "issued_at",
        "serial",
        "credential_type",
        "title",
        "file_base64",
    ];
    // Missing fields and wrong JSON types for every field.
    for f in fields {
        cases.push(json_case(format!("missing {f}"), &without(f)));
        for (kind, v) in [
            ("number", json!(42)),
            ("float", json!(1.5)),
            ("bool", json!(true)),
            ("array", json!(["a"])),
            ("object", json!({"a": 1})),
            ("empty", json!("")),
        ] {
            cases.push(json_case(format!("{f} as {kind}"), &with(f, v)));
        }
    }
    cases.push(json_case(
        "metadata as array",
        &with("metadata", json!([1, 2])),
    ));
    cases.push(json_case(
        "metadata as string",
        &with("metadata", json!("x")),
    ));
    cases.push(json_case("metadata as number", &with("metadata", json!(7))));
    cases.push(json_case(
        "metadata with NUL",
        &with("metadata", json!({"k": "a\u{0}b"})),
    ));
    cases.push(json_case(
        "metadata too large",
        &with("metadata", json!({"k": "x".repeat(17 * 1024)})),
    ));
    // Impossible and non-canonical dates.
    for d in [
        "2026-02-30T12:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-06-31T00:00:00Z",
        "2026-06-30T24:00:01Z",
        "2026-06-30T12:60:00Z",
        "2026-06-30T12:00:61Z",
        "2026-06-30T12:00:00.5Z",
        "2026-06-30T12:00:00",
        "2026-06-30",
        "30/06/2026",
        "yesterday",
        "0000-00-00T00:00:00Z",
        "+275760-09-13T00:00:00Z",
        "2026-06-30T12:00:00Z'; DROP TABLE credentials;--",
        " 2026-06-30T12:00:00Z",
        "２０２６-06-30T12:00:00Z",
    ] {
        cases.push(json_case(
            format!("issued_at {d:?}"),
            &with("issued_at", json!(d)),
        ));
    }
    // Serials: forbidden characters, SQL-looking, odd Unicode, overlong.
    for s in [
        "'; DROP TABLE credentials;--",
        "1 OR 1=1",
        "a:b",
        "a b",
        "x\u{202e}gnp.exe",
        "zero\u{200b}width",
        "é",
        "a\u{0}b",
        "tab\there",
        "new\nline",
        "<script>",
        "%00",
        "${jndi:ldap://x}",
        "../../etc/passwd\u{0}",
    ] {
        cases.push(json_case(
            format!("serial {s:?}"),
            &with("serial", json!(s)),
        ));
    }
    cases.push(json_case(
        "serial 65 chars",
        &with("serial", json!("s".repeat(65))),
    ));
    // Control characters, surrounding whitespace and length in the free-text fields.
    for f in ["recipient_id", "credential_type", "title"] {
        for (kind, v) in [
            ("NUL", "a\u{0}b".to_string()),
            ("BEL", "a\u{7}b".to_string()),
            ("ESC", "a\u{1b}[31mred".to_string()),
            ("DEL", "a\u{7f}b".to_string()),
            ("newline", "a\nb".to_string()),
            ("leading space", " a".to_string()),
            ("trailing space", "a ".to_string()),
            ("C1 control", "a\u{85}b".to_string()),
            ("overlong", "x".repeat(600)),
        ] {
            cases.push(json_case(format!("{f} {kind}"), &with(f, json!(v))));
        }
    }
    // Broken base64 and empty files.
    for b in [
        "@@@",
        "aGVsbG8",
        "aGVs bG8=",
        "====",
        "aGVsbG8=\u{0}",
        "data:application/pdf;base64,aGk=",
    ] {
        cases.push(json_case(
            format!("file_base64 {b:?}"),
            &with("file_base64", json!(b)),
        ));
    }
    // Unknown and duplicate fields.
    cases.push(json_case("unknown field", &with("titel", json!("x"))));
    cases.push(raw_case(
        "duplicate field",
        "/v1/credentials",
        "application/json",
        br#"{"serial":"A","serial":"B","recipient_id":"r","issued_at":"2026-06-30T12:00:00Z","credential_type":"d","title":"t","file_base64":"aGk="}"#,
    ));
    // Malformed JSON documents.
    let good = serde_json::to_vec(&credential_json("S-CORPUS")).unwrap();
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    let mut trailing = good.clone();
    trailing.extend_from_slice(b" {}");
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(&good);
    for (name, body) in [
        ("empty body", b"".to_vec()),
        ("truncated", truncated),
        ("trailing garbage", trailing),
        ("BOM prefix", bom),
        ("array", b"[]".to_vec()),
        ("string", b"\"x\"".to_vec()),
        ("null", b"null".to_vec()),
        ("number", b"42".to_vec()),
        ("invalid UTF-8", b"{\"serial\": \"\xff\xfe\"}".to_vec()),
        ("lone surrogate", br#"{"serial": "\ud800"}"#.to_vec()),
        (
            "deep nesting",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        ),
        ("single quotes", b"{'serial': 'a'}".to_vec()),
        ("comment", b"{/* c */}".to_vec()),
        ("NaN", b"{\"serial\": NaN}".to_vec()),
    ] {
        cases.push(raw_case(
            format!("json {name}"),
            "/v1/credentials",
            "application/json",
            &body,
        ));
    }
    // Multipart malformations.
    let meta = serde_json::to_vec(&without("file_base64")).unwrap();
    let b = "XyZbOuNdArY";
    let ct = "multipart/form-data; boundary=XyZbOuNdArY";
    for (name, body) in [
        ("no file part", multipart(&[("metadata", &meta)], b)),
        ("no metadata part", multipart(&[("file", FILE)], b)),
        (
            "unknown part",
            multipart(&[("metadata", &meta), ("file", FILE), ("extra", b"x")], b),
        ),
        (
            "repeated file",
            multipart(&[("metadata", &meta), ("file", FILE), ("file", FILE)], b),
        ),
        (
            "empty file",
            multipart(&[("metadata", &meta), ("file", b"")], b),
        ),
        (
            "metadata not JSON",
            multipart(&[("metadata", b"{"), ("file", FILE)], b),
        ),
        (
            "file_base64 in multipart",
            multipart(
                &[
                    (
                        "metadata",
                        &serde_json::to_vec(&credential_json("S")).unwrap(),
                    ),
                    ("file", FILE),
                ],
                b,
            ),
        ),
        (
            "no closing boundary",
            b"--XyZbOuNdArY\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc".to_vec(),
        ),
        ("garbage", b"this is not multipart".to_vec()),
    ] {
        cases.push(raw_case(
            format!("multipart {name}"),
            "/v1/credentials",
            ct,
            &body,
        ));
    }
    cases.push(raw_case(
        "multipart without boundary",
        "/v1/credentials",
        "multipart/form-data",
        b"--x\r\n",
    ));
    // Wrong media types.
    for ct in [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "image/png",
    ] {
        cases.push(raw_case(
            format!("content type {ct}"),
            "/v1/credentials",
            ct,
            &good,
        ));
    }
    // Oversized bodies (the test app's limits are 64 KiB single, 128 KiB bulk).
    cases.push(json_case(
        "oversized single",
        &with(
            "file_base64",
            json!(base64::engine::general_purpose::STANDARD.encode(vec![0u8; 100 * 1024])),
        ),
    ));
    cases.push(raw_case(
        "oversized bulk",
        "/v1/credential-batches",
        "application/json",
        &vec![b' '; 200 * 1024],
    ));
    // Idempotency keys.
    for k in ["", "has space", "tab\tkey", &"k".repeat(256), "ключ"] {
        let mut c = json_case(format!("idempotency key {k:?}"), &credential_json("S-IDEM"));
        c.name = format!("idempotency key {k:?}");
        c.path = "/v1/credentials".into();
        c.auth = Auth::Good;
        cases.push(Case {
            name: c.name,
            method: "POST",
            path: c.path,
            content_type: c.content_type,
            auth: Auth::Header(format!("IDEM:{k}")),
            body: c.body,
        });
    }
    // Authentication.
    for (name, header) in [
        ("no auth", None),
        ("empty bearer", Some("Bearer ".to_string())),
        ("basic auth", Some("Basic dXNlcjpwYXNz".to_string())),
        ("not a key", Some("Bearer hello".to_string())),
        (
            "unknown key id",
            Some("Bearer cak_unknownid_secretsecretsecret".to_string()),
        ),
        ("SQL in key", Some("Bearer cak_' OR 1=1 --_x".to_string())),
        ("lowercase scheme", Some("bearer x".to_string())),
    ] {
        for path in [
            "/v1/credentials",
            "/v1/credential-batches",
            "/v1/credentials/recover",
        ] {
            cases.push(Case {
                name: format!("{name} on {path}"),
                method: "POST",
                path: path.into(),
                content_type: Some("application/json"),
                auth: header.clone().map(Auth::Header).unwrap_or(Auth::None),
                body: good.clone(),
            });
        }
    }
    // Bulk documents.
    for (name, body) in [
        ("bulk empty", json!({"credentials": []})),
        ("bulk not array", json!({"credentials": {"a": 1}})),
        ("bulk missing key", json!({"items": []})),
        (
            "bulk extra key",
            json!({"credentials": [credential_json("B")], "x": 1}),
        ),
        ("bulk bare array", json!([credential_json("B")])),
        ("bulk null", Value::Null),
    ] {
        cases.push(raw_case(
            name,
            "/v1/credential-batches",
            "application/json",
            &serde_json::to_vec(&body).unwrap(),
        ));
    }
    cases.push(raw_case(
        "bulk ndjson blank",
        "/v1/credential-batches",
        "application/x-ndjson",
        b"\n\n",
    ));
    cases.push(raw_case(
        "bulk ndjson bad utf8",
        "/v1/credential-batches",
        "application/x-ndjson",
        b"\xff\n",
    ));
    cases.push(raw_case(
        "bulk as csv",
        "/v1/credential-batches",
        "text/csv",
        b"serial\nA\n",
    ));
    // Bulk items that are all invalid: 200, per-item codes, nothing written.
    let all_bad: Vec<Value> = vec![
        with("issued_at", json!("nope")),
        with("serial", json!("a b")),
        json!(5),
    ];
    cases.push(raw_case(
        "bulk all items invalid",
        "/v1/credential-batches",
        "application/json",
        &serde_json::to_vec(&json!({"credentials": all_bad})).unwrap(),
    ));
    // Proof bundles presented for recovery.
    for (name, body) in [
        ("recover not json", b"{".to_vec()),
        ("recover empty object", b"{}".to_vec()),
        ("recover credential instead of bundle", good.clone()),
        (
            "recover wrong version",
            serde_json::to_vec(&json!({"version": "v0"})).unwrap(),
        ),
    ] {
        cases.push(raw_case(
            name,
            "/v1/credentials/recover",
            "application/json",
            &body,
        ));
    }
    // Reads with bad parameters.
    for path in [
        "/v1/credentials/not-a-uuid",
        "/v1/credentials/'%20OR%201=1",
        "/v1/credentials/00000000-0000-0000-0000-000000000000",
        "/v1/credentials/00000000-0000-0000-0000-000000000000/proof",
        "/v1/credentials/zzz/proof",
        "/v1/credentials?limit=0",
        "/v1/credentials?limit=501",
        "/v1/credentials?limit=-1",
        "/v1/credentials?limit=abc",
        "/v1/credentials?status=done",
        "/v1/credentials?cursor=xyz",
        "/v1/credentials?recipient_id=%00",
        "/v1/credentials?unknown=1",
        "/v1/credential-batches/nope",
        "/v1/credential-batches/00000000-0000-0000-0000-000000000000",
        "/v1/credential-batches/00000000-0000-0000-0000-000000000000/proofs",
        "/v1/nothing-here",
        "/v1/credentials/../../etc/passwd",
    ] {
        cases.push(Case {
            name: format!("GET {path}"),
            method: "GET",
            path: path.into(),
            content_type: None,
            auth: Auth::Good,
            body: Vec::new(),
        });
    }
    for method in ["PUT", "DELETE", "PATCH"] {
        for path in [
            "/v1/credentials",
            "/v1/credential-batches",
            "/v1/credentials/recover",
        ] {
            cases.push(Case {
                name: format!("{method} {path}"),
                method,
                path: path.into(),
                content_type: Some("application/json"),
                auth: Auth::Good,
                body: good.clone(),
            });
        }
    }
    // Issue #7 endpoints: revocation, public issuer profile, public verification.
    let zero = "00000000-0000-0000-0000-000000000000";
    for (name, body) in [
        ("revoke empty object", b"{}".to_vec()),
        ("revoke blank reason", br#"{"reason": "  "}"#.to_vec()),
        ("revoke reason as number", br#"{"reason": 7}"#.to_vec()),
        (
            "revoke unknown field",
            br#"{"reason": "x", "why": 1}"#.to_vec(),
        ),
        ("revoke not json", b"reason=x".to_vec()),
        (
            "revoke control chars",
            b"{\"reason\": \"a\\u0000b\"}".to_vec(),
        ),
        (
            "revoke unknown credential",
            br#"{"reason": "issued in error"}"#.to_vec(),
        ),
    ] {
        cases.push(raw_case(
            name,
            &format!("/v1/credentials/{zero}/revoke"),
            "application/json",
            &body,
        ));
    }
    cases.push(raw_case(
        "revoke malformed id",
        "/v1/credentials/not-a-uuid/revoke",
        "application/json",
        br#"{"reason": "x"}"#,
    ));
    cases.push(Case {
        name: "revoke without key".into(),
        method: "POST",
        path: format!("/v1/credentials/{zero}/revoke"),
        content_type: Some("application/json"),
        auth: Auth::None,
        body: br#"{"reason": "x"}"#.to_vec(),
    });
    let vct = "multipart/form-data; boundary=VeRiFy";
    let fields: &[(&str, &[u8])] = &[
        ("file", b"pdf"),
        ("issuer_id", b"uni-a"),
        ("recipient_id", b"s-1"),
        ("issued_at", b"2026-06-30T12:00:00Z"),
        ("serial", b"S-1"),
    ];
    let mut verify_bodies: Vec<(String, Vec<u8>)> = vec![
        (
            "verify without file".into(),
            multipart(&fields[1..], "VeRiFy"),
        ),
        (
            "verify unknown part".into(),
            multipart(&[("file", b"x"), ("password", b"x")], "VeRiFy"),
        ),
        (
            "verify proof not json".into(),
            multipart(&[("file", b"x"), ("proof", b"{nope")], "VeRiFy"),
        ),
        (
            "verify proof wrong schema".into(),
            multipart(&[("file", b"x"), ("proof", br#"{"version": 1}"#)], "VeRiFy"),
        ),
        (
            "verify proof and fields".into(),
            multipart(
                &[("file", b"x"), ("proof", b"{}"), ("serial", b"S")],
                "VeRiFy",
            ),
        ),
        (
            "verify repeated file".into(),
            multipart(&[("file", b"x"), ("file", b"y")], "VeRiFy"),
        ),
        ("verify garbage".into(), b"not multipart at all".to_vec()),
    ];
    for (i, field) in ["issuer_id", "recipient_id", "issued_at", "serial"]
        .into_iter()
        .enumerate()
    {
        let mut parts: Vec<(&str, &[u8])> = fields.to_vec();
        parts[i + 1] = (field, b"\xff\xfe bad");
        verify_bodies.push((format!("verify bad {field}"), multipart(&parts, "VeRiFy")));
        let mut parts: Vec<(&str, &[u8])> = fields.to_vec();
        parts.remove(i + 1);
        verify_bodies.push((
            format!("verify missing {field}"),
            multipart(&parts, "VeRiFy"),
        ));
    }
    for (name, body) in verify_bodies {
        cases.push(raw_case(name, "/v1/verify", vct, &body));
    }
    cases.push(raw_case(
        "verify as json",
        "/v1/verify",
        "application/json",
        b"{}",
    ));
    for path in [
        "/v1/issuers/Not_A_Slug",
        "/v1/issuers/nobody",
        "/v1/issuers/",
    ] {
        cases.push(Case {
            name: format!("GET {path}"),
            method: "GET",
            path: path.into(),
            content_type: None,
            auth: Auth::None,
            body: Vec::new(),
        });
    }
    for (method, path) in [
        ("PUT", "/v1/verify"),
        ("DELETE", "/v1/issuers/uni-a"),
        ("GET", "/v1/verify"),
    ] {
        cases.push(Case {
            name: format!("{method} {path}"),
            method,
            path: path.into(),
            content_type: Some("application/json"),
            auth: Auth::None,
            body: Vec::new(),
        });
    }
    cases
}

async fn send(app: &TestApp, case: &Case) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut req = app.client.request(method, app.url(&case.path));
    if let Some(ct) = case.content_type {
        req = req.header("Content-Type", ct);
    }
    match &case.auth {
        Auth::Good => req = req.bearer_auth(&app.issuer.api_key),
        Auth::None => {}
        Auth::Header(h) => {
            if let Some(k) = h.strip_prefix("IDEM:") {
                req = req
                    .bearer_auth(&app.issuer.api_key)
                    .header("Idempotency-Key", k.as_bytes().to_vec());
            } else {
                req = req.header("Authorization", h.as_bytes().to_vec());
            }
        }
    }
    req.body(case.body.clone()).send().await.unwrap()
}

#[tokio::test]
async fn every_bad_request_gets_a_stable_4xx_code_and_writes_nothing() {
    let app = spawn_app_with(|s| {
        s.http.body_limit_bytes = 64 * 1024;
        s.http.bulk_body_limit_bytes = 128 * 1024;
    })
    .await;
    let cases = corpus();
    assert!(
        cases.len() >= 200,
        "corpus has only {} requests",
        cases.len()
    );
    let mut by_code = std::collections::BTreeMap::new();
    for case in &cases {
        let resp = send(&app, case).await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status < 500, "{}: {status} {body}", case.name);
        if case.name == "bulk all items invalid" {
            // A well-formed bulk request whose items are all invalid: 200 with per-item codes.
            assert_eq!(status, 200, "{}: {body}", case.name);
            assert_eq!(body["accepted"], 0);
            for item in body["items"].as_array().unwrap() {
                let code = item["code"].as_str().unwrap();
                assert!(all_codes().any(|c| c == code), "{code}");
            }
            continue;
        }
        assert!(
            (400..500).contains(&status),
            "{}: {status} {body}",
            case.name
        );
        let code = body["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no code in {body}", case.name));
        assert!(
            all_codes().any(|c| c == code),
            "{}: undocumented code {code}",
            case.name
        );
        *by_code.entry(code.to_string()).or_insert(0usize) += 1;
    }
    assert_eq!(
        app.row_counts().await,
        (0, 0),
        "a bad request wrote something"
    );
    let (batches,): (i64,) = {
        let (client, conn) = tokio_postgres::connect(&app.db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let r = client
            .query_one(
                "SELECT count(*) FROM credential_batches WHERE accepted > 0",
                &[],
            )
            .await
            .unwrap();
        (r.get(0),)
    };
    assert_eq!(batches, 0);
    // The corpus really covers the codes it is meant to.
    for code in [
        "unauthorized",
        "invalid_json",
        "invalid_multipart",
        "missing_field",
        "invalid_field",
        "invalid_query",
        "payload_too_large",
        "unsupported_media_type",
        "invalid_idempotency_key",
        "credential_not_found",
        "credential_batch_not_found",
        "issuer_not_found",
        "route_not_found",
        "method_not_allowed",
    ] {
        assert!(
            by_code.contains_key(code),
            "no case produced {code}: {by_code:?}"
        );
    }
    eprintln!("corpus: {} requests, codes {by_code:?}", cases.len());
}
