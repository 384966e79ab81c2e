use clap::Parser;
use marquee_platform::cli::Cli;

/// jemalloc. Every poll allocates a little (headers, the JSON answer, the span), which a
/// thread-caching allocator makes a fraction of glibc malloc's cost; and what a connection
/// keeps while it is open (hyper's 16 KiB read buffer, two of 8 KiB, the task) is, in jemalloc,
/// each block in a run of its own or in small runs, so a burst of connections gives its memory
/// back when it ends even though a few of them stay open. With mimalloc (v3, 512 KiB pages for
/// blocks over 10 KiB) 25 connections that outlived a burst of 300 kept 3.4-4.7 MiB of it
/// resident; with jemalloc 1.3-1.6 MiB above the start (BENCHMARKS.md, "Connections that
/// outlive a burst"). Its background thread hands freed pages back within about a second
/// (`dirty_decay_ms:1000`, built in by `.cargo/config.toml`), so the runtime's tidy (a
/// mimalloc call) is off here. The `system-alloc` feature leaves the system's allocator in
/// place, for heap profilers that watch `malloc` (heaptrack: `loadtest/gateway-heap.sh`).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    // jemalloc gives freed memory back by itself; the tidy is mimalloc's (see ALLOCATOR).
    let memory = marquee_platform::memory::MemorySettings {
        tidy_interval_ms: 0,
    };
    marquee_platform::memory::run(&memory, async move {
        // Kept to the end of main: dropping it sends the last spans.
        let _telemetry =
            marquee_platform::telemetry::init(&settings.log, &settings.telemetry, "queue-gateway");
        let app = queue_gateway::Application::build(settings).await?;
        tracing::info!(port = app.port(), thp_disabled, "queue-gateway listening");
        app.run_until_stopped().await
    })?
}
