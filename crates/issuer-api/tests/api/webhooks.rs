//! Webhooks (issue #24) through the HTTP API and the real delivery worker: endpoint CRUD and
//! its errors, the URL policy (https only, no private addresses, host names judged again at
//! delivery time), and delivery as a Standard Webhooks receiver sees it.
//!
//! No chain is needed: `POST /v1/webhooks/{id}/test` records a `webhook.test` event in the
//! same queue the credential events use, and the worker running inside the Application
//! delivers it like any other. Deliveries go to `testkit::webhook_receiver`, a Node process
//! that verifies every one with the published npm `standardwebhooks` library, so these tests
//! prove that a receiver following the standard accepts what we send (retries keep their
//! `webhook-id`, a rotated secret keeps verifying through its grace period), not merely that
//! our signer agrees with itself. Waits poll with deadlines; a deadline only turns a hang into
//! a failure, never asserts how fast something happened.

use std::time::{Duration, Instant};

use domain::webhook::EventType;
use reqwest::Method;
use serde_json::{json, Value};
use testkit::webhook_receiver::Receiver;

use crate::helpers::{error_code, spawn_app, spawn_app_with, TestApp};

/// Long enough for any delivery the worker makes at once (poll 100 ms) on a loaded machine.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);

/// `method path` with `key` (none: unauthenticated) and an optional JSON body: (status, body).
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    error_code(req.send().await.unwrap()).await
}

/// Registers an endpoint for `key`; panics unless 201. Returns the answer (with its secret).
async fn create(app: &TestApp, key: &str, body: Value) -> Value {
    let (status, created) = call(app, Method::POST, "/v1/webhooks", Some(key), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn secret_of(v: &Value) -> String {
    v["secret"].as_str().unwrap().to_string()
}

/// `POST /v1/webhooks/{id}/test`; panics unless 202. Returns (delivery id, webhook-id).
/// Registers an endpoint on `receiver`'s `name` and tells the receiver its secret and what to
/// answer: the endpoint's id and secret.
async fn registered(
    app: &TestApp,
    key: &str,
    receiver: &Receiver,
    name: &str,
    status: u16,
) -> (String, String) {
    let created = create(app, key, json!({"url": receiver.url(name)})).await;
    let secret = secret_of(&created);
    receiver
        .configure(name, std::slice::from_ref(&secret), status, 0)
        .await;
    (id_of(&created), secret)
}

async fn send_test(app: &TestApp, key: &str, endpoint: &str) -> (i64, String) {
    let (status, body) = call(
        app,
        Method::POST,
        &format!("/v1/webhooks/{endpoint}/test"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let webhook_id = body["webhook_id"].as_str().unwrap().to_string();
    assert!(webhook_id.starts_with("msg_"), "{body}");
    (body["delivery_id"].as_i64().unwrap(), webhook_id)
}

/// The endpoint's deliveries (`query` appended to the path, e.g. `?status=failed`).
async fn deliveries(app: &TestApp, key: &str, endpoint: &str, query: &str) -> Vec<Value> {
    let (status, body) = call(
        app,
        Method::GET,
        &format!("/v1/webhooks/{endpoint}/deliveries{query}"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// Polls the endpoint's deliveries until delivery `delivery` satisfies `done` (described by
/// `what`); panics after `timeout` with the last page seen.
async fn wait_delivery(
    app: &TestApp,
    key: &str,
    endpoint: &str,
    delivery: i64,
    what: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let page = deliveries(app, key, endpoint, "").await;
        if let Some(d) = page.iter().find(|d| d["id"] == delivery) {
            if done(d) {
                return d.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "delivery {delivery}: not {what} within {timeout:?}: {page:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `webhook_deliveries_total{result="<result>"}` from /metrics.
async fn delivered_metric(app: &TestApp, result: &str) -> u64 {
    let metrics = app.metrics().await;
    let series = format!("webhook_deliveries_total{{result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in {metrics}"))
        .trim()
        .parse()
        .unwrap()
}

fn subscribable() -> Vec<&'static str> {
    EventType::SUBSCRIBABLE.map(EventType::as_str).to_vec()
}

#[tokio::test]
async fn endpoints_are_created_listed_changed_and_deleted_by_their_issuer_only() {
    let app = spawn_app().await;
    let key = app.issuer.api_key.clone();
    let key = key.as_str();

    let created = create(
        &app,
        key,
        json!({"url": "https://portal.example.edu/hooks"}),
    )
    .await;
    let id = id_of(&created);
    assert!(secret_of(&created).starts_with("whsec_"), "{created}");
    assert_eq!(created["url"], "https://portal.example.edu/hooks");
    assert_eq!(created["event_types"], json!(subscribable()));
    assert_eq!(created["enabled"], true);
    assert!(created.get("disabled_reason").is_none(), "{created}");
    assert!(created.get("previous_secret_expires_at").is_none());

    // The secret is shown once: never by GET or the list.
    let (status, got) = call(
        &app,
        Method::GET,
        &format!("/v1/webhooks/{id}"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert!(got.get("secret").is_none(), "{got}");
    assert_eq!(got["url"], created["url"]);
    assert_eq!(got["event_types"], created["event_types"]);
    let (status, list) = call(&app, Method::GET, "/v1/webhooks", Some(key), None).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["id"], id.as_str());
    assert!(items[0].get("secret").is_none(), "{list}");
    assert!(!list.to_string().contains("whsec_"), "{list}");

    // PATCH changes only what it is given.
    let (status, patched) = call(
        &app,
        Method::PATCH,
        &format!("/v1/webhooks/{id}"),
        Some(key),
        Some(json!({
            "url": "https://portal.example.edu/v2/hooks",
            "event_types": ["credential.finalized", "credential.revoked", "credential.finalized"],
        })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["url"], "https://portal.example.edu/v2/hooks");
    assert_eq!(
        patched["event_types"],
        json!(["credential.finalized", "credential.revoked"])
    );
    assert_eq!(patched["enabled"], true);
    assert!(patched.get("secret").is_none(), "{patched}");
    let (status, patched) = call(
        &app,
        Method::PATCH,
        &format!("/v1/webhooks/{id}"),
        Some(key),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["disabled_reason"], "client");
    assert_eq!(patched["url"], "https://portal.example.edu/v2/hooks");
    let (_, got) = call(
        &app,
        Method::GET,
        &format!("/v1/webhooks/{id}"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(got["enabled"], false, "{got}");
    assert_eq!(
        got["event_types"],
        json!(["credential.finalized", "credential.revoked"])
    );

    // Another issuer sees nothing of it and can change nothing.
    let other = app.second_issuer("uni-b").await;
    let other_key = Some(other.api_key.as_str());
    for (method, path, body) in [
        (Method::GET, format!("/v1/webhooks/{id}"), None),
        (
            Method::PATCH,
            format!("/v1/webhooks/{id}"),
            Some(json!({"enabled": true})),
        ),
        (Method::DELETE, format!("/v1/webhooks/{id}"), None),
        (
            Method::POST,
            format!("/v1/webhooks/{id}/rotate-secret"),
            Some(json!({})),
        ),
        (Method::POST, format!("/v1/webhooks/{id}/test"), None),
        (Method::GET, format!("/v1/webhooks/{id}/deliveries"), None),
    ] {
        let (status, body) = call(&app, method.clone(), &path, other_key, body).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("webhook_endpoint_not_found")),
            "{method} {path}: {body}"
        );
    }
    let (status, list) = call(&app, Method::GET, "/v1/webhooks", other_key, None).await;
    assert_eq!((status, list["items"].clone()), (200, json!([])));
    let (_, got) = call(
        &app,
        Method::GET,
        &format!("/v1/webhooks/{id}"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(
        got["enabled"], false,
        "the other issuer's PATCH changed it: {got}"
    );

    // Bad input: stable codes, naming the field.
    let cases: Vec<(Value, &str, Option<&str>)> = vec![
        (json!({}), "missing_field", Some("url")),
        (json!({"url": null}), "missing_field", Some("url")),
        (
            json!({"url": "https://a.example.edu/", "event_types": ["credential.exploded"]}),
            "invalid_field",
            Some("event_types"),
        ),
        (
            json!({"url": "https://a.example.edu/", "event_types": ["webhook.test"]}),
            "invalid_field",
            Some("event_types"),
        ),
        (
            json!({"url": "https://a.example.edu/", "event_types": []}),
            "invalid_field",
            Some("event_types"),
        ),
        (
            json!({"url": "https://a.example.edu/", "surprise": 1}),
            "invalid_json",
            None,
        ),
        (json!({"url": 12}), "invalid_json", None),
        (json!({"url": "not a url"}), "webhook_url_refused", None),
    ];
    for (body, code, field) in cases {
        let (status, got) = call(
            &app,
            Method::POST,
            "/v1/webhooks",
            Some(key),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (status, got["code"].as_str()),
            (400, Some(code)),
            "{body}: {got}"
        );
        assert_eq!(got["field"].as_str(), field, "{body}: {got}");
    }
    let (status, got) = call(
        &app,
        Method::PATCH,
        &format!("/v1/webhooks/{id}"),
        Some(key),
        Some(json!({"event_types": ["nope"]})),
    )
    .await;
    assert_eq!(
        (status, got["code"].as_str()),
        (400, Some("invalid_field")),
        "{got}"
    );
    for path in [
        "/v1/webhooks/not-a-uuid",
        "/v1/webhooks/not-a-uuid/deliveries",
    ] {
        let (status, got) = call(&app, Method::GET, path, Some(key), None).await;
        assert_eq!(
            (status, got["code"].as_str(), got["field"].as_str()),
            (400, Some("invalid_field"), Some("id")),
            "{path}: {got}"
        );
    }
    let (status, got) = call(
        &app,
        Method::GET,
        &format!("/v1/webhooks/{id}/deliveries?status=lost"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(
        (status, got["code"].as_str()),
        (400, Some("invalid_query")),
        "{got}"
    );

    // No API key: 401 on every route.
    for (method, path) in [
        (Method::POST, "/v1/webhooks".to_string()),
        (Method::GET, "/v1/webhooks".to_string()),
        (Method::GET, format!("/v1/webhooks/{id}")),
        (Method::DELETE, format!("/v1/webhooks/{id}")),
        (Method::POST, format!("/v1/webhooks/{id}/test")),
    ] {
        let (status, got) = call(&app, method.clone(), &path, None, None).await;
        assert_eq!(
            (status, got["code"].as_str()),
            (401, Some("unauthorized")),
            "{method} {path}: {got}"
        );
    }

    // Delete: 204, then gone for GET, DELETE and its sub-resources.
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/v1/webhooks/{id}"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(status, 204);
    for (method, path) in [
        (Method::GET, format!("/v1/webhooks/{id}")),
        (Method::DELETE, format!("/v1/webhooks/{id}")),
        (Method::POST, format!("/v1/webhooks/{id}/test")),
    ] {
        let (status, got) = call(&app, method.clone(), &path, Some(key), None).await;
        assert_eq!(
            (status, got["code"].as_str()),
            (404, Some("webhook_endpoint_not_found")),
            "{method} {path}: {got}"
        );
    }

    // At most 20 endpoints per issuer; another issuer's count is its own.
    for i in 0..20 {
        create(
            &app,
            key,
            json!({"url": format!("https://portal.example.edu/h/{i}")}),
        )
        .await;
    }
    let (status, got) = call(
        &app,
        Method::POST,
        "/v1/webhooks",
        Some(key),
        Some(json!({"url": "https://portal.example.edu/h/20"})),
    )
    .await;
    assert_eq!(
        (status, got["code"].as_str()),
        (409, Some("webhook_endpoint_limit")),
        "{got}"
    );
    let (_, list) = call(&app, Method::GET, "/v1/webhooks", Some(key), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 20);
    create(
        &app,
        &other.api_key,
        json!({"url": "https://b.example.edu/h"}),
    )
    .await;
}

#[tokio::test]
async fn only_https_urls_to_public_addresses_are_accepted_unless_allowed() {
    let strict = spawn_app_with(|s| {
        s.webhooks.allow_private = false;
        s.webhooks.allow_http = false;
    })
    .await;
    let key = strict.issuer.api_key.as_str();
    let private = [
        "https://127.0.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/x",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
    ];
    let always_refused = [
        // https only.
        "http://portal.example.edu/h",
        // No credentials in the URL.
        "https://user:pw@example.edu/",
        "ftp://portal.example.edu/h",
        "https://portal.example.edu/h#frag",
        "https://0.0.0.0/",
    ];
    for url in private.iter().chain(always_refused.iter()) {
        let (status, got) = call(
            &strict,
            Method::POST,
            "/v1/webhooks",
            Some(key),
            Some(json!({"url": url})),
        )
        .await;
        assert_eq!(
            (status, got["code"].as_str()),
            (400, Some("webhook_url_refused")),
            "{url}: {got}"
        );
    }
    // A PATCH is held to the same rule.
    let ok = create(&strict, key, json!({"url": "https://portal.example.edu/h"})).await;
    let (status, got) = call(
        &strict,
        Method::PATCH,
        &format!("/v1/webhooks/{}", id_of(&ok)),
        Some(key),
        Some(json!({"url": "https://169.254.169.254/latest/meta-data"})),
    )
    .await;
    assert_eq!(
        (status, got["code"].as_str()),
        (400, Some("webhook_url_refused")),
        "{got}"
    );
    let (_, list) = call(&strict, Method::GET, "/v1/webhooks", Some(key), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["url"], "https://portal.example.edu/h");

    // An on-premises portal (allow_private): the private addresses are accepted, https still
    // required and user info still refused.
    let onprem = spawn_app_with(|s| {
        s.webhooks.allow_private = true;
        s.webhooks.allow_http = false;
    })
    .await;
    let key = onprem.issuer.api_key.as_str();
    for url in private {
        create(&onprem, key, json!({"url": url})).await;
    }
    for url in always_refused {
        let (status, got) = call(
            &onprem,
            Method::POST,
            "/v1/webhooks",
            Some(key),
            Some(json!({"url": url})),
        )
        .await;
        assert_eq!(
            (status, got["code"].as_str()),
            (400, Some("webhook_url_refused")),
            "{url}: {got}"
        );
    }
}

#[tokio::test]
async fn a_host_name_resolving_to_a_private_address_is_refused_at_delivery() {
    let app = spawn_app_with(|s| {
        s.webhooks.allow_private = false;
        s.webhooks.allow_http = true;
    })
    .await;
    let key = app.issuer.api_key.as_str();
    let receiver = Receiver::start();
    // A host NAME: accepted at registration (names are judged on what they resolve to, at
    // each delivery), but it resolves to loopback.
    let created = create(
        &app,
        key,
        json!({"url": format!("http://localhost:{}/hooks/a", receiver.port())}),
    )
    .await;
    let id = id_of(&created);
    receiver
        .configure("a", &[secret_of(&created)], 200, 0)
        .await;

    let (delivery, _) = send_test(&app, key, &id).await;
    let d = wait_delivery(
        &app,
        key,
        &id,
        delivery,
        "attempted",
        DELIVERY_DEADLINE,
        |d| d["attempts"].as_i64().unwrap() >= 1,
    )
    .await;
    assert!(
        d["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("destination refused")),
        "{d}"
    );
    assert_eq!(
        d["status"], "pending",
        "a refusal is retried like a failure: {d}"
    );
    assert!(d.get("last_status").is_none(), "no request was made: {d}");
    assert!(receiver.deliveries("a").await.is_empty());
    assert!(delivered_metric(&app, "refused").await >= 1);
    assert_eq!(delivered_metric(&app, "delivered").await, 0);
}

#[tokio::test]
async fn a_test_event_is_delivered_signed_as_standard_webhooks() {
    let app = spawn_app().await;
    let key = app.issuer.api_key.as_str();
    let receiver = Receiver::start();
    let (id, _secret) = registered(&app, key, &receiver, "a", 200).await;

    let (delivery, webhook_id) = send_test(&app, key, &id).await;
    let got = receiver.wait_for("a", 1, DELIVERY_DEADLINE).await;
    let d = wait_delivery(
        &app,
        key,
        &id,
        delivery,
        "delivered",
        DELIVERY_DEADLINE,
        |d| d["status"] == "delivered",
    )
    .await;
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(d["last_status"], 200, "{d}");
    assert_eq!(d["webhook_id"], webhook_id.as_str());
    assert_eq!(d["event_type"], "webhook.test");
    assert!(d["delivered_at"].is_string(), "{d}");

    let got_again = receiver.deliveries("a").await;
    assert_eq!(got_again.len(), 1, "delivered once: {got_again:#?}");
    let r = &got[0];
    assert_eq!(r.webhook_id.as_deref(), Some(webhook_id.as_str()));
    assert_eq!(r.r#type.as_deref(), Some("webhook.test"));
    assert!(r.valid, "the standardwebhooks library refused it: {r:#?}");
    assert_eq!(r.valid_with, vec![0]);
    assert!(r.webhook_timestamp.is_some());
    assert_eq!(r.data["issuer_id"], "uni-a");
    assert_eq!(r.data["endpoint_id"], id.as_str());
    assert!(delivered_metric(&app, "delivered").await >= 1);
}

#[tokio::test]
async fn a_failed_attempt_is_retried_with_the_same_webhook_id_until_delivered() {
    let app = spawn_app().await;
    let key = app.issuer.api_key.as_str();
    let receiver = Receiver::start();
    let (id, secret) = registered(&app, key, &receiver, "a", 500).await;

    let (delivery, webhook_id) = send_test(&app, key, &id).await;
    receiver.wait_for("a", 2, DELIVERY_DEADLINE).await;
    let d = wait_delivery(
        &app,
        key,
        &id,
        delivery,
        "attempted twice",
        DELIVERY_DEADLINE,
        |d| d["attempts"].as_i64().unwrap() >= 2,
    )
    .await;
    assert_eq!(d["status"], "pending", "{d}");
    assert_eq!(d["last_status"], 500, "{d}");
    assert!(d["next_attempt_at"].is_string(), "{d}");

    receiver.configure("a", &[secret], 200, 0).await;
    // The third attempt comes about 3 s after the second (5 min scaled by 0.01).
    let d = wait_delivery(
        &app,
        key,
        &id,
        delivery,
        "delivered",
        Duration::from_secs(60),
        |d| d["status"] == "delivered",
    )
    .await;
    assert_eq!(d["last_status"], 200, "{d}");
    let got = receiver.deliveries("a").await;
    assert_eq!(
        got.len(),
        usize::try_from(d["attempts"].as_i64().unwrap()).unwrap(),
        "{d} {got:#?}"
    );
    assert!(got.len() >= 3, "{got:#?}");
    for r in &got {
        assert_eq!(
            r.webhook_id.as_deref(),
            Some(webhook_id.as_str()),
            "{got:#?}"
        );
        assert!(r.valid, "{r:#?}");
    }
    assert_eq!(got.last().unwrap().status, 200);
    assert!(
        got[..got.len() - 1].iter().all(|r| r.status == 500),
        "{got:#?}"
    );
    assert!(delivered_metric(&app, "retrying").await >= 2);
}

#[tokio::test]
async fn a_410_disables_the_endpoint_until_it_is_enabled_again() {
    let app = spawn_app().await;
    let key = app.issuer.api_key.as_str();
    let receiver = Receiver::start();
    let (id, secret) = registered(&app, key, &receiver, "a", 410).await;

    let (delivery, _) = send_test(&app, key, &id).await;
    let d = wait_delivery(&app, key, &id, delivery, "failed", DELIVERY_DEADLINE, |d| {
        d["status"] == "failed"
    })
    .await;
    assert_eq!(
        (d["attempts"].clone(), d["last_status"].clone()),
        (json!(1), json!(410)),
        "{d}"
    );
    assert!(d["failed_at"].is_string(), "{d}");
    let (_, got) = call(
        &app,
        Method::GET,
        &format!("/v1/webhooks/{id}"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(got["enabled"], false, "{got}");
    assert_eq!(got["disabled_reason"], "gone", "{got}");
    assert_eq!(receiver.deliveries("a").await.len(), 1);
    assert!(delivered_metric(&app, "gone").await >= 1);

    // Re-enabled by its issuer: deliveries go out again.
    let (status, got) = call(
        &app,
        Method::PATCH,
        &format!("/v1/webhooks/{id}"),
        Some(key),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["enabled"], true, "{got}");
    assert!(got.get("disabled_reason").is_none(), "{got}");
    receiver.configure("a", &[secret], 200, 0).await;
    let (again, webhook_id) = send_test(&app, key, &id).await;
    wait_delivery(&app, key, &id, again, "delivered", DELIVERY_DEADLINE, |d| {
        d["status"] == "delivered"
    })
    .await;
    let got = receiver.deliveries("a").await;
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[1].webhook_id.as_deref(), Some(webhook_id.as_str()));
    // The dead letter stays one (a replay is explicit).
    let failed = deliveries(&app, key, &id, "?status=failed").await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["id"], delivery);
}

#[tokio::test]
async fn an_exhausted_delivery_is_a_dead_letter_that_can_be_replayed_with_its_webhook_id() {
    // The 27.6 h schedule scaled to about 10 s.
    let app = spawn_app_with(|s| s.webhooks.retry_scale = 0.0001).await;
    let key = app.issuer.api_key.as_str();
    let receiver = Receiver::start();
    let (id, secret) = registered(&app, key, &receiver, "a", 503).await;

    let (delivery, webhook_id) = send_test(&app, key, &id).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let dead = loop {
        let failed = deliveries(&app, key, &id, "?status=failed").await;
        if let Some(d) = failed.first() {
            break d.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter within 60 s: {:#?}",
            deliveries(&app, key, &id, "").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dead["id"], delivery, "{dead}");
    assert_eq!(dead["attempts"], 8, "the whole schedule: {dead}");
    assert_eq!(dead["last_status"], 503, "{dead}");
    assert_eq!(dead["webhook_id"], webhook_id.as_str());
    assert!(dead["failed_at"].is_string(), "{dead}");
    assert!(dead.get("next_attempt_at").is_none(), "{dead}");
    assert!(deliveries(&app, key, &id, "?status=pending")
        .await
        .is_empty());
    assert!(delivered_metric(&app, "failed").await >= 1);
    let got = receiver.deliveries("a").await;
    assert_eq!(got.len(), 8, "{got:#?}");
    assert!(
        got.iter()
            .all(|r| r.valid && r.webhook_id.as_deref() == Some(webhook_id.as_str())),
        "{got:#?}"
    );

    // Replay by hand once the receiver is fixed: same webhook-id, a fresh schedule.
    receiver.configure("a", &[secret], 200, 0).await;
    let (status, replayed) = call(
        &app,
        Method::POST,
        &format!("/v1/webhooks/{id}/deliveries/{delivery}/retry"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed["status"], "pending", "{replayed}");
    assert_eq!(replayed["attempts"], 0, "{replayed}");
    assert_eq!(replayed["webhook_id"], webhook_id.as_str());
    let d = wait_delivery(
        &app,
        key,
        &id,
        delivery,
        "delivered",
        DELIVERY_DEADLINE,
        |d| d["status"] == "delivered",
    )
    .await;
    assert_eq!(
        (d["attempts"].clone(), d["last_status"].clone()),
        (json!(1), json!(200)),
        "{d}"
    );
    let got = receiver.deliveries("a").await;
    assert_eq!(got.len(), 9, "{got:#?}");
    assert_eq!(got[8].webhook_id.as_deref(), Some(webhook_id.as_str()));
    assert!(got[8].valid, "{:#?}", got[8]);
    assert!(deliveries(&app, key, &id, "?status=failed")
        .await
        .is_empty());

    // Unknown or malformed delivery ids.
    let (status, got) = call(
        &app,
        Method::POST,
        &format!("/v1/webhooks/{id}/deliveries/{}/retry", delivery + 1000),
        Some(key),
        None,
    )
    .await;
    assert_eq!(
        (status, got["code"].as_str()),
        (404, Some("webhook_delivery_not_found")),
        "{got}"
    );
    let (status, got) = call(
        &app,
        Method::POST,
        &format!("/v1/webhooks/{id}/deliveries/abc/retry"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(
        (status, got["code"].as_str()),
        (400, Some("invalid_field")),
        "{got}"
    );
    // Another issuer cannot replay it.
    let other = app.second_issuer("uni-b").await;
    let (status, got) = call(
        &app,
        Method::POST,
        &format!("/v1/webhooks/{id}/deliveries/{delivery}/retry"),
        Some(&other.api_key),
        None,
    )
    .await;
    assert_eq!(status, 404, "{got}");
}

#[tokio::test]
async fn a_rotated_secret_keeps_signing_during_its_grace_period_only() {
    let app = spawn_app().await;
    let key = app.issuer.api_key.as_str();
    let receiver = Receiver::start();
    let created = create(&app, key, json!({"url": receiver.url("a")})).await;
    let id = id_of(&created);
    let s1 = secret_of(&created);

    let (status, rotated) = call(
        &app,
        Method::POST,
        &format!("/v1/webhooks/{id}/rotate-secret"),
        Some(key),
        Some(json!({"grace_secs": 3600})),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let s2 = secret_of(&rotated);
    assert!(s2.starts_with("whsec_") && s2 != s1, "{rotated}");
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );
    let (_, got) = call(
        &app,
        Method::GET,
        &format!("/v1/webhooks/{id}"),
        Some(key),
        None,
    )
    .await;
    assert!(got.get("secret").is_none(), "{got}");
    assert!(got["previous_secret_expires_at"].is_string(), "{got}");

    // In the grace period both sign: a receiver holding either accepts.
    receiver
        .configure("a", &[s1.clone(), s2.clone()], 200, 0)
        .await;
    let (_, first) = send_test(&app, key, &id).await;
    let got = receiver.wait_for("a", 1, DELIVERY_DEADLINE).await;
    assert_eq!(got[0].webhook_id.as_deref(), Some(first.as_str()));
    assert_eq!(got[0].valid_with, vec![0, 1], "{:#?}", got[0]);

    // No grace: the previous secret (S2) stops signing at once.
    let (status, rotated) = call(
        &app,
        Method::POST,
        &format!("/v1/webhooks/{id}/rotate-secret"),
        Some(key),
        Some(json!({"grace_secs": 0})),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let s3 = secret_of(&rotated);
    assert!(s3 != s2 && s3 != s1);
    assert!(
        rotated.get("previous_secret_expires_at").is_none(),
        "{rotated}"
    );
    receiver.configure("a", &[s2, s3], 200, 0).await;
    let (_, second) = send_test(&app, key, &id).await;
    let got = receiver.wait_for("a", 2, DELIVERY_DEADLINE).await;
    assert_eq!(got[1].webhook_id.as_deref(), Some(second.as_str()));
    assert_eq!(got[1].valid_with, vec![1], "{:#?}", got[1]);
    assert_eq!(
        got[1].errors[0].as_deref(),
        Some("No matching signature found"),
        "{:#?}",
        got[1]
    );

    // Grace is bounded (a week).
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/v1/webhooks/{id}/rotate-secret"),
        Some(key),
        Some(json!({"grace_secs": 8 * 86_400})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (400, Some("invalid_field"), Some("grace_secs")),
        "{body}"
    );
}

#[tokio::test]
async fn a_hanging_receiver_does_not_delay_another_issuers_deliveries() {
    // Attempts to the hanging receiver last 60 s (the attempt timeout; its answer would take
    // 120 s): were endpoints delivered one after the other, B's deliveries would wait at least
    // that long, three times the deadline they are given below.
    let app = spawn_app_with(|s| s.webhooks.timeout_ms = 60_000).await;
    let receiver = Receiver::start();
    let a_key = app.issuer.api_key.clone();
    let b = app.second_issuer("uni-b").await;
    let slow = create(&app, &a_key, json!({"url": receiver.url("slow")})).await;
    let fast = create(&app, &b.api_key, json!({"url": receiver.url("fast")})).await;
    receiver
        .configure("slow", &[secret_of(&slow)], 200, 120_000)
        .await;
    receiver
        .configure("fast", &[secret_of(&fast)], 200, 0)
        .await;
    let (slow_id, fast_id) = (id_of(&slow), id_of(&fast));

    for _ in 0..5 {
        send_test(&app, &a_key, &slow_id).await;
    }
    // A's first requests are in flight and hanging.
    receiver.wait_for("slow", 1, DELIVERY_DEADLINE).await;
    let mut sent = Vec::new();
    for _ in 0..5 {
        sent.push(send_test(&app, &b.api_key, &fast_id).await.1);
    }
    let got = receiver.wait_for("fast", 5, Duration::from_secs(20)).await;
    let mut ids: Vec<String> = got.iter().filter_map(|r| r.webhook_id.clone()).collect();
    ids.sort();
    sent.sort();
    assert_eq!(ids, sent, "{got:#?}");
    assert!(got.iter().all(|r| r.valid), "{got:#?}");

    // Meanwhile nothing of A's went through, and at most concurrency_per_endpoint (4) of its
    // requests were ever in flight at once.
    let a_deliveries = deliveries(&app, &a_key, &slow_id, "").await;
    assert_eq!(a_deliveries.len(), 5);
    assert!(
        a_deliveries.iter().all(|d| d["status"] == "pending"),
        "{a_deliveries:#?}"
    );
    let slow_got = receiver.deliveries("slow").await;
    assert!(
        (1..=4).contains(&slow_got.len()),
        "{} requests in flight to one endpoint: {slow_got:#?}",
        slow_got.len()
    );
    // And B's are all recorded delivered.
    let b_deliveries = deliveries(&app, &b.api_key, &fast_id, "").await;
    let deadline = Instant::now() + DELIVERY_DEADLINE;
    let mut b_deliveries = b_deliveries;
    while !b_deliveries.iter().all(|d| d["status"] == "delivered") {
        assert!(Instant::now() < deadline, "{b_deliveries:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        b_deliveries = deliveries(&app, &b.api_key, &fast_id, "").await;
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = spawn_app().await;
    let key = app.issuer.api_key.as_str();
    let receiver = Receiver::start();
    // Where the redirects point: a delivery arriving here was a redirect followed (307 and
    // 308 would even re-POST the signed body).
    receiver.configure("target", &[], 200, 0).await;
    for status in [302_u16, 307, 308] {
        let name = format!("redirect-{status}");
        let created = create(&app, key, json!({"url": receiver.url(&name)})).await;
        let id = id_of(&created);
        // The Rust helper has no `headers`: the receiver's control API directly.
        let control = format!(
            "http://127.0.0.1:{}/control/endpoints/{name}",
            receiver.port()
        );
        let resp = app
            .client
            .put(&control)
            .json(&json!({
                "secrets": [secret_of(&created)],
                "status": status,
                "delay_ms": 0,
                "headers": {"location": receiver.url("target")},
            }))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{:?}", resp.text().await);

        let (delivery, webhook_id) = send_test(&app, key, &id).await;
        let d = wait_delivery(
            &app,
            key,
            &id,
            delivery,
            "attempted",
            DELIVERY_DEADLINE,
            |d| d["attempts"].as_i64().unwrap() >= 1,
        )
        .await;
        assert_eq!(d["last_status"], status, "{d}");
        assert_eq!(d["status"], "pending", "a redirect is not a delivery: {d}");
        let got = receiver.deliveries(&name).await;
        assert!(!got.is_empty());
        assert_eq!(got[0].webhook_id.as_deref(), Some(webhook_id.as_str()));
        assert!(got[0].valid, "{:#?}", got[0]);
        assert_eq!(got[0].status, status);
    }
    assert!(
        receiver.deliveries("target").await.is_empty(),
        "a redirect was followed: {:#?}",
        receiver.deliveries("target").await
    );
    assert_eq!(delivered_metric(&app, "delivered").await, 0);
}
