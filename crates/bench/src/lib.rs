//! `make bench`: every performance claim measured against a baseline in the same run, on the
//! same machine, and written to `bench/results/<date>.{md,json}` with PNG plots.
//!
//! The harness (`localnet exec`) provides a PostgreSQL server and a local validator; this
//! binary creates a fresh database, runs the real service binaries as processes (so memory is
//! each service's own), and drives the scenarios of issue #10. `--smoke` runs every scenario
//! with small counts so CI keeps the benchmark working; its figures are not the report's.
//!
//! The HTTP load generator is our own (tokio + reqwest) rather than `oha`/`wrk`: every
//! issuance needs a unique serial, which fixed-body generators cannot produce, and the open-loop
//! mode measures latency from each request's scheduled start (no coordinated omission).

pub mod plot;
pub mod procs;
pub mod report;
pub mod scenarios;
pub mod stats;

use std::path::PathBuf;
use std::time::Duration;

/// Sizes of one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub smoke: bool,
    pub bin_dir: PathBuf,
    pub out_dir: PathBuf,
    /// Concurrent clients for the single-issuance scenario (and pgbench's `-c`).
    pub concurrency: usize,
    pub duration: Duration,
    /// Alternating rounds of the API's closed loop and pgbench: both swing from run to run
    /// on a shared 2-core machine, so the ratio is the median of the per-round ratios.
    pub rounds: usize,
    /// A moderate fixed rate (req/s) for a second latency measurement, below saturation.
    pub fixed_rate: f64,
    /// Credentials for the bulk (Postgres) scenario and its COPY baseline.
    pub bulk_n: usize,
    /// Credentials issued and anchored in merkle mode.
    pub anchor_n: usize,
    /// Credentials followed to confirmed/finalized in single mode (and airdrops).
    pub latency_n: usize,
    /// Extra single-mode anchors so the reconciler has history to scan.
    pub reconcile_n: usize,
    pub dead_tuples: usize,
    pub claims: usize,
    pub wakeups: usize,
    /// Transactions each side of the anchoring-rate comparison finalizes (relay vs raw).
    pub anchor_rate_n: usize,
    /// Credential counts the growth scenario measures at (0 first).
    pub growth_steps: Vec<usize>,
}

impl Config {
    pub fn full(bin_dir: PathBuf, out_dir: PathBuf) -> Config {
        Config {
            smoke: false,
            bin_dir,
            out_dir,
            concurrency: 8,
            duration: Duration::from_secs(15),
            rounds: 3,
            fixed_rate: 500.0,
            bulk_n: 40_000,
            anchor_n: 40_000,
            latency_n: 20,
            reconcile_n: 1_000,
            dead_tuples: 50_000,
            claims: 1_000,
            wakeups: 300,
            anchor_rate_n: 1_000,
            growth_steps: vec![0, 1_000_000, 10_000_000],
        }
    }

    pub fn smoke(bin_dir: PathBuf, out_dir: PathBuf) -> Config {
        Config {
            smoke: true,
            bin_dir,
            out_dir,
            concurrency: 4,
            duration: Duration::from_secs(2),
            rounds: 1,
            fixed_rate: 20.0,
            bulk_n: 2_000,
            anchor_n: 2_000,
            latency_n: 2,
            reconcile_n: 20,
            dead_tuples: 2_000,
            claims: 100,
            wakeups: 30,
            anchor_rate_n: 10,
            growth_steps: vec![0, 20_000],
        }
    }
}
