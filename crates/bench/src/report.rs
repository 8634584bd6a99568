//! The report: machine facts, one row per scenario with its baseline, the ratio and the
//! target, and whether the target was met. Targets are judged here, from the measured figures
//! only (pure function [`rows`]), so the markdown and the JSON always agree.

use serde::Serialize;

use crate::scenarios::Results;

/// Facts about the machine and software of a run.
#[derive(Debug, Serialize)]
pub struct Facts {
    pub date: String,
    pub mode: &'static str,
    pub profile: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub cpu: String,
    pub rustc: String,
    pub postgres: String,
    /// The server's durability settings as it reported them (`SHOW`), and the disk its WAL
    /// was flushed to: every database figure depends on them.
    pub durability: String,
    pub validator: String,
    pub validator_scheduling: ValidatorScheduling,
    pub commit: String,
}

/// How the local validator (a fixture sharing the cores) was scheduled during the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub enum ValidatorScheduling {
    /// In a scheduling group (autogroup) of its own at this nice value.
    OwnGroup { nice: i32 },
    /// In the bench's own group, its threads at this nice value.
    SharedGroup { nice: i32 },
    /// At normal priority.
    Normal,
}

/// One line of the report.
#[derive(Debug, Serialize, Clone)]
pub struct Row {
    pub scenario: String,
    pub baseline: String,
    pub result: String,
    pub ratio: String,
    pub target: String,
    /// None: no target, or not measured.
    pub met: Option<bool>,
}

fn f0(v: f64) -> String {
    format!("{v:.0}")
}
fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// The report's rows from the results.
pub fn rows(r: &Results) -> Vec<Row> {
    let mut out = Vec::new();
    if let Some(s) = &r.single {
        let ratio = s.max_rps / s.pgbench_tps.max(1e-9);
        out.push(Row {
            scenario: format!(
                "single `POST /v1/credentials`, {} clients (validator used {:.2} cores)",
                s.concurrency, s.validator_cores
            ),
            baseline: format!(
                "pgbench same tx: {} tx/s (median of {} alternating rounds)",
                f0(s.pgbench_tps),
                s.rounds.len()
            ),
            result: format!(
                "{} req/s ({} errors); per-round ratios {}",
                f0(s.max_rps),
                s.errors,
                s.rounds
                    .iter()
                    .map(|r| format!("{:.0} %", r.ratio() * 100.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ratio: format!("{:.0} %", ratio * 100.0),
            target: "≥ 60 % of pgbench".into(),
            met: Some(ratio >= 0.6),
        });
        out.push(Row {
            scenario: format!(
                "  latency at half the max rate ({} req/s)",
                f0(s.half_rate_rps)
            ),
            baseline: format!(
                "pgbench same tx at that rate: p50 {} ms, p99 {} ms",
                f1(s.pgbench_at_rate.p50_ms),
                f1(s.pgbench_at_rate.p99_ms)
            ),
            result: format!(
                "p50 {} ms, p99 {} ms (n={}); over 20 ms: {} requests, {} of them sent in the worst {} seconds; driver lag p99 {} ms; API waited {:.2} ms for a CPU per request (used {:.2} ms); machine {:.0} % busy, {:.1} % stolen",
                f1(s.latency.p50_ms),
                f1(s.latency.p99_ms),
                s.latency.n,
                s.slow.slow,
                s.slow.in_worst_windows,
                s.slow.windows,
                f1(s.driver_lag.p99_ms),
                s.api_run_queue_ms_per_request,
                s.api_cpu_ms_per_request,
                s.open_loop_busy_pct,
                s.open_loop_steal_pct,
            ),
            ratio: format!(
                "p99 {:.1}×",
                s.latency.p99_ms / s.pgbench_at_rate.p99_ms.max(1e-9)
            ),
            target: "p99 < 20 ms".into(),
            met: Some(s.latency.n > 0 && s.latency.p99_ms < 20.0),
        });
    }
    if let Some(s) = &r.single {
        out.push(Row {
            scenario: format!(
                "  latency at a fixed {} req/s (machine {:.0} % busy)",
                f0(s.fixed_rate_rps),
                s.fixed_busy_pct
            ),
            baseline: format!(
                "pgbench same tx at that rate: p50 {} ms, p99 {} ms",
                f1(s.fixed_pgbench.p50_ms),
                f1(s.fixed_pgbench.p99_ms)
            ),
            result: format!(
                "p50 {} ms, p99 {} ms (n={})",
                f1(s.fixed_latency.p50_ms),
                f1(s.fixed_latency.p99_ms),
                s.fixed_latency.n
            ),
            ratio: format!(
                "p99 {:.1}×",
                s.fixed_latency.p99_ms / s.fixed_pgbench.p99_ms.max(1e-9)
            ),
            target: "— (context for the row above)".into(),
            met: None,
        });
    }
    if let Some(b) = &r.bulk {
        out.push(Row {
            scenario: format!(
                "bulk issuance into PostgreSQL, {} credentials, {} requests in flight (validator {:.2} cores)",
                b.n, b.in_flight, b.validator_cores
            ),
            baseline: format!(
                "psql COPY same rows: {} rows/s (the API's median round of {} alternating rounds)",
                f0(b.copy_rows_per_sec),
                b.rounds.len()
            ),
            result: format!(
                "{} credentials/s (median); per round {}",
                f0(b.api_rows_per_sec),
                b.rounds
                    .iter()
                    .map(|r| f0(r.api_rows_per_sec))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ratio: format!(
                "{:.0} %",
                100.0 * b.api_rows_per_sec / b.copy_rows_per_sec.max(1e-9)
            ),
            target: "≥ 20,000 credentials/s".into(),
            met: Some(b.api_rows_per_sec >= 20_000.0),
        });
    }
    if let Some(a) = &r.anchor40k {
        out.push(Row {
            scenario: format!(
                "{} credentials issued and anchored, merkle mode (validator {:.2} cores)",
                a.n, a.validator_cores
            ),
            baseline: "—".into(),
            result: format!(
                "{} s wall ({} s issuing), {} transactions",
                f1(a.wall_secs),
                f1(a.issue_secs),
                a.transactions
            ),
            ratio: "—".into(),
            target: "< 120 s".into(),
            met: Some(a.wall_secs < 120.0),
        });
    }
    if let Some(c) = &r.claim {
        out.push(Row {
            scenario: format!("outbox claim latency, {} dead tuples", c.dead_tuples),
            baseline: format!("0 dead tuples: p99 {:.2} ms", c.clean.p99_ms),
            result: format!(
                "p99 {:.2} ms (p50 {:.2})",
                c.with_dead.p99_ms, c.with_dead.p50_ms
            ),
            ratio: format!("{:.1}×", c.with_dead.p99_ms / c.clean.p99_ms.max(1e-9)),
            target: "p99 < 10 ms".into(),
            met: Some(c.with_dead.p99_ms < 10.0),
        });
    }
    if let Some(wk) = &r.wakeup {
        out.push(Row {
            scenario: "request → relay claims the job (real relay process; the clock starts before the issuing request)".into(),
            baseline: format!(
                "same relay, LISTEN off, {} ms poll: p50 {} ms, p99 {} ms",
                wk.poll_interval_ms,
                f0(wk.poll.p50_ms),
                f0(wk.poll.p99_ms)
            ),
            result: format!(
                "LISTEN/NOTIFY: p50 {:.2} ms, p99 {:.2} ms (n={})",
                wk.notify.p50_ms, wk.notify.p99_ms, wk.notify.n
            ),
            ratio: format!("{:.0}× faster", wk.poll.p99_ms / wk.notify.p99_ms.max(1e-9)),
            target: "p99 < 25 ms".into(),
            met: Some(wk.notify.p99_ms < 25.0),
        });
    }
    if let Some(l) = &r.chain_latency {
        out.push(Row {
            scenario: format!("issue → confirmed, single mode (n={})", l.n),
            baseline: format!(
                "airdrop confirms: p50 {} ms",
                f0(l.airdrop_confirmed.p50_ms)
            ),
            result: format!(
                "p50 {} ms, p99 {} ms",
                f0(l.confirmed.p50_ms),
                f0(l.confirmed.p99_ms)
            ),
            ratio: format!(
                "{:.1}×",
                l.confirmed.p50_ms / l.airdrop_confirmed.p50_ms.max(1e-9)
            ),
            target: "p50 < 1,500 ms".into(),
            met: Some(l.confirmed.p50_ms < 1_500.0),
        });
        // The overhead is measured per credential against the validator's finality of that
        // credential's own transaction; airdrops (sent at other moments, while the chain's
        // slot pace varies) are shown for scale only.
        let overhead = l.finality_overhead.p50_ms;
        out.push(Row {
            scenario: format!("issue → finalized, single mode (n={})", l.n),
            baseline: format!(
                "validator reports the same tx finalized; airdrop finalizes: p50 {} ms",
                f0(l.airdrop_finalized.p50_ms)
            ),
            result: format!(
                "p50 {} ms; overhead over the tx's own finality p50 {} ms, p99 {} ms",
                f0(l.finalized.p50_ms),
                f0(overhead),
                f0(l.finality_overhead.p99_ms)
            ),
            ratio: format!(
                "{:.2}×",
                l.finalized.p50_ms / l.airdrop_finalized.p50_ms.max(1e-9)
            ),
            target: "overhead < 1,000 ms at p50".into(),
            met: Some(overhead < 1_000.0),
        });
    }
    if let Some(c) = &r.cost {
        out.push(Row {
            scenario: "chain cost per credential (`meta.fee` of every finalized anchor, read back with `getTransaction`, fee payer checked)".into(),
            baseline: format!(
                "single mode: {} lamports ({} transactions; the relay's estimate said {})",
                f0(c.single_lamports_per_credential),
                c.single_transactions,
                f0(c.single_estimate_lamports)
            ),
            result: format!(
                "merkle: {:.2} lamports ({} transactions, {} credentials)",
                c.merkle_lamports_per_credential, c.merkle_transactions, c.merkle_members
            ),
            ratio: format!(
                "1/{:.0}",
                c.single_lamports_per_credential / c.merkle_lamports_per_credential.max(1e-9)
            ),
            target: "merkle ≤ 10 lamports".into(),
            met: Some(
                c.merkle_lamports_per_credential > 0.0 && c.merkle_lamports_per_credential <= 10.0,
            ),
        });
    }
    if let Some(a) = &r.anchor_rate {
        out.push(Row {
            scenario: format!(
                "sustained anchoring, single mode: {} credentials to finalized (one fee payer)",
                a.n
            ),
            baseline: format!(
                "raw sender, {} memo transactions on the same validator and payer count: {} tx/s finalized (submitted in {:.1} s)",
                a.n,
                f1(a.raw_tx_per_sec),
                a.raw_send_s
            ),
            result: format!("{} tx/s finalized", f1(a.relay_tx_per_sec)),
            ratio: format!("{:.0} %", 100.0 * a.relay_tx_per_sec / a.raw_tx_per_sec.max(1e-9)),
            target: "—".into(),
            met: None,
        });
    }
    for (name, error) in &r.failed {
        out.push(Row {
            scenario: format!("**{name}: FAILED**"),
            baseline: "—".into(),
            result: error.clone(),
            ratio: "—".into(),
            target: "measured".into(),
            met: Some(false),
        });
    }
    if let Some(g) = &r.growth {
        out.extend(growth_rows(g, &r.growth_planned));
    }
    if let Some(rc) = &r.reconcile {
        out.push(Row {
            scenario: format!("reconciler scan ({} transactions)", rc.transactions),
            baseline: "—".into(),
            result: format!("{} tx/s ({} ms)", f0(rc.tx_per_sec), rc.elapsed_ms),
            ratio: "—".into(),
            target: "≥ 500 tx/s".into(),
            met: Some(rc.tx_per_sec >= 500.0),
        });
    }
    if let Some(s) = &r.status_list {
        out.push(Row {
            scenario: format!(
                "status list of {} entries, {} revoked: generate + sign",
                s.entries, s.revoked
            ),
            baseline: format!("empty list: {} ms", f1(s.sign_empty_ms_p50)),
            result: format!(
                "{} ms ({} bytes signed; empty {} bytes)",
                f1(s.sign_ms_p50),
                s.credential_bytes,
                s.credential_empty_bytes
            ),
            ratio: "—".into(),
            target: "stated (issue #20)".into(),
            met: None,
        });
        out.push(Row {
            scenario: "status list: served (GET) and a revocation until served".into(),
            baseline: "—".into(),
            result: format!(
                "GET p50 {} ms, p99 {} ms ({} requests); revoke → served {} ms",
                f1(s.get_p50_ms),
                f1(s.get_p99_ms),
                s.gets,
                f0(s.revoke_to_served_ms)
            ),
            ratio: "—".into(),
            target: "stated (debounce 2 s + anchor)".into(),
            met: None,
        });
    }
    for m in &r.memory {
        out.push(Row {
            scenario: format!("memory: {}", m.service),
            baseline: "—".into(),
            result: format!("idle {} MiB, peak {} MiB", f1(m.idle_mib), f1(m.peak_mib)),
            ratio: "—".into(),
            target: "idle < 50 MiB, peak < 200 MiB".into(),
            met: Some(m.idle_mib < 50.0 && m.peak_mib < 200.0),
        });
    }
    out
}

pub fn markdown(facts: &Facts, rows: &[Row], plots: &[(String, String)]) -> String {
    let mut md = String::new();
    md.push_str(&format!(
        "# Benchmark report {} ({})\n\n",
        facts.date, facts.mode
    ));
    md.push_str(&format!(
        "Machine: {} cores ({}), {:.1} GiB RAM. Build profile: {}. {}. PostgreSQL: {}. Validator: {}. Commit {}.\n\n",
        facts.cores, facts.cpu, facts.memory_gib, facts.profile, facts.rustc, facts.postgres, facts.validator, facts.commit
    ));
    md.push_str(&format!(
        "PostgreSQL durability for every figure: {}.\n\n",
        facts.durability
    ));
    md.push_str("Every figure was measured in this run, on this machine; baselines ran in the same run. The local validator shares the 2 cores with the services: the \"validator used N cores\" figure says how much CPU it took during a scenario.");
    match facts.validator_scheduling {
        ValidatorScheduling::OwnGroup { nice } => md.push_str(&format!(" It ran in a scheduling group of its own at nice {nice}: a test fixture (in production the chain is elsewhere), it yields the CPU to the services and to the baselines alike, and takes what they leave idle.\n\n")),
        ValidatorScheduling::SharedGroup { nice } => md.push_str(&format!(" Its threads ran at nice {nice} in the bench's scheduling group (PostgreSQL has its own group, so the validator still competes with the database).\n\n")),
        ValidatorScheduling::Normal => md.push_str(" It ran at normal priority (lowering it failed), so its bursts preempt the services.\n\n"),
    }
    md.push_str("| scenario | baseline (same run) | result | ratio | target | met |\n|---|---|---|---|---|---|\n");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.scenario, r.baseline, r.result, r.ratio, r.target, met
        ));
    }
    for (title, file) in plots {
        md.push_str(&format!("\n![{title}]({file})\n"));
    }
    md
}

/// One row per figure of the growth scenario: the value at each step, and the last step
/// against the first (target: no worse than 1.5×; for a rate, no less than 1/1.5 of it).
fn growth_rows(g: &crate::scenarios::Growth, planned: &[usize]) -> Vec<Row> {
    use crate::scenarios::GrowthStep;
    let stopped = g.stopped.as_ref().map(|why| Row {
        scenario: "growth: **stopped**".into(),
        baseline: "—".into(),
        result: why.clone(),
        ratio: "—".into(),
        target: "every step measured".into(),
        met: Some(false),
    });
    let (Some(first), Some(last)) = (g.steps.first(), g.steps.last()) else {
        return stopped.into_iter().collect();
    };
    type Pick = fn(&GrowthStep) -> f64;
    // (figure, value, higher is better, unit)
    let figures: [(&str, Pick, bool, &str); 9] = [
        (
            "single issuance, closed loop",
            |s| s.issue_rps,
            true,
            "req/s",
        ),
        (
            "single issuance p99 at 100 req/s",
            |s| s.issue_p99_ms,
            false,
            "ms",
        ),
        ("relay claim p99", |s| s.claim_p99_ms, false, "ms"),
        (
            "`GET /v1/credentials/{id}` p99",
            |s| s.get_p99_ms,
            false,
            "ms",
        ),
        ("list, first page p99", |s| s.list_first_p99_ms, false, "ms"),
        (
            "list, page from the middle p99",
            |s| s.list_deep_p99_ms,
            false,
            "ms",
        ),
        ("verify by details p99", |s| s.verify_p99_ms, false, "ms"),
        (
            "reconciler pass over this step's window (`run-once --since` the step's start)",
            |s| s.reconcile_pass_ms as f64,
            false,
            "ms",
        ),
        (
            "bytes on disk per credential (tables + indexes + outbox + history)",
            |s| s.bytes_per_credential,
            false,
            "B",
        ),
    ];
    let label = |n: usize| match n {
        0 => "0".to_string(),
        n if n % 1_000_000 == 0 => format!("{} M", n / 1_000_000),
        n => format!("{n}"),
    };
    figures
        .iter()
        .map(|&(name, pick, higher_better, unit)| {
            // Every step planned must have been measured for a verdict: comparing 0 with 1 M
            // when 10 M failed would read as met.
            let complete = g.stopped.is_none() && g.steps.len() == planned.len();
            let at = |s: &GrowthStep| {
                let extra = if unit == "B" {
                    format!(" (table: {} rows)", s.table_rows)
                } else if name.starts_with("reconciler") {
                    format!(
                        " ({} transactions, {} asked for again)",
                        s.reconcile_transactions, s.reconcile_retried
                    )
                } else {
                    String::new()
                };
                format!("{} {unit}{extra}", f1(pick(s)))
            };
            let is_bytes = unit == "B";
            // Bytes per credential of near-empty tables are their fixed overhead: the bytes
            // figure is compared with the first step that held rows (1 M).
            let base = if is_bytes && g.steps.len() > 2 {
                &g.steps[1]
            } else {
                first
            };
            let (v0, vn) = (pick(base), pick(last));
            let worse = if higher_better {
                v0 / vn.max(1e-9)
            } else {
                vn / v0.max(1e-9)
            };
            Row {
                scenario: format!("growth: {name}"),
                baseline: format!("at {} credentials: {}", label(base.credentials), at(base)),
                result: g
                    .steps
                    .iter()
                    .filter(|s| s.credentials > base.credentials)
                    .map(|s| {
                        let fill = if is_bytes {
                            format!(" (rows written in {:.0} s)", s.fill_s)
                        } else {
                            String::new()
                        };
                        format!("at {}: {}{fill}", label(s.credentials), at(s))
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                ratio: format!(
                    "{worse:.2}× {}",
                    if worse > 1.0 { "worse" } else { "(no worse)" }
                ),
                target: "≤ 1.5× worse".into(),
                met: complete.then_some(worse <= 1.5),
            }
        })
        .chain(stopped)
        .collect()
}
