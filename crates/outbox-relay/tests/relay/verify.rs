//! `POST /v1/verify` against the real chain (issue #7): verdicts for genuine, tampered,
//! forged-anchor, unknown-issuer and revoked credentials, checked on chain over RPC.

use std::time::Duration;

use chain::{AnchorKeypair, ChainClient, ChainConfig, Cluster, Commitment};
use domain::proof::ProofBundle;
use outbox_relay::Application;
use serde_json::{json, Value};

use crate::helpers::{world, World};

/// The file `World::issue(serial)` uploads.
pub fn file_of(serial: &str) -> Vec<u8> {
    format!("%PDF diploma {serial}").into_bytes()
}

pub async fn verify_fields(w: &World, file: Vec<u8>, issuer: &str, serial: &str) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(file).file_name("diploma.pdf"),
        )
        .text("issuer_id", issuer.to_string())
        .text("recipient_id", format!("student-{serial}"))
        .text("issued_at", "2026-06-30T12:00:00Z")
        .text("serial", serial.to_string());
    post_verify(w, form).await
}

pub async fn verify_bundle(w: &World, file: Vec<u8>, bundle: &ProofBundle) -> (u16, Value) {
    verify_proof_text(w, file, serde_json::to_string(bundle).unwrap()).await
}

/// `POST /v1/verify` with the `proof` part exactly as given (e.g. a bundle in another spelling).
pub async fn verify_proof_text(w: &World, file: Vec<u8>, proof: String) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(file).file_name("diploma.pdf"),
        )
        .text("proof", proof);
    post_verify(w, form).await
}

pub async fn post_verify(w: &World, form: reqwest::multipart::Form) -> (u16, Value) {
    // Public: no API key.
    let resp = w
        .client
        .post(format!("{}/v1/verify", w.api))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// The credential's proof bundle from `GET /v1/credentials/{id}/proof`.
pub async fn bundle_for(w: &World, id: &str) -> ProofBundle {
    let resp = w
        .client
        .get(format!("{}/v1/credentials/{id}/proof", w.api))
        .bearer_auth(&w.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

pub async fn pass_until(app: &Application, w: &World, id: &str, status: &str) {
    let deadline = std::time::Instant::now() + testkit::FINALITY_DEADLINE;
    loop {
        let _ = app.relay().run_pass().await;
        let body = w.credential(id).await;
        if body["status"] == status {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "not {status}: {body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Sends `memo` paid by a key that is NOT the issuer's, and waits until it is finalized.
async fn forged_anchor(w: &World, memo: &str) -> String {
    let forger = AnchorKeypair::generate();
    testkit::validator::airdrop(
        w.chain_env.rpc_url(),
        &forger.pubkey_base58(),
        1_000_000_000,
    )
    .await
    .unwrap();
    let chain = ChainClient::new(
        ChainConfig::new(w.chain_env.rpc_url(), Cluster::Localnet),
        forger,
    );
    let tx = chain.build_memo_transaction(memo).await.unwrap();
    chain.send_transaction_bytes(&tx.bytes).await.unwrap();
    let deadline = std::time::Instant::now() + testkit::FINALITY_DEADLINE;
    while chain
        .fetch_transaction(&tx.signature, Commitment::Finalized)
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "forged tx not finalized"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tx.signature
}

#[tokio::test]
async fn verify_answers_from_the_chain_for_genuine_tampered_forged_and_revoked_credentials() {
    let w = world().await;
    let app = Application::build(w.relay_settings(w.chain_env.rpc_url(), "relay-verify"))
        .await
        .unwrap();
    let issuer = "uni-relay";
    let id = w.issue("S-VER-1").await;

    // Queued: genuine, not anchored yet.
    let (status, v) = verify_fields(&w, file_of("S-VER-1"), issuer, "S-VER-1").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["verdict"], "not_anchored_yet", "{v}");

    pass_until(&app, &w, &id, "finalized").await;
    let credential = w.credential(&id).await;
    let signature = credential["anchor"]["signature"]
        .as_str()
        .unwrap()
        .to_string();

    // Genuine file + claimed fields: valid, with everything a verifier needs.
    let (_, v) = verify_fields(&w, file_of("S-VER-1"), issuer, "S-VER-1").await;
    assert_eq!(v["verdict"], "valid", "{v}");
    assert_eq!(v["credential_id"], id.as_str());
    assert_eq!(v["issuer"]["name"], "Relay University");
    assert_eq!(v["issuer"]["key_id"], credential["key_id"]);
    assert_eq!(v["issued_at"], "2026-06-30T12:00:00Z");
    assert_eq!(v["anchor"]["signature"], signature.as_str());
    assert_eq!(v["anchor"]["finalized"], true);
    assert_eq!(v["anchor"]["slot"], credential["anchor"]["slot"]);
    assert!(v["anchor"]["explorer_url"]
        .as_str()
        .unwrap()
        .contains(&signature));
    assert!(v["revocation"].is_null());

    // One byte changed: nothing issued matches.
    let mut tampered = file_of("S-VER-1");
    tampered[0] ^= 1;
    let (_, v) = verify_fields(&w, tampered.clone(), issuer, "S-VER-1").await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("tampered"), Some("no_matching_credential")),
        "{v}"
    );
    // Right file, wrong claimed details.
    let (_, v) = verify_fields(&w, file_of("S-VER-1"), issuer, "S-VER-2").await;
    assert_eq!(v["verdict"], "tampered", "{v}");
    let (_, v) = verify_fields(&w, file_of("S-VER-1"), "nobody", "S-VER-1").await;
    assert_eq!(v["verdict"], "unknown_issuer", "{v}");

    // Proof bundle path.
    let bundle = bundle_for(&w, &id).await;
    let (_, v) = verify_bundle(&w, file_of("S-VER-1"), &bundle).await;
    assert_eq!(v["verdict"], "valid", "{v}");
    let (_, v) = verify_bundle(&w, tampered, &bundle).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("tampered"), Some("file_mismatch")),
        "{v}"
    );
    // A bundle pointing at a real transaction that carries another memo.
    let other = w.issue("S-VER-OTHER").await;
    pass_until(&app, &w, &other, "finalized").await;
    let mut swapped = bundle.clone();
    swapped.anchor.signature = w.credential(&other).await["anchor"]["signature"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = verify_bundle(&w, file_of("S-VER-1"), &swapped).await;
    assert_eq!(v["reason"], "anchor_memo_mismatch", "{v}");
    assert_eq!(v["verdict"], "tampered");
    // The exact memo, written on chain by someone else's key: refused (invariant 4).
    let forged_sig = forged_anchor(&w, &bundle.anchor.memo).await;
    let mut forged = bundle.clone();
    forged.anchor.signature = forged_sig;
    let (_, v) = verify_bundle(&w, file_of("S-VER-1"), &forged).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("tampered"), Some("anchor_wrong_fee_payer")),
        "{v}"
    );
    // A signature that is not on chain at all.
    let mut missing = bundle.clone();
    missing.anchor.signature = bs58_signature();
    let (_, v) = verify_bundle(&w, file_of("S-VER-1"), &missing).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("not_anchored_yet"), Some("anchor_not_found")),
        "{v}"
    );

    // Revocation: pending until its memo finalizes, then revoked.
    let resp = w
        .client
        .post(format!("{}/v1/credentials/{id}/revoke", w.api))
        .bearer_auth(&w.api_key)
        .json(&json!({"reason": "degree withdrawn"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let (_, v) = verify_bundle(&w, file_of("S-VER-1"), &bundle).await;
    assert_eq!(v["verdict"], "revocation_pending", "{v}");
    // The public verdict says revoked and when, never why (issue #17).
    assert!(v["revocation"]["reason"].is_null(), "{v}");
    assert!(v["revocation"]["requested_at"].is_string(), "{v}");
    pass_until(&app, &w, &id, "revoked").await;
    let (_, v) = verify_fields(&w, file_of("S-VER-1"), issuer, "S-VER-1").await;
    assert_eq!(v["verdict"], "revoked", "{v}");
    assert_eq!(v["revocation"]["status"], "anchored");
    assert!(v["revocation"]["signature"].is_string());
}

fn bs58_signature() -> String {
    // 64 bytes that no transaction has: a well-formed signature text, absent from the chain.
    bs58::encode((0..64u8).collect::<Vec<u8>>()).into_string()
}

#[tokio::test]
async fn verify_rejects_bad_input_with_stable_codes() {
    let w = world().await;
    let resp = w
        .client
        .post(format!("{}/v1/verify", w.api))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let form = reqwest::multipart::Form::new().text("serial", "S-1");
    let (status, v) = post_verify(&w, form).await;
    assert_eq!(
        (status, v["code"].as_str(), v["field"].as_str()),
        (400, Some("missing_field"), Some("file"))
    );
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"x".to_vec()))
        .text("proof", "{\"version\": \"nope\"}");
    let (status, v) = post_verify(&w, form).await;
    assert_eq!(
        (status, v["code"].as_str(), v["field"].as_str()),
        (400, Some("invalid_field"), Some("proof"))
    );
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"x".to_vec()))
        .text("password", "x");
    let (status, v) = post_verify(&w, form).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("invalid_multipart"))
    );
}

/// Merkle mode: a batch member verifies (claimed fields and its Merkle proof bundle), a
/// changed file does not, and revoking one member revokes it alone (a `ca1:v` list of one:
/// the batch's other members stay valid).
#[tokio::test]
async fn batch_members_verify_through_their_merkle_path_and_revoke_alone() {
    let w = world().await;
    let app = Application::build(w.merkle_settings(w.chain_env.rpc_url(), "relay-vm", 100, 0))
        .await
        .unwrap();
    let ids = vec![
        w.issue("S-VM-1").await,
        w.issue("S-VM-2").await,
        w.issue("S-VM-3").await,
    ];
    for id in &ids {
        pass_until(&app, &w, id, "finalized").await;
    }
    let bundle = bundle_for(&w, &ids[1]).await;
    assert!(
        matches!(bundle.anchor.mode, domain::proof::AnchorPath::Merkle { .. }),
        "{bundle:?}"
    );

    let (_, v) = verify_fields(&w, file_of("S-VM-2"), "uni-relay", "S-VM-2").await;
    assert_eq!(v["verdict"], "valid", "{v}");
    assert_eq!(v["anchor"]["signature"], bundle.anchor.signature.as_str());
    let (_, v) = verify_bundle(&w, file_of("S-VM-2"), &bundle).await;
    assert_eq!(v["verdict"], "valid", "{v}");
    let (_, v) = verify_bundle(&w, file_of("S-VM-3"), &bundle).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("tampered"), Some("file_mismatch")),
        "{v}"
    );

    let resp = w
        .client
        .post(format!("{}/v1/credentials/{}/revoke", w.api, ids[1]))
        .bearer_auth(&w.api_key)
        .json(&json!({"reason": "withdrawn"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    pass_until(&app, &w, &ids[1], "revoked").await;
    let (_, v) = verify_bundle(&w, file_of("S-VM-2"), &bundle).await;
    assert_eq!(v["verdict"], "revoked", "{v}");
    // The other members of the batch are untouched.
    let (_, v) = verify_fields(&w, file_of("S-VM-1"), "uni-relay", "S-VM-1").await;
    assert_eq!(v["verdict"], "valid", "{v}");
    assert_eq!(w.credential(&ids[2]).await["status"], "finalized");
}

/// `POST /verify` (the HTML page) with the file and the bundle: the verdict it shows
/// (`data-verdict`) and the whole page.
pub async fn page_verdict(w: &World, file: Vec<u8>, bundle: &ProofBundle) -> (String, String) {
    let html = page_html(w, file, serde_json::to_string(bundle).unwrap()).await;
    let kind = html
        .split_once("data-verdict=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(kind, _)| kind.to_string())
        .unwrap_or_else(|| panic!("no verdict on the page: {html}"));
    (kind, html)
}

/// The `/verify` page's answer to a `proof` part exactly as given.
pub async fn page_html(w: &World, file: Vec<u8>, proof: String) -> String {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(file).file_name("diploma.pdf"),
        )
        .text("proof", proof);
    w.client
        .post(format!("{}/verify", w.api))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
