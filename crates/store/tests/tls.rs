//! TLS to a real PostgreSQL (issue #18): a server started with `ssl = on` and a certificate
//! signed by a CA this test generates (`testkit::tls::TestCa`). `verify-full` and `verify-ca`
//! connect with that CA and refuse a server another CA signed; `require` refuses a server
//! without TLS instead of falling back to plaintext; every connection the pool makes is
//! encrypted (`pg_stat_ssl`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use store::{DatabaseSettings, Store};
use testkit::postgres::TestPostgres;
use testkit::tls::TestCa;

async fn tls_server(ca: &TestCa) -> TestPostgres {
    let ca = ca.clone();
    tokio::task::spawn_blocking(move || TestPostgres::start_with_tls(&ca))
        .await
        .unwrap()
        .unwrap()
}

fn store(url: &str) -> Store {
    Store::connect_lazy(&DatabaseSettings::new(url)).unwrap()
}

/// Whether the pool's connection is encrypted, by the server's own account.
async fn encrypted(store: &Store) -> bool {
    let client = store.pool().get().await.unwrap();
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn verify_full_connects_with_the_ca_and_refuses_a_server_another_ca_signed() {
    let ca = TestCa::generate().unwrap();
    let other = TestCa::generate().unwrap();
    let pg = tls_server(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let good = ca.write_ca(dir.path(), "ca.pem").unwrap();
    let wrong = other.write_ca(dir.path(), "other-ca.pem").unwrap();
    let base = pg.admin_url();
    let with = |mode: &str, root: &std::path::Path| {
        format!("{base}?sslmode={mode}&sslrootcert={}", root.display())
    };

    for mode in ["verify-full", "verify-ca"] {
        let s = store(&with(mode, &good));
        s.ping().await.unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(encrypted(&s).await, "{mode}");
        let refused = store(&with(mode, &wrong)).ping().await;
        assert!(
            refused.is_err(),
            "{mode} must refuse a certificate its CA did not sign"
        );
    }
    // The certificate names `localhost` as well as 127.0.0.1.
    let by_name = with("verify-full", &good).replace("127.0.0.1", "localhost");
    store(&by_name).ping().await.unwrap();

    // require without a CA: encrypted, not verified (libpq's meaning).
    let s = store(&format!("{base}?sslmode=require"));
    s.ping().await.unwrap();
    assert!(encrypted(&s).await);
    // prefer (the default) takes TLS when the server offers it.
    let s = store(&base);
    s.ping().await.unwrap();
    assert!(encrypted(&s).await);
}

#[tokio::test]
async fn require_refuses_a_server_without_tls_and_disable_never_asks() {
    let pg = tokio::task::spawn_blocking(TestPostgres::start)
        .await
        .unwrap()
        .unwrap();
    let base = pg.admin_url();
    let refused = store(&format!("{base}?sslmode=require")).ping().await;
    assert!(
        refused.is_err(),
        "plaintext must be refused when TLS is required"
    );
    let s = store(&format!("{base}?sslmode=disable"));
    s.ping().await.unwrap();
    assert!(!encrypted(&s).await);
    // prefer falls back to plaintext where the server has no TLS (libpq's default).
    store(&base).ping().await.unwrap();
}

/// A server whose certificate the CA signed for another name (`db.invalid`, not 127.0.0.1):
/// `verify-full` refuses it, `verify-ca` (the chain only) accepts it.
#[tokio::test]
async fn verify_full_refuses_a_certificate_for_another_name_and_verify_ca_accepts_it() {
    let ca = TestCa::generate_for("db.invalid", false).unwrap();
    let pg = tls_server(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let root = ca.write_ca(dir.path(), "ca.pem").unwrap();
    let url = |mode: &str| {
        format!(
            "{}?sslmode={mode}&sslrootcert={}",
            pg.admin_url(),
            root.display()
        )
    };
    assert!(store(&url("verify-full")).ping().await.is_err());
    let s = store(&url("verify-ca"));
    s.ping().await.unwrap();
    assert!(encrypted(&s).await);
}
