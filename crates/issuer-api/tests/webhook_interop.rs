//! Our Standard Webhooks signatures (`domain::webhook`, issue #24) checked by the published
//! reference library: npm `standardwebhooks` (pinned in interop/package.json, installed by
//! `scripts/install-interop.sh` like the VC verifiers). Signed now, so the library's
//! five-minute timestamp tolerance holds; bodies of every shape; a rotated secret's header
//! carries both signatures and the library accepts it with either secret; a wrong secret, an
//! edited body, another id or another timestamp is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use domain::webhook::{signature_header, WebhookSecret, SECRET_BYTES};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::json;

fn random_secret(rng: &SystemRandom) -> WebhookSecret {
    let mut bytes = [0u8; SECRET_BYTES];
    rng.fill(&mut bytes).unwrap();
    WebhookSecret::from_bytes(&bytes).unwrap()
}

#[test]
fn the_reference_library_accepts_our_signatures_and_refuses_altered_deliveries() {
    let dir = testkit::interop::install();
    let rng = SystemRandom::new();
    let now = chrono::Utc::now().timestamp();
    let bodies = [
        json!({"type": "credential.finalized", "timestamp": "2026-12-05T08:00:00Z",
               "data": {"credential_id": "0190f000-0000-7000-8000-000000000001", "status": "finalized"}})
        .to_string(),
        json!({"type": "credential.revoked", "data": {"reason": "émis par erreur ✓"}}).to_string(),
        "{}".to_string(),
        // Our bodies are always JSON (the library parses what it verified).
        json!({"data": "x".repeat(100_000)}).to_string(),
    ];
    let mut cases = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let current = random_secret(&rng);
        let previous = random_secret(&rng);
        let id = format!("msg_{i}_0190f0000000");
        let one = signature_header(&[&current], &id, now, body.as_bytes());
        let both = signature_header(&[&current, &previous], &id, now, body.as_bytes());
        let case = |secret: &WebhookSecret,
                    signature: &str,
                    body: &str,
                    id: &str,
                    ts: i64,
                    expect: bool| {
            json!({"secret": secret.expose(), "id": id, "timestamp": ts.to_string(),
                   "signature": signature, "body": body, "expect": expect})
        };
        cases.push(case(&current, &one, body, &id, now, true));
        // Rotation: during the grace period a receiver with either secret accepts.
        cases.push(case(&current, &both, body, &id, now, true));
        cases.push(case(&previous, &both, body, &id, now, true));
        // Refused: another secret, an edited body, another id, another timestamp.
        cases.push(case(&previous, &one, body, &id, now, false));
        cases.push(case(&current, &one, &format!("{body} "), &id, now, false));
        cases.push(case(&current, &one, body, &format!("{id}x"), now, false));
        cases.push(case(&current, &one, body, &id, now - 1, false));
    }
    let file = std::env::temp_dir().join(format!("webhook-cases-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&cases).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(dir.join("verify-webhook.mjs"))
        .arg(&file)
        .output()
        .expect("run node");
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{n} of {n} as expected", n = cases.len())),
        "{stdout}"
    );
}
