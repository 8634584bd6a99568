//! The tampering table of issue #17: every field of a v1 and of a v2 proof bundle, edited, in
//! single and in Merkle mode, for a genuine and for a revoked credential, through
//! `POST /v1/verify`, the `/verify` page and the offline verifier (`credential-verify`'s
//! library, pinned to the issuer's anchoring key, and unpinned). Nothing edited is ever
//! `valid`; each row names the exact verdict and reason it must get. docs/reliability.md
//! ("Tampering") is this table in prose.
//!
//! Issue #25 adds the spellings: every unknown field at every level, every alternative
//! spelling of every value and mode-specific fields in the other mode
//! (`domain::bundle_edits`), each refused by all three paths before any check; and every
//! genuine bundle the API serves matches the published JSON Schema.
//!
//! v1 credentials are written the way the service wrote them before format v2
//! (`World::issue_v1`): the database, the relay, the chain and every verifier are real.

use std::time::Duration;

use domain::proof::{AnchorPath, ProofBundle, PROOF_BUNDLE_V1, PROOF_BUNDLE_V2};
use domain::{ProofFormat, Salt};
use outbox_relay::Application;
use serde_json::json;

use crate::helpers::{world, World};
use crate::verify::{
    bundle_for, file_of, page_html, page_verdict, pass_until, verify_bundle, verify_proof_text,
};

/// What a row is checked against.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    v2: bool,
    merkle: bool,
    revoked: bool,
}

type Expect = (&'static str, &'static str);

const T: &str = "tampered";
/// Refused before any check by the strict reader (`ProofBundle::from_json`): the API answers
/// 400, the page "Could not check", the CLI exits 2 with this code.
const REFUSED: Expect = ("refused", "malformed_bundle");
const INVALID_SIG: Expect = ("invalid_signature", "invalid_signature");

/// One edit of proof.json. `api` is the (verdict, reason) of `POST /v1/verify` and of the
/// page; `cli` of the offline verifier where it differs (`None`: the same). `apply` returns
/// false when the edit does not exist in this context (e.g. a leaf index in single mode).
struct Edit {
    name: &'static str,
    apply: fn(&mut ProofBundle, &ProofBundle, Ctx) -> bool,
    api: fn(Ctx) -> Expect,
    cli: Option<fn(Ctx) -> Expect>,
}

/// The genuine verdict of the credential (what an edit that changes nothing provable gets).
fn genuine(c: Ctx) -> Expect {
    if c.revoked {
        ("revoked", "revoked")
    } else {
        ("valid", "valid")
    }
}

fn other_id(b: &mut ProofBundle) {
    let mut text = b.credential_id.to_string();
    let last = text.pop().unwrap();
    text.push(if last == '0' { '1' } else { '0' });
    b.credential_id = text.parse().unwrap();
}

fn merkle_proof(b: &mut ProofBundle) -> Option<&mut domain::MerkleProof> {
    match &mut b.anchor.mode {
        AnchorPath::Merkle { proof, .. } => Some(proof),
        AnchorPath::Single => None,
    }
}

const EDITS: &[Edit] = &[
    Edit {
        name: "credential_id, one hex digit",
        apply: |b, _, _| {
            other_id(b);
            true
        },
        api: |c| match (c.v2, c.merkle) {
            (true, _) => (T, "hash_mismatch"),
            (false, true) => (T, "credential_id_mismatch"),
            // The single memo names the id: the bundle's own memo no longer matches it.
            (false, false) => (T, "memo_mismatch"),
        },
        // Offline, nothing binds a v1 Merkle bundle's id (the hash, signature and batch memo
        // do not cover it): the verdict stands and the CLI labels the id "not proven". This
        // is the hole format v2 closes; the API, which finds its record by hash, catches it.
        cli: Some(|c| match (c.v2, c.merkle) {
            (true, _) => (T, "hash_mismatch"),
            (false, true) => genuine(c),
            (false, false) => (T, "memo_mismatch"),
        }),
    },
    Edit {
        name: "credential_id, another credential's",
        apply: |b, sibling, _| {
            b.credential_id = sibling.credential_id;
            true
        },
        api: |c| match (c.v2, c.merkle) {
            (true, _) => (T, "hash_mismatch"),
            (false, true) => (T, "credential_id_mismatch"),
            (false, false) => (T, "memo_mismatch"),
        },
        cli: Some(|c| match (c.v2, c.merkle) {
            (true, _) => (T, "hash_mismatch"),
            (false, true) => genuine(c),
            (false, false) => (T, "memo_mismatch"),
        }),
    },
    Edit {
        name: "credential_id and the memo, kept consistent",
        apply: |b, _, _| {
            other_id(b);
            b.anchor.memo = b.expected_memo().unwrap().encode();
            true
        },
        api: |c| match c.v2 {
            true => (T, "hash_mismatch"),
            false => (T, "credential_id_mismatch"),
        },
        cli: Some(|c| match (c.v2, c.merkle) {
            (true, _) => (T, "hash_mismatch"),
            (false, true) => genuine(c),
            // The transaction on chain carries the original id.
            (false, false) => (T, "anchor_memo_mismatch"),
        }),
    },
    Edit {
        name: "salt (v2: one byte changed; v1: a salt added)",
        apply: |b, _, _| {
            b.salt = Some(match b.salt {
                Some(salt) => {
                    let mut bytes = *salt.as_bytes();
                    bytes[0] ^= 1;
                    Salt::from_bytes(bytes)
                }
                None => Salt::from_bytes([7; 32]),
            });
            true
        },
        // A salt in a v1 bundle is not a v1 bundle: refused before any check.
        api: |c| match c.v2 {
            true => (T, "hash_mismatch"),
            false => REFUSED,
        },
        cli: None,
    },
    Edit {
        name: "salt removed",
        apply: |b, _, c| {
            b.salt = None;
            c.v2
        },
        api: |_| REFUSED,
        cli: None,
    },
    Edit {
        name: "version relabelled (v2 as v1, v1 as v2)",
        apply: |b, _, c| {
            b.version = if c.v2 {
                PROOF_BUNDLE_V1
            } else {
                PROOF_BUNDLE_V2
            }
            .into();
            true
        },
        api: |_| REFUSED,
        cli: None,
    },
    Edit {
        name: "version relabelled v2 to v1 with the salt dropped",
        apply: |b, _, c| {
            b.version = PROOF_BUNDLE_V1.into();
            b.salt = None;
            c.v2
        },
        api: |_| (T, "hash_mismatch"),
        cli: None,
    },
    Edit {
        name: "credential_hash, one byte",
        apply: |b, _, _| {
            let mut bytes = *b.credential_hash.as_bytes();
            bytes[31] ^= 1;
            b.credential_hash = domain::CredentialHash::from_bytes(bytes);
            true
        },
        api: |_| (T, "hash_mismatch"),
        cli: None,
    },
    Edit {
        name: "issuer",
        apply: |b, _, _| {
            b.fields.issuer = domain::IssuerId::parse("other-uni").unwrap();
            true
        },
        // The API knows no such issuer; offline the hash breaks first.
        api: |_| ("unknown_issuer", "unknown_issuer"),
        cli: Some(|_| (T, "hash_mismatch")),
    },
    Edit {
        name: "serial",
        apply: |b, _, _| {
            b.fields.serial = domain::Serial::parse("S-EDITED").unwrap();
            true
        },
        api: |_| (T, "hash_mismatch"),
        cli: None,
    },
    Edit {
        name: "recipient",
        apply: |b, _, _| {
            b.fields.recipient = domain::RecipientId::parse("student-x").unwrap();
            true
        },
        api: |_| (T, "hash_mismatch"),
        cli: None,
    },
    Edit {
        name: "issued_at",
        apply: |b, _, _| {
            b.fields.issued_at = domain::IssuedAt::parse_rfc3339("2026-07-01T12:00:00Z").unwrap();
            true
        },
        api: |_| (T, "hash_mismatch"),
        cli: None,
    },
    Edit {
        name: "file digest",
        apply: |b, _, _| {
            b.fields.file_digest = domain::FileDigest::of(b"another file");
            true
        },
        api: |_| (T, "file_mismatch"),
        cli: None,
    },
    Edit {
        name: "signing key id",
        apply: |b, _, _| {
            b.issuer_signature.key_id = domain::KeyId::parse("other-key").unwrap();
            true
        },
        // v2 binds the key into the hash; v1 only into the signature message.
        api: |c| {
            if c.v2 {
                (T, "hash_mismatch")
            } else {
                INVALID_SIG
            }
        },
        cli: None,
    },
    Edit {
        name: "signing public key",
        apply: |b, _, _| {
            b.issuer_signature.public_key = domain::PublicKey::from_bytes(
                *domain::SigningKey::from_seed(domain::KeyId::parse("k").unwrap(), &[9; 32])
                    .unwrap()
                    .public_key()
                    .as_bytes(),
            );
            true
        },
        api: |c| {
            if c.v2 {
                (T, "hash_mismatch")
            } else {
                INVALID_SIG
            }
        },
        cli: None,
    },
    Edit {
        name: "issuer signature, another credential's",
        apply: |b, sibling, _| {
            b.issuer_signature.signature = sibling.issuer_signature.signature;
            true
        },
        api: |_| INVALID_SIG,
        cli: None,
    },
    Edit {
        name: "leaf index",
        apply: |b, _, _| match merkle_proof(b) {
            Some(proof) => {
                proof.leaf_index ^= 1;
                true
            }
            None => false,
        },
        api: |_| (T, "bad_merkle_path"),
        cli: None,
    },
    Edit {
        name: "side of the first sibling",
        apply: |b, _, _| match merkle_proof(b) {
            Some(proof) => {
                proof.steps[0].side = match proof.steps[0].side {
                    domain::Side::Left => domain::Side::Right,
                    domain::Side::Right => domain::Side::Left,
                };
                true
            }
            None => false,
        },
        api: |_| (T, "bad_merkle_path"),
        cli: None,
    },
    Edit {
        name: "batch root",
        apply: |b, _, _| match &mut b.anchor.mode {
            AnchorPath::Merkle { root, .. } => {
                let mut bytes = *root.as_bytes();
                bytes[0] ^= 1;
                *root = domain::MerkleRoot::from_bytes(bytes);
                true
            }
            AnchorPath::Single => false,
        },
        api: |_| (T, "bad_merkle_path"),
        cli: None,
    },
    Edit {
        name: "batch size",
        apply: |b, _, _| match &mut b.anchor.mode {
            AnchorPath::Merkle { count, .. } => {
                *count += 1;
                true
            }
            AnchorPath::Single => false,
        },
        // The credentials under test are leaves 0..=3 of the 5-leaf batch (sealed in issue
        // order; the sibling is leaf 4), whose paths have the same shape in a 6-leaf tree:
        // the memo, which names the batch size, is what refuses it.
        api: |_| (T, "memo_mismatch"),
        cli: None,
    },
    Edit {
        name: "batch id",
        apply: |b, _, _| match &mut b.anchor.mode {
            AnchorPath::Merkle { batch_id, .. } => {
                *batch_id = domain::BatchId::new_v7();
                true
            }
            AnchorPath::Single => false,
        },
        api: |_| (T, "memo_mismatch"),
        cli: None,
    },
    Edit {
        name: "anchor transaction signature",
        apply: |b, _, _| {
            b.anchor.signature = bs58::encode([7u8; 64]).into_string();
            true
        },
        api: |_| ("not_anchored_yet", "anchor_not_found"),
        cli: None,
    },
    Edit {
        name: "anchor memo",
        apply: |b, _, _| {
            b.anchor.memo.push('x');
            true
        },
        api: |_| (T, "memo_mismatch"),
        cli: None,
    },
    Edit {
        name: "anchoring key",
        apply: |b, _, _| {
            b.anchor.anchor_pubkey = domain::PublicKey::from_bytes([3; 32]).to_base58();
            true
        },
        api: |_| (T, "anchor_key_mismatch"),
        // Pinned to the issuer's key, the CLI refuses a bundle naming another.
        cli: Some(|_| ("unknown_issuer", "issuer_key_mismatch")),
    },
    Edit {
        name: "cluster",
        apply: |b, _, _| {
            b.anchor.cluster = domain::Cluster::MainnetBeta;
            true
        },
        api: |_| ("inconclusive", "cluster_mismatch"),
        cli: None,
    },
    Edit {
        name: "slot",
        apply: |b, _, _| {
            b.anchor.slot += 1;
            true
        },
        api: |_| (T, "anchor_slot_mismatch"),
        cli: None,
    },
];

/// The offline verifier's verdict (the `credential-verify` library), pinned to the issuer's
/// anchoring key, or the refusal's text.
async fn cli_verdict(w: &World, file: Vec<u8>, bundle: &ProofBundle) -> (String, String) {
    cli_verdict_pinned(w, file, bundle, true).await
}

/// The same, pinned to the issuer's anchoring key or trusting the bundle's (`--issuer-key`
/// left out).
async fn cli_verdict_pinned(
    w: &World,
    file: Vec<u8>,
    bundle: &ProofBundle,
    pinned: bool,
) -> (String, String) {
    let mut req = w.offline_request(file, bundle.clone());
    if !pinned {
        req.pinned_issuer_keys.clear();
    }
    match verifier::verify(&req).await {
        Ok(report) => (
            report.verdict.as_str().to_string(),
            report.reason.to_string(),
        ),
        Err(e) => ("refused".to_string(), e.to_string()),
    }
}

/// A bundle refused by the strict reader on every path: `POST /v1/verify` 400
/// `invalid_field` (field `proof`), the page "Could not check" without a verdict, and
/// `credential-verify`'s reader (the same call for pinned and unpinned runs: the pin is never
/// reached) an input error, exit 2.
async fn assert_refused(w: &World, file: &[u8], text: String, what: &str) {
    let (status, body) = verify_proof_text(w, file.to_vec(), text.clone()).await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (400, Some("invalid_field"), Some("proof")),
        "{what}: {body}"
    );
    let html = page_html(w, file.to_vec(), text.clone()).await;
    assert!(
        html.contains("data-error=") && !html.contains("data-verdict="),
        "{what} (page): {html}"
    );
    let err =
        verifier::read_bundle(text.as_bytes()).expect_err(&format!("{what}: the CLI accepts it"));
    assert_eq!(err.exit_code(), verifier::exit::USAGE, "{what}");
}

/// Issue #17's table: one world per mode, holding a genuine and a revoked credential of
/// each format (and a sibling whose parts some edits borrow); every edit of every field,
/// through the three paths.
#[tokio::test]
async fn every_edited_field_of_a_v1_or_v2_bundle_is_refused_by_the_api_the_page_and_the_cli() {
    let mut rows = 0;
    let mut spellings = 0;
    let schema = {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/proof-bundle.schema.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
    };
    for merkle in [true, false] {
        let w = world().await;
        // Let the chain's clock pass the signing key's `valid_from` (one-second block times).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rpc = w.chain_env.rpc_url().to_string();
        let mode = if merkle { "merkle" } else { "single" };
        let settings = if merkle {
            w.merkle_settings(&rpc, &format!("relay-tamper-{mode}"), 100, 0)
        } else {
            w.relay_settings(&rpc, &format!("relay-tamper-{mode}"))
        };
        let app = Application::build(settings).await.unwrap();

        // (format, revoked) → serial; v1 and v2 share one Merkle batch, as after an upgrade.
        let mut credentials = Vec::new();
        for v2 in [false, true] {
            for revoked in [false, true] {
                let serial = format!(
                    "S-TAMPER-{mode}-v{}-{}",
                    if v2 { 2 } else { 1 },
                    if revoked { "rev" } else { "ok" }
                );
                let id = if v2 {
                    w.issue(&serial).await
                } else {
                    w.issue_v1(&serial).await
                };
                credentials.push((v2, revoked, serial, id));
            }
        }
        let sibling_serial = format!("S-TAMPER-{mode}-sibling");
        let sibling_id = w.issue(&sibling_serial).await;
        for (_, _, _, id) in &credentials {
            pass_until(&app, &w, id, "finalized").await;
        }
        pass_until(&app, &w, &sibling_id, "finalized").await;
        let sibling = bundle_for(&w, &sibling_id).await;

        let secret = "private: academic misconduct inquiry";
        for (_, revoked, _, id) in &credentials {
            if *revoked {
                let resp = w
                    .client
                    .post(format!("{}/v1/credentials/{id}/revoke", w.api))
                    .bearer_auth(&w.api_key)
                    .json(&json!({ "reason": secret }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status().as_u16(), 202);
            }
        }
        for (_, revoked, _, id) in &credentials {
            if *revoked {
                pass_until(&app, &w, id, "revoked").await;
                // The issuer (authenticated) still sees its reason.
                assert_eq!(w.credential(id).await["revocation"]["reason"], secret);
            }
        }

        for (v2, revoked, serial, id) in &credentials {
            let ctx = Ctx {
                v2: *v2,
                merkle,
                revoked: *revoked,
            };
            let bundle = bundle_for(&w, id).await;
            let format = if *v2 {
                ProofFormat::V2
            } else {
                ProofFormat::V1
            };
            assert_eq!(bundle.format().unwrap(), format, "{ctx:?}");
            assert_eq!(
                matches!(bundle.anchor.mode, AnchorPath::Merkle { .. }),
                merkle,
                "{ctx:?}"
            );
            let file = file_of(serial);

            // The genuine bundle, on every path: valid or revoked (when, never why).
            let (_, v) = verify_bundle(&w, file.clone(), &bundle).await;
            assert_eq!(
                (v["verdict"].as_str(), v["reason"].as_str()),
                (Some(genuine(ctx).0), Some(genuine(ctx).1)),
                "{ctx:?}: {v}"
            );
            assert!(!v.to_string().contains("misconduct"), "{ctx:?}: {v}");
            let (kind, html) = page_verdict(&w, file.clone(), &bundle).await;
            assert_eq!(kind, genuine(ctx).0, "{ctx:?} (page)");
            assert!(!html.contains("misconduct"), "{ctx:?}");
            let cli = cli_verdict(&w, file.clone(), &bundle).await;
            assert_eq!(
                (cli.0.as_str(), cli.1.as_str()),
                genuine(ctx),
                "{ctx:?} (cli)"
            );

            let mut edits: Vec<(String, ProofBundle, Expect, Expect)> = Vec::new();
            for edit in EDITS {
                let mut edited = bundle.clone();
                if (edit.apply)(&mut edited, &sibling, ctx) {
                    let api = (edit.api)(ctx);
                    let cli = edit.cli.map_or(api, |f| f(ctx));
                    edits.push((edit.name.to_string(), edited, api, cli));
                }
            }
            // Every sibling hash of the Merkle path, one at a time.
            if let AnchorPath::Merkle { proof, .. } = &bundle.anchor.mode {
                assert!(!proof.steps.is_empty(), "{ctx:?}: a batch of 5 has a path");
                for i in 0..proof.steps.len() {
                    let mut edited = bundle.clone();
                    if let Some(p) = merkle_proof(&mut edited) {
                        p.steps[i].hash[0] ^= 1;
                    }
                    let expect = (T, "bad_merkle_path");
                    edits.push((format!("sibling hash {i}"), edited, expect, expect));
                }
            }
            for (name, edited, api, cli) in edits {
                if api == REFUSED {
                    let text = serde_json::to_string(&edited).unwrap();
                    assert_refused(&w, &file, text, &format!("{ctx:?} / {name}")).await;
                    assert_eq!(cli, REFUSED, "{ctx:?} / {name}");
                    rows += 1;
                    continue;
                }
                let (status, v) = verify_bundle(&w, file.clone(), &edited).await;
                assert_eq!(status, 200, "{ctx:?} / {name}: {v}");
                assert_eq!(
                    (v["verdict"].as_str(), v["reason"].as_str()),
                    (Some(api.0), Some(api.1)),
                    "{ctx:?} / {name}: {v}"
                );
                assert!(!v.to_string().contains("misconduct"), "{ctx:?} / {name}");
                let (kind, html) = page_verdict(&w, file.clone(), &edited).await;
                assert_eq!(kind, api.0, "{ctx:?} / {name} (page)");
                assert!(!html.contains("misconduct"), "{ctx:?} / {name}");
                let got = cli_verdict(&w, file.clone(), &edited).await;
                assert_eq!(
                    (got.0.as_str(), got.1.as_str()),
                    cli,
                    "{ctx:?} / {name} (cli)"
                );
                // The one row where an edited bundle keeps its verdict is labelled.
                if (got.0.as_str(), got.1.as_str()) == genuine(ctx) {
                    assert!(!ctx.v2 && ctx.merkle && name.starts_with("credential_id"));
                }
                let id_unproven = name.starts_with("credential_id") && !ctx.v2 && ctx.merkle;
                if !id_unproven {
                    assert_ne!(got.0, "valid", "{ctx:?} / {name} (cli)");
                }
                // Unpinned, the CLI trusts the bundle's anchoring key: still never valid
                // (only the v1 Merkle id rows keep the genuine verdict, labelled unproven).
                let unpinned = cli_verdict_pinned(&w, file.clone(), &edited, false).await;
                if id_unproven {
                    assert_eq!(
                        unpinned.0,
                        genuine(ctx).0,
                        "{ctx:?} / {name} (cli unpinned)"
                    );
                } else {
                    assert_ne!(unpinned.0, "valid", "{ctx:?} / {name} (cli unpinned)");
                    assert_ne!(
                        unpinned.0,
                        genuine(ctx).0,
                        "{ctx:?} / {name} (cli unpinned)"
                    );
                }
                assert_ne!(v["verdict"], "valid", "{ctx:?} / {name}");
                rows += 1;
            }

            // The spellings (issue #25): refused before any check, on every path.
            let value = serde_json::to_value(&bundle).unwrap();
            assert!(
                schema.is_valid(&value),
                "{ctx:?}: the served bundle does not match docs/proof-bundle.schema.json"
            );
            let unpinned = cli_verdict_pinned(&w, file.clone(), &bundle, false).await;
            assert_eq!(unpinned.0, genuine(ctx).0, "{ctx:?} (cli unpinned)");
            for (name, edited, schema_sees_it) in domain::bundle_edits::spellings(&value) {
                assert_ne!(edited, value, "{ctx:?} / {name}: the edit changed nothing");
                let text = serde_json::to_string(&edited).unwrap();
                assert_refused(&w, &file, text, &format!("{ctx:?} / {name}")).await;
                if schema_sees_it {
                    assert!(!schema.is_valid(&edited), "{ctx:?} / {name} (schema)");
                }
                spellings += 1;
            }
        }
    }
    // 2 modes × 2 formats × 2 states, about 25 edits each, four paths per row.
    assert!(rows > 150, "{rows} rows");
    assert!(spellings > 200, "{spellings} spellings");
    eprintln!(
        "tampering table: {rows} edits (each that parses through the API, the page, the CLI \
         pinned and unpinned; each the reader refuses through the API, the page and the CLI's \
         reader), none valid (offline, v1 Merkle ids are labelled unproven); {spellings} \
         spellings × 3 paths, all refused before any check"
    );
}
