//! Several RPC endpoints (issue #23): the relay keeps anchoring through a healthy endpoint
//! while the preferred one black-holes, resets or crawls, a lying endpoint can neither make
//! it anchor twice nor stop it when a third endpoint outvotes it, and verification with two
//! endpoints that disagree gives no verdict. Every endpoint is the real local validator,
//! directly or through the testkit proxy; the lying one is the rewriting proxy, which fetches
//! each answer from the validator and changes only what the test names.

use std::time::Duration;

use outbox_relay::Application;
use serde_json::Value;
use testkit::proxy::{rewriting_rpc, ProxyMode};

use crate::faults::proxy_to_validator;
use crate::helpers::{api_settings, world, World};
use crate::verify::{bundle_for, file_of};

/// A relay whose preferred endpoint is `preferred` and whose fallbacks are `fallbacks`.
async fn relay_on(w: &World, worker: &str, preferred: &str, fallbacks: &[String]) -> Application {
    let mut settings = w.relay_settings(preferred, worker);
    settings.chain.fallback_rpc_urls = fallbacks.to_vec();
    settings.chain.health_probe_ms = 500;
    Application::build(settings).await.unwrap()
}

/// A relay running its real loop (LISTEN, passes, `/metrics` served) until stopped.
struct Running {
    probes: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    fn start(app: Application) -> Self {
        let probes = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Running { probes, stop, task }
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.probes))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// The value of the counter line that starts with `series` (0 when absent).
fn counter(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Checks on chain that each of `ids` is anchored exactly once, and that exactly one
/// transaction was signed per credential (nothing re-signed).
async fn each_anchored_once(w: &World, ids: &[String]) {
    let on_chain = w.anchors_on_chain().await;
    for id in ids {
        assert_eq!(on_chain.get(id), Some(&1), "{id} anchored once on chain");
    }
    assert_eq!(
        w.query_i64("SELECT count(*) FROM anchor_transactions")
            .await,
        i64::try_from(ids.len()).unwrap(),
        "one signed transaction per credential: nothing re-signed"
    );
}

async fn issue_n(w: &World, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(w.issue(&format!("{prefix}-{i}")).await);
    }
    ids
}

/// The preferred endpoint of three anchors one credential, then fails in `mode`; the relay
/// runs as in production (its loop, LISTEN, `/metrics` served), with a health probe too slow
/// to notice first, so the calls themselves meet the fault and move on.
async fn preferred_endpoint_fails(mode: ProxyMode, prefix: &str) {
    let w = world().await;
    let proxy = proxy_to_validator(&w).await;
    let second = proxy_to_validator(&w).await;
    let mut settings = w.relay_settings(&proxy.url(), prefix);
    // Three endpoints: with one down, two still answer, which finality needs.
    settings.chain.fallback_rpc_urls = vec![w.chain_env.rpc_url().to_string(), second.url()];
    settings.chain.health_probe_ms = 600_000;
    let relay = Running::start(Application::build(settings).await.unwrap());
    let series = |endpoint: &str, what: &str| format!("{what}{{endpoint=\"{endpoint}\"");
    let mut ids = issue_n(&w, &format!("{prefix}-before"), 1).await;
    w.wait_all_finalized(1, Duration::from_secs(180)).await;
    let text = relay.metrics().await;
    assert!(
        counter(&text, &series(&proxy.url(), "rpc_endpoint_requests_total")) >= 1.0,
        "the preferred endpoint served while it was healthy: {text}"
    );

    proxy.set_mode(mode);
    ids.extend(issue_n(&w, prefix, 3).await);
    w.wait_all_finalized(4, Duration::from_secs(180)).await;
    each_anchored_once(&w, &ids).await;

    let text = relay.metrics().await;
    assert!(
        counter(&text, "rpc_failovers_total{") >= 1.0,
        "calls moved on from the failing endpoint: {text}"
    );
    // The calls' own failures show on the gauges, without waiting for a probe.
    let up =
        |endpoint: &str, value: u8| format!("rpc_endpoint_up{{endpoint=\"{endpoint}\"}} {value}");
    assert!(text.contains(&up(&proxy.url(), 0)), "{text}");
    assert!(text.contains(&up(w.chain_env.rpc_url(), 1)), "{text}");
    relay.stop().await;
}

#[tokio::test]
async fn anchoring_continues_through_the_healthy_endpoint_while_the_preferred_one_black_holes() {
    preferred_endpoint_fails(ProxyMode::BlackHole, "S-EP-BH").await;
}

#[tokio::test]
async fn anchoring_continues_through_the_healthy_endpoint_while_the_preferred_one_resets() {
    preferred_endpoint_fails(ProxyMode::Reset, "S-EP-RST").await;
}

#[tokio::test]
async fn anchoring_continues_through_the_healthy_endpoint_while_the_preferred_one_crawls() {
    // Each chunk held 4 s, past the relay's 3 s RPC timeout.
    preferred_endpoint_fails(ProxyMode::Delay(Duration::from_secs(4)), "S-EP-SLOW").await;
}

/// An endpoint that hides every transaction (`getSignatureStatuses` all unknown) and claims a
/// finalized height far past every blockhash: alone, it would make the relay re-sign every
/// anchor at once.
async fn hiding_liar(w: &World) -> String {
    rewriting_rpc(
        w.chain_env.rpc_url().to_string(),
        |request, answer| match request["method"].as_str() {
            Some("getSignatureStatuses") => {
                if let Some(values) = answer["result"]["value"].as_array_mut() {
                    values.iter_mut().for_each(|v| *v = Value::Null);
                }
            }
            Some("getBlockHeight") => answer["result"] = Value::from(u64::MAX / 2),
            _ => {}
        },
    )
    .await
    .unwrap()
}

/// The hiding liar, preferred, and outvoted by two honest endpoints: every credential is
/// anchored, once.
#[tokio::test]
async fn a_lying_endpoint_outvoted_by_two_honest_ones_cannot_make_the_relay_anchor_twice() {
    let w = world().await;
    let liar = hiding_liar(&w).await;
    let honest_via_proxy = proxy_to_validator(&w).await;
    let relay = relay_on(
        &w,
        "relay-outvoted-liar",
        &liar,
        &[w.chain_env.rpc_url().to_string(), honest_via_proxy.url()],
    )
    .await;
    let ids = issue_n(&w, "S-EP-LIE", 3).await;
    w.anchor_all(&relay, &ids).await;
    each_anchored_once(&w, &ids).await;
}

/// Two endpoints, one of which hides transactions and inflates its height: nobody outvotes
/// it, so the relay takes neither its word nor the honest one's alone. The anchor stays
/// tracked (seen, not final) and is never signed a second time.
#[tokio::test]
async fn a_lying_endpoint_against_one_honest_one_pauses_finality_and_never_re_signs() {
    let w = world().await;
    let liar = hiding_liar(&w).await;
    let relay = relay_on(
        &w,
        "relay-liar-pair",
        &liar,
        &[w.chain_env.rpc_url().to_string()],
    )
    .await;
    let id = w.issue("S-EP-PAIR").await;
    let signature = loop {
        let _ = relay.relay().run_pass().await;
        if let Some(sig) = w.credential(&id).await["anchor"]["signature"].as_str() {
            break sig.to_string();
        }
        let sent = w
            .query_i64("SELECT count(*) FROM anchor_transactions")
            .await;
        if sent > 0 {
            let sig: String = w
                .sql()
                .await
                .query_one("SELECT signature FROM anchor_transactions", &[])
                .await
                .unwrap()
                .get(0);
            break sig;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The honest validator finalizes it; the relay keeps passing meanwhile.
    w.wait_finalized_on_chain(&signature).await;
    for _ in 0..10 {
        let _ = relay.relay().run_pass().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_ne!(
        w.credential(&id).await["status"],
        "finalized",
        "one of two endpoints cannot make it final alone"
    );
    assert_eq!(
        w.query_i64("SELECT count(*) FROM anchor_transactions")
            .await,
        1,
        "never re-signed on the liar's word"
    );
    assert_eq!(w.anchors_on_chain().await.get(&id), Some(&1));
}

/// `POST /v1/verify` through two or three endpoints. Honest ones (the validator directly and
/// through a proxy) agree: valid. One that moves the anchor's block time back a year (not
/// signed data, so no signature check can catch it) disagrees with the validator: no
/// verdict, the stable `chain_disagreement`, never valid; with a third endpoint the two
/// honest ones outvote it and the verdict is the honest one.
#[tokio::test]
async fn verification_needs_two_endpoints_that_agree() {
    let w = world().await;
    let relay = w.relay("relay-verify-endpoints").await;
    let id = w.issue("S-EP-VER").await;
    w.anchor_all(&relay, std::slice::from_ref(&id)).await;
    let bundle = bundle_for(&w, &id).await;

    let honest_via_proxy = proxy_to_validator(&w).await;
    let liar = rewriting_rpc(w.chain_env.rpc_url().to_string(), |request, answer| {
        if request["method"] == "getTransaction" {
            if let Some(t) = answer["result"]["blockTime"].as_i64() {
                answer["result"]["blockTime"] = Value::from(t - 365 * 24 * 3600);
            }
        }
    })
    .await
    .unwrap();
    let master = domain::sealed::MasterKey::from_base64(&w.master_key_b64).unwrap();
    let validator = w.chain_env.rpc_url().to_string();
    for (preferred, fallbacks, expect) in [
        (honest_via_proxy.url(), vec![validator.clone()], None),
        (
            liar.clone(),
            vec![validator.clone()],
            Some("chain_disagreement"),
        ),
        (
            validator.clone(),
            vec![liar.clone()],
            Some("chain_disagreement"),
        ),
        // A third endpoint outvotes the liar, preferred or not.
        (
            liar.clone(),
            vec![validator.clone(), honest_via_proxy.url()],
            None,
        ),
        (
            validator.clone(),
            vec![liar.clone(), honest_via_proxy.url()],
            None,
        ),
    ] {
        let mut settings = api_settings(&w.db.url, &master, &preferred);
        settings.chain.fallback_rpc_urls = fallbacks;
        let api = issuer_api::Application::build(settings).await.unwrap();
        let address = format!("http://127.0.0.1:{}", api.port());
        tokio::spawn(api.into_server());
        let form = reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(file_of("S-EP-VER")).file_name("diploma.pdf"),
            )
            .text("proof", serde_json::to_string(&bundle).unwrap());
        let resp = w
            .client
            .post(format!("{address}/v1/verify"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        match expect {
            None => {
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["verdict"], "valid", "{body}");
            }
            Some(code) => {
                assert_eq!(status, 503, "{body}");
                assert_eq!(body["code"], code, "{body}");
            }
        }
    }
}

/// The preferred endpoint of three answers, healthy, but its finalized slot trails the
/// others' by more than `lag_margin_slots`: once the probe has seen it, it is asked last, so
/// no blockhash (a read one endpoint answers) comes from it.
/// The lag is the rewriting proxy's (it reports slot 0), everything else the validator's.
#[tokio::test]
async fn a_lagging_endpoint_is_asked_last() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let w = world().await;
    let blockhashes = Arc::new(AtomicUsize::new(0));
    let seen = blockhashes.clone();
    let lagging =
        rewriting_rpc(
            w.chain_env.rpc_url().to_string(),
            move |request, answer| match request["method"].as_str() {
                Some("getSlot") => answer["result"] = Value::from(0),
                Some("getLatestBlockhash") => {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            },
        )
        .await
        .unwrap();
    // Three endpoints: lag is measured against the second highest slot, so with two, one
    // behind cannot be told from one lying ahead (`rpc_pool::best_slot`).
    let second = proxy_to_validator(&w).await;
    let mut settings = w.relay_settings(&lagging, "relay-lagging");
    settings.chain.fallback_rpc_urls = vec![w.chain_env.rpc_url().to_string(), second.url()];
    settings.chain.health_probe_ms = 200;
    settings.chain.lag_margin_slots = 1;
    let relay = Running::start(Application::build(settings).await.unwrap());
    let lagging_down = format!("rpc_endpoint_up{{endpoint=\"{lagging}\"}} 0");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = relay.metrics().await;
        if text.contains(&lagging_down) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ids = issue_n(&w, "S-EP-LAG", 3).await;
    w.wait_all_finalized(3, Duration::from_secs(180)).await;
    each_anchored_once(&w, &ids).await;
    let text = relay.metrics().await;
    let endpoint_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("rpc_endpoint"))
        .collect();
    assert_eq!(
        blockhashes.load(Ordering::SeqCst),
        0,
        "a read one endpoint answers (the blockhash each transaction is signed with) never \
         went to the lagging endpoint (sends go to every endpoint, lagging or not): {endpoint_lines:#?}"
    );
    relay.stop().await;
}
