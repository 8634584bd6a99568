//! W3C Bitstring Status Lists, anchored (issue #20): every credential's VC names its bit; the
//! API publishes a signed list version when bits change (debounced) and serves it once the
//! relay has anchored its `ca1:s` memo; the published `@digitalbazaar/vc-bitstring-status-list`
//! (npm, pinned) and our verifier read the same bit for every credential; a list older than
//! the newest anchored version is `stale`, a missing one inconclusive, for the API and for
//! `credential-verify` alike.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;

use domain::status_list::LIST_SIZE;
use outbox_relay::Application;
use serde_json::Value;

use crate::helpers::World;
use crate::verify::{bundle_for, file_of, post_verify};

/// The relay suites' world, publishing status lists.
async fn world() -> World {
    World::builder()
        .issuer("uni-relay", "Relay University")
        .status_lists()
        .start()
        .await
}

async fn vc_of(w: &World, id: &str) -> Value {
    serde_json::from_str(&w.vc_text(id).await).unwrap()
}

fn index_of(vc: &Value) -> u32 {
    vc["credentialStatus"]["statusListIndex"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_published_status_list_library_and_ours_agree_on_every_bit() {
    let interop = crate::vc_interop::install_interop();
    let w = world().await;
    // 1,000 credentials: 900 in one bulk request, 100 one by one.
    let mut ids = w.issue_bulk("SL-B", 900).await;
    for i in 0..100 {
        ids.push(w.issue(&format!("SL-S-{i}")).await);
    }
    let merkle = Application::build(w.merkle_settings(w.chain_env.rpc_url(), "relay-sl", 512, 0))
        .await
        .unwrap();
    w.anchor_all(&merkle, &ids).await;

    // Every VC names a distinct bit of list 0, its own.
    let mut vcs = Vec::with_capacity(ids.len());
    let mut seen = HashSet::new();
    for id in &ids {
        let vc = vc_of(&w, id).await;
        let index = index_of(&vc);
        assert!(index < LIST_SIZE);
        assert!(seen.insert(index), "index {index} given twice");
        assert!(vc["credentialStatus"]["statusListCredential"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/issuers/{}/status-lists/0", w.issuer_id)));
        vcs.push(vc);
    }

    // Revoke every tenth: one burst, so few versions (debounced), not one per revocation.
    let revoked: HashSet<usize> = (0..ids.len()).step_by(10).collect();
    assert_eq!(revoked.len(), 100);
    let burst = std::time::Instant::now();
    for n in &revoked {
        assert_eq!(w.revoke(&ids[*n], "test").await, 202);
    }
    let burst = burst.elapsed();
    let (version, list_text, bits) = w
        .relay_until_list(&merkle, 0, |_, bits| bits.count_set() == 100)
        .await;
    let versions = w
        .query_i64("SELECT count(*) FROM status_list_versions")
        .await;
    // About one version per debounce window the burst spanned (the stack's debounce is
    // 300 ms; the publisher looks every 200 ms and signing takes time on a loaded machine, so
    // up to two per window are allowed), plus the empty first version and the window after the
    // burst. The bound follows the burst's length (the 100 requests take longer on a loaded
    // machine: CI once saw 8 versions over 1.4 s) and stays far below one per revocation.
    let windows = i64::try_from(burst.as_millis().div_ceil(300)).unwrap_or(i64::MAX);
    assert!(
        versions <= 3 + 2 * windows && versions < 50,
        "{versions} versions for one burst of 100 revocations over {burst:?} (debounced)"
    );
    assert!(version >= 2, "an empty version first, then the revocations");
    // The anchored hash on chain is the served list's bits (read back from the memo).
    let memo = w
        .sql()
        .await
        .query_one(
            "SELECT t.memo FROM anchor_transactions t \
             JOIN status_list_versions v ON v.id = t.status_list_version_id \
             WHERE v.version = $1 AND t.status = 'finalized'",
            &[&i32::try_from(version).unwrap()],
        )
        .await
        .unwrap()
        .get::<_, String>(0);
    assert_eq!(
        memo,
        domain::Memo::StatusList {
            issuer: w.issuer_id.clone(),
            list: 0,
            version,
            hash: bits.anchored_hash(&w.issuer_id, 0),
        }
        .encode()
    );
    let on_chain = w.status_lists_on_chain().await;
    assert_eq!(
        on_chain.iter().filter(|(_, m)| m.encode() == memo).count(),
        1,
        "the served version's ca1:s memo is on chain once: {on_chain:?}"
    );
    let distinct: HashSet<String> = on_chain.iter().map(|(_, m)| m.encode()).collect();
    assert_eq!(distinct.len(), on_chain.len(), "no version anchored twice");

    // Ours: every credential's bit as expected.
    for (n, vc) in vcs.iter().enumerate() {
        assert_eq!(
            bits.get(index_of(vc)),
            Some(revoked.contains(&n)),
            "credential {n}"
        );
    }
    // The published library, over HTTP from the API like any wallet, signature and issuer
    // checked: the same 1,000 answers.
    let dir = w.dir.path().join("sl-vcs");
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<PathBuf> = vcs
        .iter()
        .enumerate()
        .map(|(n, vc)| {
            let path = dir.join(format!("{n}.vc.json"));
            std::fs::write(&path, vc.to_string()).unwrap();
            path
        })
        .collect();
    let out = Command::new("node")
        .arg(interop.join("check-status.mjs"))
        .arg("--api-base")
        .arg(&w.api)
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check-status failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("file").is_some())
        .collect();
    assert_eq!(lines.len(), 1000);
    for line in &lines {
        let n: usize = PathBuf::from(line["file"].as_str().unwrap())
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".vc")
            .parse()
            .unwrap();
        assert_eq!(line["verified"], true, "{line}");
        assert_eq!(
            line["status"],
            revoked.contains(&n),
            "credential {n}: {line}"
        );
    }

    // One more revocation shows in the served list after the debounce and its anchor; a
    // client holding the old list revalidates with its ETag.
    let etag_resp = w
        .client
        .get(format!("{}/issuers/{}/status-lists/0", w.api, w.issuer_id))
        .send()
        .await
        .unwrap();
    let etag = etag_resp.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag_resp.text().await.unwrap(), list_text);
    let not_modified = w
        .client
        .get(format!("{}/issuers/{}/status-lists/0", w.api, w.issuer_id))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status().as_u16(), 304);
    let late = index_of(&vcs[1]);
    let started = std::time::Instant::now();
    assert_eq!(w.revoke(&ids[1], "late").await, 202);
    let (newer, _, bits) = w
        .relay_until_list(&merkle, 0, |_, bits| bits.get(late) == Some(true))
        .await;
    assert!(newer > version);
    assert_eq!(bits.count_set(), 101);
    eprintln!(
        "revocation visible in the served list after {:?} (debounce 300 ms + anchor)",
        started.elapsed()
    );
    let changed = w
        .client
        .get(format!("{}/issuers/{}/status-lists/0", w.api, w.issuer_id))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        changed.status().as_u16(),
        200,
        "a new version has a new ETag"
    );
}

async fn verify_with_list(w: &World, serial: &str, vc: &Value, list: &str) -> Value {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(file_of(serial)).file_name("diploma.pdf"),
        )
        .text("vc", vc.to_string())
        .text("status_list", list.to_string());
    let (status, body) = post_verify(w, form).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn offline(
    w: &World,
    serial: &str,
    bundle: &domain::proof::ProofBundle,
    source: verifier::status::ListSource,
) -> verifier::Report {
    let mut request = w.offline_request(file_of(serial), bundle.clone());
    request.status_list = Some(source);
    verifier::verify(&request).await.unwrap()
}

#[tokio::test]
async fn an_older_list_is_stale_and_a_missing_one_inconclusive() {
    use verifier::status::ListSource;
    let w = world().await;
    let kept = w.issue("SLS-KEPT").await;
    let gone = w.issue("SLS-GONE").await;
    let relay = w.relay("relay-sls").await;
    w.anchor_all(&relay, &[kept.clone(), gone.clone()]).await;
    let (v1, list_v1, _) = w.relay_until_list(&relay, 0, |_, _| true).await;
    let vc_kept = vc_of(&w, &kept).await;
    let vc_gone = vc_of(&w, &gone).await;
    let bundle_kept = bundle_for(&w, &kept).await;
    let bundle_gone = bundle_for(&w, &gone).await;

    // The current list: valid, for the API and offline (given, and fetched).
    let v = verify_with_list(&w, "SLS-KEPT", &vc_kept, &list_v1).await;
    assert_eq!(v["verdict"], "valid", "{v}");
    let r = offline(
        &w,
        "SLS-KEPT",
        &bundle_kept,
        ListSource::Given(list_v1.clone().into_bytes()),
    )
    .await;
    assert_eq!(r.verdict.as_str(), "valid", "{}", r.detail);
    assert!(r.status_list.as_deref().unwrap().starts_with("current"));
    let r = offline(&w, "SLS-KEPT", &bundle_kept, ListSource::Fetch).await;
    assert_eq!(r.verdict.as_str(), "valid", "{}", r.detail);

    // A revocation: version 2 is anchored and served.
    assert_eq!(w.revoke(&gone, "issued in error").await, 202);
    let gone_index = index_of(&vc_gone);
    let (v2, list_v2, _) = w
        .relay_until_list(&relay, 0, |_, bits| bits.get(gone_index) == Some(true))
        .await;
    assert!(v2 > v1);
    // Its `ca1:r` too (a separate job, which may land after the list).
    w.relay_until(&relay, std::slice::from_ref(&gone), "revoked")
        .await;
    drop(relay);

    // Version 1 while version 2 is anchored: stale, whoever judges it.
    let v = verify_with_list(&w, "SLS-KEPT", &vc_kept, &list_v1).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("stale"), Some("status_list_stale")),
        "{v}"
    );
    let r = offline(
        &w,
        "SLS-KEPT",
        &bundle_kept,
        ListSource::Given(list_v1.clone().into_bytes()),
    )
    .await;
    assert_eq!(
        (r.verdict.as_str(), r.exit_code),
        ("stale", verifier::exit::STALE),
        "{}",
        r.detail
    );
    // The current one: valid for the kept credential, revoked for the other.
    let v = verify_with_list(&w, "SLS-KEPT", &vc_kept, &list_v2).await;
    assert_eq!(v["verdict"], "valid", "{v}");
    let r = offline(
        &w,
        "SLS-GONE",
        &bundle_gone,
        ListSource::Given(list_v2.clone().into_bytes()),
    )
    .await;
    assert_eq!(r.verdict.as_str(), "revoked", "{}", r.detail);
    // A list of bits nobody anchored (edited by whoever served it): inconclusive.
    let mut forged: Value = serde_json::from_str(&list_v2).unwrap();
    forged["credentialSubject"]["encodedList"] = domain::status_list::Bitstring::with_set([77_777])
        .encode()
        .into();
    // (A revoked credential stays revoked whatever list is shown: its `ca1:r` is anchored.)
    let v = verify_with_list(&w, "SLS-GONE", &vc_gone, &forged.to_string()).await;
    assert_eq!(v["verdict"], "revoked", "{v}");
    let v = verify_with_list(&w, "SLS-KEPT", &vc_kept, &forged.to_string()).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("inconclusive"), Some("status_list_unanchored")),
        "{v}"
    );
    let r = offline(
        &w,
        "SLS-KEPT",
        &bundle_kept,
        ListSource::Given(forged.to_string().into_bytes()),
    )
    .await;
    assert_eq!(
        (r.verdict.as_str(), r.reason),
        ("inconclusive", "status_list_unanchored")
    );

    // The server falls behind (serves version 1 while 2 is anchored): a fetching verifier
    // sees stale.
    w.execute(&format!(
        "UPDATE status_list_versions SET completed_at = NULL WHERE version = {v2}"
    ))
    .await;
    assert_eq!(w.served_status_list(0).await.unwrap().0, v1);
    let r = offline(&w, "SLS-KEPT", &bundle_kept, ListSource::Fetch).await;
    assert_eq!(r.verdict.as_str(), "stale", "{}", r.detail);
    // No list at all (404): inconclusive, never valid.
    w.execute("UPDATE status_list_versions SET completed_at = NULL")
        .await;
    assert!(w.served_status_list(0).await.is_none());
    let r = offline(&w, "SLS-KEPT", &bundle_kept, ListSource::Fetch).await;
    assert_eq!(
        (r.verdict.as_str(), r.reason, r.exit_code),
        (
            "inconclusive",
            "status_list_unreachable",
            verifier::exit::INCONCLUSIVE
        ),
        "{}",
        r.detail
    );
}
