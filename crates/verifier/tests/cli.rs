//! `credential-verify` end to end against a real local validator: the anchor and revocation
//! memos are real transactions; only the "disagreeing endpoint" is a fake JSON-RPC server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chain::{AnchorKeypair, ChainClient, ChainConfig, Cluster, Commitment};
use domain::hash::{CredentialFields, FileDigest};
use domain::memo::Memo;
use domain::proof::{AnchorMode, BundleAnchor, BundleSignature, ProofBundle, PROOF_BUNDLE_V1};
use domain::signing::SigningKey;
use domain::{BatchId, CredentialId, IssuedAt, IssuerId, KeyId, MerkleTree, RecipientId, Serial};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
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
    let payer = funded(&rpc).await;
    let key = SigningKey::from_seed(KeyId::parse("cli-k1").unwrap(), &[42; 32]).unwrap();
    let fields = CredentialFields {
        file_digest: FileDigest::of(FILE),
        issuer: IssuerId::parse("uni-cli").unwrap(),
        recipient: RecipientId::parse("student-7").unwrap(),
        issued_at: IssuedAt::parse_rfc3339("2026-06-30T12:00:00Z").unwrap(),
        serial: Serial::parse("CLI-1").unwrap(),
    };
    let hash = fields.hash();
    let mut bundle = ProofBundle {
        version: PROOF_BUNDLE_V1.into(),
        credential_id: CredentialId::new_v7(),
        issuer_name: "CLI University".into(),
        fields,
        credential_hash: hash,
        issuer_signature: BundleSignature {
            key_id: key.key_id().clone(),
            public_key: key.public_key(),
            signature: key.sign_credential(&hash),
        },
        anchor: BundleAnchor {
            cluster: "localnet".into(),
            signature: String::new(),
            slot: 0,
            anchor_pubkey: payer.pubkey_base58(),
            memo: String::new(),
            mode: AnchorMode::Single,
        },
    };
    if merkle {
        let sibling = CredentialFields {
            serial: Serial::parse("CLI-2").unwrap(),
            ..bundle.fields.clone()
        }
        .hash();
        let tree = MerkleTree::build(&[sibling, hash]).unwrap();
        bundle.anchor.mode = AnchorMode::Merkle {
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
    // Keep the validator env alive for the whole test process.
    std::mem::forget(env);
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() < len {
                        continue;
                    }
                    let req: Value = serde_json::from_str(&body[..len]).unwrap_or(Value::Null);
                    let result = match req["method"].as_str() {
                        Some("getSignaturesForAddress") => serde_json::json!([]),
                        _ => Value::Null,
                    };
                    let resp =
                        serde_json::json!({"jsonrpc": "2.0", "id": req["id"], "result": result})
                            .to_string();
                    let http = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{resp}",
                        resp.len()
                    );
                    let _ = sock.write_all(http.as_bytes()).await;
                    buf.clear();
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn genuine_tampered_pinned_and_disagreeing_endpoints() {
    let a = anchored().await;
    let dir = tempfile::tempdir().unwrap();
    let rpc = a.rpc.as_str();

    let (code, out) = run(dir.path(), FILE, &a.bundle, &["--rpc", rpc]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("VALID:"), "{out}");

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
    let (code, out) = run(dir.path(), FILE, &a.bundle, &["--rpc", rpc]);
    assert_eq!(code, 0, "a forged revocation is ignored: {out}");

    send_memo(rpc, &a.payer, &revocation).await;
    let (code, out) = run(dir.path(), FILE, &a.bundle, &["--rpc", rpc, "--json"]);
    assert_eq!(code, 1, "{out}");
    let v = json(&out);
    assert_eq!(v["verdict"], "revoked");
    assert_eq!(v["revoked"], true);
}

/// Issue #17: the revocation is found by what the bundle proves (issuer and hash), so editing
/// the bundle's `credential_id` (covered by nothing in merkle mode) cannot hide it, in either
/// anchoring mode. Without the fix the merkle row answered `valid` (exit 0).
#[tokio::test(flavor = "multi_thread")]
async fn an_edited_credential_id_never_hides_a_revocation_offline() {
    for (merkle, expected_code, expected_verdict) in [(true, 1, "revoked"), (false, 3, "tampered")]
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
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
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
