//! `issue-bulk --csv graduates.csv --files ./pdfs/ --api URL`: see the library docs.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use issue_bulk::{exit, run, Options};

/// Issue a graduating class: CSV rows + files in, proof bundles out. Safe to re-run after
/// an interruption: nothing is issued twice.
#[derive(Debug, Parser)]
#[command(name = "issue-bulk", version)]
struct Cli {
    /// CSV with columns serial,recipient_id,issued_at,credential_type,title,file (+ metadata).
    #[arg(long)]
    csv: PathBuf,
    /// Folder the `file` column is relative to.
    #[arg(long)]
    files: PathBuf,
    /// Base URL of issuer-api, e.g. http://localhost:8080.
    #[arg(long)]
    api: String,
    /// The issuer's API key.
    #[arg(long, env = "ISSUER_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Where proof bundles and the report are written.
    #[arg(long, default_value = "proofs")]
    out: PathBuf,
    /// Credentials per request (1..=10,000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    chunk_size: u64,
    /// Do not wait for finality (and write no proofs).
    #[arg(long)]
    no_wait: bool,
    /// Longest wait for finality, in seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
}

#[tokio::main]
async fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let opts = Options {
        csv: cli.csv,
        files: cli.files,
        api: cli.api,
        api_key: cli.api_key,
        out: cli.out,
        chunk_size: cli.chunk_size as usize,
        wait: !cli.no_wait,
        timeout: Duration::from_secs(cli.timeout_secs),
        poll: Duration::from_secs(2),
    };
    match run(&opts).await {
        Ok(report) => {
            println!(
                "{} rows: {} accepted, {} already issued, {} refused; {} proof bundles in {}",
                report.rows,
                report.accepted,
                report.duplicates,
                report.refused.len(),
                report.proofs_written,
                opts.out.display()
            );
            std::process::exit(report.exit_code());
        }
        Err(e) => {
            eprintln!("issue-bulk: {e:#}");
            std::process::exit(exit::FAILED);
        }
    }
}
