//! The public, unauthenticated routes under abuse (#18): per-client-IP rate, the verification
//! upload limit, a deadline on slow bodies, and metric labels a client cannot multiply.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{error_code, spawn_app_with};

fn verify_form() -> reqwest::multipart::Form {
    // A proof that does not parse: cheap to judge (400), but only after admission.
    reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"%PDF".to_vec()))
        .part("proof", reqwest::multipart::Part::bytes(b"{}".to_vec()))
}

/// The page can never be framed by another site (clickjacking), loads nothing from
/// elsewhere and is not sniffed, on the form and on a verdict alike.
#[tokio::test]
async fn the_verification_page_refuses_to_be_framed() {
    let app = spawn_app_with(|_| {}).await;
    let http = reqwest::Client::new();
    let form = http.get(app.url("/verify")).send().await.unwrap();
    let verdict = http
        .post(app.url("/verify"))
        .multipart(verify_form())
        .send()
        .await
        .unwrap();
    for r in [form, verdict] {
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
}

#[tokio::test]
async fn verification_over_the_per_ip_rate_gets_429_with_retry_after_on_both_routes() {
    let app = spawn_app_with(|s| {
        s.public.verify_per_ip_per_second = 1;
        s.public.verify_per_ip_burst = 2;
    })
    .await;
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let r = http
            .post(app.url("/v1/verify"))
            .multipart(verify_form())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "admitted, then judged");
    }
    let limited = http
        .post(app.url("/v1/verify"))
        .multipart(verify_form())
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    assert!(limited.headers().get("retry-after").is_some());
    assert_eq!(error_code(limited).await.1["code"], "rate_limited");
    // The page shares the budget (same client) and says so in HTML, with Retry-After.
    let page = http
        .post(app.url("/verify"))
        .multipart(verify_form())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 429);
    assert!(page.headers().get("retry-after").is_some());
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("data-error=\"rate_limited\""));
    // Issuance is not behind this gate: the authenticated limiter is its own.
    let issued = app
        .post_json(&crate::helpers::credential_json("S-PUBLIC-1"), None)
        .await;
    assert_eq!(issued.status().as_u16(), 202);
}

#[tokio::test]
async fn a_verification_upload_over_its_own_limit_is_413_before_it_is_read() {
    let app = spawn_app_with(|s| {
        s.public.verify_body_limit_bytes = 64 * 1024;
    })
    .await;
    let big = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(vec![b'x'; 200 * 1024]),
        )
        .part("proof", reqwest::multipart::Part::bytes(b"{}".to_vec()));
    let r = reqwest::Client::new()
        .post(app.url("/v1/verify"))
        .multipart(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(error_code(r).await.1["code"], "payload_too_large");
}

/// Sends the head of a request and a few body bytes, then stalls; returns the status line.
async fn stall(address: &str, head: &str) -> String {
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"{\"recip").await.unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut answer))
        .await
        .expect("the server answers a stalled body on its own")
        .unwrap();
    String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_body_that_stalls_gets_408_on_issuance_and_verification_and_writes_nothing() {
    let app = spawn_app_with(|s| s.http.body_read_timeout_secs = 1).await;
    let issue = format!(
        "POST /v1/credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n",
        app.issuer.api_key
    );
    let started = std::time::Instant::now();
    assert!(stall(&app.address, &issue).await.contains("408"));
    assert!(started.elapsed() < Duration::from_secs(10));
    let verify = "POST /v1/verify HTTP/1.1\r\nHost: x\r\n\
                  Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000\r\n\r\n";
    assert!(stall(&app.address, verify).await.contains("408"));
    let (client, conn) = tokio_postgres::connect(&app.db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows: i64 = client
        .query_one("SELECT count(*) FROM credentials", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn made_up_http_methods_add_one_metric_series_not_one_each() {
    let app = spawn_app_with(|_| {}).await;
    let http = reqwest::Client::new();
    for i in 0..100 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        let _ = http
            .request(method, app.url("/v1/credentials"))
            .send()
            .await
            .unwrap();
    }
    let metrics = app.metrics().await;
    assert!(
        !metrics.contains("MADEUP"),
        "a made-up method became a label"
    );
    let other: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("http_requests_total") && l.contains("method=\"other\""))
        .collect();
    assert_eq!(other.len(), 1, "{other:?}");
    assert!(other[0].ends_with(" 100"), "{other:?}");
}
