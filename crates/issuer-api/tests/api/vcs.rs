//! Verifiable Credentials (issue #19): every issued credential, single or bulk, is an
//! OpenBadgeCredential signed `eddsa-rdfc-2022` under the issuer's `did:web`, verifiable
//! against the DID document the API serves, across signing-key rotations. (The published
//! verifiers check the same credentials in `stack`'s `vc_interop` suite.)

use base64::Engine;
use domain::hash::{FileDigest, Salt};
use domain::vc::{assertion_key, identity_hash};
use domain::RecipientId;
use provisioning::rotate_signing_key;
use serde_json::{json, Value};

use crate::helpers::{credential_json, error_code, spawn_app, TestApp, FILE};

async fn did_document(app: &TestApp, issuer: &str) -> (u16, Value) {
    // Public: no Authorization header.
    let resp = app
        .client
        .get(app.url(&format!("/issuers/{issuer}/did.json")))
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// Verifies `vc`'s proof against `did_doc` the way a standard verifier does: the method
/// must be one of the document's `assertionMethod`s; its `publicKeyMultibase` is the key.
fn verify_with(vc: &Value, did_doc: &Value) -> Result<vc::VerifiedProof, vc::ProofError> {
    vc::verify_proof(vc, |method| assertion_key(did_doc, method))
}

async fn issue(app: &TestApp, serial: &str) -> Value {
    let resp = app.post_json(&credential_json(serial), None).await;
    assert_eq!(resp.status().as_u16(), 202);
    resp.json().await.unwrap()
}

async fn vc_of(app: &TestApp, id: &str) -> Value {
    let resp = app
        .get(&format!("/v1/credentials/{id}/vc"), &app.issuer.api_key)
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/vc"
    );
    serde_json::from_str(&resp.text().await.unwrap()).unwrap()
}

#[tokio::test]
async fn an_issued_credential_is_an_open_badge_that_verifies_against_the_served_did() {
    let app = spawn_app().await;
    let created = issue(&app, "VC-0001").await;
    let id = created["id"].as_str().unwrap();
    let vc = vc_of(&app, id).await;

    let did = format!(
        "did:web:{}:issuers:uni-a",
        app.address
            .trim_start_matches("http://")
            .replace(':', "%3A")
    );
    assert_eq!(vc["id"], format!("urn:uuid:{id}"));
    assert_eq!(
        vc["type"],
        json!(["VerifiableCredential", "OpenBadgeCredential"])
    );
    assert_eq!(vc["issuer"]["id"], did);
    assert_eq!(vc["issuer"]["name"], "University A");
    assert_eq!(vc["validFrom"], "2026-06-30T12:00:00Z");
    let achievement = &vc["credentialSubject"]["achievement"];
    assert_eq!(achievement["name"], "BSc Computer Science");
    assert_eq!(achievement["achievementType"], "Diploma");
    // The recipient only as a salted hash; the salt is the credential's own.
    let identity = &vc["credentialSubject"]["identifier"][0];
    assert_eq!(identity["hashed"], true);
    let salt = Salt::from_hex(identity["salt"].as_str().unwrap()).unwrap();
    let salt_in_db: Vec<u8> = app
        .sql()
        .await
        .query_one(
            "SELECT salt FROM credentials WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(salt.as_bytes().as_slice(), salt_in_db.as_slice());
    assert_eq!(
        identity["identityHash"],
        identity_hash(&RecipientId::parse("student-0001").unwrap(), &salt)
    );
    assert!(!vc.to_string().contains("student-0001"));
    // The file by its digest.
    let digest = FileDigest::of(FILE);
    assert_eq!(
        vc["relatedResource"][0]["digestSRI"],
        format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(digest.as_bytes())
        )
    );

    let (status, did_doc) = did_document(&app, "uni-a").await;
    assert_eq!(status, 200, "{did_doc}");
    assert_eq!(did_doc["id"], did);
    let verified = verify_with(&vc, &did_doc).unwrap();
    assert_eq!(
        verified.verification_method,
        format!("{did}#{}", app.issuer.signing_key_id)
    );
    // The profile links to the DID.
    let profile: Value = app
        .client
        .get(app.url("/v1/issuers/uni-a"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(profile["did"], did);
    assert_eq!(
        profile["did_document"],
        format!("{}/issuers/uni-a/did.json", app.address)
    );
}

#[tokio::test]
async fn the_stored_bytes_are_served_unchanged_and_a_tampered_copy_fails() {
    let app = spawn_app().await;
    let created = issue(&app, "VC-0002").await;
    let id = created["id"].as_str().unwrap();
    let first = app
        .get(&format!("/v1/credentials/{id}/vc"), &app.issuer.api_key)
        .await
        .text()
        .await
        .unwrap();
    let second = app
        .get(&format!("/v1/credentials/{id}/vc"), &app.issuer.api_key)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(first, second);
    let (_, did_doc) = did_document(&app, "uni-a").await;
    let mut vc: Value = serde_json::from_str(&first).unwrap();
    assert!(verify_with(&vc, &did_doc).is_ok());
    vc["credentialSubject"]["achievement"]["name"] = json!("PhD Computer Science");
    assert_eq!(
        verify_with(&vc, &did_doc),
        Err(vc::ProofError::BadSignature)
    );
}

#[tokio::test]
async fn credentials_signed_before_a_rotation_still_verify_against_the_did_document() {
    let app = spawn_app().await;
    let mut vcs = Vec::new();
    for round in 0..3 {
        let created = issue(&app, &format!("VC-ROT-{round}")).await;
        vcs.push(vc_of(&app, created["id"].as_str().unwrap()).await);
        rotate_signing_key(&app.store, &app.master, &"uni-a".parse().unwrap())
            .await
            .unwrap();
    }
    let (_, did_doc) = did_document(&app, "uni-a").await;
    // Three retired keys and the active one, all allowed to assert.
    assert_eq!(did_doc["assertionMethod"].as_array().unwrap().len(), 4);
    let methods: std::collections::HashSet<String> = vcs
        .iter()
        .map(|vc| verify_with(vc, &did_doc).unwrap().verification_method)
        .collect();
    assert_eq!(methods.len(), 3, "each round signed with its own key");
    // Signed with the active key after the last rotation.
    let created = issue(&app, "VC-ROT-new").await;
    let vc = vc_of(&app, created["id"].as_str().unwrap()).await;
    let method = verify_with(&vc, &did_doc).unwrap().verification_method;
    assert!(!methods.contains(&method));
}

#[tokio::test]
async fn a_bulk_request_serves_one_signed_credential_per_accepted_item() {
    let app = spawn_app().await;
    let items: Vec<Value> = (0..5)
        .map(|i| credential_json(&format!("VC-BULK-{i}")))
        .chain([json!({"serial": "broken"})])
        .collect();
    let resp = app
        .client
        .post(app.url("/v1/credential-batches"))
        .bearer_auth(&app.issuer.api_key)
        .json(&json!({ "credentials": items }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["accepted"], 5);
    let request = body["id"].as_str().unwrap();
    let resp = app
        .get(
            &format!("/v1/credential-batches/{request}/vcs"),
            &app.issuer.api_key,
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    let (_, did_doc) = did_document(&app, "uni-a").await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    let accepted: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    for (line, id) in lines.iter().zip(&accepted) {
        let vc: Value = serde_json::from_str(line).unwrap();
        assert_eq!(vc["id"], format!("urn:uuid:{id}"), "request order");
        verify_with(&vc, &did_doc).unwrap();
    }
}

#[tokio::test]
async fn unknown_or_foreign_credentials_and_issuers_are_not_found() {
    let app = spawn_app().await;
    let created = issue(&app, "VC-0003").await;
    let id = created["id"].as_str().unwrap();
    let other = app.second_issuer("uni-b").await;
    let (status, body) = error_code(
        app.get(&format!("/v1/credentials/{id}/vc"), &other.api_key)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("credential_not_found"))
    );
    let (status, body) = error_code(
        app.get("/v1/credentials/not-a-uuid/vc", &app.issuer.api_key)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_field"))
    );
    let (status, body) = did_document(&app, "no-such-issuer").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("issuer_not_found"))
    );
    let (status, body) = did_document(&app, "NOT_A_SLUG").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_field"))
    );
}

#[tokio::test]
async fn a_credential_without_a_vc_answers_vc_not_available() {
    let app = spawn_app().await;
    let created = issue(&app, "VC-0004").await;
    let id = created["id"].as_str().unwrap();
    // A row as an older release wrote it.
    app.sql()
        .await
        .execute(
            "UPDATE credentials SET vc = NULL WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    let (status, body) = error_code(
        app.get(&format!("/v1/credentials/{id}/vc"), &app.issuer.api_key)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("vc_not_available"))
    );
}
