//! reconciler entry point: the loop (default) or a single run.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use reconciler::{Application, Settings, Since};

#[derive(Parser)]
#[command(
    version,
    about = "Reconciles PostgreSQL with the issuers' anchors on Solana"
)]
struct Cli {
    #[arg(long, env = "APP_CONFIG_FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the periodic loop with probes (default).
    Serve,
    /// One run over a window, then exit: after a restore from backup, or to investigate.
    RunOnce {
        /// How far back: a duration (`90s`, `30m`, `1h`, `2d`) or `slot N`.
        #[arg(long, default_value = "1h")]
        since: Since,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings: Settings = service_shell::settings::load(cli.config.as_deref())?;
    service_shell::telemetry::init(&settings.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "reconciler probes listening");
            app.run_until(service_shell::shutdown::signal()).await
        }
        Command::RunOnce { since } => {
            let report = reconciler::reconciler_from_settings(&settings)?
                .run_once(since, false)
                .await?;
            // A non-zero exit, so a script that runs this after a restore notices that
            // nothing was checked and retries.
            anyhow::ensure!(
                !report.skipped,
                "another reconciler is running: nothing done"
            );
            println!("{}", serde_json::to_string_pretty(&report)?);
            // After a restore this run is what brings the anchors back: one it could not read
            // is one it could not recover, so a script must not take the run as done.
            anyhow::ensure!(
                report.unretrievable == 0,
                "{} history entries listed at finalized could not be fetched: nothing was \
                 decided for them; run again",
                report.unretrievable
            );
            Ok(())
        }
    }
}
