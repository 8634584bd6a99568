//! The operator's key commands on the real binary and a real PostgreSQL (#18, keys and
//! operations): API keys added, listed and revoked with `issuer-api admin ...`, a revoked key
//! refused within the cache TTL; the master key rotated by `admin rotate-master-key`, all or
//! nothing, after which the server signs with the new key alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // each suite reads the fields it needs
#[path = "common/binary.rs"]
mod binary;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn credential(serial: &str) -> Value {
    json!({
        "recipient_id": "student-ops", "issued_at": "2026-06-30T12:00:00Z", "serial": serial,
        "credential_type": "diploma", "title": "BSc",
        "file_base64": "JVBERi0xLjcgb3BlcmF0b3I=",
    })
}

async fn list_status(http: &reqwest::Client, api: &str, key: &str) -> u16 {
    http.get(format!("{api}/v1/credentials"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn issue_status(http: &reqwest::Client, api: &str, key: &str, serial: &str) -> (u16, Value) {
    let resp = http
        .post(format!("{api}/v1/credentials"))
        .bearer_auth(key)
        .json(&credential(serial))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn api_keys_are_added_listed_and_revoked_and_a_revoked_key_stops_within_the_cache_ttl() {
    let mut served = binary::serve_with(
        "uni-keys",
        "warn",
        None,
        &[("APP__HTTP__API_KEY_CACHE_SECS", "1".into())],
    )
    .await;
    let http = reqwest::Client::new();
    let first = served.api_key.clone();

    let (ok, out, err) = served.command(&["admin", "add-api-key", "--issuer", "uni-keys"], &[]);
    assert!(ok, "{err}");
    let added: Value = serde_json::from_str(&out).unwrap();
    let second = added["api_key"].as_str().unwrap().to_string();
    let second_id = added["api_key_id"].as_str().unwrap().to_string();
    assert!(second.starts_with(&format!("cak_{second_id}_")), "{added}");
    assert_eq!(list_status(&http, &served.api, &second).await, 200);
    assert_eq!(list_status(&http, &served.api, &first).await, 200);

    // Listing shows ids and dates, never a secret.
    let (ok, out, err) = served.command(&["admin", "list-api-keys", "--issuer", "uni-keys"], &[]);
    assert!(ok, "{err}");
    let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.len(), 2, "{out}");
    for secret in [&first, &second] {
        assert!(!out.contains(secret.rsplit('_').next().unwrap()), "{out}");
    }
    assert!(listed.iter().all(|k| k["revoked_at"].is_null()));

    // Revoked (by id): refused once the replica's cached lookup expires (1 s here).
    let (ok, out, err) = served.command(&["admin", "revoke-api-key", "--key-id", &second_id], &[]);
    assert!(ok, "{err}");
    let revoked: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(revoked["newly_revoked"], true, "{revoked}");
    assert_eq!(revoked["issuer_id"], "uni-keys");
    let started = Instant::now();
    while list_status(&http, &served.api, &second).await != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "a revoked key still worked 3 s later (cache TTL 1 s)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(list_status(&http, &served.api, &first).await, 200);

    // Revoking again says so and keeps the first instant; the whole key text works as well.
    let (ok, out, err) = served.command(&["admin", "revoke-api-key", "--key-id", &second], &[]);
    assert!(ok, "{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["newly_revoked"], false, "{again}");
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);
    let unknown = "0".repeat(second_id.len());
    let (ok, _, err) = served.command(&["admin", "revoke-api-key", "--key-id", &unknown], &[]);
    assert!(!ok);
    assert!(err.contains("no API key"), "{err}");
    let (ok, _, err) = served.command(&["admin", "add-api-key", "--issuer", "nobody"], &[]);
    assert!(!ok);
    assert!(err.contains("no issuer"), "{err}");
    let _ = served.child.kill();
}

#[tokio::test]
async fn the_master_key_is_rotated_all_or_nothing_and_the_server_then_signs_with_the_new_key_alone()
{
    let mut served = binary::serve("uni-master", "warn", None).await;
    let http = reqwest::Client::new();
    let key = served.api_key.clone();
    let old = served.master_key.clone();
    assert_eq!(issue_status(&http, &served.api, &key, "M-1").await.0, 202);
    // A second signing key, so more than one seed is re-sealed.
    let (ok, _, err) = served.command(
        &["admin", "rotate-signing-key", "--issuer", "uni-master"],
        &[],
    );
    assert!(ok, "{err}");

    let new_key = |served: &binary::Served| {
        let (ok, out, err) = served.command(&["admin", "new-master-key"], &[]);
        assert!(ok, "{err}");
        out.trim().to_string()
    };
    let new = new_key(&served);
    let stranger = new_key(&served);

    // Opened with a key that sealed nothing: refused, nothing changed.
    let (ok, _, err) = served.command(
        &["admin", "rotate-master-key"],
        &[
            ("APP__SIGNING__MASTER_KEY", new.clone()),
            ("APP__SIGNING__PREVIOUS_MASTER_KEYS", stranger.clone()),
        ],
    );
    assert!(!ok);
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(
        !err.contains(&stranger) && !err.contains(&old),
        "a master key in: {err}"
    );

    let rotate = |served: &binary::Served| {
        let (ok, out, err) = served.command(
            &["admin", "rotate-master-key"],
            &[
                ("APP__SIGNING__MASTER_KEY", new.clone()),
                // The old key among others, as an operator might list them.
                (
                    "APP__SIGNING__PREVIOUS_MASTER_KEYS",
                    format!("{stranger}, {old}"),
                ),
            ],
        );
        assert!(ok, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let first = rotate(&served);
    // Both seeds (the retired key's and the active one's) moved; a second run finds none.
    assert_eq!(first, json!({"resealed": 2, "already_current": 0}));
    assert_eq!(
        rotate(&served),
        json!({"resealed": 0, "already_current": 2})
    );

    // The server with the new key alone signs; with the old key alone it cannot.
    served
        .restart(&[("APP__SIGNING__MASTER_KEY", new.clone())])
        .await;
    assert_eq!(issue_status(&http, &served.api, &key, "M-2").await.0, 202);
    served
        .restart(&[("APP__SIGNING__MASTER_KEY", old.clone())])
        .await;
    let (status, body) = issue_status(&http, &served.api, &key, "M-3").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "signing_unavailable", "{body}");
    let _ = served.child.kill();
}
