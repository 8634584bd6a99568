//! `issue-bulk`: issue a whole graduating class from a CSV file and a folder of PDFs.
//!
//! 1. Read the CSV (`serial,recipient_id,issued_at,credential_type,title,file`, any further
//!    column goes into `metadata`), hash each file locally (SHA-256) and send only the digest
//!    (`file_sha256`): 5,000 diplomas upload as a few MB of JSON, not gigabytes.
//! 2. Upload in chunks to `POST /v1/credential-batches`, each with an Idempotency-Key derived
//!    from the chunk's exact bytes. Killed half-way, a re-run sends the same chunks with the
//!    same keys: the API replays the stored answers for chunks it has, accepts the rest, and
//!    nothing is issued twice. No local state file is needed to resume.
//! 3. Wait until every accepted credential is finalized on chain (`GET
//!    /v1/credential-batches/{id}`), then write each proof bundle to
//!    `<out>/<serial>.proof.json` (from `GET /v1/credential-batches/{id}/proofs`), and each
//!    credential's W3C Verifiable Credential beside it as `<out>/<serial>.vc.json` (the
//!    exact bytes `GET /v1/credential-batches/{id}/vcs` serves: what the graduate's wallet
//!    takes).
//!
//! The CSV parsing and chunking are pure functions ([`read_rows`], [`chunk_bodies`]); only
//! [`run`] does network and file I/O.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::FileDigest;
use serde_json::{json, Map, Value};

/// CSV columns every row must have; others become metadata.
pub const REQUIRED_COLUMNS: [&str; 6] = [
    "serial",
    "recipient_id",
    "issued_at",
    "credential_type",
    "title",
    "file",
];

/// Exit codes (documented in README).
pub mod exit {
    pub const OK: i32 = 0;
    /// Network, API or file error: nothing is lost, re-run to resume.
    pub const FAILED: i32 = 1;
    /// Bad command line or unreadable CSV.
    pub const USAGE: i32 = 2;
    /// Some rows were refused (invalid, conflicting serial, missing file): the rest were
    /// issued; see the report.
    pub const SOME_REFUSED: i32 = 3;
    /// `--timeout` passed before every credential was finalized; re-run to keep waiting.
    pub const TIMEOUT: i32 = 4;
}

/// One CSV row turned into an API item, or why it cannot be sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Item {
        line: u64,
        serial: String,
        item: Value,
    },
    Refused {
        line: u64,
        serial: String,
        reason: String,
    },
}

/// Reads the CSV and hashes each row's file under `files`.
pub fn read_rows(csv_text: &str, files: &Path) -> anyhow::Result<Vec<Row>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let headers = reader.headers().context("reading the CSV header")?.clone();
    for required in REQUIRED_COLUMNS {
        if !headers.iter().any(|h| h == required) {
            anyhow::bail!(
                "the CSV has no `{required}` column (needs {})",
                REQUIRED_COLUMNS.join(",")
            );
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.context("reading a CSV row")?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        let mut metadata = Map::new();
        for (h, v) in headers.iter().zip(record.iter()) {
            if REQUIRED_COLUMNS.contains(&h) {
                fields.insert(h, v);
            } else if !v.is_empty() {
                metadata.insert(h.to_string(), Value::String(v.to_string()));
            }
        }
        let get = |k: &str| fields.get(k).copied().unwrap_or("");
        let serial = get("serial").to_string();
        let path = files.join(get("file"));
        if get("file").is_empty() {
            rows.push(Row::Refused {
                line,
                serial,
                reason: "no file named".into(),
            });
            continue;
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) if !b.is_empty() => b,
            Ok(_) => {
                rows.push(Row::Refused {
                    line,
                    serial,
                    reason: format!("{} is empty", path.display()),
                });
                continue;
            }
            Err(e) => {
                rows.push(Row::Refused {
                    line,
                    serial,
                    reason: format!("cannot read {}: {e}", path.display()),
                });
                continue;
            }
        };
        let mut item = json!({
            "serial": serial,
            "recipient_id": get("recipient_id"),
            "issued_at": get("issued_at"),
            "credential_type": get("credential_type"),
            "title": get("title"),
            "file_sha256": FileDigest::of(&bytes).to_hex(),
        });
        if !metadata.is_empty() {
            item["metadata"] = Value::Object(metadata);
        }
        rows.push(Row::Item { line, serial, item });
    }
    Ok(rows)
}

/// A chunk ready to send: its body and the Idempotency-Key derived from those exact bytes.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub body: Vec<u8>,
    pub key: String,
    pub serials: Vec<String>,
}

/// Splits the sendable rows into request bodies of at most `size` items. The key is a hash
/// of the body, so the same rows always produce the same key (resume), and different rows
/// never share one.
pub fn chunk_bodies(rows: &[Row], size: usize) -> Vec<Chunk> {
    let items: Vec<(&String, &Value)> = rows
        .iter()
        .filter_map(|r| match r {
            Row::Item { serial, item, .. } => Some((serial, item)),
            Row::Refused { .. } => None,
        })
        .collect();
    items
        .chunks(size.max(1))
        .map(|chunk| {
            let credentials: Vec<&Value> = chunk.iter().map(|(_, v)| *v).collect();
            let body =
                serde_json::to_vec(&json!({ "credentials": credentials })).unwrap_or_default();
            let digest = ring::digest::digest(&ring::digest::SHA256, &body);
            Chunk {
                key: format!("issue-bulk-{}", hex::encode(&digest.as_ref()[..24])),
                serials: chunk.iter().map(|(s, _)| (*s).clone()).collect(),
                body,
            }
        })
        .collect()
}

/// File name of a serial's proof bundle (serials may contain `/`).
pub fn proof_file_name(serial: &str) -> String {
    format!("{}.proof.json", serial.replace('/', "_"))
}

/// File name of a serial's Verifiable Credential.
pub fn vc_file_name(serial: &str) -> String {
    format!("{}.vc.json", serial.replace('/', "_"))
}

/// What to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub csv: PathBuf,
    pub files: PathBuf,
    pub api: String,
    pub api_key: String,
    pub out: PathBuf,
    pub chunk_size: usize,
    pub wait: bool,
    pub timeout: Duration,
    pub poll: Duration,
}

/// Counts of a run, also written to `<out>/issue-bulk-report.json`.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub rows: usize,
    pub accepted: usize,
    pub duplicates: usize,
    pub refused: Vec<Value>,
    pub chunks_sent: usize,
    pub chunks_replayed: usize,
    pub request_ids: Vec<String>,
    pub proofs_written: usize,
    pub finalized: bool,
    /// The wait for finality ran out (`--no-wait` never waits, so never times out).
    pub timed_out: bool,
}

impl Report {
    pub fn exit_code(&self) -> i32 {
        if self.timed_out {
            exit::TIMEOUT
        } else if !self.refused.is_empty() {
            exit::SOME_REFUSED
        } else {
            exit::OK
        }
    }
}

fn progress(len: u64, msg: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(msg);
    bar
}

/// Uploads, waits and writes proofs. Progress bars draw on a terminal; one plain line per
/// chunk always goes to stderr (logs, CI, and the resume test read them).
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    let csv_text = std::fs::read_to_string(&opts.csv)
        .with_context(|| format!("reading {}", opts.csv.display()))?;
    let rows = read_rows(&csv_text, &opts.files)?;
    let mut report = Report {
        rows: rows.len(),
        ..Report::default()
    };
    for row in &rows {
        if let Row::Refused {
            line,
            serial,
            reason,
        } = row
        {
            report
                .refused
                .push(json!({"line": line, "serial": serial, "code": "file_unreadable", "message": reason}));
        }
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        // Below the API's keep-alive (75 s) and common load balancers' (60 s): a pooled
        // connection is never reused just as the server closes it.
        .pool_idle_timeout(Duration::from_secs(30))
        .build()?;
    let chunks = chunk_bodies(&rows, opts.chunk_size);
    let bar = progress(
        chunks.iter().map(|c| c.serials.len() as u64).sum(),
        "uploading",
    );
    for (i, chunk) in chunks.iter().enumerate() {
        let response = post_chunk(&client, opts, chunk).await?;
        let replayed = response.replayed;
        let v = response.body;
        let id = v["id"]
            .as_str()
            .context("the API answered without a batch id")?
            .to_string();
        report.request_ids.push(id.clone());
        let accepted = v["accepted"].as_u64().unwrap_or(0) as usize;
        let duplicates = v["duplicates"].as_u64().unwrap_or(0) as usize;
        report.accepted += accepted;
        report.duplicates += duplicates;
        if replayed {
            report.chunks_replayed += 1;
        } else {
            report.chunks_sent += 1;
        }
        for item in v["items"].as_array().into_iter().flatten() {
            if item["status"] == "invalid" {
                report.refused.push(item.clone());
            }
        }
        bar.inc(chunk.serials.len() as u64);
        bar.suspend(|| {
            eprintln!(
                "chunk {}/{} {}: batch {id}, {accepted} accepted, {duplicates} duplicate{}",
                i + 1,
                chunks.len(),
                if replayed { "replayed" } else { "sent" },
                if v["invalid"].as_u64().unwrap_or(0) > 0 {
                    format!(", {} invalid", v["invalid"])
                } else {
                    String::new()
                }
            )
        });
    }
    bar.finish_and_clear();
    if opts.wait {
        report.finalized = wait_finalized(&client, opts, &report.request_ids).await?;
        report.timed_out = !report.finalized;
        if report.finalized {
            report.proofs_written = write_proofs(&client, opts, &report.request_ids).await?;
        }
    }
    let report_path = opts.out.join("issue-bulk-report.json");
    std::fs::write(&report_path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", report_path.display()))?;
    Ok(report)
}

struct ChunkResponse {
    body: Value,
    replayed: bool,
}

/// Sends one chunk, retrying transient failures (503, connection errors) with backoff: the
/// Idempotency-Key makes every retry safe.
async fn post_chunk(
    client: &reqwest::Client,
    opts: &Options,
    chunk: &Chunk,
) -> anyhow::Result<ChunkResponse> {
    let url = format!("{}/v1/credential-batches", opts.api.trim_end_matches('/'));
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=8 {
        let sent = client
            .post(&url)
            .bearer_auth(&opts.api_key)
            .header("Idempotency-Key", &chunk.key)
            .header("Content-Type", "application/json")
            .body(chunk.body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => {
                // The API marks answers replayed from an earlier send of this key.
                let replayed = resp
                    .headers()
                    .get("Idempotent-Replayed")
                    .is_some_and(|v| v == "true");
                let body: Value = resp.json().await.context("reading the API's answer")?;
                return Ok(ChunkResponse { body, replayed });
            }
            Ok(resp) if resp.status().as_u16() == 503 || resp.status().as_u16() == 429 => {
                eprintln!("API busy ({}), retrying in {delay:?}", resp.status());
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                anyhow::bail!("the API refused a chunk: {status} {text}");
            }
            Err(e) if attempt < 8 => eprintln!("network error ({e}), retrying in {delay:?}"),
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    anyhow::bail!("the API stayed unavailable; re-run later to resume")
}

/// Polls every request until all its credentials are finalized, or the timeout.
async fn wait_finalized(
    client: &reqwest::Client,
    opts: &Options,
    request_ids: &[String],
) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut total = 0u64;
    let mut pending: Vec<&String> = request_ids.iter().collect();
    let mut done_counts: BTreeMap<&String, u64> = BTreeMap::new();
    let bar = progress(0, "anchoring");
    loop {
        let mut still = Vec::new();
        for id in pending {
            let url = format!(
                "{}/v1/credential-batches/{id}",
                opts.api.trim_end_matches('/')
            );
            let v: Value = client
                .get(url)
                .bearer_auth(&opts.api_key)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let accepted = v["accepted"].as_u64().unwrap_or(0);
            let finalized = v["statuses"]["finalized"].as_u64().unwrap_or(0);
            if !done_counts.contains_key(id) {
                total += accepted;
                bar.set_length(total);
            }
            done_counts.insert(id, finalized);
            if v["all_finalized"] != true {
                still.push(id);
            }
        }
        bar.set_position(done_counts.values().sum());
        if still.is_empty() {
            bar.finish_and_clear();
            eprintln!("all {total} credentials finalized on chain");
            return Ok(true);
        }
        if started.elapsed() > opts.timeout {
            bar.abandon();
            eprintln!(
                "timed out waiting for finality; re-run to keep waiting (nothing is re-issued)"
            );
            return Ok(false);
        }
        pending = still;
        tokio::time::sleep(opts.poll).await;
    }
}

/// `GET /v1/credential-batches/{id}/{what}`: an NDJSON body (`proofs`, `vcs`).
async fn batch_ndjson(
    client: &reqwest::Client,
    opts: &Options,
    id: &str,
    what: &str,
) -> anyhow::Result<String> {
    let url = format!(
        "{}/v1/credential-batches/{id}/{what}",
        opts.api.trim_end_matches('/')
    );
    Ok(client
        .get(url)
        .bearer_auth(&opts.api_key)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// Writes every bundle of every request to `<out>/<serial>.proof.json`, and every VC to
/// `<out>/<serial>.vc.json`.
async fn write_proofs(
    client: &reqwest::Client,
    opts: &Options,
    request_ids: &[String],
) -> anyhow::Result<usize> {
    let mut written = 0;
    let mut vcs_written = 0;
    for id in request_ids {
        let mut serial_of = std::collections::HashMap::new();
        let text = batch_ndjson(client, opts, id, "proofs").await?;
        for line in text.lines().filter(|l| !l.is_empty()) {
            let bundle: domain::proof::ProofBundle =
                serde_json::from_str(line).context("a proof bundle the API sent")?;
            // Never write a bundle the offline verifier would reject.
            domain::proof::check_offline(&bundle, None)
                .with_context(|| format!("bundle of {}", bundle.credential_id))?;
            let path = opts
                .out
                .join(proof_file_name(bundle.fields.serial.as_str()));
            std::fs::write(&path, serde_json::to_vec_pretty(&bundle)?)
                .with_context(|| format!("writing {}", path.display()))?;
            serial_of.insert(
                format!("urn:uuid:{}", bundle.credential_id),
                bundle.fields.serial.as_str().to_string(),
            );
            written += 1;
        }
        let text = batch_ndjson(client, opts, id, "vcs").await?;
        for line in text.lines().filter(|l| !l.is_empty()) {
            let vc: serde_json::Value =
                serde_json::from_str(line).context("a verifiable credential the API sent")?;
            // Only credentials whose bundle was written (finalized) get their VC beside it.
            let Some(serial) = vc["id"].as_str().and_then(|id| serial_of.get(id)) else {
                continue;
            };
            let path = opts.out.join(vc_file_name(serial));
            std::fs::write(&path, line).with_context(|| format!("writing {}", path.display()))?;
            vcs_written += 1;
        }
    }
    eprintln!(
        "{written} proof bundles and {vcs_written} verifiable credentials written to {}",
        opts.out.display()
    );
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.pdf"), b"%PDF a").unwrap();
        std::fs::write(dir.path().join("b.pdf"), b"%PDF b").unwrap();
        std::fs::write(dir.path().join("empty.pdf"), b"").unwrap();
        dir
    }

    const CSV: &str = "serial,recipient_id,issued_at,credential_type,title,file,honours\n\
        S-1,r1,2026-06-30T12:00:00Z,diploma,BSc,a.pdf,cum laude\n\
        S-2,r2,2026-06-30T12:00:00Z,diploma,BSc,b.pdf,\n\
        S-3,r3,2026-06-30T12:00:00Z,diploma,BSc,missing.pdf,\n\
        S-4,r4,2026-06-30T12:00:00Z,diploma,BSc,empty.pdf,\n";

    #[test]
    fn rows_hash_their_files_and_extra_columns_become_metadata() {
        let dir = files();
        let rows = read_rows(CSV, dir.path()).unwrap();
        assert_eq!(rows.len(), 4);
        let Row::Item { item, serial, .. } = &rows[0] else {
            panic!("{rows:?}")
        };
        assert_eq!(serial, "S-1");
        assert_eq!(item["file_sha256"], FileDigest::of(b"%PDF a").to_hex());
        assert_eq!(item["metadata"]["honours"], "cum laude");
        let Row::Item { item, .. } = &rows[1] else {
            panic!()
        };
        assert!(item.get("metadata").is_none());
        assert!(matches!(&rows[2], Row::Refused { reason, .. } if reason.contains("missing.pdf")));
        assert!(matches!(&rows[3], Row::Refused { reason, .. } if reason.contains("empty")));
    }

    #[test]
    fn a_csv_without_a_required_column_is_refused() {
        let dir = files();
        let err = read_rows("serial,title\nS,T\n", dir.path()).unwrap_err();
        assert!(err.to_string().contains("recipient_id"));
    }

    #[test]
    fn chunks_are_stable_per_content_and_skip_refused_rows() {
        let dir = files();
        let rows = read_rows(CSV, dir.path()).unwrap();
        let a = chunk_bodies(&rows, 1);
        let b = chunk_bodies(&rows, 1);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].key, b[0].key);
        assert_ne!(a[0].key, a[1].key);
        assert_eq!(a[1].serials, vec!["S-2".to_string()]);
        assert_eq!(chunk_bodies(&rows, 10).len(), 1);
        assert!(a[0].key.len() <= 255);
    }

    #[test]
    fn proof_file_names_stay_in_the_output_folder() {
        assert_eq!(proof_file_name("2026/BSc-1"), "2026_BSc-1.proof.json");
    }
}
