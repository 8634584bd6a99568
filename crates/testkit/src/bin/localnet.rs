//! `localnet`: starts one throw-away PostgreSQL and (when built) one solana-test-validator,
//! and either runs a command with them (`exec`, used by `make test`) or keeps them up until
//! interrupted (`up`, used by `make demo`). Everything is stopped and deleted on exit.

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

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
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
        } => {
            let servers = tokio::task::spawn_blocking(move || start(validator, None)).await??;
            let mut file = std::fs::File::create(&env_file)
                .with_context(|| format!("creating {}", env_file.display()))?;
            for (k, v) in &servers.vars {
                writeln!(file, "export {k}={v}")?;
            }
            file.sync_all()?;
            eprintln!("localnet: up; variables in {}", env_file.display());
            wait_for_signal().await?;
            eprintln!("localnet: stopping");
            drop(servers);
            Ok(())
        }
    }
}
