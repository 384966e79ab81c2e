//! Looking bookings up by reservation id, for every route and job that reads one (payments,
//! the sweeper, releases).

use sqlx::PgPool;

use crate::error::{ApiError, ApiResult};
use crate::model::{BookingStatus, BookingView, SeatRef};

/// The show of a reservation, from the index: the id alone does not say which partition
/// holds the booking, and a query that joins the index to `bookings` is planned against
/// every partition (over a millisecond each time), where one that names the show goes
/// straight to its partition.
pub async fn show_of<'e, E: sqlx::PgExecutor<'e>>(db: E, id: &str) -> ApiResult<String> {
    sqlx::query_scalar("SELECT show_id FROM booking_index WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or(ApiError::NotFound("booking"))
}

/// Look up a booking by its reservation id. A hold past its window reads as `expired` even
/// before the sweeper has run.
pub async fn get(db: &PgPool, id: &str) -> ApiResult<BookingView> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        show_id: String,
        event_id: String,
        status: BookingStatus,
        expires_at: chrono::DateTime<chrono::Utc>,
        total_cents: i64,
        currency: String,
        status_reason: Option<String>,
        seats: sqlx::types::Json<Vec<SeatRef>>,
        show: Option<serde_json::Value>,
    }
    let show_id = show_of(db, id).await?;
    let row: Row = sqlx::query_as(concat!(
        "SELECT b.id, b.show_id, b.event_id,
                CASE WHEN ",
        crate::hold_lapsed!("b"),
        " THEN 'expired' ELSE b.status END AS status,
                b.expires_at, b.total_cents, b.currency, b.status_reason,
                (SELECT coalesce(json_agg(json_build_object('id', s.seat_id, 'row', s.row_name, 'number', s.number,
                                                   'category', s.category, 'price_cents', s.price_cents)
                                 ORDER BY s.row_index, s.number), '[]'::json)
                   FROM seats s WHERE s.show_id = $1 AND s.seat_id = ANY(b.seat_ids)) AS seats,
                (SELECT json_build_object('title', m.title, 'theater', t.name, 'city', t.city,
                                          'screen', sc.name, 'starts_at', sh.starts_at,
                                          'time_zone', t.time_zone)
                   FROM shows sh JOIN movies m ON m.id = sh.movie_id
                   JOIN screens sc ON sc.id = sh.screen_id JOIN theaters t ON t.id = sc.theater_id
                  WHERE sh.id = $1) AS show
         FROM bookings b WHERE b.show_id = $1 AND b.id = $2"
    ))
    .bind(&show_id)
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(ApiError::NotFound("booking"))?;
    Ok(BookingView {
        reservation_id: row.id,
        show_id: row.show_id,
        event_id: row.event_id,
        status: row.status,
        seats: row.seats.0,
        expires_at: row.expires_at,
        total_cents: row.total_cents,
        currency: row.currency,
        status_reason: row.status_reason,
        payment: None,
        ticket: None,
        show: row.show,
    })
}
