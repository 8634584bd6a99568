//! issuer-api entry point: parse the command line, load config, init tracing, run.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use issuer_api::{admin, Application, Settings};

#[derive(Parser)]
#[command(version, about = "Academic credential issuer API")]
struct Cli {
    /// TOML config file (environment variables APP__SECTION__KEY override it).
    #[arg(long, env = "APP_CONFIG_FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Operator commands.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an issuer with an API key and a signing key; prints the API key once (JSON).
    CreateIssuer {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// Base58 public key of the issuer's Solana anchoring key (required: without it no
        /// anchor could ever be trusted).
        #[arg(long)]
        anchor_pubkey: String,
    },
    /// Activate a new anchoring key now and retire the active one after a grace period (one
    /// transaction); prints both keys and both instants (JSON). Anchors paid by the old key
    /// before its retirement keep verifying; anything it pays for afterwards is not trusted.
    RotateAnchorKey {
        #[arg(long)]
        issuer: String,
        /// Base58 public key of the new anchoring key.
        #[arg(long)]
        new_pubkey: String,
        /// Seconds the old key still vouches for anchors after the rotation: transactions the
        /// relay signed with it just before can land up to a blockhash lifetime (~60-90 s)
        /// later. 0 when the old key is compromised.
        #[arg(long, default_value_t = 120)]
        grace_secs: u64,
    },
    /// Retire the issuer's active signing key and create a new one (one transaction);
    /// prints the new key id and public key (JSON).
    RotateSigningKey {
        #[arg(long)]
        issuer: String,
    },
    /// Print a new random master key (base64) for signing.master_key.
    NewMasterKey,
    /// Re-seal every issuer signing seed under signing.master_key, opening each with
    /// signing.previous_master_keys, in one transaction (all or nothing); prints counts
    /// (JSON). Run it after every replica has the new master_key and the old one in
    /// previous_master_keys; then remove previous_master_keys (README, "Rotating the master
    /// key").
    RotateMasterKey,
    /// Create another API key for an issuer; prints it once (JSON). Its other keys keep
    /// working until revoked.
    AddApiKey {
        #[arg(long)]
        issuer: String,
    },
    /// Revoke an API key by its id (or the whole key); replicas refuse it within
    /// http.api_key_cache_secs. Prints the key id, issuer and instant (JSON).
    RevokeApiKey {
        #[arg(long)]
        key_id: String,
    },
    /// List an issuer's API keys: ids and dates, never secrets (JSON).
    ListApiKeys {
        #[arg(long)]
        issuer: String,
    },
    /// Set how an issuer's credentials are anchored: `single`, `merkle`, or `default` (the
    /// relay's `relay.mode`). Credentials already sealed or sent finish the way they started.
    SetAnchorMode {
        #[arg(long)]
        id: String,
        #[arg(long, value_parser = ["single", "merkle", "default"])]
        mode: String,
    },
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Admin(AdminCommand::NewMasterKey)) = cli.command {
        println!("{}", admin::new_master_key()?);
        return Ok(());
    }
    let settings: Settings = service_shell::settings::load(cli.config.as_deref())?;
    service_shell::telemetry::init(&settings.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            // Test builds only: the crash suite arms `return(kill)` failpoints this way.
            let armed = crashpoint::arm_from_env()?;
            if armed > 0 {
                tracing::warn!(armed, "failpoints armed from FAILPOINTS");
            }
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await?
        }
        Command::Migrate => {
            let store = store::Store::connect_lazy(&settings.database)?;
            let applied = store.migrate().await?;
            println!("{}", serde_json::json!({"applied_migrations": applied}));
        }
        Command::Admin(AdminCommand::CreateIssuer {
            id,
            name,
            anchor_pubkey,
        }) => {
            let created = admin::create_issuer(&settings, &id, &name, &anchor_pubkey).await?;
            println!("{}", serde_json::to_string_pretty(&created)?);
        }
        Command::Admin(AdminCommand::RotateAnchorKey {
            issuer,
            new_pubkey,
            grace_secs,
        }) => {
            let rotated = admin::rotate_anchor_key(
                &settings,
                &issuer,
                &new_pubkey,
                std::time::Duration::from_secs(grace_secs),
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&rotated)?);
        }
        Command::Admin(AdminCommand::RotateSigningKey { issuer }) => {
            let rotated = admin::rotate_signing_key(&settings, &issuer).await?;
            println!("{}", serde_json::to_string_pretty(&rotated)?);
        }
        Command::Admin(AdminCommand::SetAnchorMode { id, mode }) => {
            admin::set_anchor_mode(&settings, &id, &mode).await?;
            println!(
                "{}",
                serde_json::json!({"issuer_id": id, "anchor_mode": mode})
            );
        }
        Command::Admin(AdminCommand::NewMasterKey) => {}
        Command::Admin(AdminCommand::RotateMasterKey) => {
            let rotated = admin::rotate_master_key(&settings).await?;
            println!("{}", serde_json::to_string_pretty(&rotated)?);
        }
        Command::Admin(AdminCommand::AddApiKey { issuer }) => {
            let added = admin::add_api_key(&settings, &issuer).await?;
            println!("{}", serde_json::to_string_pretty(&added)?);
        }
        Command::Admin(AdminCommand::RevokeApiKey { key_id }) => {
            let revoked = admin::revoke_api_key(&settings, &key_id).await?;
            println!("{}", serde_json::to_string_pretty(&revoked)?);
        }
        Command::Admin(AdminCommand::ListApiKeys { issuer }) => {
            let keys = admin::list_api_keys(&settings, &issuer).await?;
            println!("{}", serde_json::to_string_pretty(&keys)?);
        }
    }
    Ok(())
}
