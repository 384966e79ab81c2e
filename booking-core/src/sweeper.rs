//! Background work: the hold sweeper (lapsed holds expire and their seats go back on sale, in
//! batches, `SKIP LOCKED` so any number of replicas can run it), the sold-out monitor that
//! keeps each event's live settings in Redis in step with Postgres, and tidying.

use std::time::Duration;

use marquee_platform::shutdown::Shutdown;
use sqlx::PgPool;

use crate::state::AppState;

/// How many bookings and seats one sweep changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub bookings: u64,
    pub seats: u64,
}

/// One sweep: expire up to `batch` lapsed holds, then free up to `batch` lapsed seat rows.
pub async fn sweep_once(db: &PgPool, batch: i64) -> Result<Swept, sqlx::Error> {
    let bookings = sqlx::query(
        "UPDATE bookings b SET status = 'expired', status_reason = 'hold lapsed', updated_at = now()
         FROM (SELECT show_id, id FROM bookings
               WHERE status = 'held' AND expires_at <= now()
               ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED) lapsed
         WHERE b.show_id = lapsed.show_id AND b.id = lapsed.id",
    )
    .bind(batch)
    .execute(db)
    .await?
    .rows_affected();
    let seats = sqlx::query(
        "UPDATE seats s SET status = 'available', booking_id = NULL, held_until = NULL,
                version = nextval('seat_version_seq')
         FROM (SELECT show_id, seat_id FROM seats
               WHERE status = 'held' AND held_until <= now()
               LIMIT $1 FOR UPDATE SKIP LOCKED) lapsed
         WHERE s.show_id = lapsed.show_id AND s.seat_id = lapsed.seat_id",
    )
    .bind(batch)
    .execute(db)
    .await?
    .rows_affected();
    Ok(Swept { bookings, seats })
}

/// Republish every open event whose sold-out flag (or anything else) differs from Redis.
pub async fn sync_live_settings(state: &AppState) -> anyhow::Result<()> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM events WHERE state <> 'closed'")
        .fetch_all(&state.db)
        .await?;
    let mut redis = state.redis.clone();
    let mut conn = state.db.acquire().await?;
    for id in ids {
        let live = crate::live::settings_for(&mut conn, &id).await?;
        if crate::live::published(&mut redis, &id).await?.as_ref() != Some(&live) {
            crate::live::publish(&mut redis, &state.settings.redis.events_key, &live).await?;
            tracing::info!(event = %id, sold_out = live.sold_out, "live settings republished");
        }
    }
    Ok(())
}

pub fn spawn(state: AppState, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_millis(state.settings.booking.sweep_interval_ms);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_sync = tokio::time::Instant::now() - Duration::from_secs(60);
        let mut last_tidy = tokio::time::Instant::now();
        let mut last_reconcile = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.wait() => return,
            }
            loop {
                match sweep_once(&state.db, state.settings.booking.sweep_batch).await {
                    Ok(s) if s.bookings + s.seats > 0 => {
                        tracing::debug!(?s, "swept lapsed holds");
                        if (s.bookings as i64) < state.settings.booking.sweep_batch
                            && (s.seats as i64) < state.settings.booking.sweep_batch
                        {
                            break;
                        }
                    }
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "sweep failed; will retry");
                        break;
                    }
                }
            }
            if last_sync.elapsed() >= Duration::from_secs(1) {
                last_sync = tokio::time::Instant::now();
                if let Err(e) = sync_live_settings(&state).await {
                    tracing::warn!(error = %e, "live settings sync failed; will retry");
                }
            }
            if last_reconcile.elapsed() >= Duration::from_secs(2) {
                last_reconcile = tokio::time::Instant::now();
                if let Err(e) = crate::payments::reconcile::run_once(&state).await {
                    tracing::warn!(error = %e, "payment reconciliation failed; will retry");
                }
            }
            if last_tidy.elapsed() >= Duration::from_secs(60) {
                last_tidy = tokio::time::Instant::now();
                state.limiter.tidy();
                if let Err(e) =
                    crate::idempotency::purge(&state.db, state.settings.booking.idempotency_ttl_s)
                        .await
                {
                    tracing::warn!(error = %e, "idempotency purge failed");
                }
            }
        }
    })
}
