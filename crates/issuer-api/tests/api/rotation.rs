//! Issuer profile (`GET /v1/issuers/{id}`) and signing-key rotation (issue #7).

use chrono::{DateTime, Utc};
use domain::hash::CredentialHash;
use domain::key_validity::{check_key_validity, KeyWindow, SigningEvidence};
use domain::signing::{verify_credential_signature, IssuerSignature, PublicKey};
use domain::{IssuedAt, KeyId};
use provisioning::rotate_signing_key;
use serde_json::Value;

use crate::helpers::{credential_json, spawn_app};

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

async fn profile(app: &crate::helpers::TestApp, id: &str) -> (u16, Value) {
    // Public: no Authorization header at all.
    let resp = app
        .client
        .get(app.url(&format!("/v1/issuers/{id}")))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// The issuer signature of a credential body verifies with the published key `key`, and
/// the key's window accepts it given when the credential was recorded.
fn check_against_profile(credential: &Value, key: &Value) -> Result<(), String> {
    let public = PublicKey::from_base58(key["public_key"].as_str().unwrap()).unwrap();
    let key_id = KeyId::parse(key["key_id"].as_str().unwrap()).unwrap();
    let hash = CredentialHash::from_hex(credential["credential_hash"].as_str().unwrap()).unwrap();
    let sig = IssuerSignature::from_base58(credential["signature"].as_str().unwrap()).unwrap();
    verify_credential_signature(domain::ProofFormat::V2, &public, &key_id, &hash, &sig)
        .map_err(|e| e.to_string())?;
    let window = KeyWindow {
        valid_from: time(&key["valid_from"]),
        retired_at: key["retired_at"].as_str().map(|_| time(&key["retired_at"])),
    };
    let issued = IssuedAt::parse_rfc3339(credential["issued_at"].as_str().unwrap()).unwrap();
    check_key_validity(
        &window,
        &issued,
        SigningEvidence::Recorded(time(&credential["created_at"])),
    )
    .map_err(|e| e.code().to_string())
}

#[tokio::test]
async fn rotation_retires_the_old_key_and_new_credentials_use_the_new_one_at_once() {
    let app = spawn_app().await;
    let (status, before) = profile(&app, "uni-a").await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["name"], "University A");
    let keys = before["signing_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0]["retired_at"].is_null());
    assert_eq!(keys[0]["key_id"], app.issuer.signing_key_id.as_str());

    let old: Value = app
        .post_json(&credential_json("ROT-1"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(old["key_id"], app.issuer.signing_key_id.as_str());

    let rotated = rotate_signing_key(&app.store, &app.master, &"uni-a".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        rotated.retired_key_id.as_deref(),
        Some(app.issuer.signing_key_id.as_str())
    );

    // The API still has the old key cached: the store refuses it and the handler re-signs.
    let resp = app.post_json(&credential_json("ROT-2"), None).await;
    assert_eq!(resp.status().as_u16(), 202);
    let new: Value = resp.json().await.unwrap();
    assert_eq!(new["key_id"], rotated.new_key_id.as_str(), "{new}");

    let (_, after) = profile(&app, "uni-a").await;
    let keys = after["signing_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{after}");
    let (old_key, new_key) = (&keys[0], &keys[1]);
    assert_eq!(old_key["key_id"], app.issuer.signing_key_id.as_str());
    assert_eq!(new_key["key_id"], rotated.new_key_id.as_str());
    assert_eq!(new_key["public_key"], rotated.new_public_key.as_str());
    assert!(new_key["retired_at"].is_null());
    assert_eq!(
        time(&old_key["retired_at"]),
        time(&new_key["valid_from"]),
        "one instant"
    );

    // Credentials signed before the rotation stay valid against the published profile.
    assert_eq!(check_against_profile(&old, old_key), Ok(()));
    assert_eq!(check_against_profile(&new, new_key), Ok(()));
    // The new credential was made after the old key's retirement: the old key's window
    // refuses it, whatever signature it carried.
    let mut forged = new.clone();
    forged["signature"] = old["signature"].clone();
    forged["credential_hash"] = old["credential_hash"].clone();
    assert_eq!(
        check_against_profile(&forged, old_key),
        Err("key_retired".to_string())
    );

    // Rotating twice keeps exactly one active key.
    rotate_signing_key(&app.store, &app.master, &"uni-a".parse().unwrap())
        .await
        .unwrap();
    let (_, last) = profile(&app, "uni-a").await;
    let active = last["signing_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["retired_at"].is_null())
        .count();
    assert_eq!(active, 1, "{last}");
}

#[tokio::test]
async fn issuer_profile_errors_are_stable_codes() {
    let app = spawn_app().await;
    let (status, body) = profile(&app, "nobody").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("issuer_not_found"))
    );
    let (status, body) = profile(&app, "Not_A_Slug").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_field"))
    );
    assert!(
        rotate_signing_key(&app.store, &app.master, &"nobody".parse().unwrap())
            .await
            .is_err()
    );
}

/// Bulk issuance follows the same rule: a batch signed with a key rotated meanwhile (the API's
/// cache still holds it) is refused by the store and signed again with the new key.
#[tokio::test]
async fn a_bulk_request_signed_with_a_rotated_key_is_signed_again_with_the_new_one() {
    let app = spawn_app().await;
    // Warm the signer's cache with the current key.
    assert_eq!(
        app.post_json(&credential_json("BULK-ROT-0"), None)
            .await
            .status()
            .as_u16(),
        202
    );
    let rotated = rotate_signing_key(&app.store, &app.master, &"uni-a".parse().unwrap())
        .await
        .unwrap();
    let body = serde_json::json!({ "credentials": [credential_json("BULK-ROT-1"), credential_json("BULK-ROT-2")] });
    let resp = app
        .client
        .post(app.url("/v1/credential-batches"))
        .bearer_auth(&app.issuer.api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["accepted"], 2, "{v}");
    for item in v["items"].as_array().unwrap() {
        let id = item["id"].as_str().unwrap();
        let stored: Value = app
            .get(&format!("/v1/credentials/{id}"), &app.issuer.api_key)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(stored["key_id"], rotated.new_key_id.as_str(), "{stored}");
    }
}

/// `create-issuer` refuses a missing or malformed anchoring key before writing anything, and
/// the profile publishes the key it was given with an open window.
#[tokio::test]
async fn create_issuer_requires_a_well_formed_anchoring_key() {
    let app = spawn_app().await;
    for bad in [
        "",
        "not-a-key",
        "0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl",
        // Base58 of 31 bytes: shaped like a key, not one.
        "8zUFfLHADcabAoM9YFZYEosLosi2GDmsDuzfcSEkxG",
    ] {
        let err = provisioning::create_issuer(
            &app.store,
            &app.master,
            &domain::IssuerId::parse("uni-bad-key").unwrap(),
            "Bad Key University",
            bad,
            None,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("anchor-pubkey"), "{bad:?}: {err}");
    }
    let (status, _) = profile(&app, "uni-bad-key").await;
    assert_eq!(status, 404, "nothing was written");

    // The command line refuses a missing key outright (usage error, exit 2).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_issuer-api"))
        .args(["admin", "create-issuer", "--id", "uni-x", "--name", "X"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--anchor-pubkey"));

    let (status, v) = profile(&app, "uni-a").await;
    assert_eq!(status, 200);
    let keys = v["anchor_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{v}");
    assert_eq!(
        keys[0]["pubkey"],
        crate::helpers::UNUSED_ANCHOR_KEY.to_base58()
    );
    assert!(keys[0]["retired_at"].is_null());
    assert_eq!(v["anchor_pubkey"], keys[0]["pubkey"]);
}
