//! Extending a hold (API.md, `POST /v1/bookings/{id}/extend`): once, by the event's
//! `hold_extend_s`, never past `max_hold_s` from the hold's start (twice `hold_ttl_s` unless
//! set), and only while the hold is live: a lapsed hold is never revived. One transaction
//! locks the booking, then moves its seats' `held_until` (locking them, and only if every seat
//! is still this hold's and unexpired), then the booking's `expires_at`. The sweeper, the
//! lapse rules and the payment grace all read those two columns, so they follow the new expiry;
//! the fan's slot under the active cap follows it too (`routes::bookings::extend`), as the
//! reserve gate kept it for the first window.

use chrono::{DateTime, Utc};

use crate::bookings::show_of;
use crate::error::{ApiError, ApiResult};
use crate::model::BookingStatus;

/// A hold extended: its new expiry, and what the fan's slot under the cap needs to follow it.
#[derive(Debug, Clone)]
pub struct Extended {
    pub expires_at: DateTime<Utc>,
    pub event_id: String,
    pub visitor_id: String,
    pub session_ttl_s: i32,
    pub idle_after_s: i32,
}

/// Extend reservation `id`'s hold.
pub async fn extend(db: &sqlx::PgPool, id: &str) -> ApiResult<Extended> {
    #[derive(sqlx::FromRow)]
    struct Hold {
        event_id: String,
        visitor_id: String,
        session_ttl_s: i32,
        idle_after_s: i32,
        status: BookingStatus,
        live: bool,
        extended: bool,
        seats: i32,
        /// `expires_at` moved by `hold_extend_s`, capped at `max_hold_s` from the start.
        until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    }
    let show_id = show_of(db, id).await?;
    let mut tx = db.begin().await?;
    let hold: Hold = sqlx::query_as(
        "SELECT b.event_id, b.visitor_id, e.session_ttl_s, e.idle_after_s,
                b.status, b.expires_at > now() AS live, b.extended_at IS NOT NULL AS extended,
                cardinality(b.seat_ids) AS seats, b.expires_at,
                least(b.expires_at + make_interval(secs => e.hold_extend_s),
                      b.created_at + make_interval(secs => coalesce(e.max_hold_s, 2 * e.hold_ttl_s)))
                  AS until
         FROM bookings b JOIN events e ON e.id = b.event_id
         WHERE b.show_id = $1 AND b.id = $2 FOR UPDATE OF b",
    )
    .bind(&show_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("booking"))?;
    if hold.status != BookingStatus::Held || !hold.live {
        return Err(ApiError::Conflict(
            "only a live hold can be extended; this one has ended".into(),
        ));
    }
    if hold.extended {
        return Err(ApiError::Conflict(
            "this hold was extended once already".into(),
        ));
    }
    if hold.until <= hold.expires_at {
        return Err(ApiError::Conflict(
            "this hold is already as long as the event allows".into(),
        ));
    }
    let moved = sqlx::query(
        "UPDATE seats SET held_until = $3
         WHERE show_id = $1 AND booking_id = $2 AND status = 'held' AND held_until > now()",
    )
    .bind(&show_id)
    .bind(id)
    .bind(hold.until)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved != hold.seats as u64 {
        // The hold lapsed between the two statements and a seat went to someone else.
        return Err(ApiError::Conflict(
            "only a live hold can be extended; this one has ended".into(),
        ));
    }
    sqlx::query(
        "UPDATE bookings SET expires_at = $3, extended_at = now(), updated_at = now()
         WHERE show_id = $1 AND id = $2",
    )
    .bind(&show_id)
    .bind(id)
    .bind(hold.until)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Extended {
        expires_at: hold.until,
        event_id: hold.event_id,
        visitor_id: hold.visitor_id,
        session_ttl_s: hold.session_ttl_s,
        idle_after_s: hold.idle_after_s,
    })
}
