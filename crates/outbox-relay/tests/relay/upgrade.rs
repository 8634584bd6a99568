//! Upgrade to proof format v2 and anchoring-key windows (migrations V7, V8; issue #17): a
//! database an older release filled with v1 credentials, one anchored and one still queued,
//! migrates; both v1 bundles verify (API and offline); new credentials are v2.

use std::time::Duration;

use chain::{AnchorKeypair, ChainClient, ChainConfig, Cluster, Commitment};
use domain::api_key::ApiKey;
use domain::hash::{CredentialFields, FileDigest, HashScheme, ProofFormat};
use domain::memo::Memo;
use domain::sealed::{seal_seed, MasterKey};
use domain::signing::SigningKey;
use domain::{CredentialId, IssuedAt, IssuerId, KeyId, RecipientId, Serial};
use outbox_relay::Application;
use ring::rand::SystemRandom;
use serde_json::Value;
use store::{DatabaseSettings, Store};

use crate::helpers::{api_settings, World};
use crate::verify::{bundle_for, file_of, pass_until, verify_bundle};

/// The last migration of the release before format v2.
const V1_SCHEMA: u32 = 6;

/// Writes a v1 credential and its outbox row with the SQL of the V6 schema (as the release
/// before v2 did); returns its id and hash.
async fn insert_v1(
    db: &tokio_postgres::Client,
    key: &SigningKey,
    serial: &str,
) -> (CredentialId, domain::CredentialHash) {
    let fields = CredentialFields {
        file_digest: FileDigest::of(&file_of(serial)),
        issuer: IssuerId::parse("uni-relay").unwrap(),
        recipient: RecipientId::parse(&format!("student-{serial}")).unwrap(),
        issued_at: IssuedAt::parse_rfc3339("2026-06-30T12:00:00Z").unwrap(),
        serial: Serial::parse(serial).unwrap(),
    };
    let hash = HashScheme::V1.hash(&fields);
    let id = CredentialId::new_v7();
    db.execute(
        "INSERT INTO credentials (id, issuer_id, serial, recipient_id, issued_at, credential_type, \
           title, file_digest, credential_hash, signing_key_id, signature, status) \
         VALUES ($1, 'uni-relay', $2, $3, $4, 'diploma', 'BSc Computer Science', $5, $6, $7, $8, \
           'queued')",
        &[
            id.as_uuid(),
            &serial,
            &fields.recipient.as_str(),
            fields.issued_at.as_datetime(),
            &fields.file_digest.as_bytes().as_slice(),
            &hash.as_bytes().as_slice(),
            &key.key_id().as_str(),
            &key.sign_credential(ProofFormat::V1, &hash).as_bytes().as_slice(),
        ],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO outbox (kind, credential_id, issuer_id) VALUES ('anchor_credential', $1, 'uni-relay')",
        &[id.as_uuid()],
    )
    .await
    .unwrap();
    (id, hash)
}

async fn cli_verdict(w: &World, serial: &str, bundle: &domain::proof::ProofBundle) -> String {
    let report = verifier::verify(&w.offline_request(file_of(serial), bundle.clone()))
        .await
        .unwrap();
    report.verdict.as_str().to_string()
}

#[tokio::test]
async fn a_database_of_v1_credentials_migrates_its_bundles_still_verify_and_new_ones_are_v2() {
    // The release before v2: its schema, its issuer, its keys, its credentials.
    let db = testkit::test_db().await.unwrap();
    let store = Store::connect_lazy(&DatabaseSettings::new(&db.url)).unwrap();
    assert_eq!(store.migrate_to(V1_SCHEMA).await.unwrap(), 6);
    let chain_env = testkit::validator::chain_env().await.unwrap();
    let rng = SystemRandom::new();
    let master = MasterKey::generate(&rng).unwrap();
    let keypair = AnchorKeypair::generate();
    let anchor_pubkey = keypair.pubkey_base58();
    testkit::validator::airdrop(chain_env.rpc_url(), &anchor_pubkey, 20_000_000_000)
        .await
        .unwrap();
    let issuer = IssuerId::parse("uni-relay").unwrap();
    let key_id = KeyId::parse("uni-relay-2025").unwrap();
    let (key, seed) = SigningKey::generate(key_id.clone(), &rng).unwrap();
    let sealed = seal_seed(
        &master,
        &domain::sealed::seal_aad(&issuer, &key_id),
        &seed,
        &rng,
    )
    .unwrap();
    let (api_key, api_key_id, api_key_hash) = ApiKey::generate(&rng).unwrap();
    let (sql, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    sql.execute(
        "INSERT INTO issuers (id, name, anchor_pubkey) VALUES ('uni-relay', 'Relay University', $1)",
        &[&anchor_pubkey],
    )
    .await
    .unwrap();
    sql.execute(
        "INSERT INTO issuer_signing_keys (issuer_id, key_id, public_key, sealed_seed, valid_from) \
         VALUES ('uni-relay', $1, $2, $3, now() - interval '1 day')",
        &[
            &key_id.as_str(),
            &key.public_key().as_bytes().as_slice(),
            &sealed,
        ],
    )
    .await
    .unwrap();
    sql.execute(
        "INSERT INTO api_keys (id, issuer_id, secret_hash) VALUES ($1, 'uni-relay', $2)",
        &[&api_key_id.as_str(), &api_key_hash.as_bytes().as_slice()],
    )
    .await
    .unwrap();

    // One v1 credential anchored before the upgrade (memo sent as that release's relay did),
    // one still queued when the upgrade happens.
    let (anchored, anchored_hash) = insert_v1(&sql, &key, "S-UP-1").await;
    let (queued, _) = insert_v1(&sql, &key, "S-UP-2").await;
    let chain = ChainClient::new(
        ChainConfig::new(chain_env.rpc_url(), Cluster::Localnet),
        AnchorKeypair::from_json_str(&keypair.to_json_string()).unwrap(),
    );
    let memo = Memo::Credential {
        issuer: issuer.clone(),
        credential: anchored,
        hash: anchored_hash,
    }
    .encode();
    let tx = chain.build_memo_transaction(&memo).await.unwrap();
    let signature = chain.send_transaction_bytes(&tx.bytes).await.unwrap();
    let deadline = std::time::Instant::now() + testkit::FINALITY_DEADLINE;
    let landed = loop {
        if let Some(t) = chain
            .fetch_transaction(&signature, Commitment::Finalized)
            .await
            .unwrap()
        {
            break t;
        }
        assert!(std::time::Instant::now() < deadline, "memo not finalized");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    sql.execute(
        "UPDATE credentials SET status = 'finalized', anchor_signature = $2, anchor_slot = $3, \
           finalized_at = now() WHERE id = $1",
        &[
            anchored.as_uuid(),
            &signature,
            &i64::try_from(landed.slot).unwrap(),
        ],
    )
    .await
    .unwrap();
    sql.execute(
        "UPDATE outbox SET completed_at = now() WHERE credential_id = $1",
        &[anchored.as_uuid()],
    )
    .await
    .unwrap();

    // The upgrade: the new issuer-api applies V7 and V8 at start-up.
    let dir = tempfile::tempdir().unwrap();
    let keypair_path = dir.path().join("anchor.json");
    std::fs::write(&keypair_path, keypair.to_json_string()).unwrap();
    let app = issuer_api::Application::build(api_settings(&db.url, &master, chain_env.rpc_url()))
        .await
        .unwrap();
    let api = format!("http://127.0.0.1:{}", app.port());
    let api_store = app.store().clone();
    tokio::spawn(app.into_server());
    assert!(api_store.migrations_current().await.unwrap());
    let formats: Vec<(Option<i16>, bool)> = sql
        .query(
            "SELECT proof_format, salt IS NULL FROM credentials ORDER BY serial",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(formats, vec![(Some(1), true), (Some(1), true)]);
    let keys: i64 = sql
        .query_one(
            "SELECT count(*) FROM issuer_anchor_keys WHERE issuer_id = 'uni-relay' \
               AND pubkey = $1 AND retired_at IS NULL",
            &[&anchor_pubkey],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 1, "the anchoring key moved into issuer_anchor_keys");

    let w = World {
        db,
        chain_env,
        api,
        api_key: api_key.expose().to_string(),
        store: api_store,
        keypair_path,
        anchor_pubkey,
        client: reqwest::Client::new(),
        dir,
        issuer: provisioning::CreatedIssuer {
            issuer_id: "uni-relay".into(),
            api_key: api_key.expose().to_string(),
            signing_key_id: key_id.as_str().to_string(),
            signing_public_key: key.public_key().to_base58(),
        },
        issuer_id: domain::IssuerId::parse("uni-relay").unwrap(),
        master_key_b64: master.to_base64(),
    };
    let relay = Application::build(w.relay_settings(w.chain_env.rpc_url(), "relay-upgraded"))
        .await
        .unwrap();
    // The queued v1 credential is anchored by the new relay, as v1.
    pass_until(&relay, &w, &queued.to_string(), "finalized").await;
    // A new credential is v2.
    let fresh = w.issue("S-UP-3").await;
    pass_until(&relay, &w, &fresh, "finalized").await;

    for (id, serial, version) in [
        (
            anchored.to_string(),
            "S-UP-1",
            "credential-anchor/proof-bundle/v1",
        ),
        (
            queued.to_string(),
            "S-UP-2",
            "credential-anchor/proof-bundle/v1",
        ),
        (fresh.clone(), "S-UP-3", "credential-anchor/proof-bundle/v2"),
    ] {
        let bundle = bundle_for(&w, &id).await;
        assert_eq!(bundle.version, version, "{serial}");
        assert_eq!(bundle.salt.is_some(), serial == "S-UP-3", "{serial}");
        assert_eq!(bundle.anchor.anchor_pubkey, w.anchor_pubkey, "{serial}");
        let (status, v) = verify_bundle(&w, file_of(serial), &bundle).await;
        assert_eq!(
            (status, v["verdict"].as_str()),
            (200, Some("valid")),
            "{serial}: {v}"
        );
        assert_eq!(cli_verdict(&w, serial, &bundle).await, "valid", "{serial}");
    }
    let view: Value = w.credential(&fresh).await;
    assert_eq!(view["proof_format"], 2);
    assert!(view["salt"].is_string());
    let view: Value = w.credential(&queued.to_string()).await;
    assert_eq!(view["proof_format"], 1);
    assert!(view["salt"].is_null());
}
