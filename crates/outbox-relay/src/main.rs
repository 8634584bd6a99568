//! outbox-relay entry point: serve, plus operator and demo helpers.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use outbox_relay::{Application, Settings};

#[derive(Parser)]
#[command(version, about = "Anchors queued credentials on Solana, exactly once")]
struct Cli {
    #[arg(long, env = "APP_CONFIG_FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay (default).
    Serve,
    /// Put dead-lettered jobs back in the queue (all, or one credential's).
    RequeueFailed {
        #[arg(long)]
        credential: Option<String>,
    },
    /// Write a new anchoring keypair (Solana keypair JSON) and print its public key.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key of a keypair file.
    Pubkey {
        #[arg(long)]
        keypair: PathBuf,
    },
    /// Request an airdrop to a keypair (local validator / devnet only).
    Airdrop {
        #[arg(long)]
        keypair: PathBuf,
        #[arg(long, default_value_t = 10)]
        sol: u64,
        #[arg(long, env = "APP__CHAIN__RPC_URL")]
        rpc_url: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Keygen { out } => {
            let kp = chain::AnchorKeypair::generate();
            std::fs::write(&out, kp.to_json_string())?;
            println!("{}", kp.pubkey_base58());
        }
        Command::Pubkey { keypair } => {
            println!(
                "{}",
                chain::AnchorKeypair::from_json_file(&keypair)?.pubkey_base58()
            );
        }
        Command::Airdrop {
            keypair,
            sol,
            rpc_url,
        } => {
            let kp = chain::AnchorKeypair::from_json_file(&keypair)?;
            let address = kp.pubkey_base58();
            let client = chain::ChainClient::read_only(chain::ChainConfig::new(
                rpc_url,
                chain::Cluster::Localnet,
            ));
            client
                .request_airdrop_and_confirm(&address, sol.saturating_mul(1_000_000_000))
                .await?;
            println!("{address}");
        }
        Command::RequeueFailed { credential } => {
            let settings: Settings = service_shell::settings::load(cli.config.as_deref())?;
            let store = store::Store::connect_lazy(&settings.database)?;
            let id = credential
                .map(|c| c.parse::<domain::CredentialId>())
                .transpose()
                .map_err(|_| anyhow::anyhow!("--credential is not a credential id"))?;
            let n = store.requeue_failed(id.as_ref()).await?;
            println!("{}", serde_json::json!({ "requeued": n }));
        }
        Command::Serve => {
            let settings: Settings = service_shell::settings::load(cli.config.as_deref())?;
            service_shell::telemetry::init(&settings.log);
            // Test builds only: the crash suite arms `return(kill)` failpoints this way.
            let armed = crashpoint::arm_from_env()?;
            if armed > 0 {
                tracing::warn!(armed, "failpoints armed from FAILPOINTS");
            }
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "relay probes listening");
            app.run_until(service_shell::shutdown::signal()).await?;
        }
    }
    Ok(())
}
