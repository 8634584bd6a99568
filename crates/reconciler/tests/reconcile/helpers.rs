//! Test world: a fresh database, the real issuer-api with one issuer, a funded anchoring key,
//! relays and reconcilers built like production ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use chain::{AnchorKeypair, ChainClient, ChainConfig, Cluster, Commitment};
use domain::memo::{decode_rpc_memo_field, Memo};
use domain::sealed::MasterKey;
use domain::{IssuerId, RetryPolicy};
use provisioning::create_issuer;
use reconciler::{ChainSettings, ProbeSettings, Reconciler};
use serde_json::{json, Value};
use store::DatabaseSettings;
use testkit::validator::ChainEnv;
use testkit::TestDb;

pub const ISSUER: &str = "uni-recon";

pub struct World {
    pub db: TestDb,
    pub chain_env: ChainEnv,
    pub api: String,
    pub api_key: String,
    pub keypair_path: PathBuf,
    pub anchor_pubkey: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
}

pub async fn world() -> World {
    let db = testkit::test_db().await.unwrap();
    let chain_env = testkit::validator::chain_env().await.unwrap();
    let master = MasterKey::generate(&ring::rand::SystemRandom::new()).unwrap();
    let settings = issuer_api::Settings {
        http: issuer_api::settings::HttpSettings {
            host: "127.0.0.1".into(),
            port: 0,
            workers: Some(2),
            // The per-key limit has its own tests; here clients issue as fast as they can.
            rate_limit_per_second: 0,
            ..Default::default()
        },
        database: DatabaseSettings::new(&db.url),
        signing: issuer_api::settings::SigningSettings {
            master_key: master.to_base64().into(),
        },
        log: Default::default(),
        explorer: Default::default(),
        // The API's verification reads the same chain (the rotation tests verify through it).
        chain: issuer_api::settings::ChainSettings {
            rpc_url: chain_env.rpc_url().to_string(),
            ..Default::default()
        },
    };
    let app = issuer_api::Application::build(settings).await.unwrap();
    let api = format!("http://127.0.0.1:{}", app.port());
    let store = app.store().clone();
    tokio::spawn(app.into_server());

    let dir = tempfile::tempdir().unwrap();
    let keypair = AnchorKeypair::generate();
    let keypair_path = dir.path().join("anchor.json");
    std::fs::write(&keypair_path, keypair.to_json_string()).unwrap();
    let anchor_pubkey = keypair.pubkey_base58();
    testkit::validator::airdrop(chain_env.rpc_url(), &anchor_pubkey, 50_000_000_000)
        .await
        .unwrap();
    let issuer = create_issuer(
        &store,
        &master,
        &IssuerId::parse(ISSUER).unwrap(),
        "Reconciled University",
        &anchor_pubkey,
    )
    .await
    .unwrap();
    World {
        db,
        api,
        api_key: issuer.api_key.clone(),
        keypair_path,
        anchor_pubkey,
        // Idle connections are dropped well before the server's keep-alive closes them.
        client: reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap(),
        dir,
        chain_env,
    }
}

impl World {
    pub fn relay_settings(&self, worker: &str) -> outbox_relay::Settings {
        outbox_relay::Settings {
            database: DatabaseSettings::new(&self.db.url),
            chain: outbox_relay::settings::ChainSettings {
                rpc_url: self.chain_env.rpc_url().to_string(),
                cluster: "localnet".into(),
                keypair_path: self.keypair_path.clone(),
                priority_fee_cap_micro_lamports: 10_000,
                priority_fee_percentile: 75,
                request_timeout_ms: 3_000,
            },
            relay: outbox_relay::settings::RelaySettings {
                worker_id: Some(worker.to_string()),
                lease_ms: 2_000,
                poll_interval_ms: 200,
                track_interval_ms: 500,
                retry: RetryPolicy {
                    base: Duration::from_millis(200),
                    cap: Duration::from_secs(2),
                    max_attempts: 10,
                },
                ..Default::default()
            },
            probes: outbox_relay::settings::ProbeSettings {
                host: "127.0.0.1".into(),
                port: 0,
            },
            log: Default::default(),
        }
    }

    pub async fn relay(&self, worker: &str) -> outbox_relay::Application {
        outbox_relay::Application::build(self.relay_settings(worker))
            .await
            .unwrap()
    }

    /// A reconciler built like the service's (own pool, own metrics registry).
    pub async fn reconciler(&self) -> Reconciler {
        let app = reconciler::Application::build(reconciler::Settings {
            database: DatabaseSettings::new(&self.db.url),
            chain: ChainSettings::new(self.chain_env.rpc_url()),
            reconcile: Default::default(),
            probes: ProbeSettings {
                host: "127.0.0.1".into(),
                port: 0,
            },
            log: Default::default(),
        })
        .await
        .unwrap();
        app.reconciler().clone()
    }

    pub fn chain(&self) -> ChainClient {
        ChainClient::read_only(ChainConfig::new(
            self.chain_env.rpc_url(),
            Cluster::Localnet,
        ))
    }

    /// The credential's proof bundle (`GET /v1/credentials/{id}/proof`, 200), as JSON.
    pub async fn proof(&self, id: &str) -> Value {
        let resp = self
            .client
            .get(format!("{}/v1/credentials/{id}/proof", self.api))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.json().await.unwrap()
    }

    /// Issues one credential over HTTP; returns its id.
    pub async fn issue(&self, serial: &str) -> String {
        let body = json!({
            "recipient_id": format!("student-{serial}"),
            "issued_at": "2026-06-30T12:00:00Z",
            "serial": serial,
            "credential_type": "diploma",
            "title": "BSc Computer Science",
            "file_base64": base64::engine::general_purpose::STANDARD.encode(format!("%PDF diploma {serial}")),
        });
        let resp = self
            .client
            .post(format!("{}/v1/credentials", self.api))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        let v: Value = resp.json().await.unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    pub async fn sql(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    pub async fn query_i64(&self, sql: &str) -> i64 {
        self.sql().await.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// (status, credential_hash hex) of one credential, read from the database.
    pub async fn row(&self, id: &str) -> Option<(String, String)> {
        let id: uuid::Uuid = id.parse().unwrap();
        self.sql()
            .await
            .query_opt(
                "SELECT status, encode(credential_hash, 'hex') FROM credentials WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap()
            .map(|r| (r.get(0), r.get(1)))
    }

    /// Runs relay passes until every listed credential is finalized (180 s).
    pub async fn anchor_all(&self, relay: &outbox_relay::Application, ids: &[String]) {
        self.relay_until(relay, ids, "finalized").await
    }

    /// Runs relay passes until every listed credential has `status` (180 s: generous, the
    /// full suite shares one validator with the crash tests).
    pub async fn relay_until(
        &self,
        relay: &outbox_relay::Application,
        ids: &[String],
        status: &str,
    ) {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            let _ = relay.relay().run_pass().await;
            let mut done = true;
            for id in ids {
                if self.row(id).await.map(|r| r.0).as_deref() != Some(status) {
                    done = false;
                }
            }
            if done {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "not all {status}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// `POST /v1/credentials/{id}/revoke`; returns the HTTP status.
    pub async fn revoke(&self, id: &str, reason: &str) -> u16 {
        self.client
            .post(format!("{}/v1/credentials/{id}/revoke", self.api))
            .bearer_auth(&self.api_key)
            .json(&json!({ "reason": reason }))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Waits until `signature` is finalized on chain (120 s).
    pub async fn wait_finalized_on_chain(&self, signature: &str) {
        let chain = self.chain();
        let deadline = std::time::Instant::now() + testkit::FINALITY_DEADLINE;
        loop {
            if chain
                .fetch_transaction(signature, Commitment::Finalized)
                .await
                .unwrap()
                .is_some()
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{signature} not finalized"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `pg_dump` of the test database into `path`.
    pub fn dump(&self, path: &Path) {
        let status = std::process::Command::new("pg_dump")
            .arg("--dbname")
            .arg(&self.db.url)
            .arg("--file")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "pg_dump failed");
    }

    /// Drops and recreates the test database, then replays the dump with psql: a restore
    /// from backup, as an operator would do it.
    pub async fn restore(&self, path: &Path) {
        let (admin_url, name) = self.db.url.rsplit_once('/').unwrap();
        let name = name.split('?').next().unwrap().to_string();
        let (admin, conn) =
            tokio_postgres::connect(&format!("{admin_url}/postgres"), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        // Two statements: DROP DATABASE refuses to run inside the implicit transaction of a
        // multi-statement query. FORCE ends the API's pooled sessions, as a real restore would.
        admin
            .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
            .await
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        let status = std::process::Command::new("psql")
            .args(["-q", "-v", "ON_ERROR_STOP=1", "--dbname"])
            .arg(&self.db.url)
            .arg("-f")
            .arg(path)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "psql restore failed");
    }

    /// Counts, per credential id, the finalized successful memo transactions in the
    /// anchoring key's history, scanning the CHAIN, not the database.
    pub async fn anchors_on_chain(&self) -> HashMap<String, usize> {
        self.count_on_chain(|m| match m {
            Memo::Credential { credential, .. } => Some(credential.to_string()),
            _ => None,
        })
        .await
    }

    /// Counts, per credential id, the successful revocation (`ca1:r`) transactions in the
    /// anchoring key's history, scanning the CHAIN.
    pub async fn revocations_on_chain(&self) -> HashMap<String, usize> {
        self.count_on_chain(|m| match m {
            Memo::Revocation { credential, .. } => Some(credential.to_string()),
            _ => None,
        })
        .await
    }

    async fn count_on_chain(&self, key: impl Fn(Memo) -> Option<String>) -> HashMap<String, usize> {
        let chain = self.chain();
        let mut counts = HashMap::new();
        let mut before: Option<String> = None;
        loop {
            let page = chain
                .signatures_for_address(&self.anchor_pubkey, before.as_deref(), None, 1000)
                .await
                .unwrap();
            for entry in &page {
                if entry.err {
                    continue;
                }
                for memo in decode_rpc_memo_field(entry.memo.as_deref().unwrap_or("")) {
                    if let Some(k) = key(memo) {
                        *counts.entry(k).or_insert(0) += 1;
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() == 1000 => before = Some(last.signature.clone()),
                _ => break,
            }
        }
        counts
    }

    /// Findings of `kind` recorded so far.
    pub async fn findings(&self, kind: &str) -> i64 {
        self.sql()
            .await
            .query_one(
                "SELECT count(*) FROM reconciliation_findings WHERE kind = $1",
                &[&kind],
            )
            .await
            .unwrap()
            .get(0)
    }
}

/// A confirmed blockhash, by plain JSON-RPC (the chain crate keeps that call internal).
pub async fn latest_blockhash(rpc_url: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(rpc_url)
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "getLatestBlockhash",
                       "params": [{"commitment": "confirmed"}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["result"]["value"]["blockhash"]
        .as_str()
        .unwrap()
        .to_string()
}
