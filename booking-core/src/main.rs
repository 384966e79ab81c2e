use clap::Parser;
use marquee_platform::cli::Cli;

/// booking-core: catalog, seat maps, holds, bookings and the admin API.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    cli: Cli,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Args::parse().cli.settings();
    marquee_platform::telemetry::init(&settings.log);
    let app = booking_core::Application::build(settings).await?;
    tracing::info!(port = app.port(), "booking-core listening");
    app.run_until_stopped().await
}
