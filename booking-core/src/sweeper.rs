//! Background work, each job on its own schedule so one slow dependency cannot stall another:
//! the hold sweeper (lapsed holds expire and their seats go back on sale, in batches, `SKIP
//! LOCKED` so any number of replicas can run it; every `sweep_interval_ms`), the sold-out
//! monitor that keeps each event's live settings in Redis in step with Postgres, with its
//! seat figures for the waitlist and the charts (`seat_figures`; every second while counting
//! them is cheap), Stripe reconciliation (every 2 s) and tidying (every minute).

use std::time::Duration;

use marquee_platform::shutdown::Shutdown;
use sqlx::PgPool;

use crate::state::AppState;

/// A show's seat map unread this long is forgotten at the next tidy.
const SEAT_MAP_IDLE: Duration = Duration::from_secs(120);

/// How many bookings and seats one sweep changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub bookings: u64,
    pub seats: u64,
}

/// One sweep: free the seats of up to `batch` lapsed holds, oldest first, then expire up to
/// `batch` lapsed holds that no longer hold a seat. The seats are found through the holds
/// (no index on `seats` covers a column a hold changes, so holds and releases are HOT
/// updates), and each statement locks one kind of row only, `SKIP LOCKED`: a seat row locked
/// by a fan's reserve, or a booking locked by its owner, is left to the next sweep, and the
/// sweeper never waits in a lock cycle with them. Stopping between the two statements leaves
/// holds that read as expired already and that the next sweep ends.
pub async fn sweep_once(db: &PgPool, batch: i64) -> Result<Swept, sqlx::Error> {
    let seats = sqlx::query(concat!(
        "UPDATE seats s SET ",
        crate::seat_back_on_sale!(),
        " FROM (SELECT seats.show_id, seats.seat_id
               FROM (SELECT show_id, id, seat_ids FROM bookings
                     WHERE ",
        crate::hold_lapsed!(),
        " ORDER BY expires_at LIMIT $1) lapsed
               JOIN seats ON seats.show_id = lapsed.show_id AND seats.seat_id = ANY(lapsed.seat_ids)
               WHERE seats.booking_id = lapsed.id AND seats.status = 'held'
               FOR UPDATE OF seats SKIP LOCKED) freed
         WHERE s.show_id = freed.show_id AND s.seat_id = freed.seat_id"
    ))
    .bind(batch)
    .execute(db)
    .await?
    .rows_affected();
    let bookings = sqlx::query(concat!(
        "UPDATE bookings b SET status = 'expired', status_reason = 'hold lapsed', updated_at = now()
         FROM (SELECT show_id, id FROM bookings
               WHERE ",
        crate::hold_lapsed!(),
        " ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED) lapsed
         WHERE b.show_id = lapsed.show_id AND b.id = lapsed.id
           AND NOT EXISTS (SELECT 1 FROM seats
                           WHERE seats.show_id = b.show_id AND seats.seat_id = ANY(b.seat_ids)
                             AND seats.booking_id = b.id AND seats.status = 'held')"
    ))
    .bind(batch)
    .execute(db)
    .await?
    .rows_affected();
    Ok(Swept { bookings, seats })
}

/// Seats still marked held by a hold that has ended: a hold ended by a reserve frees the
/// seats it still had, skipping any another request had locked at that moment, and if that
/// request then took nothing, the seat is left marked (it reads as free everywhere, since its
/// window has passed). A rare tidy-up, so it may read every seat.
pub async fn free_orphaned_seats(db: &PgPool) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(concat!(
        "UPDATE seats s SET ",
        crate::seat_back_on_sale!(),
        " FROM (SELECT seats.show_id, seats.seat_id FROM seats
               JOIN bookings b ON b.show_id = seats.show_id AND b.id = seats.booking_id
               WHERE ",
        crate::seat_lapsed!("seats"),
        " AND b.status <> 'held'
               FOR UPDATE OF seats SKIP LOCKED) orphaned
         WHERE s.show_id = orphaned.show_id AND s.seat_id = orphaned.seat_id"
    ))
    .execute(db)
    .await?
    .rows_affected())
}

/// Republish every open event whose sold-out flag (or anything else) differs from Redis.
pub async fn sync_live_settings(state: &AppState) -> anyhow::Result<()> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM events WHERE state <> 'closed'")
        .fetch_all(&state.db)
        .await?;
    let mut redis = state.redis.clone();
    let events_key = &state.settings.redis.events_key;
    let mut conn = state.db.acquire().await?;
    for id in ids {
        let live = crate::live::settings_for(&mut conn, &id).await?;
        if crate::live::published(&mut redis, &id).await?.as_ref() == Some(&live) {
            continue;
        }
        if crate::live::publish(&mut redis, events_key, &live).await? {
            tracing::info!(event = %id, sold_out = live.sold_out, "live settings republished");
            continue;
        }
        // Redis holds a newer revision than Postgres. Either a change is being made right
        // now (published, not yet committed), or a change's publish took effect in Redis
        // though its request failed and was rolled back, which would otherwise stay in Redis
        // for good. Postgres is the record: lock the event's row (waiting for a change in
        // flight to commit), read it again and put exactly that in Redis.
        let mut tx = state.db.begin().await?;
        sqlx::query("SELECT 1 FROM events WHERE id = $1 FOR UPDATE")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let live = crate::live::settings_for(&mut tx, &id).await?;
        if crate::live::published(&mut redis, &id).await?.as_ref() != Some(&live) {
            crate::live::force_publish(&mut redis, events_key, &live).await?;
            tracing::warn!(event = %id, "Redis held settings Postgres does not have; restored");
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Run `job` every `period` until shutdown, on a task of its own: one slow dependency (Stripe
/// for reconciliation, Redis for the settings sync) never delays another job (sweeping holds).
fn every<F, Fut>(period: Duration, shutdown: Shutdown, mut job: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => job().await,
                () = shutdown.wait() => return,
            }
        }
    })
}

/// Sweep lapsed holds until a sweep finds less than a batch.
async fn sweep(state: &AppState) {
    let batch = state.settings.booking.sweep_batch;
    loop {
        match sweep_once(&state.db, batch).await {
            Ok(s) if s.bookings + s.seats > 0 => {
                tracing::debug!(?s, "swept lapsed holds");
                if (s.bookings as i64) < batch && (s.seats as i64) < batch {
                    return;
                }
            }
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "sweep failed; will retry");
                return;
            }
        }
    }
}

/// Once a minute: forget idle limiter entries and seat maps, free seats of ended holds, purge
/// old idempotency keys.
async fn tidy(state: &AppState) {
    state.reserve_gate.tidy();
    // A show's map unread for two minutes is loaded again when next asked for (a query of a
    // few milliseconds): kept longer, the maps of the evening's finished shows were most of
    // booking-core's memory, which then followed how many shows had ended lately.
    let forgotten = state.seatmaps.tidy(SEAT_MAP_IDLE);
    if forgotten > 0 {
        tracing::debug!(forgotten, "idle seat maps forgotten");
    }
    match free_orphaned_seats(&state.db).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(seats = n, "freed seats of ended holds"),
        Err(e) => tracing::warn!(error = %e, "freeing seats of ended holds failed"),
    }
    if let Err(e) =
        crate::idempotency::purge(&state.db, state.settings.booking.idempotency_ttl_s).await
    {
        tracing::warn!(error = %e, "idempotency purge failed");
    }
}

/// Start every background job, each on its own schedule; the handle ends when all have
/// stopped (at shutdown).
pub fn spawn(state: AppState, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
    let sweep_every = Duration::from_millis(state.settings.booking.sweep_interval_ms);
    let jobs = [
        every(sweep_every, shutdown.clone(), {
            let state = state.clone();
            move || {
                let state = state.clone();
                async move {
                    state.lane.tidy();
                    sweep(&state).await;
                }
            }
        }),
        every(Duration::from_secs(1), shutdown.clone(), {
            let state = state.clone();
            move || {
                let state = state.clone();
                async move {
                    if let Err(e) = sync_live_settings(&state).await {
                        tracing::warn!(error = %e, "live settings sync failed; will retry");
                    }
                }
            }
        }),
        every(Duration::from_secs(2), shutdown.clone(), {
            let state = state.clone();
            move || {
                let state = state.clone();
                async move {
                    if let Err(e) = crate::payments::reconcile::run_once(&state).await {
                        tracing::warn!(error = %e, "payment reconciliation failed; will retry");
                    }
                }
            }
        }),
        // Show cancellations: each pass carries one as far as it goes (`cancellation`).
        every(Duration::from_millis(500), shutdown.clone(), {
            let state = state.clone();
            move || {
                let state = state.clone();
                async move {
                    if let Err(e) = crate::cancellation::run_once(&state).await {
                        tracing::warn!(error = %e, "show cancellation stopped; will resume");
                    }
                }
            }
        }),
        // The partitions a sale is filling, analyzed as they fill (`statistics`).
        every(Duration::from_secs(2), shutdown.clone(), {
            let state = state.clone();
            move || {
                let state = state.clone();
                async move {
                    let min = state.settings.booking.analyze_after_changes;
                    match crate::statistics::run_once(&state.db, min).await {
                        Ok(analyzed) if !analyzed.is_empty() => {
                            tracing::debug!(?analyzed, "partitions analyzed");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "analyzing partitions failed"),
                    }
                }
            }
        }),
        // Seat figures on a job of their own, paced by what a pass costs: a slow count never
        // delays the live settings' sync.
        crate::seat_figures::spawn(state.clone(), shutdown.clone()),
        every(Duration::from_secs(60), shutdown, move || {
            let state = state.clone();
            async move { tidy(&state).await }
        }),
    ];
    tokio::spawn(async move {
        for job in jobs {
            let _ = job.await;
        }
    })
}
