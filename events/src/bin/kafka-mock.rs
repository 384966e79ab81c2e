//! The embedded mock Kafka cluster as a process of its own: the broker's log then lives here,
//! not inside the events service, so a soak can measure the service's own memory
//! (`loadtest/soak.sh` starts it and points the events service at it with
//! `MARQUEE_KAFKA__BROKERS`). Creates the configured topics, writes the bootstrap address to
//! `[kafka] bootstrap_file` (where the opening-night audit reads it) and runs until SIGTERM.

use clap::Parser;
use marquee_platform::cli::Cli;

/// kafka-mock: librdkafka's mock cluster with Marquee's topics, until stopped.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    cli: Cli,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Args::parse().cli.settings();
    let _telemetry =
        marquee_platform::telemetry::init(&settings.log, &settings.telemetry, "kafka-mock");
    let kafka = &settings.kafka;
    let mock = marquee_events::kafka::MockKafka::start(&[&kafka.topic, &kafka.dead_letter_topic])?;
    if let Some(dir) = kafka.bootstrap_file.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&kafka.bootstrap_file, &mock.bootstrap)?;
    // The bootstrap address on stdout too, for whoever started this.
    println!("{}", mock.bootstrap);
    tracing::info!(bootstrap = %mock.bootstrap, "mock Kafka cluster up");
    marquee_platform::shutdown::signal().await;
    Ok(())
}
