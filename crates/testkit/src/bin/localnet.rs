//! `localnet`: starts one throw-away PostgreSQL and (when built) one solana-test-validator,
//! and either runs a command with them (`exec`, used by `make test`) or keeps them up until
//! interrupted (`up`). `up --services` also provisions an issuer and runs the three services
//! (`testkit::services`): the one bring-up of the demo and the CI scripts. Everything is
//! stopped and deleted on exit.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use testkit::postgres::TestPostgres;
use testkit::validator::{validator_binary, TestValidator};

#[derive(Parser)]
#[command(about = "Throw-away PostgreSQL + local Solana validator for tests and the demo")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ValidatorMode {
    /// Start it when the binary is installed.
    Auto,
    /// Fail when the binary is missing.
    Required,
    /// Do not start it.
    Off,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a command with DATABASE_URL and SOLANA_RPC_URL exported; exit with its code.
    Exec {
        #[arg(long, value_enum, default_value = "auto")]
        validator: ValidatorMode,
        /// Run the validator in a scheduling group of its own at this nice value (the
        /// benchmark: the fixture then yields the CPU to the services it shares it with).
        #[arg(long, allow_hyphen_values = true)]
        validator_nice: Option<i32>,
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Keep the servers up until SIGINT/SIGTERM; write the variables to an env file.
    Up {
        #[arg(long, value_enum, default_value = "required")]
        validator: ValidatorMode,
        #[arg(long)]
        env_file: PathBuf,
        /// Also provision an issuer and run issuer-api, outbox-relay and reconciler (from
        /// --bin-dir); their URLs, ports, pids, the API key and the anchoring key go into
        /// the env file. The services inherit this process's environment, so a caller's
        /// `APP__*` variable (say `APP__RECONCILE__INTERVAL_SECS`) reaches them.
        #[arg(long)]
        services: bool,
        /// Where the service binaries are (default: next to this binary).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Keypair, issuer answer and service logs (default: a temporary directory).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        #[arg(long, default_value = "local-university")]
        issuer_id: String,
        #[arg(long, default_value = "Local University")]
        issuer_name: String,
        /// Run no relay (nothing is anchored until one starts).
        #[arg(long)]
        no_relay: bool,
        /// Run no reconciler loop.
        #[arg(long)]
        no_reconciler: bool,
        #[arg(long, default_value = "warn")]
        log_filter: String,
    },
}

struct Servers {
    _pg: TestPostgres,
    validator: Option<TestValidator>,
    vars: Vec<(String, String)>,
}

fn start(mode: ValidatorMode, nice: Option<i32>) -> anyhow::Result<Servers> {
    let pg = TestPostgres::start().context("starting PostgreSQL")?;
    let mut vars = vec![("DATABASE_URL".to_string(), pg.admin_url())];
    eprintln!("localnet: PostgreSQL on port {}", pg.port());
    let validator = match (mode, validator_binary()) {
        (ValidatorMode::Off, _) => None,
        (ValidatorMode::Required, None) => {
            bail!("solana-test-validator is not installed: run `make validator`")
        }
        (ValidatorMode::Auto, None) => {
            eprintln!("localnet: solana-test-validator not installed; chain tests will start their own or fail");
            None
        }
        (_, Some(_)) => {
            let v = TestValidator::start_with(nice).context("starting solana-test-validator")?;
            eprintln!("localnet: validator RPC at {}", v.rpc_url());
            vars.push(("SOLANA_RPC_URL".to_string(), v.rpc_url().to_string()));
            Some(v)
        }
    };
    Ok(Servers {
        _pg: pg,
        validator,
        vars,
    })
}

/// Single-quoted for `source`: a value (an issuer name, a path) may hold spaces.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Exec {
            validator,
            validator_nice,
            command,
        } => {
            let servers =
                tokio::task::spawn_blocking(move || start(validator, validator_nice)).await??;
            let Some((program, args)) = command.split_first() else {
                bail!("no command given");
            };
            let mut child = tokio::process::Command::new(program)
                .args(args)
                .envs(servers.vars.iter().map(|(k, v)| (k, v)))
                .spawn()
                .with_context(|| format!("spawning {program}"))?;
            let status = tokio::select! {
                status = child.wait() => status?,
                _ = wait_for_signal() => {
                    let _ = child.kill().await;
                    child.wait().await?
                }
            };
            drop(servers.validator);
            drop(servers._pg);
            std::process::exit(status.code().unwrap_or(1));
        }
        Cmd::Up {
            validator,
            env_file,
            services,
            bin_dir,
            work_dir,
            issuer_id,
            issuer_name,
            no_relay,
            no_reconciler,
            log_filter,
        } => {
            // The signal handlers first: a SIGTERM while the stack comes up (a script giving
            // up on it) must still stop everything below, not kill this process bare.
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            let interrupted = async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            };
            tokio::pin!(interrupted);
            let starting = tokio::task::spawn_blocking(move || start(validator, None));
            tokio::pin!(starting);
            let servers = tokio::select! {
                started = &mut starting => started??,
                _ = &mut interrupted => {
                    // Let the start finish, then stop what it started (dropping it).
                    eprintln!("localnet: interrupted while starting");
                    drop(starting.await);
                    return Ok(());
                }
            };
            let mut vars = servers.vars.clone();
            // Dropped in this order at the end: the services, their directory, then the
            // servers they use.
            let mut stack = None;
            let mut tmp = None;
            if services {
                let var = |name: &str| {
                    vars.iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .with_context(|| format!("--services needs {name}"))
                };
                let (database_url, rpc_url) = (var("DATABASE_URL")?, var("SOLANA_RPC_URL")?);
                let bin_dir = match bin_dir {
                    Some(dir) => dir,
                    None => std::env::current_exe()?
                        .parent()
                        .context("localnet has no directory")?
                        .to_path_buf(),
                };
                let work_dir = match work_dir {
                    Some(dir) => dir,
                    None => {
                        let dir = tempfile::tempdir()?;
                        let path = dir.path().to_path_buf();
                        tmp = Some(dir);
                        path
                    }
                };
                let opts = testkit::services::StackOptions {
                    bin_dir,
                    work_dir,
                    issuer_id,
                    issuer_name,
                    sol: 10,
                    relay: !no_relay,
                    reconciler: !no_reconciler,
                    log_filter,
                };
                // Services started before an interruption or a failure are killed when the
                // half-built stack is dropped inside `start_stack`; the servers below by
                // `servers` going out of scope on return.
                let started = tokio::select! {
                    started = testkit::services::start_stack(&opts, &database_url, &rpc_url) => started?,
                    _ = &mut interrupted => {
                        eprintln!("localnet: interrupted while starting the services");
                        return Ok(());
                    }
                };
                eprintln!(
                    "localnet: services up (logs in {})",
                    opts.work_dir.display()
                );
                vars.extend(started.vars.iter().cloned());
                stack = Some(started);
            }
            // Written whole, then renamed: a script sourcing it as soon as it exists never
            // reads half of it.
            let partial = env_file.with_extension("partial");
            let mut file = std::fs::File::create(&partial)
                .with_context(|| format!("creating {}", partial.display()))?;
            for (k, v) in &vars {
                writeln!(file, "export {k}={}", shell_quote(v))?;
            }
            file.sync_all()?;
            std::fs::rename(&partial, &env_file)
                .with_context(|| format!("writing {}", env_file.display()))?;
            eprintln!("localnet: up; variables in {}", env_file.display());
            interrupted.await;
            eprintln!("localnet: stopping");
            drop(stack);
            drop(tmp);
            drop(servers);
            Ok(())
        }
    }
}
