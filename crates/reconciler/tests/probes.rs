//! The reconciler service: probes answer, readiness follows the database and RPC, shutdown is clean.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reconciler::{Application, ChainSettings, ProbeSettings, Settings};
use store::DatabaseSettings;

#[tokio::test]
async fn probes_answer_and_shutdown_is_prompt() {
    let db = testkit::test_db().await.unwrap();
    let chain_env = testkit::validator::chain_env().await.unwrap();
    let app = Application::build(Settings {
        database: DatabaseSettings::new(&db.url),
        chain: ChainSettings::new(chain_env.rpc_url()),
        reconcile: Default::default(),
        probes: ProbeSettings {
            host: "127.0.0.1".into(),
            port: 0,
        },
        log: Default::default(),
    })
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    assert_eq!(
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{base}/readyz"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("reconciler_up 1"), "{metrics}");
    // The backlog gauges are exported here too, so the outbox-age alert survives a relay outage.
    assert!(
        metrics.contains("outbox_oldest_pending_age_seconds"),
        "{metrics}"
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stops within 10 s")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_unreachable() {
    let port = testkit::ports::free_port().unwrap();
    let mut database = DatabaseSettings::new(format!("postgres://postgres@127.0.0.1:{port}/none"));
    database.acquire_timeout_ms = 500;
    let app = Application::build(Settings {
        database,
        chain: ChainSettings::new(format!("http://127.0.0.1:{port}")),
        reconcile: Default::default(),
        probes: ProbeSettings {
            host: "127.0.0.1".into(),
            port: 0,
        },
        log: Default::default(),
    })
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let resp = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "not_ready");
    assert_eq!(
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_loop_runs_and_reports_success_in_metrics() {
    let db = testkit::test_db().await.unwrap();
    // The loop expects a migrated schema, as after issuer-api's start.
    store::Store::connect_lazy(&DatabaseSettings::new(&db.url))
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let chain_env = testkit::validator::chain_env().await.unwrap();
    let app = Application::build(Settings {
        database: DatabaseSettings::new(&db.url),
        chain: ChainSettings::new(chain_env.rpc_url()),
        reconcile: reconciler::ReconcileSettings {
            interval_secs: 1,
            window_secs: 60,
        },
        probes: ProbeSettings {
            host: "127.0.0.1".into(),
            port: 0,
        },
        log: Default::default(),
    })
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let ran = metrics
            .lines()
            .find(|l| l.starts_with("reconciler_last_success_timestamp_seconds "))
            .is_some_and(|l| !l.ends_with(" 0"));
        if ran {
            assert!(metrics.contains("diploma_inconsistencies_total{kind=\"forged\"} 0"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stops within 10 s")
        .unwrap()
        .unwrap();
}
