//! spawn_app(): a fresh database, the real Application on port 0, and one bootstrapped issuer.

use base64::Engine;
use domain::sealed::MasterKey;
use domain::IssuerId;
use issuer_api::settings::{HttpSettings, SigningSettings};
use issuer_api::{Application, Settings};
use provisioning::{create_issuer, CreatedIssuer};
use serde_json::{json, Value};
use store::{DatabaseSettings, Store};
use testkit::TestDb;

pub struct TestApp {
    pub address: String,
    pub metrics_address: String,
    pub store: Store,
    pub db: TestDb,
    pub issuer: CreatedIssuer,
    pub master: MasterKey,
    pub client: reqwest::Client,
    #[allow(dead_code)]
    pub server: actix_web::dev::ServerHandle,
}

pub fn settings_for(db_url: &str, master: &MasterKey) -> Settings {
    Settings {
        http: HttpSettings {
            host: "127.0.0.1".into(),
            port: 0,
            metrics_port: 0,
            workers: Some(2),
            ..HttpSettings::default()
        },
        database: DatabaseSettings::new(db_url),
        signing: SigningSettings {
            master_key: master.to_base64().into(),
            previous_master_keys: None,
        },
        log: Default::default(),
        explorer: Default::default(),
        // No RPC node listens there: these suites never reach the chain (verification
        // answers chain_unavailable); the suites that verify run on the `stack`.
        chain: chain::ChainSettings::new("http://127.0.0.1:9"),
        // The public routes' limits have their own tests (`public`).
        public: issuer_api::public::PublicSettings {
            verify_per_ip_per_second: 0,
            verify_max_in_flight: 256,
            verify_max_in_flight_per_ip: 256,
            ..Default::default()
        },
        status_lists: issuer_api::status_lists::StatusListSettings {
            debounce_ms: 200,
            interval_ms: 100,
            ..Default::default()
        },
        // Receivers listen on loopback over http; the retry schedule shrunk 100x.
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

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let db = testkit::test_db().await.expect("test database");
    spawn_app_on(db, tweak).await
}

pub async fn spawn_app_on(db: TestDb, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let master = MasterKey::generate(&ring::rand::SystemRandom::new()).unwrap();
    let mut settings = settings_for(&db.url, &master);
    tweak(&mut settings);
    let app = Application::build(settings).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = format!("http://127.0.0.1:{}", app.metrics_port());
    let store = app.store().clone();
    let server = app.into_server();
    let handle = server.handle();
    tokio::spawn(server);
    let issuer = create_issuer(
        &store,
        &master,
        &IssuerId::parse("uni-a").unwrap(),
        "University A",
        &UNUSED_ANCHOR_KEY.to_base58(),
        None,
    )
    .await
    .expect("issuer");
    TestApp {
        address,
        metrics_address,
        store,
        db,
        issuer,
        master,
        // Idle connections are dropped well before the server's keep-alive closes them.
        client: reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap(),
        server: handle,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// `/metrics`, on its own port (`http.metrics_port`).
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.metrics_address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn second_issuer(&self, id: &str) -> CreatedIssuer {
        create_issuer(
            &self.store,
            &self.master,
            &IssuerId::parse(id).unwrap(),
            "Other University",
            &UNUSED_ANCHOR_KEY.to_base58(),
            None,
        )
        .await
        .unwrap()
    }

    pub async fn post_json(&self, body: &Value, key: Option<&str>) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/v1/credentials"))
            .bearer_auth(&self.issuer.api_key)
            .json(body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().await.unwrap()
    }

    pub async fn post_form(&self, form: reqwest::multipart::Form) -> reqwest::Response {
        self.client
            .post(self.url("/v1/credentials"))
            .bearer_auth(&self.issuer.api_key)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_raw(&self, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(self.url("/v1/credentials"))
            .bearer_auth(&self.issuer.api_key)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, api_key: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(api_key)
            .send()
            .await
            .unwrap()
    }

    /// A plain connection to the test database.
    pub async fn sql(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    /// Revokes the first issuer's API key in the database, as an operator would; returns the
    /// number of keys revoked.
    pub async fn revoke_api_key(&self) -> u64 {
        self.sql()
            .await
            .execute(
                "UPDATE api_keys SET revoked_at = now() WHERE issuer_id = 'uni-a'",
                &[],
            )
            .await
            .unwrap()
    }

    /// (credentials, outbox rows) in the whole database.
    pub async fn row_counts(&self) -> (i64, i64) {
        let row = self
            .sql()
            .await
            .query_one(
                "SELECT (SELECT count(*) FROM credentials), (SELECT count(*) FROM outbox)",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }
}

/// The anchoring key of the test issuers: these tests run no relay, so nothing is ever paid by
/// it; create-issuer requires a well-formed one.
pub const UNUSED_ANCHOR_KEY: domain::signing::PublicKey =
    domain::signing::PublicKey::from_bytes([0x11; 32]);

pub const FILE: &[u8] = b"%PDF-1.7 Diploma of Ada Lovelace, BSc Computer Science";

pub fn credential_json(serial: &str) -> Value {
    json!({
        "recipient_id": "student-0001",
        "issued_at": "2026-06-30T12:00:00Z",
        "serial": serial,
        "credential_type": "diploma",
        "title": "BSc Computer Science",
        "metadata": {"honours": "first class", "credits": 180},
        "file_base64": base64::engine::general_purpose::STANDARD.encode(FILE),
    })
}

pub async fn error_code(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}
