use clap::{Parser, Subcommand};
use marquee_platform::cli::Cli;

use booking_core::audit::CLI;
use booking_core::operators::{Role, store};

/// mimalloc, as the gateway: it gives the kernel back the pages a burst's work (seat maps of
/// shows no longer read, a crowd's verified tokens) freed, where glibc malloc kept them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// booking-core: catalog, seat maps, holds, bookings and the admin API.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    cli: Cli,
    /// Apply pending database migrations and exit (the deployment's migration job).
    #[arg(long)]
    migrate: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Named operators of the admin API (each change goes into the audit trail as `cli`).
    Operators {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Reseal every fan's email under the newest `[pii] keys` entry (add the new key last,
    /// run this, then retire the old key once the Kafka topic's retention has passed).
    RotatePiiKey,
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Add an operator and print its token, once: keep it, it is never shown again.
    Add {
        name: String,
        /// admin, event_manager or scanner.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// An event an event manager may manage (repeat for more; none for every event).
        #[arg(long = "event")]
        events: Vec<String>,
    },
    /// List operators (never their tokens).
    List,
    /// Revoke an operator: its token stops working at once.
    Revoke { name: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "must be admin, event_manager or scanner".into())
}

fn main() -> anyhow::Result<()> {
    let thp_disabled = marquee_platform::memory::disable_transparent_huge_pages();
    let args = Args::parse();
    let settings = args.cli.settings();
    let memory = settings.memory.clone();
    marquee_platform::memory::run(&memory, serve(args, settings, thp_disabled))?
}

async fn serve(
    args: Args,
    settings: marquee_platform::config::Settings,
    thp_disabled: bool,
) -> anyhow::Result<()> {
    // Kept to the end of serve: dropping it sends the last spans.
    let _telemetry =
        marquee_platform::telemetry::init(&settings.log, &settings.telemetry, "booking-core");
    if args.migrate {
        let db = sqlx::PgPool::connect(settings.database.url.expose()).await?;
        booking_core::startup::MIGRATOR.run(&db).await?;
        tracing::info!("migrations applied");
        return Ok(());
    }
    match args.command {
        Some(Command::Operators { command }) => {
            let db = sqlx::PgPool::connect(settings.database.url.expose()).await?;
            return operators(&db, command).await;
        }
        Some(Command::RotatePiiKey) => {
            let db = sqlx::PgPool::connect(settings.database.url.expose()).await?;
            let pii = marquee_platform::pii::Pii::from_settings(&settings.pii)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let swept = booking_core::pii_sweep::run(&db, &pii, true).await?;
            eprintln!(
                "sealed {} values in clear, resealed {} under key {}",
                swept.sealed,
                swept.resealed,
                pii.current_kid()
            );
            return Ok(());
        }
        None => {}
    }
    let app = booking_core::Application::build(settings).await?;
    tracing::info!(port = app.port(), thp_disabled, "booking-core listening");
    app.run_until_stopped().await
}

async fn operators(db: &sqlx::PgPool, command: OperatorCommand) -> anyhow::Result<()> {
    let fail = |e: booking_core::error::ApiError| {
        let p = e.to_problem();
        let fields: Vec<String> = p
            .errors
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect();
        anyhow::anyhow!("{} {}", p.detail, fields.join("; "))
    };
    match command {
        OperatorCommand::Add { name, role, events } => {
            let token = store::add(db, CLI, &name, role, &events)
                .await
                .map_err(fail)?;
            eprintln!(
                "operator {name} added as {}; its token (shown once):",
                role.as_str()
            );
            println!("{token}");
        }
        OperatorCommand::List => {
            for o in store::list(db).await.map_err(fail)? {
                let events = if o.events.is_empty() {
                    "all events".to_owned()
                } else {
                    o.events.join(",")
                };
                let revoked = o
                    .revoked_at
                    .map(|t| format!("  revoked {t}"))
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{events}\tadded {}{revoked}",
                    o.name,
                    o.role.as_str(),
                    o.created_at
                );
            }
        }
        OperatorCommand::Revoke { name } => {
            store::revoke(db, CLI, &name).await.map_err(fail)?;
            eprintln!("operator {name} revoked");
        }
    }
    Ok(())
}
