//! Marquee's load generators as a library, so the end-to-end tests can play a small opening
//! night against a stack of their own (`opening_night::run`), as the command line does.
//!
//! Map. The binary (`main.rs`) has one subcommand per generator; `loadtest/run.sh` runs each
//! beside its baseline in the same run and writes the ratios into BENCHMARKS.md's tables:
//! - `bare`: a bare hyper server answering a fixed body, the baseline for the gateway's polls
//!   and booking-core's seat map;
//! - `hot_show`: holds and releases on one show through booking-core, against pgbench;
//! - `catalog`: a catalog at the design's scale (350,000 shows) and fans searching it;
//! - `queue`: joins through the gateway (tokens for wrk), and Redis bytes per waiting visitor;
//! - `opening_night` (this library): a whole sale by thousands of fans, audited afterwards;
//!   its own `mod.rs` maps how a run flows;
//! - `soak` (this library): opening nights back to back for an hour, with every service's
//!   memory and sockets read each minute (`loadtest/soak.sh`).

pub mod opening_night;
pub mod soak;

/// A subcommand's options as its command line would give them (`--fans 300 …`), defaults
/// filled in: how the tests build them.
pub fn options_from_args<T: clap::Args + clap::FromArgMatches>(
    command: &str,
    args: &[&str],
) -> Result<T, clap::Error> {
    #[derive(clap::Parser)]
    struct Cli<T: clap::Args + clap::FromArgMatches> {
        #[command(flatten)]
        options: T,
    }
    let argv = std::iter::once(command).chain(args.iter().copied());
    <Cli<T> as clap::Parser>::try_parse_from(argv).map(|c| c.options)
}
