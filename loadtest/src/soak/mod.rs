//! The long night: opening nights back to back (several at once, each its own event and
//! shows) for an hour against the running system, while every service's memory and open
//! sockets are read once a minute. The curve and its verdict go to a JSON file and a
//! Markdown table (BENCHMARKS.md quotes it). Not part of `make test`: `loadtest/soak.sh`.
//!
//! A night that fails its audit or cannot run fails the soak, as does memory that does not
//! stay flat (`curve`).

pub mod curve;
pub mod processes;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::opening_night;
use curve::Sample;

#[derive(Debug, Clone, clap::Args)]
// Its own group id: the night's options (flattened below) are a struct named `Options` too.
#[group(id = "soak")]
pub struct Options {
    /// How long to keep starting opening nights (the nights running then finish).
    #[arg(long, default_value_t = 3600)]
    pub soak_s: u64,
    /// How often to record a sample: the median of the readings taken since the last one,
    /// and their peak.
    #[arg(long, default_value_t = 60)]
    pub sample_every_s: u64,
    /// How often to read the services' memory and sockets (no less often than a sample).
    #[arg(long, default_value_t = 2)]
    pub read_every_s: u64,
    /// Opening nights running at once.
    #[arg(long, default_value_t = 3)]
    pub nights_at_once: usize,
    /// The n-th of the nights running at once starts n times this late, so their busy
    /// moments (arrivals, admissions, the sell-out) do not fall together.
    #[arg(long, default_value_t = 60)]
    pub stagger_s: u64,
    /// The curve as JSON; the Markdown table goes beside it (`.md`), each night's report
    /// into a folder beside it (`<name>-nights/`).
    #[arg(long, default_value = "loadtest/results/soak.json")]
    pub soak_report: PathBuf,
    /// Each night, as `opening-night` takes it (`--report` is set per night).
    #[command(flatten)]
    pub night: opening_night::Options,
}

impl Options {
    /// The options as the command line would give them, defaults filled in.
    pub fn from_args(args: &[&str]) -> Result<Self, clap::Error> {
        crate::options_from_args("soak", args)
    }
}

/// How long a lane waits after a night that could not run before it tries the next.
const RETRY_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize, Deserialize)]
pub struct Night {
    pub event: Option<String>,
    /// Seconds into the soak.
    pub started_s: u64,
    pub duration_s: f64,
    pub fans: usize,
    pub seats_sold: u64,
    pub clean: bool,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SoakReport {
    pub soak_s: u64,
    pub samples: Vec<Sample>,
    pub verdicts: Option<Vec<curve::Verdict>>,
    pub nights: Vec<Night>,
}

impl SoakReport {
    pub fn passed(&self) -> bool {
        self.nights.iter().all(|n| n.clean)
            && self
                .verdicts
                .as_ref()
                .is_some_and(|v| v.iter().all(|v| v.flat))
    }
}

pub async fn run(o: Options) -> anyhow::Result<SoakReport> {
    anyhow::ensure!(o.nights_at_once >= 1, "--nights-at-once must be at least 1");
    anyhow::ensure!(o.sample_every_s >= 1, "--sample-every-s must be at least 1");
    anyhow::ensure!(o.read_every_s >= 1, "--read-every-s must be at least 1");
    let nights_dir = o.soak_report.with_file_name(format!(
        "{}-nights",
        o.soak_report
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("soak")
    ));
    std::fs::create_dir_all(&nights_dir)
        .with_context(|| format!("creating {}", nights_dir.display()))?;
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&o.night.audit.database_url)
        .await
        .with_context(|| format!("connecting to {}", o.night.audit.database_url))?;
    let began = tokio::time::Instant::now();
    let until = began + Duration::from_secs(o.soak_s);
    let elapsed_s = move || began.elapsed().as_secs();
    let done = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));

    let mut loops = tokio::task::JoinSet::new();
    for lane in 0..o.nights_at_once {
        let stagger = Duration::from_secs(o.stagger_s * lane as u64);
        let (night, dir, done, counter) = (
            o.night.clone(),
            nights_dir.clone(),
            done.clone(),
            counter.clone(),
        );
        loops.spawn(async move {
            let mut nights = Vec::new();
            tokio::time::sleep(stagger).await;
            while tokio::time::Instant::now() < until {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let mut options = night.clone();
                options.report = dir.join(format!("night-{n:03}.json"));
                let started_s = elapsed_s();
                let outcome = opening_night::run(options.clone()).await;
                done.fetch_add(1, Ordering::Relaxed);
                let night = match outcome {
                    Ok(r) => Night {
                        event: Some(r.event.clone()),
                        started_s,
                        duration_s: r.duration_s,
                        fans: r.fans,
                        seats_sold: r.audit.seats_sold,
                        clean: r.audit.clean(),
                        error: None,
                    },
                    Err(e) => Night {
                        event: None,
                        started_s,
                        duration_s: 0.0,
                        fans: options.fans,
                        seats_sold: 0,
                        clean: false,
                        error: Some(format!("{e:#}")),
                    },
                };
                eprintln!(
                    "[soak] night {n} (started at {started_s} s): {}",
                    match (&night.error, night.clean) {
                        (Some(e), _) => format!("failed: {e}"),
                        (None, true) => format!("clean, {} seats sold", night.seats_sold),
                        (None, false) => "its audit found problems".into(),
                    }
                );
                let failed = night.error.is_some();
                nights.push(night);
                // A night that could not run at all (the system down, say): wait a little
                // before the next, and give this lane up after three in a row.
                if failed {
                    let in_a_row = nights.iter().rev().take_while(|n| n.error.is_some());
                    if in_a_row.count() >= 3 {
                        eprintln!("[soak] three nights in a row could not run: this lane stops");
                        break;
                    }
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
            nights
        });
    }

    let mut samples = Vec::new();
    let mut readings = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(o.sample_every_s));
    let mut read_tick =
        tokio::time::interval(Duration::from_secs(o.read_every_s.min(o.sample_every_s)));
    let mut nights = Vec::new();
    loop {
        tokio::select! {
            _ = read_tick.tick() => readings.push(processes::read(processes::SERVICES)),
            _ = tick.tick() => {
                let sample = read_sample(elapsed_s(), &db, &o.night.redis_url, done.load(Ordering::Relaxed), std::mem::take(&mut readings)).await;
                eprintln!("[soak] {} s: {}", sample.t_s, one_line(&sample));
                samples.push(sample);
            }
            finished = loops.join_next() => match finished {
                Some(result) => nights.extend(result.context("a soak loop panicked")?),
                None => break,
            },
        }
    }
    // One more reading after the last night, so the curve ends where the traffic did.
    samples.push(
        read_sample(
            elapsed_s(),
            &db,
            &o.night.redis_url,
            done.load(Ordering::Relaxed),
            readings,
        )
        .await,
    );
    nights.sort_by_key(|n| n.started_s);
    let report = SoakReport {
        soak_s: o.soak_s,
        verdicts: curve::verdicts(&samples, o.soak_s),
        samples,
        nights,
    };
    if let Some(dir) = o.soak_report.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&o.soak_report, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", o.soak_report.display()))?;
    let table = o.soak_report.with_extension("md");
    std::fs::write(&table, curve::markdown(&report.samples, report.soak_s))
        .with_context(|| format!("writing {}", table.display()))?;
    Ok(report)
}

/// A sample: the services summed up over `readings` (the interval's, and one taken now), with
/// Redis's and Postgres's figures of the moment.
async fn read_sample(
    t_s: u64,
    db: &sqlx::PgPool,
    redis_url: &str,
    nights_done: u64,
    mut readings: Vec<Vec<(String, processes::Usage)>>,
) -> Sample {
    readings.push(processes::read(processes::SERVICES));
    let pg_connections = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity")
        .fetch_one(db)
        .await
        .ok();
    let (redis_used_memory, redis_clients) = redis_figures(redis_url).await.unzip();
    Sample {
        t_s,
        services: processes::summarize(&readings),
        redis_used_memory,
        redis_clients,
        pg_connections,
        nights_done,
    }
}

async fn redis_figures(url: &str) -> Option<(u64, u64)> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO").query_async(&mut conn).await.ok()?;
    let field = |name: &str| -> Option<u64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
    };
    // This connection is one of the clients: not counted.
    Some((
        field("used_memory")?,
        field("connected_clients")?.saturating_sub(1),
    ))
}

fn one_line(s: &Sample) -> String {
    s.services
        .iter()
        .map(|(n, u)| {
            format!(
                "{n} {:.1} MiB (peak {:.1})/{} sockets",
                u.rss_kib as f64 / 1024.0,
                u.rss_peak_kib as f64 / 1024.0,
                u.sockets
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a system that is down, each lane gives up after three nights that could not
    /// run, and the soak fails in seconds instead of spinning for the hour.
    #[tokio::test]
    async fn a_soak_against_a_system_that_is_down_fails_promptly() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let gateway = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let dir = std::env::temp_dir().join(format!("marquee-soak-{}", uuid::Uuid::new_v4()));
        let report_path = dir.join("soak.json");
        let database = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let o = Options::from_args(&[
            "--soak-s",
            "600",
            "--sample-every-s",
            "1",
            "--nights-at-once",
            "2",
            "--stagger-s",
            "0",
            "--soak-report",
            report_path.to_str().unwrap(),
            "--gateway",
            &gateway,
            "--database-url",
            &database,
        ])
        .unwrap();
        let began = std::time::Instant::now();
        let report = run(o).await.unwrap();
        assert!(began.elapsed() < RETRY_AFTER * 4, "{:?}", began.elapsed());
        assert_eq!(report.nights.len(), 6, "three a lane");
        assert!(report.nights.iter().all(|n| n.error.is_some() && !n.clean));
        assert_eq!(report.verdicts, None, "nowhere near half the soak");
        assert!(!report.passed());
        assert!(report.samples.len() >= 2);
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
        assert_eq!(written["nights"].as_array().unwrap().len(), 6);
        assert!(
            std::fs::read_to_string(report_path.with_extension("md"))
                .unwrap()
                .contains("Too short")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
