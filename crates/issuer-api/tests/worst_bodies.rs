//! The real binary under the worst request bodies we found (#18, bounded memory per request):
//! each gets a 4xx, and the process's peak resident memory (VmHWM, read from /proc) stays far
//! below a 512 MiB pod. Before the bounded reads, the wide bulk item alone built a
//! `serde_json::Value` of about 1 GiB from a 64 MiB body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // each suite reads the fields it needs
#[path = "common/binary.rs"]
mod binary;

use serde_json::Value;

use binary::vm_hwm_mib;

#[tokio::test]
async fn the_worst_bodies_get_4xx_and_the_peak_memory_stays_bounded() {
    let binary::Served {
        db: _db,
        api,
        api_key,
        child: mut server,
        ..
    } = binary::serve("uni-worst", "warn", None).await;
    let http = reqwest::Client::new();
    let idle = vm_hwm_mib(server.id());

    let mib = 1024 * 1024;
    // Just under the 64 MiB bulk limit: one item that is a wide array of zeros.
    let wide_item = format!("{{\"credentials\":[[{}0]]}}", "0,".repeat(32 * mib - 16));
    // 10,001 tiny items.
    let too_many = format!("{{\"credentials\":[{}{{}}]}}", "{},".repeat(10_000));
    // One item with a 60 MiB title.
    let huge_string = format!(
        "{{\"credentials\":[{{\"title\":\"{}\"}}]}}",
        "x".repeat(60 * mib)
    );
    // Deep nesting.
    let deep = format!(
        "{{\"credentials\":[{}{}]}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    // NDJSON: the wide array as one line.
    let wide_line = format!("[{}0]\n", "0,".repeat(32 * mib - 16));
    // Single issuance: metadata that is a wide array, within the 10 MiB body limit.
    let wide_metadata = format!(
        "{{\"recipient_id\":\"s\",\"issued_at\":\"2026-06-30T12:00:00Z\",\"serial\":\"W-1\",\
         \"credential_type\":\"diploma\",\"title\":\"BSc\",\"file_base64\":\"JVBERg==\",\
         \"metadata\":{{\"a\":[{}0]}}}}",
        "0,".repeat(5 * mib - 100)
    );
    let cases: [(&str, &str, String); 6] = [
        ("/v1/credential-batches", "application/json", wide_item),
        ("/v1/credential-batches", "application/json", too_many),
        ("/v1/credential-batches", "application/json", huge_string),
        ("/v1/credential-batches", "application/json", deep),
        ("/v1/credential-batches", "application/x-ndjson", wide_line),
        ("/v1/credentials", "application/json", wide_metadata),
    ];
    let mut report = Vec::new();
    for (path, content_type, body) in cases {
        let size = body.len();
        let r = http
            .post(format!("{api}{path}"))
            .bearer_auth(&api_key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let answer: Value = r.json().await.unwrap_or(Value::Null);
        let peak = vm_hwm_mib(server.id());
        report.push(format!(
            "{path} {content_type} {:.1} MiB body -> {status} {} (peak RSS so far {peak:.0} MiB)",
            size as f64 / mib as f64,
            answer["code"]
        ));
        // A bad item of a bulk request is reported per item (200 with `invalid`); a bad
        // request is a 4xx. Either way nothing is accepted and nothing is a 5xx.
        assert!(
            (400..500).contains(&status) || (status == 200 && answer["accepted"] == 0),
            "{}",
            report.join("\n")
        );
    }
    let peak = vm_hwm_mib(server.id());
    println!(
        "issuer-api peak RSS: idle {idle:.0} MiB, after the worst bodies {peak:.0} MiB\n{}",
        report.join("\n")
    );
    server.kill().unwrap();
    let _ = server.wait();
    assert!(
        peak < 400.0,
        "peak RSS {peak:.0} MiB under the worst bodies (pod limit 512 MiB)\n{}",
        report.join("\n")
    );
}
