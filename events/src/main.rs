use clap::Parser;
use marquee_platform::cli::Cli;

/// marquee-events: publishes the outbox to Kafka and emails tickets.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    cli: Cli,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Args::parse().cli.settings();
    // Kept to the end of main: dropping it sends the last spans.
    let _telemetry =
        marquee_platform::telemetry::init(&settings.log, &settings.telemetry, "marquee-events");
    let app = marquee_events::Application::build(settings).await?;
    tracing::info!(
        port = app.port(),
        "marquee-events serving health and metrics"
    );
    app.run_until_stopped().await
}
