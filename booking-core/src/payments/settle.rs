//! What a payment outcome does to its booking (invariant 3): a successful payment confirms the
//! booking when its seats are still free for it, even after the hold lapsed; otherwise the
//! booking is marked refunded and a refund is recorded in the same transaction, then sent to
//! Stripe (and retried by reconciliation until Stripe confirms). Nothing is charged without a
//! ticket or a refund. The outbox message for each change is written by the `bookings`
//! trigger in the same transaction. Every step is idempotent: webhooks, confirm calls and reconciliation
//! may all race on one payment.

use sqlx::{PgConnection, Postgres, Transaction};

use super::stripe::Intent;
use crate::error::{ApiError, ApiResult};
use crate::model::{BookingStatus, SeatStatus};
use crate::state::AppState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The booking is confirmed; its ticket code.
    Confirmed { code: String },
    /// The money goes back; why.
    Refunded { reason: String },
}

#[derive(sqlx::FromRow)]
pub struct BookingRow {
    pub id: String,
    pub show_id: String,
    pub event_id: String,
    /// The admitted fan who held the seats.
    pub visitor_id: String,
    pub status: BookingStatus,
    pub seat_ids: Vec<String>,
    pub total_cents: i64,
    pub currency: String,
    pub payment_intent_id: Option<String>,
}

/// Lock a booking by reservation id inside `tx`.
pub async fn lock_booking(tx: &mut PgConnection, id: &str) -> ApiResult<BookingRow> {
    sqlx::query_as(
        "SELECT b.id, b.show_id, b.event_id, b.visitor_id, b.status, b.seat_ids, b.total_cents, b.currency,
                b.payment_intent_id
         FROM bookings b WHERE b.show_id = $1 AND b.id = $2 FOR UPDATE",
    )
    .bind(crate::bookings::show_of(&mut *tx, id).await?)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("booking"))
}

pub async fn ticket_code(conn: &mut PgConnection, booking_id: &str) -> ApiResult<Option<String>> {
    Ok(ticket_of(conn, booking_id).await?.map(|(code, _)| code))
}

/// A booking's ticket: its code and the signed payload its QR code carries.
pub async fn ticket_of(
    conn: &mut PgConnection,
    booking_id: &str,
) -> ApiResult<Option<(String, Option<String>)>> {
    Ok(
        sqlx::query_as("SELECT code, qr_payload FROM tickets WHERE booking_id = $1")
            .bind(booking_id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// A PaymentIntent succeeded.
pub async fn payment_succeeded(state: &AppState, intent: &Intent) -> ApiResult<Settled> {
    let booking_id = intent
        .metadata
        .get("reservation_id")
        .cloned()
        .ok_or(ApiError::NotFound("booking for this payment"))?;
    let mut tx = state.db.begin().await?;
    let booking = lock_booking(&mut tx, &booking_id).await?;
    // The fan's email, sealed, and its lookup hash, as checkout stored them (never in clear).
    let email: Option<(Option<serde_json::Value>, Option<String>)> = sqlx::query_as(
        "UPDATE payment_attempts SET state = 'succeeded', stripe_status = 'succeeded', updated_at = now()
         WHERE payment_intent_id = $1 AND booking_id = $2 RETURNING email_enc, email_hash",
    )
    .bind(&intent.id)
    .bind(&booking.id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((email_enc, email_hash)) = email else {
        // Not an attempt we started for this booking: give the money back.
        return refund_instead(
            state,
            tx,
            &booking,
            intent,
            "payment does not belong to this booking",
        )
        .await;
    };
    // The show's row, shared with every other confirmation and exclusive to a cancellation
    // (`crate::cancellation`): a show cancelled before this point is refunded, never sold.
    let show_status: crate::model::ShowStatus =
        sqlx::query_scalar("SELECT status FROM shows WHERE id = $1 FOR KEY SHARE")
            .bind(&booking.show_id)
            .fetch_one(&mut *tx)
            .await?;
    if show_status == crate::model::ShowStatus::Cancelled
        && booking.status != BookingStatus::Confirmed
    {
        return refund_instead(state, tx, &booking, intent, crate::cancellation::REASON).await;
    }

    match booking.status {
        BookingStatus::Confirmed
            if booking.payment_intent_id.as_deref() == Some(intent.id.as_str()) =>
        {
            let code = ticket_code(&mut tx, &booking.id).await?.unwrap_or_default();
            tx.commit().await?;
            return Ok(Settled::Confirmed { code });
        }
        BookingStatus::Confirmed => {
            return refund_instead(state, tx, &booking, intent, "the booking was already paid")
                .await;
        }
        BookingStatus::Refunded => {
            return refund_instead(
                state,
                tx,
                &booking,
                intent,
                "the booking was already refunded",
            )
            .await;
        }
        _ => {}
    }
    if intent.amount != booking.total_cents
        || !intent.currency.eq_ignore_ascii_case(&booking.currency)
    {
        return refund_instead(
            state,
            tx,
            &booking,
            intent,
            "amount or currency does not match the booking",
        )
        .await;
    }

    // Are the seats still free for this booking? Lock them (a definite answer, not SKIP
    // LOCKED: confirmation may wait a moment for a competing hold to decide).
    #[derive(sqlx::FromRow)]
    struct Seat {
        status: SeatStatus,
        booking_id: Option<String>,
        lapsed: bool,
    }
    let seats: Vec<Seat> = sqlx::query_as(concat!(
        "SELECT status, booking_id, ",
        crate::seat_lapsed!(),
        " AS lapsed
         FROM seats WHERE show_id = $1 AND seat_id = ANY($2) ORDER BY seat_id FOR UPDATE"
    ))
    .bind(&booking.show_id)
    .bind(&booking.seat_ids)
    .fetch_all(&mut *tx)
    .await?;
    let ours = |s: &Seat| {
        s.booking_id.as_deref() == Some(booking.id.as_str()) && s.status == SeatStatus::Held
    };
    let free = seats.len() == booking.seat_ids.len()
        && seats
            .iter()
            .all(|s| ours(s) || s.status == SeatStatus::Available || s.lapsed);
    if !free {
        return refund_instead(
            state,
            tx,
            &booking,
            intent,
            "paid after the hold lapsed and its seats were taken",
        )
        .await;
    }
    let mut others: Vec<&str> = seats
        .iter()
        .filter(|s| !ours(s))
        .filter_map(|s| s.booking_id.as_deref())
        .collect();
    others.sort_unstable();
    others.dedup();
    crate::holds::expire_lapsed(&mut tx, &booking.show_id, &others).await?;
    sqlx::query(
        "UPDATE seats SET status = 'booked', booking_id = $3, held_until = NULL,
                version = nextval('seat_version_seq')
         WHERE show_id = $1 AND seat_id = ANY($2)",
    )
    .bind(&booking.show_id)
    .bind(&booking.seat_ids)
    .bind(&booking.id)
    .execute(&mut *tx)
    .await?;
    // The database's last word: a seat already sold cannot be sold again.
    let sold = sqlx::query(
        "INSERT INTO sold_seats (show_id, seat_id, booking_id) SELECT $1, unnest($2::text[]), $3",
    )
    .bind(&booking.show_id)
    .bind(&booking.seat_ids)
    .bind(&booking.id)
    .execute(&mut *tx)
    .await;
    if let Err(sqlx::Error::Database(e)) = &sold
        && e.code().as_deref() == Some("23505")
    {
        tx.rollback().await?;
        let mut tx = state.db.begin().await?;
        let booking = lock_booking(&mut tx, &booking.id).await?;
        return refund_instead(
            state,
            tx,
            &booking,
            intent,
            "the seats were sold to someone else",
        )
        .await;
    }
    sold?;
    // The ticket first: the trigger announcing the confirmation reads its code.
    let code = crate::tickets::new_code();
    let payload = crate::tickets::sign(
        &state.ticket_keys,
        &code,
        &booking.show_id,
        &booking.seat_ids,
    )?;
    sqlx::query(
        "INSERT INTO tickets (code, booking_id, show_id, seat_ids, qr_payload) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&code)
    .bind(&booking.id)
    .bind(&booking.show_id)
    .bind(&booking.seat_ids)
    .bind(&payload)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE bookings SET status = 'confirmed', status_reason = NULL, confirmed_at = now(),
                payment_intent_id = $3, email_enc = $4, email_hash = $5, updated_at = now()
         WHERE show_id = $1 AND id = $2",
    )
    .bind(&booking.show_id)
    .bind(&booking.id)
    .bind(&intent.id)
    .bind(&email_enc)
    .bind(&email_hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(booking = %booking.id, payment = %intent.id, "booking confirmed");
    // The fan has bought: its slot under the cap goes to the next fan. If Redis does not
    // answer, the slot lapses by itself after the hold's window and the idle time.
    if let Err(e) = marquee_waitroom::session::finish(
        &mut state.redis.clone(),
        &booking.event_id,
        &booking.visitor_id,
    )
    .await
    {
        tracing::warn!(booking = %booking.id, error = %e, "could not free the fan's slot; it lapses by itself");
    }
    Ok(Settled::Confirmed { code })
}

/// Record that this payment goes back, in the transaction, then ask Stripe (a failure there
/// leaves the refund pending for reconciliation; it is never lost).
async fn refund_instead(
    state: &AppState,
    mut tx: Transaction<'_, Postgres>,
    booking: &BookingRow,
    intent: &Intent,
    reason: &str,
) -> ApiResult<Settled> {
    sqlx::query(
        "INSERT INTO refunds (payment_intent_id, booking_id, reason) VALUES ($1, $2, $3)
         ON CONFLICT (payment_intent_id) DO NOTHING",
    )
    .bind(&intent.id)
    .bind(&booking.id)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    // Only a booking that never got its seats becomes `refunded`; a confirmed booking paid
    // twice keeps its ticket and only the second payment goes back.
    if booking.status.ended_unsold() {
        sqlx::query(concat!(
            "UPDATE seats SET ",
            crate::seat_back_on_sale!(),
            " WHERE show_id = $1 AND seat_id = ANY($2) AND booking_id = $3 AND status = 'held'"
        ))
        .bind(&booking.show_id)
        .bind(&booking.seat_ids)
        .bind(&booking.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE bookings SET status = 'refunded', status_reason = $3, payment_intent_id = $4, updated_at = now()
             WHERE show_id = $1 AND id = $2",
        )
        .bind(&booking.show_id)
        .bind(&booking.id)
        .bind(reason)
        .bind(&intent.id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::warn!(booking = %booking.id, payment = %intent.id, reason, "payment will be refunded");
    send_refund(state, &intent.id).await;
    Ok(Settled::Refunded {
        reason: reason.to_owned(),
    })
}

/// Ask Stripe for a pending refund; on success mark it done. Failures stay pending.
pub async fn send_refund(state: &AppState, payment_intent: &str) {
    match state.stripe.refund(payment_intent, "marquee").await {
        Ok(refund_id) => {
            let res = sqlx::query(
                "UPDATE refunds SET state = 'succeeded', stripe_refund_id = $2, updated_at = now()
                 WHERE payment_intent_id = $1",
            )
            .bind(payment_intent)
            .bind(&refund_id)
            .execute(&state.db)
            .await;
            if let Err(e) = res {
                tracing::warn!(error = %e, payment_intent, "refund sent but not recorded; reconciliation will retry (Stripe deduplicates)");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, payment_intent, "refund pending; reconciliation will retry")
        }
    }
}

/// A payment attempt was declined or canceled: the booking stays held for another attempt.
pub async fn attempt_closed(
    state: &AppState,
    payment_intent: &str,
    new_state: &str,
    stripe_status: &str,
) -> ApiResult<()> {
    sqlx::query(
        "UPDATE payment_attempts SET state = $2, stripe_status = $3, updated_at = now()
         WHERE payment_intent_id = $1 AND state = 'open'",
    )
    .bind(payment_intent)
    .bind(new_state)
    .bind(stripe_status)
    .execute(&state.db)
    .await?;
    Ok(())
}

/// A confirmed booking's money went back (an operator's refund, or one made in Stripe's
/// dashboard): void the ticket and put the seats back on sale. With `Refund::Pending` the
/// money is still to be asked of Stripe (`send_refund` after the commit; reconciliation if
/// that fails or the process dies first).
pub async fn confirmed_booking_refunded(
    tx: &mut PgConnection,
    booking: &BookingRow,
    reason: &str,
) -> ApiResult<bool> {
    booking_refunded(tx, booking, reason, Refund::Done).await
}

/// Where a refund stands at Stripe when the booking is marked refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refund {
    Done,
    Pending,
}

pub async fn booking_refunded(
    tx: &mut PgConnection,
    booking: &BookingRow,
    reason: &str,
    refund: Refund,
) -> ApiResult<bool> {
    if booking.status != BookingStatus::Confirmed {
        return Ok(false);
    }
    sqlx::query("DELETE FROM sold_seats WHERE show_id = $1 AND booking_id = $2")
        .bind(&booking.show_id)
        .bind(&booking.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(concat!(
        "UPDATE seats SET ",
        crate::seat_back_on_sale!(),
        " WHERE show_id = $1 AND seat_id = ANY($3) AND booking_id = $2"
    ))
    .bind(&booking.show_id)
    .bind(&booking.id)
    .bind(&booking.seat_ids)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE bookings SET status = 'refunded', status_reason = $3, updated_at = now()
         WHERE show_id = $1 AND id = $2",
    )
    .bind(&booking.show_id)
    .bind(&booking.id)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE tickets SET voided_at = now() WHERE booking_id = $1 AND voided_at IS NULL")
        .bind(&booking.id)
        .execute(&mut *tx)
        .await?;
    if let Some(pi) = &booking.payment_intent_id {
        let query = match refund {
            Refund::Done => {
                "INSERT INTO refunds (payment_intent_id, booking_id, reason, state) VALUES ($1, $2, $3, 'succeeded')
                 ON CONFLICT (payment_intent_id) DO UPDATE SET state = 'succeeded', updated_at = now()"
            }
            Refund::Pending => {
                "INSERT INTO refunds (payment_intent_id, booking_id, reason) VALUES ($1, $2, $3)
                 ON CONFLICT (payment_intent_id) DO NOTHING"
            }
        };
        sqlx::query(query)
            .bind(pi)
            .bind(&booking.id)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
    }
    Ok(true)
}
