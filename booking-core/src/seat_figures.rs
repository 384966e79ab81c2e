//! Each live event's seat figures in Redis (`wr:{event}:seats`, see `marquee_waitroom::keys`),
//! every second: seats available (on sale, neither held nor sold, of shows not cancelled),
//! held, sold, and the fans holding. The admitting worker lets a sold-out event's waitlist in
//! no faster than seats come back (never more fans than the seats available beyond what
//! admitted fans not yet holding could take), and records the figures in the event's history
//! for the console's charts.
//!
//! Counting is linear in the live events' seats (7.5 million at the design's 350,000 shows: a
//! pass of 9 s), so passes are paced (`pause_after`): every second while a pass takes at most
//! `[booking] seat_figures_max_share` of the time, less often beyond that, so one Postgres
//! backend is never kept busy by them for good. The worker uses figures no older than 10 s and
//! admits by rate and cap alone otherwise.

use std::time::{Duration, Instant};

use marquee_platform::shutdown::Shutdown;
use marquee_waitroom::keys;
use prometheus::Gauge;

use crate::state::AppState;

/// The figures are published this often when counting them is cheap.
pub const PERIOD: Duration = Duration::from_secs(1);

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
    let _ = state
        .metrics
        .registry
        .register(Box::new(took_gauge.clone()));
    tokio::spawn(async move {
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
            if let Err(e) = publish_all(&state).await {
                tracing::warn!(error = %e, "seat figures not published; will retry");
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

#[derive(sqlx::FromRow)]
struct Figures {
    id: String,
    available: i64,
    held: i64,
    sold: i64,
    holders: i64,
}

/// Publish the figures of every live (not closed) event with shows (the join leaves out one
/// with none yet: it has no seats to count, and is admitted by the rate and cap alone).
pub async fn publish_all(state: &AppState) -> anyhow::Result<()> {
    // Each live show's seats are read once, by its primary key (`show_id` leads it), in one
    // pass that counts the free and the held together, and its sold seats likewise: what it
    // costs follows the live events' seats, not every seat the database has ever had.
    // Counting across the join, the planner scanned every partition of `seats` and
    // `sold_seats` (220–270 ms a second after the soak's hour); joined to events after the
    // count, it counted every show there ever was before keeping the live ones (164 ms a
    // second after the third hour's 318 shows, 60 of them live). The live shows are found
    // first (`MATERIALIZED`: the planner may not fold them back into the join): 26 ms.
    // Without JIT: compiling the statement's expressions each pass cost more than it saved
    // (350,000 shows: 12 s a pass with it, 9 s without).
    let mut tx = state.db.begin().await?;
    sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
    let rows: Vec<Figures> = sqlx::query_as(concat!(
        "WITH live AS MATERIALIZED (
            SELECT sh.id, sh.event_id, sh.status FROM events e
            JOIN shows sh ON sh.event_id = e.id
            WHERE e.state <> 'closed')
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
    ))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    if rows.is_empty() {
        return Ok(());
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut pipe = redis::pipe();
    for f in &rows {
        let key = keys::seats(&f.id);
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
    let () = pipe.query_async(&mut state.redis.clone()).await?;
    Ok(())
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
}
