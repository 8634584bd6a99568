//! The whole system in one test process, built once for every cross-service suite: a fresh
//! database on the harness's PostgreSQL, the real issuer-api on port 0 with one provisioned
//! issuer, a funded anchoring keypair on the shared validator, relays and reconcilers built
//! with the services' own `Application::build`, plus what the suites assert with: chain
//! counting (memos read back from the anchoring key's history, never the database), SQL,
//! and dump/restore as an operator would run them.
//!
//! Dev-only (no service depends on it). Settings are typed: `api_settings`,
//! `Stack::relay_settings`, `Stack::reconciler_settings` are the one place a test's
//! configuration of each service is written down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use chain::{AnchorKeypair, ChainClient, ChainConfig, ChainSettings, Cluster, Commitment};
use domain::memo::{decode_rpc_memo_field, Memo};
use domain::sealed::MasterKey;
use domain::{IssuerId, RetryPolicy};
use provisioning::{create_issuer, CreatedIssuer};
use serde_json::{json, Value};
use store::{DatabaseSettings, Store};
use testkit::validator::ChainEnv;
use testkit::TestDb;

pub use testkit;

/// A running system: see the crate docs.
pub struct Stack {
    pub db: TestDb,
    pub chain_env: ChainEnv,
    /// Base URL of the in-process issuer-api.
    pub api: String,
    pub api_key: String,
    pub store: Store,
    pub keypair_path: PathBuf,
    pub anchor_pubkey: String,
    pub client: reqwest::Client,
    /// Holds the keypair file (and anything else a test writes) for the stack's lifetime.
    pub dir: tempfile::TempDir,
    pub issuer: CreatedIssuer,
    pub issuer_id: IssuerId,
    /// The API's master key (base64), for starting more issuer-api processes on this stack.
    pub master_key_b64: String,
}

/// How to build a [`Stack`].
pub struct StackBuilder {
    issuer: String,
    name: String,
    db: Option<TestDb>,
    lamports: u64,
    status_lists: bool,
    webhook_worker: bool,
}

impl Default for StackBuilder {
    fn default() -> Self {
        Self {
            issuer: "uni-test".into(),
            name: "Test University".into(),
            db: None,
            lamports: 50_000_000_000,
            status_lists: false,
            webhook_worker: true,
        }
    }
}

impl StackBuilder {
    /// The provisioned issuer's id and display name.
    pub fn issuer(mut self, id: &str, name: &str) -> Self {
        self.issuer = id.into();
        self.name = name.into();
        self
    }

    /// A given database (e.g. on a PostgreSQL server of the test's own, to restart it).
    pub fn database(mut self, db: TestDb) -> Self {
        self.db = Some(db);
        self
    }

    /// How much the anchoring key is funded with.
    pub fn lamports(mut self, lamports: u64) -> Self {
        self.lamports = lamports;
        self
    }

    /// Publish status list versions (issue #20) with a 300 ms debounce. Off by default: the
    /// suites that count one credential's transactions, sends or claims exactly would see a
    /// list version's job beside it; the status list suites turn it on.
    pub fn status_lists(mut self) -> Self {
        self.status_lists = true;
        self
    }

    /// No webhook worker in the in-process API: a suite runs its own (a real process it
    /// kills).
    pub fn without_webhook_worker(mut self) -> Self {
        self.webhook_worker = false;
        self
    }

    pub async fn start(self) -> Stack {
        let db = match self.db {
            Some(db) => db,
            None => testkit::test_db().await.unwrap(),
        };
        let chain_env = testkit::validator::chain_env().await.unwrap();
        let master = MasterKey::generate(&ring::rand::SystemRandom::new()).unwrap();
        let mut settings = api_settings(&db.url, &master, chain_env.rpc_url());
        if !self.status_lists {
            // Never due: no list version is signed (a day is longer than any test).
            settings.status_lists.debounce_ms = 86_400_000;
        }
        settings.webhooks.worker = self.webhook_worker;
        let app = issuer_api::Application::build(settings).await.unwrap();
        let api = format!("http://127.0.0.1:{}", app.port());
        let store = app.store().clone();
        tokio::spawn(app.into_server());

        let dir = tempfile::tempdir().unwrap();
        let keypair = AnchorKeypair::generate();
        let keypair_path = dir.path().join("anchor.json");
        std::fs::write(&keypair_path, keypair.to_json_string()).unwrap();
        let anchor_pubkey = keypair.pubkey_base58();
        testkit::validator::airdrop(chain_env.rpc_url(), &anchor_pubkey, self.lamports)
            .await
            .unwrap();
        let issuer_id = IssuerId::parse(&self.issuer).unwrap();
        // Set on the chain's clock when it trails ours (a validator loaded for long enough
        // falls minutes behind): the key's window must hold its first anchors.
        let chain_now =
            ChainClient::read_only(ChainConfig::new(chain_env.rpc_url(), Cluster::Localnet))
                .clock()
                .await
                .unwrap();
        let issuer = create_issuer(
            &store,
            &master,
            &issuer_id,
            &self.name,
            &anchor_pubkey,
            chain_now,
        )
        .await
        .unwrap();
        Stack {
            db,
            api,
            api_key: issuer.api_key.clone(),
            store,
            keypair_path,
            anchor_pubkey,
            // Idle connections are dropped well before the server's keep-alive closes them.
            client: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            dir,
            issuer,
            issuer_id,
            chain_env,
            master_key_b64: master.to_base64(),
        }
    }
}

/// The issuer-api's settings in a test: port 0, no rate limit, this database, master key and
/// chain (verification reads the same validator).
pub fn api_settings(db_url: &str, master: &MasterKey, rpc_url: &str) -> issuer_api::Settings {
    issuer_api::Settings {
        http: issuer_api::settings::HttpSettings {
            host: "127.0.0.1".into(),
            port: 0,
            metrics_port: 0,
            workers: Some(2),
            // The per-key limit has its own tests; here clients issue as fast as they can.
            rate_limit_per_second: 0,
            ..Default::default()
        },
        database: DatabaseSettings::new(db_url),
        signing: issuer_api::settings::SigningSettings {
            master_key: master.to_base64().into(),
            previous_master_keys: None,
        },
        log: Default::default(),
        explorer: Default::default(),
        chain: ChainSettings::new(rpc_url),
        // The public routes' limits have their own tests; the suites verify hundreds of
        // bundles from one loopback address.
        public: issuer_api::public::PublicSettings {
            verify_per_ip_per_second: 0,
            verify_max_in_flight: 256,
            verify_max_in_flight_per_ip: 256,
            ..Default::default()
        },
        // Tests wait for list versions: a short debounce keeps them quick.
        status_lists: issuer_api::status_lists::StatusListSettings {
            debounce_ms: 300,
            interval_ms: 200,
            ..Default::default()
        },
        // Receivers in tests listen on loopback over http; retries in seconds, not hours
        // (5 s becomes 50 ms, 30 min 18 s); a hanging receiver costs 2 s per attempt.
        webhooks: issuer_api::webhooks::WebhookSettings {
            allow_http: true,
            allow_private: true,
            retry_scale: 0.01,
            poll_ms: 100,
            timeout_ms: 2_000,
            ..Default::default()
        },
    }
}

/// Probes on a free loopback port.
fn probes() -> outbox_relay::settings::ProbeSettings {
    outbox_relay::settings::ProbeSettings {
        host: "127.0.0.1".into(),
        port: 0,
    }
}

impl Stack {
    pub fn builder() -> StackBuilder {
        StackBuilder::default()
    }

    /// The stack's chain settings for a service that reads `rpc_url` (the validator, or a
    /// fault proxy in front of it).
    pub fn chain_settings(&self, rpc_url: &str) -> ChainSettings {
        ChainSettings {
            keypair_path: Some(self.keypair_path.clone()),
            priority_fee_cap_micro_lamports: 10_000,
            request_timeout_ms: 3_000,
            ..ChainSettings::new(rpc_url)
        }
    }

    /// A relay's settings (single mode) reading the chain at `rpc_url`.
    pub fn relay_settings(&self, rpc_url: &str, worker: &str) -> outbox_relay::Settings {
        outbox_relay::Settings {
            database: DatabaseSettings::new(&self.db.url),
            chain: self.chain_settings(rpc_url),
            relay: outbox_relay::settings::RelaySettings {
                worker_id: Some(worker.to_string()),
                lease_ms: 2_000,
                poll_interval_ms: 200,
                track_interval_ms: 500,
                // A budget of about a minute of continuous transient failures: the full suite
                // shares one validator with the crash tests, and a starved RPC must not
                // dead-letter a test's rows (tests of the budget itself set their own).
                retry: RetryPolicy {
                    base: Duration::from_millis(200),
                    cap: Duration::from_secs(2),
                    max_attempts: 30,
                },
                ..Default::default()
            },
            probes: probes(),
            log: Default::default(),
        }
    }

    /// Relay settings in merkle mode with the given batch bounds.
    pub fn merkle_settings(
        &self,
        rpc_url: &str,
        worker: &str,
        max_members: u32,
        max_wait_ms: u64,
    ) -> outbox_relay::Settings {
        let mut s = self.relay_settings(rpc_url, worker);
        s.relay.mode = domain::AnchoringMode::Merkle;
        s.relay.batch_max_members = max_members;
        s.relay.batch_max_wait_ms = max_wait_ms;
        s
    }

    /// A relay on the stack's validator, built like the service's.
    pub async fn relay(&self, worker: &str) -> outbox_relay::Application {
        outbox_relay::Application::build(self.relay_settings(self.chain_env.rpc_url(), worker))
            .await
            .unwrap()
    }

    pub fn reconciler_settings(&self) -> reconciler::Settings {
        reconciler::Settings {
            database: DatabaseSettings::new(&self.db.url),
            chain: ChainSettings::new(self.chain_env.rpc_url()),
            reconcile: Default::default(),
            probes: probes(),
            log: Default::default(),
        }
    }

    /// A reconciler built like the service's (own pool, own metrics registry).
    pub async fn reconciler(&self) -> reconciler::Reconciler {
        let app = reconciler::Application::build(self.reconciler_settings())
            .await
            .unwrap();
        app.reconciler().clone()
    }

    /// The `APP__*` variables of a service *process* on this stack (`testkit::services`,
    /// the same as `localnet up --services` and the bench give), for suites that kill real
    /// processes.
    pub fn service_env(
        &self,
        service: testkit::services::Service,
        port: u16,
    ) -> Vec<(String, String)> {
        testkit::services::StackEnv {
            database_url: self.db.url.clone(),
            rpc_url: self.chain_env.rpc_url().to_string(),
            master_key_b64: self.master_key_b64.clone(),
            keypair_path: self.keypair_path.clone(),
            log_filter: "info".into(),
            api_metrics_port: 0,
        }
        .env(service, port)
    }

    /// A read-only client of the stack's validator.
    pub fn chain(&self) -> ChainClient {
        ChainClient::read_only(ChainConfig::new(
            self.chain_env.rpc_url(),
            Cluster::Localnet,
        ))
    }

    /// The validator's clock (its newest finalized block time), for a key window set the way
    /// `issuer-api admin` sets it.
    pub async fn chain_clock(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.chain().clock().await.unwrap()
    }

    /// Issues `n` credentials through `POST /v1/credential-batches` (file digests, chunks of
    /// 5,000); returns their ids in serial order.
    pub async fn issue_bulk(&self, prefix: &str, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        let serials: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
        for chunk in serials.chunks(5_000) {
            let items: Vec<Value> = chunk.iter().map(|serial| bulk_item(serial)).collect();
            let resp = self
                .client
                .post(format!("{}/v1/credential-batches", self.api))
                .bearer_auth(&self.api_key)
                .json(&json!({ "credentials": items }))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 202);
            let v: Value = resp.json().await.unwrap();
            assert_eq!(
                v["accepted"].as_u64(),
                Some(chunk.len() as u64),
                "{}",
                v["items"][0]
            );
            ids.extend(
                v["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["id"].as_str().unwrap().to_string()),
            );
        }
        ids
    }

    /// Status list memos (`ca1:s`) in the anchoring key's history, scanned from the CHAIN:
    /// (transaction signature, memo) per memo, newest first.
    pub async fn status_lists_on_chain(&self) -> Vec<(String, Memo)> {
        let mut found = Vec::new();
        self.walk_memos_on_chain(|signature, memo| {
            if matches!(memo, Memo::StatusList { .. }) {
                found.push((signature.to_string(), memo));
            }
        })
        .await;
        found
    }

    /// Finalized successful batch memos the anchoring key signed, scanned from the CHAIN:
    /// (transaction signature, memo) per transaction.
    pub async fn batch_anchors_on_chain(&self) -> Vec<(String, Memo)> {
        let mut found = Vec::new();
        self.walk_memos_on_chain(|signature, memo| {
            if matches!(memo, Memo::Batch { .. }) {
                found.push((signature.to_string(), memo));
            }
        })
        .await;
        found
    }

    /// Issues one credential over HTTP; returns its id.
    pub async fn issue(&self, serial: &str) -> String {
        self.issue_as(&self.api_key, serial).await
    }

    /// Issues one credential with another issuer's API key; returns its id.
    pub async fn issue_as(&self, api_key: &str, serial: &str) -> String {
        let body = single_item(serial);
        let resp = self
            .client
            .post(format!("{}/v1/credentials", self.api))
            .bearer_auth(api_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        let v: Value = resp.json().await.unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// Issues `serial` as a **v1** credential, as the service did before proof format v2:
    /// the store's own issuing transaction with the v1 hash and signature, signed by the
    /// issuer's active key. It stands in for an older issuer-api binary; the database, the
    /// relay, the API's verification and the verifiers that then handle it are the real ones.
    /// Same file and fields as [`World::issue`].
    pub async fn issue_v1(&self, serial: &str) -> String {
        use domain::hash::{CredentialFields, FileDigest, HashScheme, ProofFormat};
        let issuer = self.issuer_id.clone();
        let active = self
            .store
            .active_signing_key(&issuer)
            .await
            .unwrap()
            .unwrap();
        let master = MasterKey::from_base64(&self.master_key_b64).unwrap();
        let seed = domain::sealed::open_seed(
            &master,
            &domain::sealed::seal_aad(&issuer, &active.key_id),
            active.sealed_seed.as_deref().unwrap(),
        )
        .unwrap();
        let key = domain::signing::SigningKey::from_seed(active.key_id.clone(), &seed).unwrap();
        let file = format!("%PDF diploma {serial}");
        let fields = CredentialFields {
            file_digest: FileDigest::of(file.as_bytes()),
            issuer: issuer.clone(),
            recipient: domain::RecipientId::parse(&format!("student-{serial}")).unwrap(),
            issued_at: domain::IssuedAt::parse_rfc3339("2026-06-30T12:00:00Z").unwrap(),
            serial: domain::Serial::parse(serial).unwrap(),
        };
        let hash = HashScheme::V1.hash(&fields);
        let new = store::credentials::NewCredential {
            id: domain::CredentialId::new_v7(),
            issuer,
            serial: fields.serial.clone(),
            recipient: fields.recipient.clone(),
            issued_at: fields.issued_at,
            credential_type: "diploma".into(),
            title: "BSc Computer Science".into(),
            metadata: json!({}),
            file_digest: fields.file_digest,
            scheme: HashScheme::V1,
            hash,
            key_id: active.key_id.clone(),
            signature: key.sign_credential(ProofFormat::V1, &hash),
            vc: None,
            status_ordinal: None,
        };
        let outcome = self
            .store
            .issue_credential(&new, None, |_| (202, json!({})))
            .await
            .unwrap();
        assert!(
            matches!(outcome, store::credentials::IssueOutcome::Created(_)),
            "{outcome:?}"
        );
        new.id.to_string()
    }

    pub async fn issue_owned(&self, serial: String) -> String {
        self.issue(&serial).await
    }

    pub async fn credential(&self, id: &str) -> Value {
        self.client
            .get(format!("{}/v1/credentials/{id}", self.api))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A fresh connection to the stack's database.
    pub async fn sql(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    /// Runs `sql` (one or more statements) against the test database.
    pub async fn execute(&self, sql: &str) {
        self.sql().await.batch_execute(sql).await.unwrap();
    }

    pub async fn query_i64(&self, sql: &str) -> i64 {
        self.sql().await.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// Waits until every credential is finalized (or the timeout). A dead-lettered job can
    /// never finalize, so it fails at once; either failure prints the open outbox rows and
    /// their anchor transactions, so a red CI run says why instead of only "not in time".
    pub async fn wait_all_finalized(&self, expected: i64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let n = self
                .query_i64("SELECT count(*) FROM credentials WHERE status = 'finalized'")
                .await;
            if n >= expected {
                return;
            }
            let dead = self
                .query_i64("SELECT count(*) FROM outbox WHERE dead_at IS NOT NULL")
                .await;
            if dead > 0 || tokio::time::Instant::now() >= deadline {
                panic!(
                    "only {n} of {expected} finalized ({dead} dead-lettered) after {timeout:?}\n{}",
                    self.outbox_diagnostics().await
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The open (or dead) outbox rows with their attempts, failures and last error, and every
    /// anchor transaction's status: what a failed wait prints.
    pub async fn outbox_diagnostics(&self) -> String {
        let client = self.sql().await;
        let mut out = String::new();
        let rows = client
            .query(
                "SELECT o.id, o.kind, o.attempts, o.failures, o.dead_at IS NOT NULL, \
                        coalesce(o.locked_by, ''), coalesce(o.last_error, ''), \
                        (extract(epoch FROM o.available_at - now()))::float8 \
                 FROM outbox o WHERE o.completed_at IS NULL ORDER BY o.id LIMIT 20",
                &[],
            )
            .await
            .unwrap();
        for r in rows {
            out.push_str(&format!(
                "outbox {} {} attempts={} failures={} dead={} locked_by={:?} due_in={:.1}s last_error={:?}\n",
                r.get::<_, i64>(0),
                r.get::<_, String>(1),
                r.get::<_, i32>(2),
                r.get::<_, i32>(3),
                r.get::<_, bool>(4),
                r.get::<_, String>(5),
                r.get::<_, f64>(7),
                r.get::<_, String>(6),
            ));
        }
        let txs = client
            .query(
                "SELECT signature, status, coalesce(error, '') FROM anchor_transactions \
                 ORDER BY created_at DESC LIMIT 20",
                &[],
            )
            .await
            .unwrap();
        for r in txs {
            out.push_str(&format!(
                "tx {} {} {:?}\n",
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
            ));
        }
        out
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

    /// `GET /v1/credentials/{id}/vc`: the credential's VC, byte for byte as served.
    pub async fn vc_text(&self, id: &str) -> String {
        let resp = self
            .client
            .get(format!("{}/v1/credentials/{id}/vc", self.api))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.text().await.unwrap()
    }

    /// `credential-verify`'s request for `file` and `bundle` against this stack's validator,
    /// with the anchoring key pinned and the command's defaults; callers change what their
    /// test is about (keys, the VC, a status list).
    pub fn offline_request(
        &self,
        file: Vec<u8>,
        bundle: domain::proof::ProofBundle,
    ) -> verifier::Request {
        verifier::Request {
            file,
            bundle,
            rpcs: vec![self.chain_env.rpc_url().to_string()],
            pinned_issuer_keys: vec![self.anchor_pubkey.clone()],
            max_history_pages: 200,
            timeout: Duration::from_secs(10),
            issuer_name: None,
            vc: None,
            status_list: None,
        }
    }

    /// `GET /issuers/{issuer}/status-lists/{list}`: the served version (its
    /// `Status-List-Version` header), the list credential as served, and its bits.
    pub async fn served_status_list(
        &self,
        list: u32,
    ) -> Option<(u32, String, domain::status_list::Bitstring)> {
        let resp = self
            .client
            .get(format!(
                "{}/issuers/{}/status-lists/{list}",
                self.api, self.issuer_id
            ))
            .send()
            .await
            .unwrap();
        if resp.status().as_u16() == 404 {
            return None;
        }
        assert_eq!(resp.status().as_u16(), 200);
        let version: u32 = resp.headers()["Status-List-Version"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let text = resp.text().await.unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let bits = domain::status_list::Bitstring::decode(
            json["credentialSubject"]["encodedList"].as_str().unwrap(),
        )
        .unwrap();
        Some((version, text, bits))
    }

    /// Runs relay passes (the API's publisher signs list versions meanwhile) until the
    /// served status list `list` satisfies `done` (180 s, as `relay_until`); returns it.
    pub async fn relay_until_list(
        &self,
        relay: &outbox_relay::Application,
        list: u32,
        done: impl Fn(u32, &domain::status_list::Bitstring) -> bool,
    ) -> (u32, String, domain::status_list::Bitstring) {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            let _ = relay.relay().run_pass().await;
            if let Some((version, text, bits)) = self.served_status_list(list).await {
                if done(version, &bits) {
                    return (version, text, bits);
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "status list {list} never got there"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// `POST /v1/credentials/{id}/revoke`; returns the HTTP status.
    /// Registers a webhook endpoint for the stack's issuer (`POST /v1/webhooks`): its id and
    /// secret (`whsec_...`).
    pub async fn register_webhook(&self, url: &str) -> (String, String) {
        let resp = self
            .client
            .post(format!("{}/v1/webhooks", self.api))
            .bearer_auth(&self.api_key)
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let v: Value = resp.json().await.unwrap();
        (
            v["id"].as_str().unwrap().to_string(),
            v["secret"].as_str().unwrap().to_string(),
        )
    }

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

    /// The stack database's name and a connection to the server's `postgres` database.
    async fn admin(&self) -> (String, tokio_postgres::Client) {
        let (_, name) = self.db.url.rsplit_once('/').unwrap();
        let name = name.split('?').next().unwrap().to_string();
        let admin_url = testkit::postgres::with_database(&self.db.url, "postgres");
        let (admin, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        (name, admin)
    }

    /// Replays a plain-SQL dump into database `name` of the stack's server.
    fn psql_restore(&self, name: &str, path: &Path) {
        let status = std::process::Command::new("psql")
            .args(["-q", "-v", "ON_ERROR_STOP=1", "--dbname"])
            .arg(testkit::postgres::with_database(&self.db.url, name))
            .arg("-f")
            .arg(path)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "psql restore failed");
    }

    /// Drops and recreates the test database, then replays the dump with psql: a restore
    /// from backup, as an operator would do it.
    pub async fn restore(&self, path: &Path) {
        let (name, admin) = self.admin().await;
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
        self.psql_restore(&name, path);
    }

    /// The disaster: the live database is gone (its sessions ended with it). From here the
    /// API answers 503 until a restore brings a database back under the same name.
    pub async fn lose_database(&self) {
        let (name, admin) = self.admin().await;
        admin
            .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
            .await
            .unwrap();
    }

    /// Restores `path` into a new database, then swaps it in under the live name (DROP …
    /// WITH (FORCE) ends the API's sessions), so the API never sees a half-restored schema:
    /// only a short "database unavailable" window, which its clients retry through.
    pub async fn restore_swapping(&self, path: &Path) {
        let (name, admin) = self.admin().await;
        let staging = format!("{name}_restore");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{staging}\""))
            .await
            .unwrap();
        self.psql_restore(&staging, path);
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .unwrap();
        admin
            .batch_execute(&format!(
                "ALTER DATABASE \"{staging}\" RENAME TO \"{name}\""
            ))
            .await
            .unwrap();
    }

    /// Counts, per credential id, the finalized successful memo transactions in the
    /// anchoring key's history, scanning the CHAIN, not the database.
    pub async fn anchors_on_chain(&self) -> HashMap<String, usize> {
        self.count_on_chain(|m| match m {
            Memo::Credential { credential, .. } => vec![credential.to_string()],
            _ => Vec::new(),
        })
        .await
    }

    /// Counts, per credential id, the successful revocations (`ca1:r` memos and entries of
    /// `ca1:v` lists) in the anchoring key's history, scanning the CHAIN.
    pub async fn revocations_on_chain(&self) -> HashMap<String, usize> {
        self.count_on_chain(|m| {
            m.revoked()
                .iter()
                .map(|r| r.credential.to_string())
                .collect()
        })
        .await
    }

    /// The revocation list memos (`ca1:v`) in the anchoring key's history, read from the
    /// CHAIN: how many transactions the revocations of Merkle-mode issuers took.
    pub async fn revocation_lists_on_chain(&self) -> Vec<Memo> {
        let mut lists = Vec::new();
        self.walk_memos_on_chain(|_, memo| {
            if matches!(memo, Memo::RevocationList { .. }) {
                lists.push(memo);
            }
        })
        .await;
        lists
    }

    async fn count_on_chain(&self, keys: impl Fn(Memo) -> Vec<String>) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        self.walk_memos_on_chain(|_, memo| {
            for k in keys(memo) {
                *counts.entry(k).or_insert(0) += 1;
            }
        })
        .await;
        counts
    }

    /// Every memo of ours in a successful transaction of the anchoring key's history, newest
    /// first, read from the CHAIN (`getSignaturesForAddress`, paged), never the database.
    async fn walk_memos_on_chain(&self, mut each: impl FnMut(&str, Memo)) {
        let chain = self.chain();
        let mut before: Option<String> = None;
        loop {
            let page = chain
                .signatures_for_address(&self.anchor_pubkey, before.as_deref(), None, 1000)
                .await
                .unwrap();
            for entry in page.iter().filter(|e| !e.err) {
                for memo in decode_rpc_memo_field(entry.memo.as_deref().unwrap_or("")) {
                    each(&entry.signature, memo);
                }
            }
            match page.last() {
                Some(last) if page.len() == 1000 => before = Some(last.signature.clone()),
                _ => break,
            }
        }
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

/// The body of `POST /v1/credentials` for `serial`: the same serial always gives the same
/// body (sent again with its Idempotency-Key, it is the same request).
pub fn single_item(serial: &str) -> Value {
    json!({
        "recipient_id": format!("student-{serial}"),
        "issued_at": "2026-06-30T12:00:00Z",
        "serial": serial,
        "credential_type": "diploma",
        "title": "BSc Computer Science",
        "file_base64": base64::engine::general_purpose::STANDARD
            .encode(format!("%PDF diploma {serial}")),
    })
}

/// One item of `POST /v1/credential-batches` for `serial`, by digest; the same serial always
/// gives the same item (sent again, it is a `duplicate`).
pub fn bulk_item(serial: &str) -> Value {
    json!({
        "recipient_id": format!("student-{serial}"),
        "issued_at": "2026-06-30T12:00:00Z",
        "serial": serial,
        "credential_type": "diploma",
        "title": "BSc Computer Science",
        "file_sha256": domain::FileDigest::of(serial.as_bytes()).to_hex(),
    })
}
