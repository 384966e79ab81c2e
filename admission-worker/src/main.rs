use clap::Parser;
use marquee_platform::cli::Cli;

/// admission-worker: admits waiting visitors per event at the operator's rate and cap.
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
        marquee_platform::telemetry::init(&settings.log, &settings.telemetry, "admission-worker");
    let app = admission_worker::Application::build(settings).await?;
    tracing::info!(
        port = app.port(),
        "admission-worker serving health and metrics"
    );
    app.run_until_stopped().await
}
