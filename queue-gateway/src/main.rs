use clap::Parser;
use marquee_platform::cli::Cli;

/// Every poll allocates a little (headers, the JSON answer, the span); mimalloc's per-thread
/// free lists make that a fraction of glibc malloc's cost under many connections. The
/// `system-alloc` feature leaves the system's allocator in place, for heap profilers that
/// watch `malloc` (heaptrack: `loadtest/gateway-heap.sh`).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// queue-gateway: the waiting room and the public edge of Marquee.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    cli: Cli,
}

fn main() -> anyhow::Result<()> {
    let thp_disabled = marquee_platform::memory::disable_transparent_huge_pages();
    let settings = Args::parse().cli.settings();
    let memory = settings.memory.clone();
    marquee_platform::memory::run(&memory, async move {
        // Kept to the end of main: dropping it sends the last spans.
        let _telemetry =
            marquee_platform::telemetry::init(&settings.log, &settings.telemetry, "queue-gateway");
        let app = queue_gateway::Application::build(settings).await?;
        tracing::info!(port = app.port(), thp_disabled, "queue-gateway listening");
        app.run_until_stopped().await
    })?
}
