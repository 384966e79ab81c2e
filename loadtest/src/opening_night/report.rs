//! The report: every figure of the evening as JSON, a readable summary, and the HTML page.
//!
//! Over 400 lines with its tests: the report's fields are the run's published figures, and
//! each is computed beside its definition, so a reader checks a figure in one place.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use marquee_waitroom::queue::{OFFSET, shuffle_order};
use serde::Serialize;
use sqlx::PgPool;

use super::audit::Audit;
use super::fairness::{self, Fairness};
use super::record::{Outcome, Phase, Recorded};
use super::sampler::Sample;
use super::{Arrival, Options};

#[derive(Debug, Serialize)]
pub struct Report {
    pub event: String,
    pub fans: usize,
    pub arrival: Arrival,
    pub duration_s: f64,
    pub seats_total: u64,
    /// Seats sold, as the database counts them.
    pub sold: u64,
    pub fans_admitted: u64,
    pub fans_who_bought: u64,
    pub outcomes: BTreeMap<Outcome, u64>,
    /// From the opening to the last seat sold, if it sold out.
    pub time_to_sold_out_s: Option<f64>,
    pub joins_per_s: f64,
    pub polls_per_s: f64,
    pub holds_per_s: f64,
    pub payments_per_s: f64,
    pub latency_ms: BTreeMap<&'static str, Latency>,
    /// Route → HTTP status → count (0: no answer).
    pub status_codes: BTreeMap<&'static str, BTreeMap<u16, u64>>,
    pub admission: Admission,
    /// `None` when fewer than two fans who kept polling were admitted.
    pub fairness: Option<Fairness>,
    /// With a pre-queue: whether the places the shuffled tokens carry follow the order the
    /// published seed gives.
    pub prequeue_places_match_seed: Option<bool>,
    pub audit: Audit,
    /// With `--chaos`: what was killed or made to fail, and when.
    pub chaos: Option<Vec<super::chaos::Event>>,
    pub generator: Generator,
    pub system: System,
    pub series: Series,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Serialize)]
pub struct Admission {
    pub configured_rate_per_minute: u32,
    /// Admissions per minute while fans waited, seats remained and the cap had room (the
    /// operator's figures, sampled each second).
    pub observed_rate_per_minute: Option<f64>,
    /// Seconds in which that held.
    pub unconstrained_s: f64,
    pub max_active: u32,
    pub max_active_observed: u64,
    pub cap_respected: bool,
}

#[derive(Debug, Serialize)]
pub struct Generator {
    /// The generator's CPU time over the run, as a share of one core: near the machine's
    /// core count, it bounded the run.
    pub cpu_share_of_one_core: f64,
    pub cores: usize,
}

/// What the system did, from Redis and Postgres's own counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct System {
    /// Redis's memory as read (at the end, in the report).
    pub redis_used_memory: u64,
    pub redis_used_memory_peak: u64,
    /// How much the peak rose over the run's start.
    pub redis_growth_peak: u64,
    pub pg_commits: i64,
    pub pg_rows_inserted: i64,
    pub pg_rows_updated: i64,
    pub pg_rows_deleted: i64,
    pub pg_rows_fetched: i64,
}

impl System {
    pub async fn read(db: &PgPool, redis_url: &str) -> Self {
        let pg: (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, tup_fetched
             FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(db)
        .await
        .unwrap_or_default();
        let redis = redis_used_memory(redis_url).await.unwrap_or(0);
        Self {
            redis_used_memory: redis,
            redis_used_memory_peak: redis,
            redis_growth_peak: 0,
            pg_commits: pg.0,
            pg_rows_inserted: pg.1,
            pg_rows_updated: pg.2,
            pg_rows_deleted: pg.3,
            pg_rows_fetched: pg.4,
        }
    }

    /// Postgres's counters as deltas from `before`; Redis memory as it is now, and the rise
    /// of `peak` over `before`.
    pub fn since(self, before: &Self, peak: u64) -> Self {
        Self {
            redis_used_memory_peak: peak,
            redis_growth_peak: peak.saturating_sub(before.redis_used_memory),
            pg_commits: self.pg_commits - before.pg_commits,
            pg_rows_inserted: self.pg_rows_inserted - before.pg_rows_inserted,
            pg_rows_updated: self.pg_rows_updated - before.pg_rows_updated,
            pg_rows_deleted: self.pg_rows_deleted - before.pg_rows_deleted,
            pg_rows_fetched: self.pg_rows_fetched - before.pg_rows_fetched,
            ..self
        }
    }
}

pub async fn redis_used_memory(url: &str) -> Option<u64> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
}

/// This process's CPU time so far, in clock ticks (user + system, from `/proc`).
pub fn cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces), from field 3 on.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// Over time, for the charts.
#[derive(Debug, Serialize)]
pub struct Series {
    pub samples: Vec<Sample>,
    pub holds_per_s: Vec<u64>,
    pub sales_per_s: Vec<u64>,
    /// Seconds per latency bucket.
    pub bucket_s: u64,
    /// Phase → p99 (ms) per bucket.
    pub p99_ms: BTreeMap<&'static str, Vec<Option<f64>>>,
}

pub struct Inputs<'a> {
    pub options: &'a Options,
    pub event: &'a str,
    pub opens_at: chrono::DateTime<chrono::Utc>,
    pub seats_total: u64,
    pub recorded: Recorded,
    pub samples: Vec<Sample>,
    pub elapsed: Duration,
    pub audit: Audit,
    pub system: System,
    pub cpu_ticks: u64,
    pub shuffle_seed: Option<String>,
    pub chaos: Option<Vec<super::chaos::Event>>,
}

impl Report {
    pub fn build(i: Inputs<'_>) -> Self {
        let o = i.options;
        let r = &i.recorded;
        let mut outcomes = BTreeMap::new();
        for f in &r.fans {
            *outcomes.entry(f.outcome).or_insert(0) += 1;
        }
        let count = |phase: Phase| {
            r.latency
                .iter()
                .find(|(p, _)| *p == phase)
                .map_or(0, |(_, h)| h.len())
        };
        let rate = |phase: Phase, n: u64| {
            r.spans[Phase::ALL
                .iter()
                .position(|p| *p == phase)
                .expect("a phase")]
            .map_or(0.0, |(first, last)| {
                n as f64 / (last - first).as_secs_f64().max(1.0)
            })
        };
        let holds: u64 = r.per_second.iter().map(|s| s.0).sum();
        let sales: u64 = r.per_second.iter().map(|s| s.1).sum();
        let latency_ms = r
            .latency
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(p, h)| {
                let ms = |v: u64| v as f64 / 1000.0;
                (
                    p.name(),
                    Latency {
                        count: h.len(),
                        p50: ms(h.value_at_quantile(0.5)),
                        p90: ms(h.value_at_quantile(0.9)),
                        p99: ms(h.value_at_quantile(0.99)),
                        max: ms(h.max()),
                    },
                )
            })
            .collect();
        let (fairness, prequeue_places_match_seed) = fairness_of(r, i.shuffle_seed.as_deref());
        let run_start =
            chrono::Utc::now() - chrono::Duration::from_std(i.elapsed).unwrap_or_default();
        let opened_after_s = (i.opens_at - run_start).num_milliseconds().max(0) as f64 / 1000.0;
        Report {
            event: i.event.to_owned(),
            fans: o.fans,
            arrival: o.arrival,
            duration_s: i.elapsed.as_secs_f64(),
            seats_total: i.seats_total,
            sold: i.audit.seats_sold,
            fans_admitted: r.fans.iter().filter(|f| f.admitted_at_ms.is_some()).count() as u64,
            fans_who_bought: outcomes.get(&Outcome::Bought).copied().unwrap_or(0),
            outcomes,
            // From the operator's figures; when the last seats sold after the last sample (fans
            // finishing their payment as the run ended), the run's end.
            time_to_sold_out_s: i
                .samples
                .iter()
                .find(|s| s.sold_seats >= i.seats_total)
                .map(|s| s.t)
                .or((i.audit.seats_sold >= i.seats_total).then_some(i.elapsed.as_secs_f64()))
                .map(|t| (t - opened_after_s).max(0.0)),
            joins_per_s: rate(Phase::Join, count(Phase::Join)),
            polls_per_s: rate(Phase::Poll, count(Phase::Poll)),
            holds_per_s: rate(Phase::Hold, holds),
            payments_per_s: rate(Phase::Confirm, sales),
            latency_ms,
            status_codes: r.statuses.clone(),
            admission: admission(o, &i.samples),
            fairness,
            prequeue_places_match_seed,
            audit: i.audit,
            chaos: i.chaos,
            generator: Generator {
                cpu_share_of_one_core: i.cpu_ticks as f64
                    / 100.0
                    / i.elapsed.as_secs_f64().max(0.001),
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
            system: i.system,
            series: Series {
                samples: i.samples,
                holds_per_s: r.per_second.iter().map(|s| s.0).collect(),
                sales_per_s: r.per_second.iter().map(|s| s.1).collect(),
                bucket_s: super::record::BUCKET.as_secs(),
                p99_ms: Phase::ALL
                    .iter()
                    .enumerate()
                    .map(|(k, p)| {
                        (
                            p.name(),
                            r.p99_per_bucket
                                .iter()
                                .map(|row| row[k].map(|us| us as f64 / 1000.0))
                                .collect(),
                        )
                    })
                    .collect(),
            },
        }
    }

    /// Write the JSON to `path` and the HTML page beside it (`.html`).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))?;
        let page = path.with_extension("html");
        std::fs::write(&page, super::html::page(self))
            .with_context(|| format!("writing {}", page.display()))?;
        Ok(())
    }

    /// The readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let a = &self.audit;
        let verdict = if a.clean() { "CLEAN" } else { "FAILED" };
        s += &format!(
            "Opening night {}: {} fans ({:?} arrival), {:.0} s\n",
            self.event, self.fans, self.arrival, self.duration_s
        );
        s += &format!(
            "  sold {}/{} seats to {} fans; {} admitted; sold out after {}\n",
            self.sold,
            self.seats_total,
            self.fans_who_bought,
            self.fans_admitted,
            self.time_to_sold_out_s
                .map_or("(not sold out)".to_owned(), |t| format!("{t:.1} s"))
        );
        s += &format!("  outcomes: {:?}\n", self.outcomes);
        s += &format!(
            "  throughput: joins {:.0}/s, polls {:.0}/s, holds {:.1}/s, payments {:.1}/s\n",
            self.joins_per_s, self.polls_per_s, self.holds_per_s, self.payments_per_s
        );
        for (phase, l) in &self.latency_ms {
            s += &format!(
                "  {phase:<9} n={:<7} p50 {:>7.1} ms  p90 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms\n",
                l.count, l.p50, l.p90, l.p99, l.max
            );
        }
        let ad = &self.admission;
        s += &format!(
            "  admission: configured {}/min, observed {} over {:.0} s unconstrained; most active {} (cap {}{})\n",
            ad.configured_rate_per_minute,
            ad.observed_rate_per_minute
                .map_or("n/a".to_owned(), |r| format!("{r:.0}/min")),
            ad.unconstrained_s,
            ad.max_active_observed,
            ad.max_active,
            if ad.cap_respected {
                ", respected"
            } else {
                ", EXCEEDED"
            }
        );
        if let Some(f) = &self.fairness {
            s += &format!(
                "  fairness: Kendall tau {:.4} over {} fans ({:.1} % of pairs admitted in the same tick, {} discordant)\n",
                f.kendall_tau,
                f.fans,
                f.tied_share * 100.0,
                f.discordant_pairs
            );
        }
        if let Some(m) = self.prequeue_places_match_seed {
            s += &format!("  pre-queue places follow the published seed: {m}\n");
        }
        s += &format!("  status codes: {:?}\n", self.status_codes);
        if let Some(chaos) = &self.chaos {
            s += &format!("  chaos: {} faults\n", chaos.len());
            for e in chaos {
                s += &format!("    {:>6.1} s  {}\n", e.t, e.action);
            }
        }
        s += &format!(
            "  generator CPU: {:.2} of one core ({} cores); Redis peak {:.1} MB (+{:.1} MB over the run); Postgres {} commits, {} rows inserted, {} updated\n",
            self.generator.cpu_share_of_one_core,
            self.generator.cores,
            self.system.redis_used_memory_peak as f64 / 1e6,
            self.system.redis_growth_peak as f64 / 1e6,
            self.system.pg_commits,
            self.system.pg_rows_inserted,
            self.system.pg_rows_updated
        );
        s += &format!(
            "  audit {verdict}: double_sells {} lost_payments {} missing_emails {} missing_events {} stuck_holds {} \
             ({} confirmed bookings, {} payments succeeded, {} refunded, {} emails, {} confirmed messages)\n",
            a.double_sells,
            a.lost_payments,
            a.missing_emails,
            a.missing_events,
            a.stuck_holds,
            a.confirmed_bookings,
            a.payments_succeeded,
            a.payments_refunded,
            a.ticket_emails,
            a.confirmed_messages
        );
        s
    }
}

/// The admission rate over the opening stretch: from the first sample that saw an admission
/// until the first interval in which something other than the rate held admission back (nobody
/// left waiting, the event sold out, the cap full). Later stretches, when lapsed holds bring a
/// few seats back and the sold-out flag flickers, measure the seats, not the rate.
fn admission(o: &Options, samples: &[Sample]) -> Admission {
    let cap = u64::from(o.max_active);
    let free = |s: &Sample| s.waiting > 0 && !s.sold_out && s.active < cap;
    let first = samples.iter().position(|s| s.admitted_total > 0);
    let stretch = first.map(|i| {
        let end = samples[i..]
            .windows(2)
            .take_while(|w| free(&w[0]) && free(&w[1]))
            .count();
        (&samples[i], &samples[i + end])
    });
    let (admitted, secs) = stretch.map_or((0, 0.0), |(a, b)| {
        (b.admitted_total - a.admitted_total, b.t - a.t)
    });
    let max_active_observed = samples.iter().map(|s| s.active).max().unwrap_or(0);
    Admission {
        configured_rate_per_minute: o.rate_per_minute,
        observed_rate_per_minute: (secs >= 3.0).then(|| admitted as f64 * 60.0 / secs),
        unconstrained_s: secs,
        max_active: o.max_active,
        max_active_observed,
        cap_respected: max_active_observed <= cap,
    }
}

/// Fairness over fans who kept polling and were admitted, arrival order being the pre-queue
/// order the published seed gives, then the places joins answered.
fn fairness_of(r: &Recorded, seed: Option<&str>) -> (Option<Fairness>, Option<bool>) {
    let kept: Vec<_> = r
        .fans
        .iter()
        .filter(|f| f.kept_polling && f.admitted_at_ms.is_some())
        .collect();
    let pre: Vec<String> = r
        .fans
        .iter()
        .filter(|f| f.prequeue)
        .map(|f| f.visitor_id.clone())
        .collect();
    let (pre_rank, matches) = match (seed, pre.is_empty()) {
        (Some(seed), false) => {
            let order = shuffle_order(seed, pre);
            let rank: BTreeMap<&str, u64> = order
                .iter()
                .enumerate()
                .map(|(i, v)| (v.as_str(), i as u64 + 1))
                .collect();
            // The shuffled tokens' places must follow the same order.
            let mut by_place: Vec<(u64, u64)> = r
                .fans
                .iter()
                .filter(|f| f.prequeue)
                .filter_map(|f| {
                    Some((
                        f.place.filter(|p| *p < OFFSET)?,
                        rank[f.visitor_id.as_str()],
                    ))
                })
                .collect();
            by_place.sort_unstable();
            let ordered = by_place.windows(2).all(|w| w[0].1 < w[1].1);
            (
                rank.into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<BTreeMap<String, u64>>(),
                Some(ordered),
            )
        }
        _ => (BTreeMap::new(), None),
    };
    let prequeue_total = pre_rank.len() as u64;
    let fans: Vec<(u64, i64)> = kept
        .iter()
        .filter_map(|f| {
            let arrival = if f.prequeue {
                *pre_rank.get(&f.visitor_id)?
            } else {
                prequeue_total + f.place?.checked_sub(OFFSET)?
            };
            Some((arrival, f.admitted_at_ms?))
        })
        .collect();
    let fairness = (fans.len() >= 2).then(|| fairness::measure(&fans));
    (fairness, matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, waiting: u64, active: u64, admitted_total: u64, sold_out: bool) -> Sample {
        Sample {
            t,
            waiting,
            active,
            admitted_total,
            sold_out,
            ..Sample::default()
        }
    }

    #[test]
    fn the_rate_is_read_over_the_opening_stretch_only() {
        let o = Options::from_args(&["--rate-per-minute", "1200", "--max-active", "200"]).unwrap();
        let samples = [
            sample(0.0, 5, 0, 0, false),
            sample(1.0, 2000, 14, 14, false),
            sample(2.0, 1980, 20, 34, false),
            sample(3.0, 1960, 20, 54, false),
            sample(4.0, 1940, 20, 74, false),
            // Sold out: what follows measures seats coming back, not the rate.
            sample(5.0, 1930, 20, 84, true),
            sample(6.0, 1930, 20, 84, false),
            sample(9.0, 1929, 20, 85, false),
        ];
        let a = admission(&o, &samples);
        assert_eq!(a.unconstrained_s, 3.0);
        assert_eq!(a.observed_rate_per_minute, Some(1200.0));
        assert!(a.cap_respected);
    }
}
