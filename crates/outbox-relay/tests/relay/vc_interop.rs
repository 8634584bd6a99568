//! Independent verification of our Verifiable Credentials (issue #19): credentials issued
//! through the API (single and bulk, several signing-key rotations), anchored in single and
//! in Merkle mode, are accepted by the published verifiers, and tampered copies are refused
//! by every one of them:
//! - `@digitalbazaar/vc` + `@digitalbazaar/eddsa-rdfc-2022-cryptosuite` (npm, pinned in
//!   `interop/package-lock.json`), contexts from the npm packages, DIDs over loopback HTTP;
//! - a from-the-spec check in Python (`pyld` + `pynacl`, pinned with hashes);
//! - our own `vc::verify_proof` against the served DID document.
//!
//! The verifiers are installed by `scripts/install-interop.sh` (npm registry and PyPI on
//! first run, cached after), which this test runs itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use outbox_relay::Application;
use provisioning::rotate_signing_key;
use serde_json::{json, Value};

use crate::helpers::world;

/// The installed verifiers' directory.
pub fn install_interop() -> PathBuf {
    testkit::interop::install()
}

/// Runs one verifier over `files` expecting `expect` (valid / invalid) for each; returns its
/// per-file lines, failing the test with them if any file went the other way.
fn run_verifier(dir: &Path, name: &str, expect: &str, files: &[PathBuf]) -> Vec<Value> {
    let mut cmd = match name {
        "digitalbazaar" => {
            let mut c = Command::new("node");
            c.arg(dir.join("verify-vc.mjs"));
            c
        }
        "pyld" => {
            let mut c = Command::new(dir.join("venv/bin/python"));
            c.arg(dir.join("verify_vc.py"))
                .arg("--contexts")
                .arg(dir.join("contexts"));
            c
        }
        other => panic!("no verifier {other}"),
    };
    // The proof alone: status lists have their own test (`status_lists`).
    let out = cmd
        .arg("--skip-status")
        .arg("--expect")
        .arg(expect)
        .args(files)
        .output()
        .expect("run verifier");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let results: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("file").is_some())
        .collect();
    assert!(
        out.status.success(),
        "{name} --expect {expect} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        results.len(),
        files.len(),
        "{name}: one line per file\n{stdout}"
    );
    for r in &results {
        assert_eq!(r["verified"], expect == "valid", "{name}: {r}");
    }
    results
}

#[tokio::test]
async fn published_verifiers_accept_every_issued_vc_and_refuse_every_tampered_one() {
    let interop = install_interop();
    let w = world().await;
    let master = domain::sealed::MasterKey::from_base64(&w.master_key_b64).unwrap();
    let mut ids = Vec::new();

    // 50 anchored one memo each (single mode), two rotations among them.
    let mut wave = Vec::new();
    for round in 0..3 {
        for i in 0..9 {
            wave.push(w.issue(&format!("VCI-S-{round}-{i}")).await);
        }
        if round < 2 {
            rotate_signing_key(&w.store, &master, &w.issuer_id)
                .await
                .unwrap();
        }
    }
    wave.extend(w.issue_bulk("VCI-SB", 23).await);
    assert_eq!(wave.len(), 50);
    let single = w.relay("relay-vc-single").await;
    w.anchor_all(&single, &wave).await;
    drop(single);
    ids.extend(wave);

    // 50 anchored in Merkle batches, after two more rotations.
    let mut wave = Vec::new();
    for round in 0..2 {
        rotate_signing_key(&w.store, &master, &w.issuer_id)
            .await
            .unwrap();
        wave.extend(w.issue_bulk(&format!("VCI-M{round}"), 20).await);
        for i in 0..5 {
            wave.push(w.issue(&format!("VCI-MS-{round}-{i}")).await);
        }
    }
    assert_eq!(wave.len(), 50);
    let merkle = Application::build(w.merkle_settings(w.chain_env.rpc_url(), "relay-vc-m", 64, 0))
        .await
        .unwrap();
    w.anchor_all(&merkle, &wave).await;
    drop(merkle);
    ids.extend(wave);
    assert_eq!(
        w.query_i64(
            "SELECT count(*) FROM credentials c JOIN anchor_batch_members m ON m.credential_id = c.id \
             WHERE c.status = 'finalized'"
        )
        .await,
        50,
        "half anchored in Merkle batches"
    );

    // Every VC, as the API hands it out, into files.
    let dir = w.dir.path().join("vcs");
    std::fs::create_dir_all(&dir).unwrap();
    let mut genuine = Vec::new();
    let mut methods = std::collections::HashSet::new();
    for id in &ids {
        let text = w.vc_text(id).await;
        let vc: Value = serde_json::from_str(&text).unwrap();
        methods.insert(
            vc["proof"]["verificationMethod"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        let path = dir.join(format!("{id}.vc.json"));
        std::fs::write(&path, text).unwrap();
        genuine.push(path);
    }
    assert_eq!(genuine.len(), 100);
    assert_eq!(methods.len(), 5, "five signing keys over four rotations");

    for verifier in ["digitalbazaar", "pyld"] {
        run_verifier(&interop, verifier, "valid", &genuine);
    }

    // Tampered variants of a credential signed before the rotations and of the newest one.
    let tampered_dir = w.dir.path().join("tampered");
    let mut tampered = Vec::new();
    for (n, source) in [&genuine[0], &genuine[99]].into_iter().enumerate() {
        let out = tampered_dir.join(n.to_string());
        let status = Command::new("python3")
            .arg(interop.join("tamper.py"))
            .arg(source)
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        for entry in std::fs::read_dir(&out).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().ends_with(".vc.json") {
                tampered.push(path);
            }
        }
    }
    assert!(tampered.len() >= 40, "{} tampered variants", tampered.len());
    for verifier in ["digitalbazaar", "pyld"] {
        run_verifier(&interop, verifier, "invalid", &tampered);
    }
    // Ours agrees on every one of them.
    let did_doc: Value = w
        .client
        .get(format!("{}/issuers/{}/did.json", w.api, w.issuer_id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_of = |method: &str| domain::vc::assertion_key(&did_doc, method);
    for path in &genuine {
        let vc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        vc::verify_proof(&vc, key_of).unwrap();
    }
    for path in &tampered {
        let Ok(vc) = serde_json::from_str::<Value>(&std::fs::read_to_string(path).unwrap()) else {
            continue;
        };
        assert!(vc::verify_proof(&vc, key_of).is_err(), "{}", path.display());
    }
}

async fn verify_vc(w: &crate::helpers::World, file: Vec<u8>, vc: &str) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(file).file_name("diploma.pdf"),
        )
        .text("vc", vc.to_string());
    crate::verify::post_verify(w, form).await
}

/// Our verifier on a VC: the proof, the record it names, then file, anchor and revocation
/// as for claimed fields; every way of lying gets its own verdict.
#[tokio::test]
async fn the_verify_api_gives_a_vc_the_same_verdicts_as_a_bundle() {
    use crate::verify::file_of;
    let w = world().await;
    let id = w.issue("VCV-1").await;
    let text = w.vc_text(&id).await;

    // Signed but not anchored yet.
    let (status, v) = verify_vc(&w, file_of("VCV-1"), &text).await;
    assert_eq!(
        (status, v["verdict"].as_str()),
        (200, Some("not_anchored_yet")),
        "{v}"
    );

    let relay = w.relay("relay-vcv").await;
    w.anchor_all(&relay, std::slice::from_ref(&id)).await;
    let (_, v) = verify_vc(&w, file_of("VCV-1"), &text).await;
    assert_eq!(v["verdict"], "valid", "{v}");
    assert_eq!(v["credential_id"], id);
    assert!(v["anchor"]["finalized"].as_bool().unwrap(), "{v}");

    // The page: the VC in its one "proof" upload.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(file_of("VCV-1")).file_name("diploma.pdf"),
        )
        .part(
            "proof",
            reqwest::multipart::Part::text(text.clone()).file_name("diploma.vc.json"),
        );
    let page = w
        .client
        .post(format!("{}/verify", w.api))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Valid: issued by this issuer"), "{page}");

    // Another file.
    let (_, v) = verify_vc(&w, b"%PDF forged".to_vec(), &text).await;
    assert_eq!(v["verdict"], "tampered", "{v}");

    // A changed claim is not what the record says (refused before any canonicalization).
    let mut changed: Value = serde_json::from_str(&text).unwrap();
    changed["credentialSubject"]["achievement"]["name"] = json!("PhD Computer Science");
    let (_, v) = verify_vc(&w, file_of("VCV-1"), &changed.to_string()).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("tampered"), Some("vc_record_mismatch")),
        "{v}"
    );
    // The claims intact, the signature changed: the proof fails.
    let mut forged: Value = serde_json::from_str(&text).unwrap();
    let value = forged["proof"]["proofValue"].as_str().unwrap().to_string();
    let flipped = if value.ends_with('2') { "3" } else { "2" };
    forged["proof"]["proofValue"] = json!(format!("{}{flipped}", &value[..value.len() - 1]));
    let (_, v) = verify_vc(&w, file_of("VCV-1"), &forged.to_string()).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("invalid_signature"), Some("vc_proof_invalid")),
        "{v}"
    );

    // A VC that names another credential of ours (its own proof intact) is not that one.
    let other = w.issue("VCV-2").await;
    let other_text = w.vc_text(&other).await;
    let (_, v) = verify_vc(&w, file_of("VCV-1"), &other_text).await;
    assert_eq!(v["verdict"], "tampered", "{v}");

    // The one claim left free, the issuer's display name, may only be a short string: a
    // graph there (RDFC-1.0's expensive case) is refused before anything is canonicalized.
    let mut graph: Value = serde_json::from_str(&text).unwrap();
    graph["issuer"]["name"] =
        json!({"@id": "_:n0", "urn:p": [{"@id": "_:n1", "urn:p": {"@id": "_:n0"}}]});
    let (_, v) = verify_vc(&w, file_of("VCV-1"), &graph.to_string()).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("tampered"), Some("vc_record_mismatch")),
        "{v}"
    );
    // A renamed issuer: the name is not anchored, the proof still covers it.
    let mut renamed: Value = serde_json::from_str(&text).unwrap();
    renamed["issuer"]["name"] = json!("Another University");
    let (_, v) = verify_vc(&w, file_of("VCV-1"), &renamed.to_string()).await;
    assert_eq!(v["reason"], "vc_proof_invalid", "{v}");

    // An issuer that is not ours.
    let mut foreign: Value = serde_json::from_str(&text).unwrap();
    foreign["issuer"]["id"] = json!("did:web:evil.example:issuers:uni-test");
    let (_, v) = verify_vc(&w, file_of("VCV-1"), &foreign.to_string()).await;
    assert_eq!(v["verdict"], "unknown_issuer", "{v}");

    // Malformed input is a 400 with a stable code, never a verdict.
    let (status, v) = verify_vc(&w, file_of("VCV-1"), "[1, 2]").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("invalid_field")),
        "{v}"
    );

    // Revoked: the VC follows its record.
    assert_eq!(w.revoke(&id, "issued in error").await, 202);
    let (_, v) = verify_vc(&w, file_of("VCV-1"), &text).await;
    assert!(
        matches!(
            v["verdict"].as_str(),
            Some("revoked" | "revocation_pending")
        ),
        "{v}"
    );
}

/// The offline verifier (`credential-verify`'s library): the bundle carries the VC and it is
/// checked with it; a VC given apart (`--vc`) must match the bundle too.
#[tokio::test]
async fn the_offline_verifier_checks_the_vc_the_bundle_carries_or_is_given() {
    use crate::verify::{bundle_for, file_of};
    let w = world().await;
    let id = w.issue("VCO-1").await;
    let other = w.issue("VCO-2").await;
    let relay = w.relay("relay-vco").await;
    w.anchor_all(&relay, &[id.clone(), other.clone()]).await;
    let bundle = bundle_for(&w, &id).await;
    let carried: Value = serde_json::from_str(&w.vc_text(&id).await).unwrap();
    assert_eq!(
        bundle.vc.as_ref(),
        Some(&carried),
        "the bundle carries the VC as issued"
    );

    let offline = |bundle: domain::proof::ProofBundle, vc: Option<Value>| {
        let mut request = w.offline_request(file_of("VCO-1"), bundle);
        request.vc = vc;
        async move { verifier::verify(&request).await.unwrap() }
    };
    let report = offline(bundle.clone(), None).await;
    assert_eq!(report.verdict.as_str(), "valid", "{}", report.detail);
    assert!(report
        .vc_verification_method
        .as_deref()
        .is_some_and(|m| m.ends_with(&format!("#{}", bundle.issuer_signature.key_id))));

    // A changed claim in the carried VC: its proof fails.
    let mut edited = bundle.clone();
    edited.vc.as_mut().unwrap()["name"] = json!("PhD Computer Science");
    let report = offline(edited.clone(), None).await;
    assert_eq!(
        (report.verdict.as_str(), report.reason),
        ("invalid_signature", "vc_proof_invalid")
    );
    // The API holds a bundle to the VC it carries the same way.
    let (_, v) = crate::verify::verify_bundle(&w, file_of("VCO-1"), &edited).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("invalid_signature"), Some("vc_proof_invalid")),
        "{v}"
    );

    // Another genuine credential's VC given with this bundle: the claims differ.
    let foreign: Value = serde_json::from_str(&w.vc_text(&other).await).unwrap();
    let report = offline(bundle.clone(), Some(foreign)).await;
    assert_eq!(
        (report.verdict.as_str(), report.reason),
        ("tampered", "vc_bundle_mismatch"),
        "{}",
        report.detail
    );

    // A bundle without a VC (as before VCs) verifies as before.
    let mut bare = bundle.clone();
    bare.vc = None;
    let report = offline(bare, None).await;
    assert_eq!(report.verdict.as_str(), "valid");
    assert_eq!(report.vc_verification_method, None);
}
