use clap::Parser;
use marquee_platform::cli::Cli;

/// booking-core: catalog, seat maps, holds, bookings and the admin API.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    cli: Cli,
    /// Apply pending database migrations and exit (the deployment's migration job).
    #[arg(long)]
    migrate: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = args.cli.settings();
    marquee_platform::telemetry::init(&settings.log);
    if args.migrate {
        let db = sqlx::PgPool::connect(settings.database.url.expose()).await?;
        booking_core::startup::MIGRATOR.run(&db).await?;
        tracing::info!("migrations applied");
        return Ok(());
    }
    let app = booking_core::Application::build(settings).await?;
    tracing::info!(port = app.port(), "booking-core listening");
    app.run_until_stopped().await
}
