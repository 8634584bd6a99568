//! The public `/verify` page in a real headless Chromium (WebDriver via chromedriver): a
//! genuine file shows "valid", a one-byte-changed file "tampered", a revoked credential
//! "revoked". Screenshots are saved next to the test binaries (`CARGO_TARGET_TMPDIR`).
//!
//! Needs `chromium` and `chromedriver` on PATH (scripts/install-deps.sh installs them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use outbox_relay::Application;
use serde_json::json;

use crate::helpers::world;
use crate::verify::{bundle_for, file_of, pass_until};

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver on PATH (scripts/install-deps.sh installs chromium-driver)");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver { child, url }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--window-size=1000,1300"]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a headless Chromium session")
}

fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("verify-page");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Fills the form like a person (keyboard-reachable inputs, file choosers), submits it and
/// returns the verdict shown, saving a screenshot as `name`.png.
async fn check_in_page(
    c: &Client,
    api: &str,
    file: &Path,
    proof: Option<&Path>,
    name: &str,
) -> String {
    c.goto(&format!("{api}/verify")).await.unwrap();
    c.find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    if let Some(proof) = proof {
        c.find(Locator::Css("#proof"))
            .await
            .unwrap()
            .send_keys(&proof.display().to_string())
            .await
            .unwrap();
    }
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let verdict = c
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#result [data-verdict]"))
        .await
        .unwrap();
    let kind = verdict.attr("data-verdict").await.unwrap().unwrap();
    let text = verdict.text().await.unwrap();
    // The verdict is said in words, not only by colour.
    assert!(!text.trim().is_empty());
    let live = c
        .find(Locator::Css("#result"))
        .await
        .unwrap()
        .attr("aria-live")
        .await
        .unwrap();
    assert_eq!(live.as_deref(), Some("polite"));
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
    kind
}

#[tokio::test]
async fn verify_page_in_headless_chromium_shows_valid_tampered_and_revoked() {
    let w = world().await;
    let app = Application::build(w.relay_settings(w.chain_env.rpc_url(), "relay-page"))
        .await
        .unwrap();
    let id = w.issue("S-PAGE-1").await;
    pass_until(&app, &w, &id, "finalized").await;

    let dir = tempfile::tempdir().unwrap();
    let genuine = dir.path().join("diploma.pdf");
    std::fs::write(&genuine, file_of("S-PAGE-1")).unwrap();
    let mut bytes = file_of("S-PAGE-1");
    bytes[5] ^= 1;
    let tampered = dir.path().join("diploma-changed.pdf");
    std::fs::write(&tampered, bytes).unwrap();
    let proof = dir.path().join("proof.json");
    std::fs::write(
        &proof,
        serde_json::to_vec(&bundle_for(&w, &id).await).unwrap(),
    )
    .unwrap();

    let driver = start_driver().await;
    let c = browser(&driver).await;

    // The empty form: every input has a label.
    c.goto(&format!("{}/verify", w.api)).await.unwrap();
    for input in [
        "file",
        "proof",
        "issuer_id",
        "recipient_id",
        "issued_at",
        "serial",
    ] {
        c.find(Locator::Css(&format!("label[for={input}]")))
            .await
            .unwrap_or_else(|_| panic!("no label for #{input}"));
    }

    assert_eq!(
        check_in_page(&c, &w.api, &genuine, Some(&proof), "valid").await,
        "valid"
    );
    assert_eq!(
        check_in_page(&c, &w.api, &tampered, Some(&proof), "tampered").await,
        "tampered"
    );
    // Without a proof and without details: an error in words, not a crash.
    c.goto(&format!("{}/verify", w.api)).await.unwrap();
    c.find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(&genuine.display().to_string())
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#result [data-error]"))
        .await
        .unwrap();
    assert!(error.text().await.unwrap().contains("proof file"));

    let resp = w
        .client
        .post(format!("{}/v1/credentials/{id}/revoke", w.api))
        .bearer_auth(&w.api_key)
        .json(&json!({"reason": "issued in error"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    pass_until(&app, &w, &id, "revoked").await;
    assert_eq!(
        check_in_page(&c, &w.api, &genuine, Some(&proof), "revoked").await,
        "revoked"
    );
    c.close().await.unwrap();
}
