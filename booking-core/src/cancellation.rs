//! Cancelling a show (API.md, `POST /admin/v1/shows/{id}/cancel`). `request` marks the show
//! cancelled at once, under the lock a confirmation takes (the show's row: a confirm holds it
//! `FOR KEY SHARE`, so this `FOR UPDATE` waits for confirms in flight and every later one sees
//! the mark and refunds instead, `payments::settle`); from then on reserves are refused and
//! its seats never count as available. The rest is `run_once`, a background job, resumable: a
//! replica claims the work for `CLAIM` at a time and renews the claim as it goes, so after a
//! crash another (or the same, restarted) takes it up where it stopped. Each pass releases
//! the show's holds (and cancels their open PaymentIntents), then refunds the confirmed
//! bookings one by one: the booking's change and a pending refund commit together (the
//! announcement `BookingRefunded`, reason `show_cancelled`, with them), then Stripe is asked
//! under an idempotency key per PaymentIntent, so a booking is refunded once however often
//! the job is interrupted (reconciliation retries a refund left pending). It is done when no
//! hold and no confirmed booking of the show remains.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::audit::{self, Entry};
use crate::error::{ApiError, ApiResult};
use crate::model::ShowStatus;
use crate::operators::{Act, Operator};
use crate::payments::settle::{self, Refund};
use crate::state::AppState;

/// How long a replica holds a cancellation between renewals.
const CLAIM: Duration = Duration::from_secs(30);
/// The status reason of every booking the cancellation ends (the announcement's reason
/// `show_cancelled`, migration 13).
pub const REASON: &str = "show cancelled";

/// Mark the show cancelled and queue its cancellation (idempotent: asking again changes
/// nothing). Audited with the operator and request.
pub async fn request(db: &PgPool, op: &Operator, show_id: &str) -> ApiResult<Value> {
    let mut tx = db.begin().await?;
    let event: Option<(String, ShowStatus)> =
        sqlx::query_as("SELECT event_id, status FROM shows WHERE id = $1 FOR UPDATE")
            .bind(show_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((event_id, status)) = event else {
        return Err(ApiError::NotFound("show"));
    };
    op.may(Act::Manage(&event_id))?;
    if status == ShowStatus::OnSale {
        sqlx::query("UPDATE shows SET status = $2, cancelled_at = now() WHERE id = $1")
            .bind(show_id)
            .bind(ShowStatus::Cancelled)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO show_cancellations (show_id, requested_by) VALUES ($1, $2)")
            .bind(show_id)
            .bind(&op.name)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            &Entry::by(op, "show.cancel", show_id)
                .event(&event_id)
                .change(
                    Some(json!({"status": ShowStatus::OnSale})),
                    Some(json!({"status": ShowStatus::Cancelled})),
                ),
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(show = %show_id, event = %event_id, "show cancelled; refunds follow");
    status_of(db, show_id).await
}

/// A show as `GET /admin/v1/shows/{id}` answers it: its status, seat counts and, once
/// cancelled, the cancellation's progress.
pub async fn status_of(db: &PgPool, show_id: &str) -> ApiResult<Value> {
    #[derive(sqlx::FromRow)]
    struct Row {
        event_id: String,
        status: ShowStatus,
        seat_count: i32,
        held: i64,
        sold: i64,
        total: Option<i32>,
        refunded: Option<i32>,
        requested_at: Option<chrono::DateTime<chrono::Utc>>,
        done_at: Option<chrono::DateTime<chrono::Utc>>,
        confirmed_left: i64,
    }
    let r: Row = sqlx::query_as(concat!(
        "SELECT s.event_id, s.status, s.seat_count,
                (SELECT count(*) FROM seats x WHERE x.show_id = s.id AND ",
        crate::seat_held_live!("x"),
        ") AS held,
                (SELECT count(*) FROM sold_seats ss WHERE ss.show_id = s.id) AS sold,
                c.total, c.refunded, c.requested_at, c.done_at,
                (SELECT count(*) FROM bookings b WHERE b.show_id = s.id AND b.status = 'confirmed')
                  AS confirmed_left
         FROM shows s LEFT JOIN show_cancellations c ON c.show_id = s.id WHERE s.id = $1"
    ))
    .bind(show_id)
    .fetch_optional(db)
    .await?
    .ok_or(ApiError::NotFound("show"))?;
    let mut v = json!({
        "show_id": show_id, "event_id": r.event_id, "status": r.status,
        "seat_count": r.seat_count, "held_seats": r.held, "sold_seats": r.sold,
    });
    if let Some(requested_at) = r.requested_at {
        let refunded = r.refunded.unwrap_or(0);
        v["cancellation"] = json!({
            "requested_at": requested_at,
            "refunded": refunded,
            "total": r.total.unwrap_or(refunded + r.confirmed_left as i32),
            "done": r.done_at.is_some(),
            "done_at": r.done_at,
        });
    }
    Ok(v)
}

/// One pass of the job: take up one open cancellation this replica can claim and carry it as
/// far as it goes. Returns whether there was one.
pub async fn run_once(state: &AppState) -> anyhow::Result<bool> {
    let claimed: Option<String> = sqlx::query_scalar(
        "UPDATE show_cancellations SET claimed_until = now() + make_interval(secs => $1)
         WHERE show_id = (SELECT show_id FROM show_cancellations
                          WHERE done_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
                          ORDER BY requested_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING show_id",
    )
    .bind(CLAIM.as_secs_f64())
    .fetch_optional(&state.db)
    .await?;
    let Some(show) = claimed else {
        return Ok(false);
    };
    carry(state, &show).await?;
    Ok(true)
}

async fn renew(db: &PgPool, show: &str) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE show_cancellations SET claimed_until = now() + make_interval(secs => $2)
         WHERE show_id = $1",
    )
    .bind(show)
    .bind(CLAIM.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

async fn carry(state: &AppState, show: &str) -> anyhow::Result<()> {
    let db = &state.db;
    // How many there were to refund, the first time through.
    sqlx::query(
        "UPDATE show_cancellations SET total = (SELECT count(*) FROM bookings
                                                WHERE show_id = $1 AND status = 'confirmed')
         WHERE show_id = $1 AND total IS NULL",
    )
    .bind(show)
    .execute(db)
    .await?;
    release_holds(state, show).await?;
    loop {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM bookings WHERE show_id = $1 AND status = 'confirmed' LIMIT 20",
        )
        .bind(show)
        .fetch_all(db)
        .await?;
        if ids.is_empty() {
            break;
        }
        for id in ids {
            refund_one(state, show, &id).await?;
            renew(db, show).await?;
        }
    }
    // A hold that slipped in before every replica saw the mark (their show cache lasts a
    // second) is released by the next pass: done only when none is left.
    let held: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bookings WHERE show_id = $1 AND status = 'held'")
            .bind(show)
            .fetch_one(db)
            .await?;
    if held > 0 {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    let done: Option<(String, i32, Option<i32>)> = sqlx::query_as(
        "UPDATE show_cancellations c SET done_at = now(), claimed_until = NULL
         FROM shows s WHERE c.show_id = $1 AND s.id = c.show_id AND c.done_at IS NULL
         RETURNING s.event_id, c.refunded, c.total",
    )
    .bind(show)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((event_id, refunded, total)) = done {
        audit::record(
            &mut tx,
            &Entry {
                operator: "cancellation",
                action: "show.cancel.done",
                event_id: Some(&event_id),
                target: show,
                before: None,
                after: Some(json!({"refunded": refunded, "total": total})),
                request_id: None,
            },
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(%show, "show cancellation done");
    Ok(())
}

/// End every hold of the show (its seats back, though never on sale again) and cancel the
/// open PaymentIntents: a payment that still goes through is refunded on confirmation.
async fn release_holds(state: &AppState, show: &str) -> anyhow::Result<()> {
    let intents: Vec<String> = sqlx::query_scalar(concat!(
        "WITH ended AS (
            UPDATE bookings SET status = 'released', status_reason = $2, updated_at = now()
            WHERE show_id = $1 AND status = 'held'
            RETURNING show_id, id, seat_ids),",
        crate::free_ended_seats!(),
        "SELECT a.payment_intent_id FROM payment_attempts a JOIN ended e ON e.id = a.booking_id
         WHERE a.state = 'open'"
    ))
    .bind(show)
    .bind(REASON)
    .fetch_all(&state.db)
    .await?;
    for pi in intents {
        match state.stripe.cancel(&pi).await {
            Ok(_) => {
                settle::attempt_closed(state, &pi, "canceled", "canceled").await?;
            }
            Err(e) => {
                tracing::warn!(payment_intent = %pi, error = %e, "could not cancel a PaymentIntent of a cancelled show; a payment is refunded on confirmation")
            }
        }
    }
    Ok(())
}

/// Refund one confirmed booking: its change and a pending refund commit together, then
/// Stripe is asked (idempotent per PaymentIntent).
async fn refund_one(state: &AppState, show: &str, id: &str) -> anyhow::Result<()> {
    let mut tx = state.db.begin().await?;
    let booking = settle::lock_booking(&mut tx, id).await?;
    let changed = settle::booking_refunded(&mut tx, &booking, REASON, Refund::Pending).await?;
    if changed {
        sqlx::query("UPDATE show_cancellations SET refunded = refunded + 1 WHERE show_id = $1")
            .bind(show)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    if let Some(pi) = booking.payment_intent_id.as_deref().filter(|_| changed) {
        settle::send_refund(state, pi).await;
    }
    Ok(())
}
