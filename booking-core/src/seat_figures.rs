//! Each live event's seat figures in Redis (`wr:{event}:seats`, see `marquee_waitroom::keys`),
//! every second: seats available (on sale, neither held nor sold, of shows not cancelled),
//! held, sold, and the fans holding. The admitting worker lets a sold-out event's waitlist in
//! no faster than seats come back (never more fans than the seats available beyond what
//! admitted fans not yet holding could take), and records the figures in the event's history
//! for the console's charts.
//!
//! Counting an event reads every seat of its shows (at the design's 350,000 shows, 200 live
//! events hold 7.5 million seats: 9 s to count them all). So a pass counts again only the
//! events whose figures may have moved since the last (`Tally::pass`):
//! - one of its bookings was written: every change of a seat's state writes the seat's
//!   booking in the same transaction (a hold, a release, a lapse swept, an extension, a
//!   payment, a refund, a cancelled show's releases), stamping its `updated_at`;
//! - one of its holds lapsed: the seats come back by the clock alone, nothing is written;
//! - its shows changed: the catalog's revision moved (migration 19) and the number of its
//!   shows, or of those on sale, is not what it was.
//!
//! Every other event's figures are published again as counted. What those signs miss (a
//! writing transaction that took longer than `CHANGE_MARGIN`, seats written into the table by
//! hand) is caught by counting every event again at least every `REFRESH`, a few each pass.
//! The first pass counts everything, so passes are still paced (`pause_after`): every second
//! while a pass takes at most `[booking] seat_figures_max_share` of the time, less often
//! beyond that, so one Postgres backend is never kept busy by them for good. The worker uses
//! figures no older than 10 s and admits by rate and cap alone otherwise.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use marquee_platform::shutdown::Shutdown;
use marquee_waitroom::keys;
use prometheus::{Gauge, IntCounter};
use sqlx::PgPool;

use crate::state::AppState;

/// The figures are published this often when counting them is cheap.
pub const PERIOD: Duration = Duration::from_secs(1);

/// How long before the last pass began a pass looks for bookings written: a transaction's
/// `updated_at` is when it began, so one that began before the last pass read and committed
/// after is still seen, if it took less than this.
pub const CHANGE_MARGIN: Duration = Duration::from_secs(10);

/// Every event is counted again at least this often, whether or not a change was seen.
pub const REFRESH: Duration = Duration::from_secs(300);

/// How long to wait after a pass that took `took` before the next: the next starts one
/// `PERIOD` after this one started, or once `took` is no more than `max_share` of the time
/// between two starts, whichever is later.
pub fn pause_after(took: Duration, max_share: f64) -> Duration {
    let cycle = PERIOD.max(took.div_f64(max_share.clamp(f64::MIN_POSITIVE, 1.0)));
    cycle.saturating_sub(took)
}

/// Publish the figures, paced by `pause_after`, until shutdown.
pub fn spawn(state: AppState, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
    let share = state.settings.booking.seat_figures_max_share;
    let took_gauge = Gauge::new(
        "seat_figures_pass_seconds",
        "How long the last pass counting the live events' seat figures took",
    )
    .expect("valid metric");
    let counted = IntCounter::new(
        "seat_figures_events_counted_total",
        "Live events whose seats a pass counted again (the rest had no sign of a change)",
    )
    .expect("valid metric");
    let registry = &state.metrics.registry;
    let _ = registry.register(Box::new(took_gauge.clone()));
    let _ = registry.register(Box::new(counted.clone()));
    tokio::spawn(async move {
        let mut tally = Tally::new(REFRESH);
        let mut pause = Duration::ZERO;
        // Whether the last pass was dear enough to be followed later than a period on: said
        // once when that starts and once when it ends, not every pass.
        let mut slowed = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutdown.wait() => return,
            }
            let started = Instant::now();
            match tally.pass(&state.db).await {
                Ok(pass) => {
                    counted.inc_by(pass.counted as u64);
                    if let Err(e) = publish(&state, &pass.figures).await {
                        tracing::warn!(error = %e, "seat figures not published; will retry");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "seat figures not counted; will retry"),
            }
            let took = started.elapsed();
            took_gauge.set(took.as_secs_f64());
            pause = pause_after(took, share);
            let dear = took + pause > PERIOD;
            if dear && !slowed {
                tracing::info!(
                    took_ms = took.as_millis() as u64,
                    next_in_ms = pause.as_millis() as u64,
                    "seat figures take more than their share of a second; counted less often"
                );
            } else if slowed && !dear {
                tracing::info!("seat figures counted every second again");
            }
            slowed = dear;
        }
    })
}

/// One event's seat figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub available: i64,
    pub held: i64,
    pub sold: i64,
    /// Fans holding seats of the event's shows.
    pub holders: i64,
}

/// What an event's shows are, as far as its figures go: how many, and how many on sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    shows: i64,
    on_sale: i64,
}

struct Counted {
    figures: Figures,
    shape: Shape,
    at: Instant,
}

/// What one pass found.
#[derive(Debug)]
pub struct Pass {
    /// Every live event with shows, and its figures (counted in this pass or before).
    pub figures: Vec<(String, Figures)>,
    /// How many events this pass counted.
    pub counted: usize,
}

/// The live events' figures as last counted, and what a pass needs to tell which may have
/// moved since.
pub struct Tally {
    refresh: Duration,
    /// The live (not closed) events, as of the last read of `shapes`.
    live: Vec<String>,
    /// The catalog's revision as of the last read of `shapes`.
    revision: Option<i64>,
    /// The live events that have shows, and their shapes.
    shapes: HashMap<String, Shape>,
    counted: HashMap<String, Counted>,
    /// When the last pass read.
    since: Option<Since>,
}

/// When a pass read: the database's clock, and what it could see (`pg_current_snapshot()`).
struct Since {
    at: DateTime<Utc>,
    snapshot: String,
}

impl Tally {
    /// Nothing counted yet; each event counted again at least every `refresh`.
    pub fn new(refresh: Duration) -> Self {
        Self {
            refresh,
            live: Vec::new(),
            revision: None,
            shapes: HashMap::new(),
            counted: HashMap::new(),
            since: None,
        }
    }

    /// Count the events whose figures may have moved since the last pass (all of them the
    /// first time), in one snapshot of the database.
    pub async fn pass(&mut self, db: &PgPool) -> Result<Pass, sqlx::Error> {
        // One snapshot for every statement below: a booking written after it is written after
        // `now`, and so seen by the next pass.
        let mut tx = db
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        // Without JIT: compiling the count's expressions cost more than it saved (350,000
        // shows: a full count took 12 s with it, 9 s without). And a pass whose booking-core
        // has gone stops within a second: Postgres notices a closed connection only when it
        // writes to it, so a first count of 9 s went on to its end after a kill.
        sqlx::query(
            "SELECT set_config('jit', 'off', true),
                    set_config('client_connection_check_interval', '1000', true)",
        )
        .execute(&mut *tx)
        .await?;
        let (now, snapshot, revision): (DateTime<Utc>, String, i64) = sqlx::query_as(
            "SELECT now(), pg_current_snapshot()::text, (SELECT revision FROM catalog_revision)",
        )
        .fetch_one(&mut *tx)
        .await?;
        let live: Vec<String> =
            sqlx::query_scalar("SELECT id FROM events WHERE state <> 'closed' ORDER BY id")
                .fetch_all(&mut *tx)
                .await?;
        if self.revision != Some(revision) || self.live != live {
            let shapes: Vec<(String, i64, i64)> = sqlx::query_as(
                "SELECT e.id, count(*), count(*) FILTER (WHERE sh.status = 'on_sale')
                 FROM events e JOIN shows sh ON sh.event_id = e.id
                 WHERE e.state <> 'closed' GROUP BY e.id",
            )
            .fetch_all(&mut *tx)
            .await?;
            self.shapes = shapes
                .into_iter()
                .map(|(id, shows, on_sale)| (id, Shape { shows, on_sale }))
                .collect();
            self.revision = Some(revision);
            self.live = live;
        }
        let changed: HashSet<String> = match &self.since {
            None => HashSet::new(),
            Some(since) => sqlx::query_scalar(CHANGED)
                .bind(since.at - chrono::TimeDelta::from_std(CHANGE_MARGIN).expect("short"))
                .bind(&since.snapshot)
                .bind(since.at)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect(),
        };
        let due = self.due(&changed);
        let rows: Vec<(String, i64, i64, i64, i64)> = if due.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(COUNT).bind(&due).fetch_all(&mut *tx).await?
        };
        tx.commit().await?;
        let mut figures: HashMap<String, Figures> = rows
            .into_iter()
            .map(|(id, available, held, sold, holders)| {
                let f = Figures {
                    available,
                    held,
                    sold,
                    holders,
                };
                (id, f)
            })
            .collect();
        let at = Instant::now();
        for id in &due {
            let counted = Counted {
                figures: figures.remove(id).unwrap_or_default(),
                shape: self.shapes[id],
                at,
            };
            self.counted.insert(id.clone(), counted);
        }
        let shapes = &self.shapes;
        self.counted.retain(|id, _| shapes.contains_key(id));
        self.since = Some(Since { at: now, snapshot });
        Ok(Pass {
            figures: self
                .counted
                .iter()
                .map(|(id, c)| (id.clone(), c.figures))
                .collect(),
            counted: due.len(),
        })
    }

    /// The live events to count in this pass: those never counted, whose shows changed, or
    /// with a booking `changed`; and, a few a pass, those counted longest ago once that is
    /// `refresh` or more (every event within about `refresh`, spread over the passes).
    fn due(&self, changed: &HashSet<String>) -> Vec<String> {
        let mut due = Vec::new();
        let mut stale = Vec::new();
        for (id, shape) in &self.shapes {
            match self.counted.get(id) {
                Some(c) if c.shape == *shape && !changed.contains(id) => {
                    if c.at.elapsed() >= self.refresh {
                        stale.push((c.at, id));
                    }
                }
                _ => due.push(id.clone()),
            }
        }
        let passes = (self.refresh.as_secs_f64() / PERIOD.as_secs_f64()).max(1.0);
        let per_pass = (self.shapes.len() as f64 / passes).ceil() as usize;
        stale.sort_unstable();
        due.extend(stale.into_iter().take(per_pass).map(|(_, id)| id.clone()));
        due
    }
}

/// The events with a booking written since the last pass's snapshot (`$2`), by a transaction
/// that began after `$1` (the last pass's clock less `CHANGE_MARGIN`: the index's range), or
/// with a hold lapsed since the last pass's clock (`$3`). A row's writer is its `xmin`, a
/// 32-bit transaction id; the snapshot's are 64-bit, and a row this young was written within
/// 2^31 transactions of the next one (`0`–`2` are the special ids of frozen rows: seen by
/// every snapshot). Only the bookings written since count, not all those of the last
/// `CHANGE_MARGIN`: otherwise an event with one hold an hour would be counted again for ten
/// passes after each. Bookings are written by top-level transactions only (no savepoints): a
/// snapshot does not list the subtransactions in progress, so a booking written in one would
/// read as seen already, and be counted only at the next `REFRESH`.
const CHANGED: &str = concat!(
    "WITH last AS (SELECT $2::pg_snapshot AS snapshot,
                          pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next)
     SELECT b.event_id FROM bookings b, last
     WHERE b.updated_at > $1 AND b.xmin::text::bigint > 2
       AND NOT pg_visible_in_snapshot(
             (last.next - ((last.next - b.xmin::text::bigint) % 4294967296 + 4294967296) % 4294967296)::text::xid8,
             last.snapshot)
     UNION
     SELECT event_id FROM bookings WHERE expires_at > $3 AND ",
    crate::hold_lapsed!()
);

/// The figures of the events `$1` (live ones with shows): each live show's seats are read
/// once, by its primary key (`show_id` leads it), in one pass that counts the free and the
/// held together, and its sold seats likewise: what it costs follows the events' seats, not
/// every seat the database has ever had. Counting across the join, the planner scanned every
/// partition of `seats` and `sold_seats` (220–270 ms a second after the soak's hour); joined
/// to events after the count, it counted every show there ever was before keeping the live
/// ones. The shows are found first (`MATERIALIZED`: the planner may not fold them back into
/// the join).
const COUNT: &str = concat!(
    "WITH live AS MATERIALIZED (
            SELECT sh.id, sh.event_id, sh.status FROM events e
            JOIN shows sh ON sh.event_id = e.id
            WHERE e.state <> 'closed' AND e.id = ANY($1))
         SELECT live.event_id AS id,
            coalesce(sum(c.available), 0)::bigint AS available,
            coalesce(sum(c.held), 0)::bigint AS held,
            coalesce(sum(c.sold), 0)::bigint AS sold,
            (SELECT count(DISTINCT visitor_id) FROM bookings
              WHERE event_id = live.event_id AND ",
    crate::hold_live!(),
    ") AS holders
         FROM live
         CROSS JOIN LATERAL (
            SELECT count(*) FILTER (WHERE live.status = 'on_sale' AND ",
    crate::seat_free!("s"),
    ") AS available,
                   count(*) FILTER (WHERE ",
    crate::seat_held_live!("s"),
    ") AS held,
                   (SELECT count(*) FROM sold_seats ss WHERE ss.show_id = live.id) AS sold
            FROM seats s WHERE s.show_id = live.id) c
         GROUP BY live.event_id"
);

/// Write `figures` into Redis, each event's stamped with the time (the worker ignores
/// figures older than 10 s).
async fn publish(state: &AppState, figures: &[(String, Figures)]) -> redis::RedisResult<()> {
    if figures.is_empty() {
        return Ok(());
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut pipe = redis::pipe();
    for (id, f) in figures {
        let key = keys::seats(id);
        pipe.hset_multiple(
            &key,
            &[
                ("available", f.available),
                ("held", f.held),
                ("sold", f.sold),
                ("holders", f.holders),
                ("at", now_ms),
            ],
        )
        .ignore()
        .pexpire(&key, 60_000)
        .ignore();
    }
    pipe.query_async(&mut state.redis.clone()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_cheap_pass_is_followed_by_the_next_one_a_period_after_it_started() {
        assert_eq!(pause_after(ms(0), 0.2), ms(1000));
        assert_eq!(pause_after(ms(26), 0.2), ms(974));
        assert_eq!(pause_after(ms(200), 0.2), ms(800));
    }

    #[test]
    fn a_dear_pass_takes_no_more_than_its_share_of_the_time() {
        // 9 s at a fifth: the next starts 45 s after this one started.
        assert_eq!(pause_after(ms(9000), 0.2), ms(36_000));
        assert_eq!(pause_after(ms(400), 0.2), ms(1600));
        // All of the time: back to back once a pass takes a period or more.
        assert_eq!(pause_after(ms(3000), 1.0), ms(0));
        assert_eq!(pause_after(ms(300), 1.0), ms(700));
        for took in [1, 10, 100, 250, 1000, 5000, 60_000] {
            let pause = pause_after(ms(took), 0.25);
            let share = took as f64 / (took as f64 + pause.as_secs_f64() * 1000.0);
            assert!(share <= 0.25 + 1e-9, "{took} ms: share {share}");
            assert!(ms(took) + pause >= PERIOD);
        }
    }

    #[test]
    fn stale_events_are_counted_again_a_few_a_pass_oldest_first() {
        let shape = Shape {
            shows: 1,
            on_sale: 1,
        };
        let now = Instant::now();
        let ago = |s: u64| now.checked_sub(Duration::from_secs(s)).expect("uptime");
        let mut tally = Tally::new(Duration::from_secs(4));
        for (id, counted_ago) in [("e1", 9), ("e2", 7), ("e3", 5), ("e4", 3), ("e5", 1)] {
            tally.shapes.insert(id.into(), shape);
            let counted = Counted {
                figures: Figures::default(),
                shape,
                at: ago(counted_ago),
            };
            tally.counted.insert(id.into(), counted);
        }
        // Five events over four passes: two a pass, the longest uncounted first; e4 and e5
        // are not due yet.
        assert_eq!(tally.due(&HashSet::new()), ["e1", "e2"]);
        // Changed, never counted, or reshaped: due whatever else, beyond the stale ones.
        tally.shapes.insert("e6".into(), shape);
        tally.shapes.insert(
            "e4".into(),
            Shape {
                shows: 2,
                on_sale: 1,
            },
        );
        let mut due = tally.due(&HashSet::from(["e5".to_owned()]));
        due[..3].sort();
        assert_eq!(due, ["e4", "e5", "e6", "e1", "e2"]);
    }
}
