//! Marquee's load generators. Each prints one JSON line of results; `loadtest/run.sh` runs
//! them next to their baselines (pgbench, redis-benchmark, a bare hyper server) in the same
//! run and writes the ratios.

mod bare;
mod catalog;
mod connection;
mod hot_show;
mod queue;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Marquee load generators")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A bare hyper server answering every request with a fixed body: the baseline.
    Bare {
        #[arg(long, default_value = "127.0.0.1:18090")]
        listen: std::net::SocketAddr,
        /// Size of the body to answer with (match what is being compared).
        #[arg(long, default_value_t = 200)]
        body_bytes: usize,
    },
    /// Hold-and-release traffic on one hot show through booking-core.
    HotShow(hot_show::Options),
    /// Create an event and show, print the seat-map path for wrk.
    SeatmapSetup(hot_show::SetupOptions),
    /// Write a catalog at the design's scale (5,000 theaters in 200 cities, 50,000 shows a
    /// day for a week) into a migrated database.
    CatalogLoad(catalog::LoadOptions),
    /// Search the catalog as fans do, many readers at once (or open shows' seat maps cold).
    CatalogRead(catalog::ReadOptions),
    /// Join N visitors through the gateway and write their queue tokens, one per line.
    QueueSetup(queue::SetupOptions),
    /// Fill an event's queue with N visitors straight through the join script and report
    /// Redis memory per waiting visitor.
    QueueMemory(queue::MemoryOptions),
    /// A whole sale through the real system, audited afterwards: exits non-zero unless every
    /// audit figure is 0.
    OpeningNight(Box<marquee_loadtest::opening_night::Options>),
    /// Opening nights back to back for an hour, every service's memory and sockets read
    /// each minute: exits non-zero unless every night's audit is clean and memory stayed flat.
    Soak(Box<marquee_loadtest::soak::Options>),
    /// The soak's curve and verdicts again from its JSON report (with this build's rules),
    /// written beside it as Markdown and printed.
    SoakTable {
        /// `loadtest/results/soak.json`, say.
        report: std::path::PathBuf,
    },
    /// A Markdown table of opening-night reports (JSON files), each figure as a ratio to the
    /// first report's.
    ScalingTable {
        /// The reports, smallest run first.
        reports: Vec<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Bare { listen, body_bytes } => bare::serve(listen, body_bytes).await,
        Command::HotShow(o) => hot_show::run(o).await,
        Command::SeatmapSetup(o) => hot_show::setup_seatmap(o).await,
        Command::CatalogLoad(o) => catalog::load(o).await,
        Command::CatalogRead(o) => catalog::read(o).await,
        Command::QueueSetup(o) => queue::setup(o).await,
        Command::QueueMemory(o) => queue::memory(o).await,
        Command::OpeningNight(o) => {
            let report = marquee_loadtest::opening_night::run(*o).await?;
            print!("{}", report.summary());
            anyhow::ensure!(report.audit.clean(), "the audit found problems (above)");
            Ok(())
        }
        Command::Soak(o) => {
            let report = marquee_loadtest::soak::run(*o).await?;
            print!(
                "{}",
                marquee_loadtest::soak::curve::markdown(&report.samples, report.soak_s)
            );
            anyhow::ensure!(
                report.passed(),
                "the soak failed: a night's audit or memory that did not stay flat (above)"
            );
            Ok(())
        }
        Command::SoakTable { report } => {
            let text = std::fs::read(&report)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", report.display()))?;
            let mut soak: marquee_loadtest::soak::SoakReport = serde_json::from_slice(&text)?;
            soak.verdicts = marquee_loadtest::soak::curve::verdicts(&soak.samples, soak.soak_s);
            let table = marquee_loadtest::soak::curve::markdown(&soak.samples, soak.soak_s);
            std::fs::write(report.with_extension("md"), &table)?;
            std::fs::write(&report, serde_json::to_vec_pretty(&soak)?)?;
            print!("{table}");
            Ok(())
        }
        Command::ScalingTable { reports } => {
            let mut parsed = Vec::new();
            for path in &reports {
                let text = std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                parsed.push(serde_json::from_slice(&text)?);
            }
            print!(
                "{}",
                marquee_loadtest::opening_night::scaling::table(&parsed)
            );
            Ok(())
        }
    }
}
