use clap::Parser;
use marquee_platform::cli::Cli;

/// Every poll allocates a little (headers, the JSON answer, the span); mimalloc's per-thread
/// free lists make that a fraction of glibc malloc's cost under many connections.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// queue-gateway: the waiting room and the public edge of Marquee.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    cli: Cli,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // No transparent huge pages for this process. mimalloc advises the kernel to back its
    // arenas with them, and the kernel's background collapser then fills a 2 MiB page around
    // any one 4 KiB page in use, while mimalloc's purges split them again: the soak saw the
    // gateway's memory move by megabytes with nothing in flight, half of it in huge pages.
    // Without them the memory is what the gateway uses. Best effort: a kernel without THP
    // refuses the call, and then there is nothing to disable.
    let thp_disabled = rustix::thread::disable_transparent_huge_pages(true).is_ok();
    let settings = Args::parse().cli.settings();
    // Kept to the end of main: dropping it sends the last spans.
    let _telemetry =
        marquee_platform::telemetry::init(&settings.log, &settings.telemetry, "queue-gateway");
    let app = queue_gateway::Application::build(settings).await?;
    tracing::info!(port = app.port(), thp_disabled, "queue-gateway listening");
    app.run_until_stopped().await
}
