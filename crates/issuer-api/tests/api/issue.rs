//! Issuing credentials: JSON and multipart, hash and signature, rows written, auth scoping.

use domain::hash::{
    credential_hash, credential_hash_v2, CredentialFields, FileDigest, ProofFormat, Salt,
};
use domain::signing::{verify_credential_signature, IssuerSignature, PublicKey};
use domain::{CredentialHash, CredentialId, IssuedAt, IssuerId, KeyId, RecipientId, Serial};
use serde_json::Value;

use crate::helpers::{credential_json, error_code, spawn_app, FILE};

#[tokio::test]
async fn issue_json_answers_202_with_a_signed_queued_credential_and_writes_both_rows() {
    let app = spawn_app().await;
    let resp = app.post_json(&credential_json("S-0001"), None).await;
    assert_eq!(resp.status().as_u16(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "queued");
    assert_eq!(
        location,
        format!("/v1/credentials/{}", body["id"].as_str().unwrap())
    );

    // The hash is exactly the domain's v2 hash of the id, the salt and the submitted fields.
    let fields = CredentialFields {
        file_digest: FileDigest::of(FILE),
        issuer: IssuerId::parse("uni-a").unwrap(),
        recipient: RecipientId::parse("student-0001").unwrap(),
        issued_at: IssuedAt::parse_rfc3339("2026-06-30T12:00:00Z").unwrap(),
        serial: Serial::parse("S-0001").unwrap(),
    };
    assert_eq!(body["proof_format"], 2);
    let id: CredentialId = body["id"].as_str().unwrap().parse().unwrap();
    let salt = Salt::from_hex(body["salt"].as_str().unwrap()).unwrap();
    // The signature verifies with the issuer's published key and the returned key id.
    let public = PublicKey::from_base58(&app.issuer.signing_public_key).unwrap();
    let sig = IssuerSignature::from_base58(body["signature"].as_str().unwrap()).unwrap();
    let key_id = KeyId::parse(body["key_id"].as_str().unwrap()).unwrap();
    assert_eq!(key_id.as_str(), app.issuer.signing_key_id);
    // ... over the hash of id, salt, signing key and the submitted fields.
    let expected = credential_hash_v2(&id, &salt, &key_id, &public, &fields);
    assert_eq!(body["credential_hash"], expected.to_hex());
    // Salted: the unsalted v1 hash of the same fields is not what was anchored.
    assert_ne!(body["credential_hash"], credential_hash(&fields).to_hex());
    assert_eq!(body["file_digest"], FileDigest::of(FILE).to_hex());
    verify_credential_signature(ProofFormat::V2, &public, &key_id, &expected, &sig).unwrap();
    let tampered = CredentialHash::from_bytes([7u8; 32]);
    assert!(
        verify_credential_signature(ProofFormat::V2, &public, &key_id, &tampered, &sig).is_err()
    );

    assert_eq!(app.row_counts().await, (1, 1));
}

#[tokio::test]
async fn multipart_and_json_requests_of_the_same_credential_give_the_same_hash() {
    let app = spawn_app().await;
    let json_resp: Value = app
        .post_json(&credential_json("S-J"), None)
        .await_json()
        .await;

    let mut meta = credential_json("S-M");
    meta.as_object_mut().unwrap().remove("file_base64");
    let form = reqwest::multipart::Form::new()
        .part(
            "metadata",
            reqwest::multipart::Part::text(meta.to_string())
                .mime_str("application/json")
                .unwrap(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(FILE.to_vec()).file_name("diploma.pdf"),
        );
    let resp = app.post_form(form).await;
    assert_eq!(resp.status().as_u16(), 202);
    let multi: Value = resp.json().await.unwrap();
    assert_eq!(multi["file_digest"], json_resp["file_digest"]);
    // Serials differ, so the credential hashes must differ too.
    assert_ne!(multi["credential_hash"], json_resp["credential_hash"]);
    assert_eq!(app.row_counts().await, (2, 2));
}

#[tokio::test]
async fn get_returns_the_credential_and_unknown_or_malformed_ids_are_errors() {
    let app = spawn_app().await;
    let created: Value = app
        .post_json(&credential_json("S-G"), None)
        .await_json()
        .await;
    let id = created["id"].as_str().unwrap();
    let resp = app
        .get(&format!("/v1/credentials/{id}"), &app.issuer.api_key)
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["credential_hash"], created["credential_hash"]);
    assert_eq!(got["recipient_id"], "student-0001");
    assert_eq!(got["metadata"]["credits"], 180);

    let (status, body) = error_code(
        app.get(
            "/v1/credentials/01890a5d-ac96-774b-bcce-b302099a8057",
            &app.issuer.api_key,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("credential_not_found"))
    );
    let (status, body) = error_code(
        app.get("/v1/credentials/not-a-uuid", &app.issuer.api_key)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (400, Some("invalid_field"), Some("id"))
    );
}

#[tokio::test]
async fn another_issuers_credential_is_not_found_and_not_listed() {
    let app = spawn_app().await;
    let created: Value = app
        .post_json(&credential_json("S-A"), None)
        .await_json()
        .await;
    let other = app.second_issuer("uni-b").await;
    let id = created["id"].as_str().unwrap();
    let (status, body) = error_code(
        app.get(&format!("/v1/credentials/{id}"), &other.api_key)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("credential_not_found"))
    );
    let list: Value = app
        .get("/v1/credentials", &other.api_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    // Issuer B may reuse A's serial: serials are unique per issuer only.
    let resp = app
        .client
        .post(app.url("/v1/credentials"))
        .bearer_auth(&other.api_key)
        .json(&credential_json("S-A"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
}

#[tokio::test]
async fn missing_malformed_and_wrong_api_keys_are_401() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/v1/credentials"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let (status, body) = error_code(app.get("/v1/credentials", "garbage").await).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    // Right id, wrong secret.
    let key = &app.issuer.api_key;
    let forged = format!(
        "{}{}",
        &key[..key.len() - 4],
        if key.ends_with("AAAA") {
            "BBBB"
        } else {
            "AAAA"
        }
    );
    let (status, _) = error_code(app.get("/v1/credentials", &forged).await).await;
    assert_eq!(status, 401);
    let resp = app
        .client
        .post(app.url("/v1/credentials"))
        .json(&credential_json("S-X"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(app.row_counts().await, (0, 0));
}

#[tokio::test]
async fn same_serial_same_content_returns_existing_and_different_content_is_409() {
    let app = spawn_app().await;
    let first: Value = app
        .post_json(&credential_json("S-D"), None)
        .await_json()
        .await;
    let resp = app.post_json(&credential_json("S-D"), None).await;
    assert_eq!(resp.status().as_u16(), 200);
    let again: Value = resp.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);

    let mut changed = credential_json("S-D");
    changed["title"] = "MSc Computer Science".into();
    let (status, body) = error_code(app.post_json(&changed, None).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("serial_conflict"))
    );
    assert_eq!(body["existing_id"], first["id"]);
    assert_eq!(app.row_counts().await, (1, 1));
}

/// Small extension so a 202 body reads in one line.
trait AwaitJson {
    async fn await_json(self) -> Value;
}

impl<F: std::future::Future<Output = reqwest::Response>> AwaitJson for F {
    async fn await_json(self) -> Value {
        let resp = self.await;
        assert_eq!(resp.status().as_u16(), 202, "expected 202");
        resp.json().await.unwrap()
    }
}

/// Authenticated keys are cached for `http.api_key_cache_secs` (one lookup fewer per
/// request); a key revoked in the database stops working once its entry expires, even while
/// it keeps being used (a hit never extends the entry).
#[tokio::test]
async fn a_revoked_api_key_stops_working_within_the_cache_ttl() {
    let app = crate::helpers::spawn_app_with(|s| s.http.api_key_cache_secs = 1).await;
    let key = app.issuer.api_key.clone();
    assert_eq!(app.get("/v1/credentials", &key).await.status(), 200);
    assert_eq!(app.revoke_api_key().await, 1);
    // Keep using the key: within a second it is refused, and stays refused.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = app.get("/v1/credentials", &key).await.status().as_u16();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            std::time::Instant::now() < deadline,
            "a revoked key still works after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.get("/v1/credentials", &key).await.status(), 401);
}

/// With the cache off every request is looked up: revocation takes effect at once.
#[tokio::test]
async fn with_the_key_cache_off_revocation_is_immediate() {
    let app = crate::helpers::spawn_app_with(|s| s.http.api_key_cache_secs = 0).await;
    let key = app.issuer.api_key.clone();
    assert_eq!(app.get("/v1/credentials", &key).await.status(), 200);
    assert_eq!(app.revoke_api_key().await, 1);
    assert_eq!(app.get("/v1/credentials", &key).await.status(), 401);
}

/// Two replicas on one database whose counter of status ordinals went back (a failover to an
/// asynchronous standby, a restore): replica A still hands out ordinals from a block the
/// database no longer remembers. The counter is set back by hand, because a real failover
/// leaves this state only by chance (`crash::postgres_failover_with_an_asynchronous_standby…`
/// runs the real one). Nobody gets a 500 and no ordinal is used twice: B's reservation starts
/// past every ordinal in use, and A, refused once, forgets its block and reserves afresh.
#[tokio::test]
async fn a_replica_whose_ordinal_block_the_database_lost_reserves_afresh_and_issues() {
    let a = crate::helpers::spawn_app().await;
    let b = issuer_api::Application::build(crate::helpers::settings_for(&a.db.url, &a.master))
        .await
        .unwrap();
    let b_address = format!("http://127.0.0.1:{}", b.port());
    tokio::spawn(b.into_server());
    let post_to_b = |serial: &str| {
        a.client
            .post(format!("{b_address}/v1/credentials"))
            .bearer_auth(&a.issuer.api_key)
            .json(&credential_json(serial))
            .send()
    };
    let sql = a.sql().await;
    let ordinal_of = async |serial: &str| -> i64 {
        sql.query_one(
            "SELECT status_ordinal FROM credentials WHERE serial = $1",
            &[&serial],
        )
        .await
        .unwrap()
        .get(0)
    };

    // A reserves a block (0..64) and uses 0; then the database forgets the block.
    assert_eq!(
        a.post_json(&credential_json("S-A1"), None).await.status(),
        202
    );
    assert_eq!(ordinal_of("S-A1").await, 0);
    sql.execute("UPDATE status_list_counters SET next_ordinal = 0", &[])
        .await
        .unwrap();

    // B reserves past every ordinal in use (1, not the counter's 0) and uses it.
    assert_eq!(post_to_b("S-B1").await.unwrap().status(), 202);
    assert_eq!(ordinal_of("S-B1").await, 1);
    // A's next ordinal from memory is 1, B's: refused, A reserves afresh past B's block.
    let resp = a.post_json(&credential_json("S-A2"), None).await;
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
    assert_eq!(ordinal_of("S-A2").await, 65);
    // And keeps issuing from its new block.
    assert_eq!(
        a.post_json(&credential_json("S-A3"), None).await.status(),
        202
    );
    assert_eq!(ordinal_of("S-A3").await, 66);

    let (rows, distinct): (i64, i64) = {
        let row = sql
            .query_one(
                "SELECT count(*), count(DISTINCT status_ordinal) FROM credentials",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((rows, distinct), (4, 4));
}
