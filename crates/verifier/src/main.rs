//! credential-verify: check a credential file and its proof bundle against Solana RPC
//! endpoints, without the issuer's API. Exit codes: see `verifier::exit`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use verifier::{exit, one_line, verify, Request, VerifyError};

#[derive(Parser)]
#[command(
    name = "credential-verify",
    version,
    about = "Verify a credential file against its proof bundle and the Solana chain",
    after_help = "Exit codes: 0 valid, 1 revoked, 2 usage or input error, 3 tampered, \
                  4 not anchored (yet), 5 invalid signature or issuer key mismatch, \
                  6 RPC endpoints disagree, 7 RPC unavailable, 8 inconclusive (the anchoring \
                  key's history could not be read back to the anchor: a revocation may be \
                  missed; or a status list that cannot be had or proven), 9 valid but the \
                  anchoring key was not pinned with --issuer-key, 10 stale (the status list \
                  checked is older than the newest version the issuer anchored)."
)]
struct Cli {
    /// The credential file (e.g. the diploma PDF).
    #[arg(long)]
    file: PathBuf,
    /// The proof bundle (JSON, schema credential-anchor/proof-bundle/v2, or v1).
    #[arg(long)]
    proof: PathBuf,
    /// A Solana JSON-RPC endpoint; repeat to ask several. All must agree.
    #[arg(long = "rpc", required = true)]
    rpcs: Vec<String>,
    /// The credential's W3C Verifiable Credential (`.vc.json`), checked with the bundle: its
    /// proof by the bundle's signing key and the claims the anchored hash covers. Without it,
    /// the bundle's own `vc` is checked if it carries one.
    #[arg(long)]
    vc: Option<PathBuf>,
    /// A status list (the `BitstringStatusListCredential` you were given, JSON) to judge the
    /// VC's `credentialStatus` by: it must be the newest version the issuer anchored
    /// (`ca1:s` memos in the pinned keys' history), else the verdict is `stale` (exit 10) or
    /// inconclusive (exit 8); a set bit is revoked (exit 1).
    #[arg(long, conflicts_with = "fetch_status_list")]
    status_list: Option<PathBuf>,
    /// Fetch the status list the VC names (its `statusListCredential`, http(s), no
    /// redirects, 1 MiB at most) and judge it as `--status-list` does; an unreachable list
    /// is inconclusive (exit 8), never valid.
    #[arg(long)]
    fetch_status_list: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Base58 anchoring public key you trust for this issuer (from its profile or website).
    /// Repeat it for every key the issuer's profile lists (`anchor_keys`): the anchor must be
    /// paid by one of them, and revocations are searched in the history of each.
    #[arg(long)]
    issuer_key: Vec<String>,
    /// The issuer's name as you know it from an authenticated source (its website, its
    /// published profile). Without it the bundle's `issuer_name`, which nothing proves, is
    /// printed only as "name claimed by the bundle".
    #[arg(long)]
    issuer_name: Option<String>,
    /// The most pages (1,000 signatures each) of the anchoring key's history to read while
    /// searching back to the anchor's slot for a revocation; running out is inconclusive
    /// (exit 8), never "not revoked".
    #[arg(long, alias = "revocation-scan-pages", default_value_t = 200)]
    max_history_pages: u32,
    /// Per-request RPC timeout, seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    let json = cli.json;
    let code = match run(cli) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                println!("{}", one_line(&report));
            }
            report.exit_code
        }
        Err(e) => {
            if json {
                let body = serde_json::json!({
                    // JSON escapes only C0 controls: bidi and C1 controls from a bundle's
                    // key names would reach the terminal raw.
                    "verdict": null, "error": e.code(),
                    "message": verifier::printable(&e.to_string()),
                    "exit_code": e.exit_code(),
                });
                println!("{body}");
            } else {
                // The message may quote the bundle: escape what a terminal would obey.
                eprintln!("REFUSED: {}", verifier::printable(&e.to_string()));
            }
            e.exit_code()
        }
    };
    ExitCode::from(code)
}

fn run(cli: Cli) -> Result<verifier::Report, VerifyError> {
    let usage = |what: &str, e: &dyn std::fmt::Display| VerifyError::Usage(format!("{what}: {e}"));
    let file = std::fs::read(&cli.file).map_err(|e| usage(&cli.file.display().to_string(), &e))?;
    let proof =
        std::fs::read(&cli.proof).map_err(|e| usage(&cli.proof.display().to_string(), &e))?;
    // Malformed or non-canonical bundles are input errors (exit 2), never "RPC unavailable".
    let bundle = verifier::read_bundle(&proof)?;
    let vc = match &cli.vc {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| usage(&path.display().to_string(), &e))?;
            Some(
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .filter(serde_json::Value::is_object)
                    .ok_or_else(|| usage(&path.display().to_string(), &"not a JSON object"))?,
            )
        }
        None => None,
    };
    let request = Request {
        file,
        bundle,
        rpcs: cli.rpcs,
        pinned_issuer_keys: cli.issuer_key,
        max_history_pages: cli.max_history_pages.max(1),
        timeout: Duration::from_secs(cli.timeout_secs.max(1)),
        issuer_name: cli.issuer_name,
        vc,
        status_list: match (&cli.status_list, cli.fetch_status_list) {
            (Some(path), _) => Some(verifier::status::ListSource::Given(
                std::fs::read(path).map_err(|e| usage(&path.display().to_string(), &e))?,
            )),
            (None, true) => Some(verifier::status::ListSource::Fetch),
            (None, false) => None,
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| usage("cannot start the runtime", &e))?;
    runtime.block_on(verify(&request))
}
