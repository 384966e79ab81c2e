//! Opening night, end to end: a whole sale played through the real system by thousands of
//! fans from one process, then audited from the outside.
//!
//! How a run flows:
//! * `setup` makes the event and its shows through the admin API and opens the sale;
//! * `fan` plays each fan as its own task (join, poll, seat map, hold, check out, pay,
//!   confirm), recording into `record`; `sampler` reads the operator's figures each second;
//! * the run ends when every fan is done, every seat is sold, or `--duration-s` passes;
//! * `audit` reads Postgres, the Stripe simulator, the mail folder and the Kafka topic back;
//! * `report` builds the figures (with `fairness`), writes the JSON and prints a summary, and
//!   `html` draws the charts into a self-contained page beside the JSON.

pub mod audit;
mod chaos;
pub mod fairness;
mod fan;
mod html;
mod progress;
mod record;
pub mod report;
mod sampler;
pub mod scaling;
mod setup;
mod stop;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;

use fan::{Behaviour, Evening};
use record::Recorder;
use report::Report;
use stop::Stop;

/// When fans arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// All at the opening instant.
    Instant,
    /// Before opening, in the pre-queue (their order decided by the shuffle at opening).
    Prequeue,
    /// Spread evenly over `--ramp-s` seconds from the opening.
    Ramp,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The gateway's public address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
    #[arg(long, default_value = "demo-operator-token")]
    pub operator_token: String,
    /// How many fans (100 to 100,000 on a 2-core machine).
    #[arg(long, default_value_t = 2000)]
    pub fans: usize,
    /// Where to write the JSON report (the HTML page goes beside it).
    #[arg(long, default_value = "opening-night.json")]
    pub report: PathBuf,
    #[arg(long, value_enum, default_value_t = Arrival::Instant)]
    pub arrival: Arrival,
    /// With `--arrival ramp`: over how many seconds.
    #[arg(long, default_value_t = 60)]
    pub ramp_s: u32,
    /// With `--arrival prequeue`: how long before opening the sale is announced (fans
    /// arrive in its first half).
    #[arg(long, default_value_t = 10)]
    pub prequeue_s: u32,
    /// Seats each fan wants, at least.
    #[arg(long, default_value_t = 1)]
    pub seats_min: u32,
    /// Seats each fan wants, at most.
    #[arg(long, default_value_t = 3)]
    pub seats_max: u32,
    /// Share of fans who pick seats on the map (the rest ask for the best available).
    #[arg(long, default_value_t = 0.5)]
    pub choose_share: f64,
    /// Share of fans who stop polling while they wait.
    #[arg(long, default_value_t = 0.05)]
    pub abandon_share: f64,
    /// Share of fans whose first card is declined (they pay again).
    #[arg(long, default_value_t = 0.05)]
    pub decline_share: f64,
    /// Share of fans who hold seats and walk away (the holds lapse; the seats sell again).
    #[arg(long, default_value_t = 0.03)]
    pub walkaway_share: f64,
    /// The event's admission rate.
    #[arg(long, default_value_t = 1200)]
    pub rate_per_minute: u32,
    /// The event's cap on fans shopping at once.
    #[arg(long, default_value_t = 200)]
    pub max_active: u32,
    #[arg(long, default_value_t = 900)]
    pub session_ttl_s: u32,
    #[arg(long, default_value_t = 60)]
    pub hold_ttl_s: u32,
    /// An admitted fan with no booking activity this long gives its slot to the next fan.
    #[arg(long, default_value_t = 30)]
    pub idle_after_s: u32,
    /// The event's minimum poll interval (the gateway answers `poll_after_ms` at least this).
    #[arg(long, default_value_t = 1000)]
    pub min_poll_ms: u32,
    #[arg(long, default_value_t = 20)]
    pub abandon_after_s: u32,
    /// Proof of work asked of each joining fan (leading zero bits; 0: none).
    #[arg(long, default_value_t = 0)]
    pub pow_bits: u8,
    #[arg(long, default_value_t = 2)]
    pub shows: u32,
    #[arg(long, default_value_t = 10)]
    pub rows: u32,
    #[arg(long, default_value_t = 20)]
    pub seats_per_row: u32,
    /// The run ends by this at the latest.
    #[arg(long, default_value_t = 600)]
    pub duration_s: u64,
    /// How long the audit waits for emails and Kafka messages to catch up.
    #[arg(long, default_value_t = 60)]
    pub audit_wait_s: u64,
    /// Redis, for its memory figures.
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    pub redis_url: String,
    /// Connections the generator keeps open to the gateway at most.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    #[command(flatten)]
    pub audit: audit::Sources,
    /// Run on a stack of its own (a Redis of its own with the append-only file on, a fresh
    /// database, every service from the release binaries beside this one) and, during the
    /// sale, SIGKILL and restart the admission worker and that Redis in turn and make Stripe
    /// fail requests. Overrides `--gateway`, `--redis-url` and the audit's sources.
    #[arg(long)]
    pub chaos: bool,
    /// With `--chaos`: how often something fails.
    #[arg(long, default_value_t = 8)]
    pub chaos_every_s: u64,
    /// With `--chaos`: the stack listens on this port + 80…85.
    #[arg(long, default_value_t = 28_000)]
    pub chaos_port_base: u16,
    /// With `--chaos`: the configuration folder the services read (`config/`).
    #[arg(long, default_value = "config")]
    pub chaos_config_dir: PathBuf,
}

impl Options {
    /// The options as the command line would give them (`--fans 300 …`), defaults filled in.
    pub fn from_args(args: &[&str]) -> Result<Self, clap::Error> {
        crate::options_from_args("opening-night", args)
    }
}

/// Play the evening; the report (already written to `--report` and its HTML page).
pub async fn run(mut o: Options) -> anyhow::Result<Report> {
    anyhow::ensure!(o.fans > 0, "--fans must be at least 1");
    anyhow::ensure!(
        o.seats_min >= 1 && o.seats_max >= o.seats_min,
        "--seats-min and --seats-max: 1 ≤ min ≤ max"
    );
    let stack = match o.chaos {
        true => Some(Arc::new(tokio::sync::Mutex::new(
            chaos::Stack::start(&mut o).await?,
        ))),
        false => None,
    };
    let report = evening(&o, stack.clone()).await;
    if let Some(stack) = stack
        && let Ok(stack) = Arc::try_unwrap(stack)
    {
        let clean = report.as_ref().is_ok_and(|r| r.audit.clean());
        stack.into_inner().stop(!clean).await;
    }
    report
}

/// The evening itself, on whatever stack `o` points at.
async fn evening(
    o: &Options,
    stack: Option<Arc<tokio::sync::Mutex<chaos::Stack>>>,
) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(o.max_connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&o.audit.database_url)
        .await
        .with_context(|| format!("connecting to {}", o.audit.database_url))?;
    let system_before = report::System::read(&db, &o.redis_url).await;
    // Every payment, email and message of this evening is made from now on (a minute's grace
    // for the clocks of a Stripe elsewhere).
    let audit_start = audit::Start::now(&o.audit, 60).await;
    let sale = setup::create(&http, o).await?;
    let seats_total = u64::from(o.shows * o.rows * o.seats_per_row);
    let rec = Arc::new(Recorder::default());
    let stop = Stop::default();
    let evening = Arc::new(Evening {
        http: http.clone(),
        gateway: o.gateway.clone(),
        stripe: o.audit.stripe_url.trim_end_matches('/').to_owned(),
        event: sale.event.clone(),
        shows: sale.shows.clone(),
        pow_bits: o.pow_bits,
        behaviour: Behaviour {
            seats_min: o.seats_min,
            seats_max: o.seats_max,
            choose_share: o.choose_share,
            abandon_share: o.abandon_share,
            decline_share: o.decline_share,
            walkaway_share: o.walkaway_share,
            hold_attempts: 6,
        },
        rec: rec.clone(),
        stop: stop.clone(),
        shuffle_seed: std::sync::OnceLock::new(),
    });
    let sampler = tokio::spawn(sampler::sample(
        http.clone(),
        format!("{}/admin/v1/events/{}", o.gateway, sale.event),
        o.operator_token.clone(),
        rec.clone(),
        seats_total,
        stop.clone(),
    ));
    let chaos = stack.map(|stack| {
        tokio::spawn(chaos::unleash(
            stack,
            Duration::from_secs(o.chaos_every_s.max(1)),
            rec.clone(),
            stop.clone(),
        ))
    });
    let cpu_before = report::cpu_ticks();
    let mut fans = tokio::task::JoinSet::new();
    for n in 0..o.fans {
        fans.spawn(fan::play(evening.clone(), n, arrival(o, n)));
    }

    let progress = progress::Progress::new(o.fans as u64, seats_total);
    let mut redis_peak = system_before.redis_used_memory;
    let began = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        progress.show(&rec.live, began.elapsed());
        if let Some(m) = report::redis_used_memory(&o.redis_url).await {
            redis_peak = redis_peak.max(m);
        }
        let live = &rec.live;
        let done = live.done.load(std::sync::atomic::Ordering::Relaxed) as usize >= o.fans;
        let sold_all = live.seats_left.load(std::sync::atomic::Ordering::Relaxed) == 0;
        if done || sold_all || began.elapsed() >= Duration::from_secs(o.duration_s) {
            break;
        }
    }
    stop.trigger();
    let wind_down = tokio::time::timeout(Duration::from_secs(120), async {
        while fans.join_next().await.is_some() {}
    })
    .await;
    if wind_down.is_err() {
        fans.abort_all();
    }
    let elapsed = began.elapsed();
    let cpu_used = report::cpu_ticks().saturating_sub(cpu_before);
    progress.finish(&rec.live, elapsed);
    let samples = sampler.await.unwrap_or_default();
    let chaos = match chaos {
        Some(task) => Some(task.await.unwrap_or_default()),
        None => None,
    };
    setup::close(&http, o, &sale.event).await;

    // The audit, repeated until it is clean or the wait is over: emails and Kafka messages
    // trail the confirmations by design.
    let audit_end = tokio::time::Instant::now() + Duration::from_secs(o.audit_wait_s);
    let audit = loop {
        // A source that fails for a moment (Stripe faults, Kafka catching up) is read again.
        let last = tokio::time::Instant::now() >= audit_end;
        match audit::audit(&o.audit, &db, &sale.event, &audit_start).await {
            Ok(a) if a.clean() || last => break a,
            Ok(_) => {}
            Err(e) if last => return Err(e.context("the audit")),
            Err(e) => eprintln!("[opening-night] audit: {e:#}; reading again"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let system = report::System::read(&db, &o.redis_url)
        .await
        .since(&system_before, redis_peak);
    let seed = evening.shuffle_seed.get().cloned();
    let report = Report::build(report::Inputs {
        options: o,
        event: &sale.event,
        opens_at: sale.opens_at,
        seats_total,
        recorded: rec.take(),
        samples,
        elapsed,
        audit,
        system,
        cpu_ticks: cpu_used,
        shuffle_seed: seed,
        chaos,
    });
    report.write(&o.report)?;
    Ok(report)
}

/// When fan `n` arrives, from the run's start.
fn arrival(o: &Options, n: usize) -> Duration {
    match o.arrival {
        Arrival::Instant => Duration::ZERO,
        Arrival::Prequeue => {
            Duration::from_millis(rand::rng().random_range(0..=u64::from(o.prequeue_s) * 500))
        }
        Arrival::Ramp => {
            Duration::from_secs_f64(f64::from(o.ramp_s) * n as f64 / o.fans.max(1) as f64)
        }
    }
}
