//! `credential-verify` end to end against a real local validator: the anchor and revocation
//! memos are real transactions; only the "disagreeing endpoint" is a fake JSON-RPC server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chain::{AnchorKeypair, ChainClient, ChainConfig, Cluster, Commitment};
use domain::hash::{CredentialFields, FileDigest, HashScheme, ProofFormat, Salt};
use domain::memo::Memo;
use domain::proof::{AnchorPath, BundleAnchor, BundleSignature, ProofBundle, PROOF_BUNDLE_V2};
use domain::signing::SigningKey;
use domain::{BatchId, CredentialId, IssuedAt, IssuerId, KeyId, MerkleTree, RecipientId, Serial};
use serde_json::Value;
use solana_sdk::message::VersionedMessage;
use solana_sdk::transaction::VersionedTransaction;
use testkit::proxy::rewriting_rpc as lying_rpc;

const FILE: &[u8] = b"%PDF-1.7 diploma of Grace Hopper";

struct Anchored {
    bundle: ProofBundle,
    payer: AnchorKeypair,
    rpc: String,
}

async fn funded(rpc: &str) -> AnchorKeypair {
    let key = AnchorKeypair::generate();
    testkit::validator::airdrop(rpc, &key.pubkey_base58(), 2_000_000_000)
        .await
        .unwrap();
    key
}

/// Sends `memo` paid by `payer`; returns the signature once finalized.
async fn send_memo(rpc: &str, payer: &AnchorKeypair, memo: &str) -> (String, u64) {
    let client = ChainClient::new(
        ChainConfig::new(rpc, Cluster::Localnet),
        AnchorKeypair::from_json_str(&payer.to_json_string()).unwrap(),
    );
    let tx = client.build_memo_transaction(memo).await.unwrap();
    client.send_transaction_bytes(&tx.bytes).await.unwrap();
    let deadline = std::time::Instant::now() + testkit::FINALITY_DEADLINE;
    loop {
        if let Some(found) = client
            .fetch_transaction(&tx.signature, Commitment::Finalized)
            .await
            .unwrap()
        {
            return (tx.signature, found.slot);
        }
        assert!(std::time::Instant::now() < deadline, "memo not finalized");
        // Rebroadcast: a local validator may drop a transaction sent right after start.
        let _ = client.send_transaction_bytes(&tx.bytes).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

/// A credential signed by an issuer key and anchored (single mode) by `payer`.
async fn anchored() -> Anchored {
    anchored_in(false).await
}

/// A credential signed by an issuer key and anchored by `payer`: alone (single mode) or as
/// the second leaf of a two-member Merkle batch.
async fn anchored_in(merkle: bool) -> Anchored {
    let env = testkit::validator::chain_env().await.unwrap();
    let rpc = env.rpc_url().to_string();
    // Keep the validator env alive for the whole test process.
    std::mem::forget(env);
    let payer = funded(&rpc).await;
    anchored_by(rpc, payer, merkle, "CLI-1").await
}

/// A credential with serial `serial` anchored by `payer` (several may share one payer).
async fn anchored_by(rpc: String, payer: AnchorKeypair, merkle: bool, serial: &str) -> Anchored {
    let key = SigningKey::from_seed(KeyId::parse("cli-k1").unwrap(), &[42; 32]).unwrap();
    let fields = CredentialFields {
        file_digest: FileDigest::of(FILE),
        issuer: IssuerId::parse("uni-cli").unwrap(),
        recipient: RecipientId::parse("student-7").unwrap(),
        issued_at: IssuedAt::parse_rfc3339("2026-06-30T12:00:00Z").unwrap(),
        serial: Serial::parse(serial).unwrap(),
    };
    // The current format (v2): the id and a salt inside the hash.
    let credential_id = CredentialId::new_v7();
    let scheme = HashScheme::V2 {
        credential_id,
        salt: Salt::from_bytes([serial.len() as u8; 32]),
        key_id: key.key_id().clone(),
        public_key: key.public_key(),
    };
    let hash = scheme.hash(&fields);
    let mut bundle = ProofBundle {
        version: PROOF_BUNDLE_V2.into(),
        credential_id,
        salt: scheme.salt(),
        issuer_name: "CLI University".into(),
        fields,
        credential_hash: hash,
        issuer_signature: BundleSignature {
            key_id: key.key_id().clone(),
            public_key: key.public_key(),
            signature: key.sign_credential(ProofFormat::V2, &hash),
        },
        anchor: BundleAnchor {
            cluster: domain::Cluster::Localnet,
            signature: String::new(),
            slot: 0,
            anchor_pubkey: payer.pubkey_base58(),
            memo: String::new(),
            mode: AnchorPath::Single,
        },
        vc: None,
    };
    if merkle {
        let sibling = CredentialFields {
            serial: Serial::parse("CLI-2").unwrap(),
            ..bundle.fields.clone()
        }
        .hash();
        let tree = MerkleTree::build(&[sibling, hash]).unwrap();
        bundle.anchor.mode = AnchorPath::Merkle {
            batch_id: BatchId::new_v7(),
            count: 2,
            root: tree.root(),
            proof: tree.proof(1).unwrap(),
        };
    }
    bundle.anchor.memo = bundle.expected_memo().unwrap().encode();
    let (signature, slot) = send_memo(&rpc, &payer, &bundle.anchor.memo).await;
    bundle.anchor.signature = signature;
    bundle.anchor.slot = slot;
    Anchored { bundle, payer, rpc }
}

fn run(dir: &Path, file: &[u8], bundle: &ProofBundle, args: &[&str]) -> (i32, String) {
    let file_path = dir.join("diploma.pdf");
    let proof_path = dir.join("proof.json");
    std::fs::write(&file_path, file).unwrap();
    std::fs::write(&proof_path, serde_json::to_vec(bundle).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_credential-verify"))
        .arg("--file")
        .arg(&file_path)
        .arg("--proof")
        .arg(&proof_path)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A JSON-RPC endpoint that knows no transaction at all: the "other chain" a lying or
/// misconfigured node would show.
async fn fake_rpc_that_knows_nothing() -> String {
    testkit::proxy::json_rpc_server(|request: Value| async move {
        let result = match request["method"].as_str() {
            Some("getSignaturesForAddress") => serde_json::json!([]),
            // Some local chain: not one of the public clusters' genesis hashes.
            Some("getGenesisHash") => serde_json::json!("11111111111111111111111111111111"),
            _ => Value::Null,
        };
        Some(serde_json::json!({"jsonrpc": "2.0", "id": request["id"], "result": result}))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn genuine_tampered_pinned_and_disagreeing_endpoints() {
    let a = anchored().await;
    let dir = tempfile::tempdir().unwrap();
    let rpc = a.rpc.as_str();

    // Not pinned: every check holds, but the anchoring key is the bundle's own word, so
    // the exit code is 9, never the unqualified 0.
    let (code, out) = run(dir.path(), FILE, &a.bundle, &["--rpc", rpc]);
    assert_eq!(code, 9, "{out}");
    assert!(out.starts_with("VALID:"), "{out}");
    assert!(out.contains("pin it with --issuer-key"), "{out}");

    let pinned = a.payer.pubkey_base58();
    let (code, out) = run(
        dir.path(),
        FILE,
        &a.bundle,
        &[
            "--rpc",
            rpc,
            "--rpc",
            rpc,
            "--json",
            "--issuer-key",
            &pinned,
        ],
    );
    assert_eq!(code, 0, "{out}");
    let v = json(&out);
    assert_eq!(v["verdict"], "valid");
    assert_eq!(v["finalized"], true);
    assert_eq!(v["slot"], a.bundle.anchor.slot);
    assert_eq!(v["issuer_key_pinned"], true);

    // One byte changed.
    let mut tampered = FILE.to_vec();
    tampered[3] ^= 0x20;
    let (code, out) = run(dir.path(), &tampered, &a.bundle, &["--rpc", rpc, "--json"]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(json(&out)["reason"], "file_mismatch");

    // Pinned to another issuer key.
    let other = AnchorKeypair::generate().pubkey_base58();
    let (code, out) = run(
        dir.path(),
        FILE,
        &a.bundle,
        &["--rpc", rpc, "--issuer-key", &other],
    );
    assert_eq!(code, 5, "{out}");

    // A second endpoint that has never seen the transaction: refused, no verdict.
    let liar = fake_rpc_that_knows_nothing().await;
    let (code, out) = run(
        dir.path(),
        FILE,
        &a.bundle,
        &["--rpc", rpc, "--rpc", &liar, "--json"],
    );
    assert_eq!(code, 6, "{out}");
    assert_eq!(json(&out)["error"], "rpc_disagreement");
    // Alone, that endpoint says "not anchored".
    let (code, out) = run(dir.path(), FILE, &a.bundle, &["--rpc", &liar]);
    assert_eq!(code, 4, "{out}");
    // An endpoint that does not answer at all.
    let (code, out) = run(
        dir.path(),
        FILE,
        &a.bundle,
        &["--rpc", "http://127.0.0.1:9", "--timeout-secs", "2"],
    );
    assert_eq!(code, 7, "{out}");

    // Usage errors.
    let (code, out) = run(dir.path(), FILE, &a.bundle, &[]);
    assert_eq!(code, 2, "{out}");
    let out = Command::new(env!("CARGO_BIN_EXE_credential-verify"))
        .args([
            "--file",
            "/nonexistent",
            "--proof",
            "/nonexistent",
            "--rpc",
            rpc,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_revocation_paid_by_the_anchoring_key_revokes() {
    let a = anchored().await;
    let dir = tempfile::tempdir().unwrap();
    let rpc = a.rpc.as_str();
    let revocation = Memo::Revocation {
        issuer: a.bundle.fields.issuer.clone(),
        credential: a.bundle.credential_id,
        hash: a.bundle.credential_hash,
    }
    .encode();

    // Someone else writes the exact revocation memo into a transaction that mentions the
    // anchoring key (a 0-lamport transfer to it), so it shows up in the key's history: it
    // must be ignored, because the anchoring key did not pay for it.
    forge_in_key_history(rpc, &a.payer.pubkey_base58(), &revocation).await;
    let pinned = a.payer.pubkey_base58();
    let (code, out) = run(
        dir.path(),
        FILE,
        &a.bundle,
        &["--rpc", rpc, "--issuer-key", &pinned],
    );
    assert_eq!(code, 0, "a forged revocation is ignored: {out}");

    send_memo(rpc, &a.payer, &revocation).await;
    let (code, out) = run(dir.path(), FILE, &a.bundle, &["--rpc", rpc, "--json"]);
    assert_eq!(code, 1, "{out}");
    let v = json(&out);
    assert_eq!(v["verdict"], "revoked");
    assert_eq!(v["revoked"], true);
}

/// Issue #17: editing the bundle's `credential_id` cannot hide a revocation, in either
/// anchoring mode. A v2 bundle hashes its id, so the edit breaks the hash (tampered, exit 3);
/// the v1 Merkle case, where nothing binds the id and the revocation is found by issuer and
/// hash instead, is a row of the tampering table (outbox-relay `tampering.rs`, CLI path).
/// Before the fix the merkle row answered `valid` (exit 0).
#[tokio::test(flavor = "multi_thread")]
async fn an_edited_credential_id_never_hides_a_revocation_offline() {
    for (merkle, expected_code, expected_verdict) in [(true, 3, "tampered"), (false, 3, "tampered")]
    {
        let a = anchored_in(merkle).await;
        let dir = tempfile::tempdir().unwrap();
        let rpc = a.rpc.as_str();
        let revocation = Memo::Revocation {
            issuer: a.bundle.fields.issuer.clone(),
            credential: a.bundle.credential_id,
            hash: a.bundle.credential_hash,
        }
        .encode();
        send_memo(rpc, &a.payer, &revocation).await;

        let (code, out) = run(dir.path(), FILE, &a.bundle, &["--rpc", rpc, "--json"]);
        assert_eq!(
            (code, json(&out)["verdict"].clone()),
            (1, "revoked".into()),
            "merkle={merkle}: {out}"
        );

        // One hex digit of the id edited (and, for single mode, the memo kept consistent).
        let mut edited = a.bundle.clone();
        let mut text = edited.credential_id.to_string();
        let last = text.pop().unwrap();
        text.push(if last == '0' { '1' } else { '0' });
        edited.credential_id = text.parse().unwrap();
        edited.anchor.memo = edited.expected_memo().unwrap().encode();
        let (code, out) = run(dir.path(), FILE, &edited, &["--rpc", rpc, "--json"]);
        let v = json(&out);
        assert_eq!(
            (code, v["verdict"].as_str()),
            (expected_code, Some(expected_verdict)),
            "merkle={merkle}: {out}"
        );
        assert_eq!(v["reason"], "hash_mismatch", "{out}");
        assert_ne!(v["verdict"], "valid", "{out}");
    }
}

async fn forge_in_key_history(rpc: &str, anchor_key: &str, memo: &str) {
    use std::str::FromStr;

    use solana_sdk::hash::Hash;
    use solana_sdk::instruction::{AccountMeta, Instruction};
    use solana_sdk::pubkey::Pubkey;
    use solana_sdk::signature::Keypair;
    use solana_sdk::signer::Signer;
    use solana_sdk::transaction::Transaction;

    let forger = Keypair::new();
    testkit::validator::airdrop(rpc, &forger.pubkey().to_string(), 1_000_000_000)
        .await
        .unwrap();
    let mut transfer_data = 2u32.to_le_bytes().to_vec();
    transfer_data.extend_from_slice(&0u64.to_le_bytes());
    let transfer = Instruction {
        program_id: Pubkey::from_str("11111111111111111111111111111111").unwrap(),
        accounts: vec![
            AccountMeta::new(forger.pubkey(), true),
            AccountMeta::new(Pubkey::from_str(anchor_key).unwrap(), false),
        ],
        data: transfer_data,
    };
    let memo_ix = Instruction {
        program_id: Pubkey::from_str("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr").unwrap(),
        accounts: vec![AccountMeta::new_readonly(forger.pubkey(), true)],
        data: memo.as_bytes().to_vec(),
    };
    let v: Value = reqwest::Client::new()
        .post(rpc)
        .json(
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "getLatestBlockhash",
                   "params": [{"commitment": "confirmed"}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let blockhash = Hash::from_str(v["result"]["value"]["blockhash"].as_str().unwrap()).unwrap();
    let tx = Transaction::new_signed_with_payer(
        &[transfer, memo_ix],
        Some(&forger.pubkey()),
        &[&forger],
        blockhash,
    );
    let chain = ChainClient::new(
        ChainConfig::new(rpc, Cluster::Localnet),
        AnchorKeypair::generate(),
    );
    let signature = chain
        .send_transaction_bytes(&bincode::serialize(&tx).unwrap())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + testkit::FINALITY_DEADLINE;
    while chain
        .fetch_transaction(&signature, Commitment::Finalized)
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
}

/// Issue #17: the revocation search reads the anchoring key's history back to the anchor's
/// own slot, not a fixed number of pages, so burying a revocation under 6,000 later
/// transactions to the key (about 0.03 SOL of transfers) does not hide it, in either mode;
/// and when the history cannot be read that far (page budget, or a node without history)
/// the answer is inconclusive (exit 8), never valid.
#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_buried_under_6000_later_transactions_is_still_found() {
    let env = testkit::validator::chain_env().await.unwrap();
    let rpc = env.rpc_url().to_string();
    std::mem::forget(env);
    let payer = funded(&rpc).await;
    let copy = |k: &AnchorKeypair| AnchorKeypair::from_json_str(&k.to_json_string()).unwrap();
    let single = anchored_by(rpc.clone(), copy(&payer), false, "PAD-1").await;
    let merkle = anchored_by(rpc.clone(), copy(&payer), true, "PAD-2").await;
    for a in [&single, &merkle] {
        let revocation = Memo::Revocation {
            issuer: a.bundle.fields.issuer.clone(),
            credential: a.bundle.credential_id,
            hash: a.bundle.credential_hash,
        }
        .encode();
        send_memo(&rpc, &payer, &revocation).await;
    }
    let padded = pad_history(&rpc, &payer.pubkey_base58(), 6_000).await;
    assert!(padded >= 6_000, "only {padded} padding transactions landed");

    let dir = tempfile::tempdir().unwrap();
    let pinned = payer.pubkey_base58();
    let no_history = rpc_without_history(rpc.clone()).await;
    for (mode, a) in [("single", &single), ("merkle", &merkle)] {
        let (code, out) = run(
            dir.path(),
            FILE,
            &a.bundle,
            &["--rpc", &rpc, "--issuer-key", &pinned, "--json"],
        );
        let v = json(&out);
        assert_eq!(
            (code, v["verdict"].as_str()),
            (1, Some("revoked")),
            "{mode}: {out}"
        );
        let scan = &v["revocation_scan"][0];
        assert_eq!(scan["complete"], true, "{mode}: {out}");
        assert!(scan["pages"].as_u64().unwrap() >= 7, "{mode}: {out}");

        // A page budget too small to reach the anchor: inconclusive, and it says why.
        let (code, out) = run(
            dir.path(),
            FILE,
            &a.bundle,
            &[
                "--rpc",
                &rpc,
                "--issuer-key",
                &pinned,
                "--json",
                "--max-history-pages",
                "2",
            ],
        );
        let v = json(&out);
        assert_eq!(
            (code, v["verdict"].as_str()),
            (8, Some("inconclusive")),
            "{mode}: {out}"
        );
        assert_eq!(
            v["revocation_scan"][0]["stopped"], "page_limit",
            "{mode}: {out}"
        );
        assert_eq!(v["revocation_scan"][0]["pages"], 2, "{mode}: {out}");

        // A node that serves transactions but no address history (pruned, or started from
        // a recent snapshot): inconclusive. The fake forwards every other call to the real
        // validator; no real local node can be made to drop its history on demand.
        let (code, out) = run(
            dir.path(),
            FILE,
            &a.bundle,
            &["--rpc", &no_history, "--issuer-key", &pinned, "--json"],
        );
        let v = json(&out);
        assert_eq!(
            (code, v["verdict"].as_str()),
            (8, Some("inconclusive")),
            "{mode}: {out}"
        );
        assert_eq!(
            v["revocation_scan"][0]["stopped"], "history_unavailable",
            "{mode}: {out}"
        );
        let (_, text) = run(
            dir.path(),
            FILE,
            &a.bundle,
            &["--rpc", &no_history, "--issuer-key", &pinned],
        );
        assert!(text.starts_with("INCONCLUSIVE:"), "{mode}: {text}");
    }
}

/// Strings from the bundle are printed with control and bidi characters escaped: an
/// `issuer_name` with terminal escapes cannot redraw the verdict line.
#[tokio::test(flavor = "multi_thread")]
async fn control_characters_from_the_bundle_are_escaped_in_the_output() {
    let a = anchored().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bundle = a.bundle.clone();
    bundle.issuer_name = "Evil\u{1b}[2K\rVALID: fine\u{202e}".into();
    let pinned = a.payer.pubkey_base58();
    let (_, out) = run(
        dir.path(),
        FILE,
        &bundle,
        &["--rpc", &a.rpc, "--issuer-key", &pinned],
    );
    assert!(
        !out.contains('\u{1b}') && !out.contains('\r') && !out.contains('\u{202e}'),
        "{out:?}"
    );
    assert!(out.contains("\\u{1b}"), "{out}");
}

/// Issue #25 through the real binary: the bundle's `issuer_name` is shown only as a claim
/// unless `--issuer-name` supplies one; a malformed or non-canonical bundle (a malformed
/// transaction signature or anchoring key included) is an input error, exit 2, with the
/// reader's code, never "RPC unavailable" (7) and never a verdict.
#[tokio::test(flavor = "multi_thread")]
async fn the_issuer_name_is_a_labelled_claim_and_malformed_bundles_exit_2() {
    let a = anchored().await;
    let dir = tempfile::tempdir().unwrap();
    let pinned = a.payer.pubkey_base58();

    let (code, out) = run(
        dir.path(),
        FILE,
        &a.bundle,
        &["--rpc", &a.rpc, "--issuer-key", &pinned],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "of issuer uni-cli (name claimed by the bundle, not verified: \"CLI University\")"
        ),
        "{out}"
    );
    let (code, out) = run(
        dir.path(),
        FILE,
        &a.bundle,
        &[
            "--rpc",
            &a.rpc,
            "--issuer-key",
            &pinned,
            "--issuer-name",
            "Registrar-Checked University",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("of Registrar-Checked University ("), "{out}");
    assert!(!out.contains("CLI University"), "{out}");
    let (_, out) = run(
        dir.path(),
        FILE,
        &a.bundle,
        &["--rpc", &a.rpc, "--issuer-key", &pinned, "--json"],
    );
    let v = json(&out);
    assert_eq!(v["issuer_name"], Value::Null, "{out}");
    assert_eq!(v["issuer_name_claimed"], "CLI University", "{out}");
    assert_eq!(v["signing_key_proven"], true, "{out}");

    // The claim cannot close its own label (the name is not hashed: anyone can edit it).
    let mut breakout = a.bundle.clone();
    breakout.issuer_name = "x\"), verified name: Harvard University (\"".into();
    let (_, out) = run(
        dir.path(),
        FILE,
        &breakout,
        &["--rpc", &a.rpc, "--issuer-key", &pinned],
    );
    assert!(
        out.contains(r#"not verified: "x\"), verified name: Harvard University (\"")"#),
        "{out}"
    );
    // A supplied name needs a pinned key: it would otherwise vouch for a self-asserted anchor.
    let (code, out) = run(
        dir.path(),
        FILE,
        &a.bundle,
        &["--rpc", &a.rpc, "--issuer-name", "Harvard University"],
    );
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains("VALID"), "{out}");

    // Every spelling of the catalogue, written to the proof file as it is, through the binary.
    let genuine = serde_json::to_value(&a.bundle).unwrap();
    let proof_path = dir.path().join("edited.json");
    let file_path = dir.path().join("diploma.pdf");
    let mut refused = 0;
    for (name, edited, _) in domain::bundle_edits::spellings(&genuine) {
        std::fs::write(&proof_path, serde_json::to_vec(&edited).unwrap()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_credential-verify"))
            .arg("--file")
            .arg(&file_path)
            .arg("--proof")
            .arg(&proof_path)
            .args(["--rpc", &a.rpc, "--json"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{name}: {text}");
        let v = json(&text);
        assert_eq!(v["verdict"], Value::Null, "{name}: {text}");
        assert!(
            [
                "malformed_bundle",
                "unknown_bundle_field",
                "non_canonical_bundle"
            ]
            .contains(&v["error"].as_str().unwrap_or("")),
            "{name}: {text}"
        );
        refused += 1;
    }
    assert!(refused > 25, "{refused}");
}

/// Sends `count` distinct 0..count-lamport transfers to `to` from a fresh key and returns how
/// many of them reached the finalized history of `to`.
async fn pad_history(rpc: &str, to: &str, count: u64) -> usize {
    use std::str::FromStr;

    use base64::Engine;
    use solana_sdk::hash::Hash;
    use solana_sdk::instruction::{AccountMeta, Instruction};
    use solana_sdk::pubkey::Pubkey;
    use solana_sdk::signature::Keypair;
    use solana_sdk::signer::Signer;
    use solana_sdk::transaction::Transaction;

    let padder = Keypair::new();
    testkit::validator::airdrop(rpc, &padder.pubkey().to_string(), 1_000_000_000)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let call = |method: &'static str, params: Value| {
        let http = http.clone();
        let rpc = rpc.to_string();
        async move {
            http.post(&rpc)
                .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let v = call(
        "getLatestBlockhash",
        serde_json::json!([{"commitment": "confirmed"}]),
    )
    .await;
    let blockhash = Hash::from_str(v["result"]["value"]["blockhash"].as_str().unwrap()).unwrap();
    let to = Pubkey::from_str(to).unwrap();
    let txs: Vec<String> = (0..count)
        .map(|i| {
            let mut data = 2u32.to_le_bytes().to_vec();
            data.extend_from_slice(&i.to_le_bytes());
            let transfer = Instruction {
                program_id: Pubkey::from_str("11111111111111111111111111111111").unwrap(),
                accounts: vec![
                    AccountMeta::new(padder.pubkey(), true),
                    AccountMeta::new(to, false),
                ],
                data,
            };
            let tx = Transaction::new_signed_with_payer(
                &[transfer],
                Some(&padder.pubkey()),
                &[&padder],
                blockhash,
            );
            base64::engine::general_purpose::STANDARD.encode(bincode::serialize(&tx).unwrap())
        })
        .collect();
    let send_all = |txs: Vec<String>| async move {
        futures_util::stream::iter(txs)
            .for_each_concurrent(32, |tx| async move {
                let _ = call(
                    "sendTransaction",
                    serde_json::json!([tx, {"encoding": "base64", "skipPreflight": true}]),
                )
                .await;
            })
            .await;
    };
    use futures_util::StreamExt;
    send_all(txs.clone()).await;
    let client = ChainClient::read_only(ChainConfig::new(rpc, Cluster::Localnet));
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let mut resent = false;
    loop {
        // Count the padder's finalized transactions in `to`'s history.
        let mut landed = 0usize;
        let mut before: Option<String> = None;
        loop {
            let page = client
                .signatures_for_address(&to.to_string(), before.as_deref(), None, 1000)
                .await
                .unwrap();
            landed += page.iter().filter(|e| e.memo.is_none() && !e.err).count();
            match page.last() {
                Some(last) if page.len() == 1000 => before = Some(last.signature.clone()),
                _ => break,
            }
        }
        if landed as u64 >= count {
            return landed;
        }
        if std::time::Instant::now() > deadline {
            return landed;
        }
        if !resent && std::time::Instant::now() + Duration::from_secs(200) < deadline {
            // Rebroadcast once: a busy local validator may drop some (same signatures, so
            // nothing lands twice).
            send_all(txs.clone()).await;
            resent = true;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// A JSON-RPC endpoint that forwards every call to `upstream` except
/// `getSignaturesForAddress`, which it answers with an empty history.
async fn rpc_without_history(upstream: String) -> String {
    lying_rpc(upstream, |req, resp| {
        if req["method"] == "getSignaturesForAddress" {
            resp["result"] = serde_json::json!([]);
        }
    })
    .await
    .unwrap()
}

/// The memo program's id.
const MEMO_PROGRAM: &str = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr";

/// Rewrites the transaction of a `getTransaction` answer (base64 wire bytes, as the
/// verifier asks for them) with `edit`, keeping its signatures: what a node that lies
/// about a real transaction would have to send.
fn edit_transaction(req: &Value, resp: &mut Value, edit: impl FnOnce(&mut VersionedMessage)) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    if req["method"] != "getTransaction" {
        return;
    }
    let Some(blob) = resp["result"]["transaction"][0].as_str() else {
        return;
    };
    let mut tx: VersionedTransaction = bincode::deserialize(&b64.decode(blob).unwrap()).unwrap();
    edit(&mut tx.message);
    resp["result"]["transaction"][0] = b64.encode(bincode::serialize(&tx).unwrap()).into();
}

/// Replaces the data of every memo instruction of `message` with `memo(old data)`.
fn rewrite_memos(message: &mut VersionedMessage, memo: impl Fn(&[u8]) -> Vec<u8>) {
    let memo_program: solana_sdk::pubkey::Pubkey = MEMO_PROGRAM.parse().unwrap();
    let VersionedMessage::Legacy(m) = message else {
        panic!("anchors are legacy transactions");
    };
    let (keys, ixs) = (&m.account_keys, &mut m.instructions);
    for ix in ixs {
        if keys.get(usize::from(ix.program_id_index)) == Some(&memo_program) {
            ix.data = memo(&ix.data);
        }
    }
}

/// Issue #21 item 7: an endpoint that lies about the anchor transaction itself (its slot,
/// its success, its fee payer, its memo), not only about what it knows. Next to an honest
/// endpoint the CLI refuses (exit 6, endpoints disagree); alone, the lie never makes a
/// verdict `valid`. Memo and fee payer lies are caught by the transaction's own signatures
/// (the verifier reads the signed bytes and checks them), so alone they are refused as a
/// disagreement with the chain (exit 6) too; slot and status are not signed, and are caught
/// by the bundle's slot and the verdict's rules (`tampered`).
#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_lying_about_the_anchor_transaction_is_refused() {
    let a = anchored().await;
    let dir = tempfile::tempdir().unwrap();
    let pinned = a.payer.pubkey_base58();
    type Lie = (&'static str, fn(&Value, &mut Value), &'static str);
    let lies: [Lie; 4] = [
        (
            "a later slot",
            |req, resp| {
                if req["method"] == "getTransaction" {
                    if let Some(slot) = resp["result"]["slot"].as_u64() {
                        resp["result"]["slot"] = (slot + 1).into();
                    }
                }
            },
            "anchor_slot_mismatch",
        ),
        (
            "a failed transaction",
            |req, resp| {
                if req["method"] == "getTransaction" && resp["result"].is_object() {
                    resp["result"]["meta"]["err"] =
                        serde_json::json!({"InstructionError": [0, {"Custom": 1}]});
                }
            },
            "anchor_failed",
        ),
        (
            "another fee payer",
            |req, resp| {
                edit_transaction(req, resp, |message| {
                    let VersionedMessage::Legacy(m) = message else {
                        panic!("anchors are legacy transactions");
                    };
                    m.account_keys[0] = [9u8; 32].into();
                })
            },
            "contradicts the signatures",
        ),
        (
            "another memo (another hash)",
            |req, resp| {
                edit_transaction(req, resp, |message| {
                    rewrite_memos(message, |data| {
                        // The last character of the `ca1:` memo's hash, changed.
                        let mut data = data.to_vec();
                        if let Some(last) = data.last_mut() {
                            *last = if *last == b'A' { b'B' } else { b'A' };
                        }
                        data
                    })
                })
            },
            "contradicts the signatures",
        ),
    ];
    let (code, out) = run(
        dir.path(),
        FILE,
        &a.bundle,
        &["--rpc", &a.rpc, "--issuer-key", &pinned],
    );
    assert_eq!(code, 0, "the honest endpoint alone: {out}");
    for (name, lie, why) in lies {
        let liar = lying_rpc(a.rpc.clone(), lie).await.unwrap();
        let (code, out) = run(
            dir.path(),
            FILE,
            &a.bundle,
            &["--rpc", &a.rpc, "--rpc", &liar, "--issuer-key", &pinned],
        );
        assert_eq!(code, 6, "{name}, next to an honest endpoint: {out}");
        assert!(out.contains("disagree"), "{name}: {out}");
        let (code, out) = run(
            dir.path(),
            FILE,
            &a.bundle,
            &["--rpc", &liar, "--issuer-key", &pinned],
        );
        assert_ne!(code, 0, "{name}, alone: {out}");
        assert!(!out.starts_with("VALID"), "{name}, alone: {out}");
        assert!(out.contains(why), "{name}, alone: {out}");
        println!("{name}, alone: exit {code}: {out}");
    }
}

/// A forged credential: another file, hashed and signed by the forger's own signing key
/// (offline, the bundle's signing key is checked alone), pointing at the issuer's real
/// anchor transaction. Only the anchor's memo differs from what the chain holds.
fn forged(a: &Anchored, file: &[u8]) -> ProofBundle {
    let key = SigningKey::from_seed(KeyId::parse("cli-k1").unwrap(), &[66; 32]).unwrap();
    let mut b = a.bundle.clone();
    b.fields.file_digest = FileDigest::of(file);
    let scheme = HashScheme::V2 {
        credential_id: b.credential_id,
        salt: Salt::from_bytes([66; 32]),
        key_id: key.key_id().clone(),
        public_key: key.public_key(),
    };
    b.salt = scheme.salt();
    b.credential_hash = scheme.hash(&b.fields);
    b.issuer_signature = BundleSignature {
        key_id: key.key_id().clone(),
        public_key: key.public_key(),
        signature: key.sign_credential(ProofFormat::V2, &b.credential_hash),
    };
    b.anchor.memo = b.expected_memo().unwrap().encode();
    b
}

/// The lie that matters: a node that shows the issuer's real anchor transaction (real
/// signature, real slot, paid by the pinned key) carrying the forger's memo, consistent with
/// a forged bundle in every other respect. Before the verifier checked the transaction's
/// signatures itself, nothing told this apart from the truth: `valid`. Now the edited
/// message no longer verifies against the pinned key's signature: refused (exit 6).
#[tokio::test(flavor = "multi_thread")]
async fn a_lying_endpoint_cannot_vouch_for_a_forged_credential() {
    const FORGED: &[u8] = b"%PDF-1.7 diploma of Mallory";
    let a = anchored().await;
    let dir = tempfile::tempdir().unwrap();
    let pinned = a.payer.pubkey_base58();
    let forgery = forged(&a, FORGED);
    let forged_memo = forgery.anchor.memo.clone();
    let anchor = a.bundle.anchor.signature.clone();
    // The honest chain refuses the forgery: its memo is not the anchor's.
    let (code, out) = run(
        dir.path(),
        FORGED,
        &forgery,
        &["--rpc", &a.rpc, "--issuer-key", &pinned],
    );
    assert_eq!(code, 3, "the honest endpoint: {out}");
    assert!(out.contains("anchor_memo_mismatch"), "{out}");
    let liar = lying_rpc(a.rpc.clone(), move |req, resp| {
        if req["params"][0] == anchor.as_str() {
            edit_transaction(req, resp, |message| {
                rewrite_memos(message, |_| forged_memo.as_bytes().to_vec())
            });
        }
    })
    .await
    .unwrap();
    let (code, out) = run(
        dir.path(),
        FORGED,
        &forgery,
        &["--rpc", &liar, "--issuer-key", &pinned],
    );
    assert_eq!(code, 6, "the lying endpoint alone: {out}");
    assert!(out.contains("contradicts the signatures"), "{out}");
    assert!(!out.starts_with("VALID"), "{out}");
    println!("forged credential, lying endpoint alone: exit {code}: {out}");
}
