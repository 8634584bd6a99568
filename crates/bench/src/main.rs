//! `bench [--smoke] --bin-dir DIR --out DIR`: run under `localnet exec` (see the Makefile's
//! `bench` and `bench-smoke` targets). See the library docs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bench::scenarios::{self, Memory, Results, World};
use bench::{plot, procs, report, Config};
use clap::Parser;
use testkit::services::Service;

#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Cli {
    /// Small counts: keeps the benchmark working in CI; its figures are not a report.
    #[arg(long)]
    smoke: bool,
    /// Directory with the issuer-api, outbox-relay and reconciler binaries to measure.
    #[arg(long)]
    bin_dir: PathBuf,
    /// Where the report (`<date>.md`, `.json`, plots) is written.
    #[arg(long)]
    out: PathBuf,
    /// Measure on a PostgreSQL with fsync, synchronous_commit and full_page_writes off
    /// (the tests' setting). Off by default: a figure published from such a run must carry
    /// the label the report header then gives it.
    #[arg(long)]
    non_durable: bool,
    /// Run only these scenarios (comma-separated: single, bulk, merkle, claim, wakeup,
    /// latency, anchor_rate, status_list, reconcile, growth), e.g. to profile one of them under `perf record -a`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Credential counts the growth scenario measures at (default 0,1000000,10000000; smoke
    /// 0,20000).
    #[arg(long, value_delimiter = ',')]
    growth_steps: Vec<usize>,
}

fn run_text(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn proc_field(file: &str, key: &str) -> String {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split(':').nth(1))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = if cli.smoke {
        Config::smoke(cli.bin_dir.clone(), cli.out.clone())
    } else {
        Config::full(cli.bin_dir.clone(), cli.out.clone())
    };
    let cfg = if cli.growth_steps.is_empty() {
        cfg
    } else {
        bench::Config {
            growth_steps: cli.growth_steps.clone(),
            ..cfg
        }
    };
    let rpc_url = std::env::var("SOLANA_RPC_URL")
        .context("SOLANA_RPC_URL: run under `localnet exec --validator required`")?;
    std::fs::create_dir_all(&cfg.out_dir)?;
    let work = tempfile_dir()?;

    // A server of our own, not `localnet`'s (which is relaxed for the tests): a registrar's
    // database acknowledges a commit only once it is on disk, so the figures must too.
    let durability = if cli.non_durable {
        testkit::Durability::Relaxed
    } else {
        testkit::Durability::Production
    };
    let pg = std::sync::Arc::new(testkit::TestPostgres::start_with(durability)?);
    let pg_dir = pg.dir().to_path_buf();
    let env = testkit::PgEnv::Owned(pg);
    let db_url = env.create_database().await?;
    let store = store::Store::connect_lazy(&store::DatabaseSettings::new(&db_url))?;
    store.migrate().await?;
    let master = domain::sealed::MasterKey::generate(&ring::rand::SystemRandom::new())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let keypair = chain::AnchorKeypair::generate();
    let keypair_path = work.join("anchor.json");
    std::fs::write(&keypair_path, keypair.to_json_string())?;
    testkit::validator::airdrop(&rpc_url, &keypair.pubkey_base58(), 20_000_000_000).await?;
    let mut keys = std::collections::HashMap::new();
    // Every issuer gets the relay's key: an issuer without an anchoring key cannot be
    // created (the reconciler scans it once for all of them).
    for (id, _anchored, mode) in [
        ("bench-http", false, None),
        ("bench-pgbench", false, None),
        ("bench-bulk", false, None),
        ("bench-copy", false, None),
        ("bench-merkle", true, Some(domain::AnchoringMode::Merkle)),
        ("bench-single", true, Some(domain::AnchoringMode::Single)),
        ("bench-growth", true, Some(domain::AnchoringMode::Merkle)),
        ("bench-claim", false, Some(domain::AnchoringMode::Single)),
    ] {
        let pubkey = keypair.pubkey_base58();
        // Key windows on the chain's clock when it trails ours (the bench loads the validator).
        let chain_now = chain::ChainClient::read_only(chain::ChainConfig::new(
            &rpc_url,
            chain::Cluster::Localnet,
        ))
        .clock()
        .await?;
        let created = provisioning::create_issuer(
            &store,
            &master,
            &domain::IssuerId::parse(id)?,
            id,
            &pubkey,
            chain_now,
        )
        .await?;
        store
            .set_anchor_mode(&domain::IssuerId::parse(id)?, mode)
            .await?;
        keys.insert(id, created);
    }
    let api_port = procs::free_port()?;
    let mut w = World {
        cfg: cfg.clone(),
        db_url: db_url.clone(),
        pg_admin: env.admin_url(),
        rpc_url: rpc_url.clone(),
        store: store.clone(),
        api: format!("http://127.0.0.1:{api_port}"),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?,
        keys,
        anchor_keypair: keypair_path,
        master_b64: master.to_base64(),
        work: work.clone(),
    };
    let mut results = Results::default();
    // Own scheduling group (`make bench`: localnet --validator-nice) or, failing that, the
    // validator's threads reniced within the group it shares with us.
    let validator_scheduling = match procs::validator_own_group_nice() {
        Some(nice) => report::ValidatorScheduling::OwnGroup { nice },
        None => match procs::nice_validator(VALIDATOR_NICE) {
            Ok(_) => report::ValidatorScheduling::SharedGroup {
                nice: VALIDATOR_NICE,
            },
            Err(e) => {
                eprintln!("bench: could not lower the validator's priority: {e:#}");
                report::ValidatorScheduling::Normal
            }
        },
    };
    eprintln!("bench: validator scheduling: {validator_scheduling:?}");

    eprintln!("bench: starting issuer-api and reconciler");
    let api = scenarios::start(&w, Service::IssuerApi, api_port).await?;
    let reconciler = scenarios::start(&w, Service::Reconciler, procs::free_port()?).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let api_idle = procs::rss_of(api.pid()).0;
    let reconciler_idle = procs::rss_of(reconciler.pid()).0;

    let wanted = |name: &str| cli.only.is_empty() || cli.only.iter().any(|o| o == name);
    if wanted("single") {
        eprintln!("bench: single issuance vs pgbench");
        results.single = kept(
            &mut results.failed,
            "single",
            scenarios::single_issue(&w, api.pid()).await,
        );
    }
    if wanted("bulk") {
        eprintln!("bench: bulk issuance vs COPY");
        results.bulk = kept(&mut results.failed, "bulk", scenarios::bulk(&w).await);
    }

    eprintln!("bench: starting outbox-relay");
    let relay = scenarios::start(&w, Service::OutboxRelay, procs::free_port()?).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let relay_idle = procs::rss_of(relay.pid()).0;
    if wanted("merkle") {
        eprintln!("bench: {} credentials in merkle mode", cfg.anchor_n);
        results.anchor40k = kept(
            &mut results.failed,
            "anchor40k",
            scenarios::anchor_merkle(&w).await,
        );
    }
    if wanted("claim") {
        eprintln!("bench: claim latency with dead tuples");
        results.claim = kept(&mut results.failed, "claim", scenarios::claim(&w).await);
    }
    if wanted("wakeup") {
        eprintln!("bench: NOTIFY wake-up vs polling");
        results.wakeup = kept(
            &mut results.failed,
            "wakeup",
            scenarios::wakeup(&w, relay.pid()).await,
        );
    }
    if wanted("latency") {
        eprintln!("bench: issue → confirmed / finalized vs airdrops");
        results.chain_latency = kept(
            &mut results.failed,
            "chain_latency",
            scenarios::chain_latency(&w).await,
        );
    }
    if wanted("anchor_rate") {
        eprintln!("bench: sustained anchoring rate, relay vs a raw sender");
        results.anchor_rate = kept(
            &mut results.failed,
            "anchor_rate",
            scenarios::anchor_rate(&w).await,
        );
    }
    if wanted("status_list") {
        eprintln!("bench: a status list of 131,072 entries: sign, serve, revoke to served");
        results.status_list = kept(
            &mut results.failed,
            "status_list",
            scenarios::status_list(&w).await,
        );
    }
    let mut run_once_peak = 0.0;
    if wanted("reconcile") {
        eprintln!("bench: reconciler scan");
        if let Some((rec, peak)) = kept(
            &mut results.failed,
            "reconcile",
            scenarios::reconcile(&w).await,
        ) {
            results.reconcile = Some(rec);
            run_once_peak = peak;
        }
    }
    if wanted("merkle") || wanted("latency") || wanted("reconcile") || wanted("anchor_rate") {
        results.cost = kept(&mut results.failed, "cost", scenarios::cost(&w).await);
    }
    results.memory = vec![
        Memory {
            service: "issuer-api".into(),
            idle_mib: api_idle,
            peak_mib: procs::rss_of(api.pid()).1,
        },
        Memory {
            service: "outbox-relay".into(),
            idle_mib: relay_idle,
            peak_mib: procs::rss_of(relay.pid()).1,
        },
        Memory {
            service: "reconciler".into(),
            idle_mib: reconciler_idle,
            peak_mib: procs::rss_of(reconciler.pid()).1.max(run_once_peak),
        },
    ];
    // Last: it grows the tables every other scenario works on.
    if wanted("growth") {
        eprintln!(
            "bench: cost as work grows: {:?} credentials",
            cfg.growth_steps
        );
        results.growth_planned = cfg.growth_steps.clone();
        results.growth = Some(scenarios::growth(&w, api.pid(), relay.pid()).await?);
    }
    drop((api, relay, reconciler));
    w.http = reqwest::Client::new();

    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let postgres: String = tokio_postgres::connect(&db_url, tokio_postgres::NoTls)
        .await
        .map(|(c, conn)| {
            tokio::spawn(conn);
            c
        })?
        .query_one("SHOW server_version", &[])
        .await?
        .get(0);
    let durability = durability_fact(&db_url, &pg_dir, cli.non_durable).await?;
    let validator_bin = testkit::validator::validator_binary()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let facts = report::Facts {
        validator_scheduling,
        date: date.clone(),
        mode: if cfg.smoke { "smoke" } else { "full" },
        profile: cfg
            .bin_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        memory_gib: proc_field("/proc/meminfo", "MemTotal")
            .trim_end_matches(" kB")
            .parse::<f64>()
            .unwrap_or(0.0)
            / 1024.0
            / 1024.0,
        cpu: proc_field("/proc/cpuinfo", "model name"),
        rustc: run_text("rustc", &["-V"]),
        postgres,
        durability,
        validator: run_text(&validator_bin, &["--version"]),
        commit: run_text("git", &["rev-parse", "--short", "HEAD"]),
    };
    let rows = report::rows(&results);
    let mut plots = Vec::new();
    if plot::init_font() {
        if let Some(s) = &results.single {
            let file = format!("{date}-latency.png");
            plot::latency_cdf(
                &cfg.out_dir.join(&file),
                &s.samples_ms,
                "POST /v1/credentials latency at half the max rate",
            )?;
            plots.push(("issuance latency CDF".to_string(), file));
        }
        if let Some(a) = &results.anchor40k {
            let file = format!("{date}-merkle.png");
            plot::progress(
                &cfg.out_dir.join(&file),
                &a.progress,
                a.n,
                &format!("{} credentials, merkle mode: finalized over time", a.n),
            )?;
            plots.push(("merkle-mode progress".to_string(), file));
        }
    } else {
        eprintln!("bench: DejaVu font missing (fonts-dejavu-core): no plots");
    }
    let md = report::markdown(&facts, &rows, &plots);
    std::fs::write(cfg.out_dir.join(format!("{date}.md")), &md)?;
    std::fs::write(
        cfg.out_dir.join(format!("{date}.json")),
        serde_json::to_vec_pretty(&serde_json::json!({
            "facts": facts, "rows": rows, "results": results,
        }))?,
    )?;
    println!("{md}");
    let _ = std::fs::remove_dir_all(&work);
    // The report keeps what was measured; the exit status still says that something failed,
    // so `make bench-smoke` in `make test` cannot pass over a broken scenario.
    let stopped = results.growth.as_ref().and_then(|g| g.stopped.clone());
    anyhow::ensure!(
        results.failed.is_empty() && stopped.is_none(),
        "scenarios failed: {:?}; growth: {stopped:?}",
        results.failed
    );
    Ok(())
}

/// What the server says of its durability, and where its data (and WAL) lives.
async fn durability_fact(
    db_url: &str,
    data_dir: &std::path::Path,
    non_durable: bool,
) -> anyhow::Result<String> {
    let (db, conn) = tokio_postgres::connect(db_url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let mut settings = Vec::new();
    for name in [
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_sync_method",
    ] {
        let value: String = db.query_one(&format!("SHOW {name}"), &[]).await?.get(0);
        settings.push(format!("{name}={value}"));
    }
    let disk = run_text(
        "findmnt",
        &[
            "-n",
            "-o",
            "SOURCE,FSTYPE",
            "-T",
            &data_dir.display().to_string(),
        ],
    );
    let label = if non_durable {
        "**NON-DURABLE run (--non-durable): not the production figures**"
    } else {
        "production"
    };
    Ok(format!(
        "{label} ({}; data and WAL on {})",
        settings.join(", "),
        if disk.is_empty() { "?".into() } else { disk }
    ))
}

/// A scenario's result, or its failure recorded for the report (a failed scenario must not
/// throw away the hour of figures measured around it; the report lists it as not met).
fn kept<T>(failed: &mut Vec<(String, String)>, name: &str, r: anyhow::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("bench: {name} FAILED: {e:#}");
            failed.push((name.to_string(), format!("{e:#}")));
            None
        }
    }
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("credential-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
/// The validator's threads' nice value when it shares our scheduling group (see
/// `procs::nice_validator`).
const VALIDATOR_NICE: i32 = 19;
