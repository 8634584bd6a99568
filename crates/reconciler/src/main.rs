//! reconciler entry point.

use std::path::PathBuf;

use clap::Parser;
use reconciler::{Application, Settings};

#[derive(Parser)]
#[command(about = "Reconciles PostgreSQL with the issuer's anchors on Solana")]
struct Cli {
    #[arg(long, env = "APP_CONFIG_FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings: Settings = service_shell::settings::load(cli.config.as_deref())?;
    service_shell::telemetry::init(&settings.log);
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "reconciler probes listening");
    app.run_until(service_shell::shutdown::signal()).await
}
