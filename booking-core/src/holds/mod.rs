//! Seat holds. Every hold locks only the requested seat rows with `FOR UPDATE SKIP LOCKED`
//! inside one transaction: it never waits on another fan's lock, never locks the show, and
//! takes all requested seats or none. A lapsed hold counts as free inside the locking
//! statement itself, so it never blocks anyone, whether or not the sweeper has run.
//!
//! A reserve flows: `gate` (the visitor still holds its slot under the cap, within its
//! allowance) → `shows` (what the show needs, cached a second) → `reserve` (which seats to try;
//! best available tries blocks from the cached map first) → `batch` (named seats: the show's
//! requests that arrive together, in one transaction, each answered as if alone) or `take` (one
//! statement takes the seats or nothing). A release is
//! `release`, an extension `extend`. The rules every statement shares are `crate::rules`; the step that frees an
//! ended hold's seats is the macro below.

use sqlx::PgPool;

use crate::error::ApiResult;

/// A step after an `ended` step (bookings just ended: `show_id, id, seat_ids`): their seats
/// they still hold go back on sale. `SKIP LOCKED`, because the booking rows are locked
/// already: waiting for a seat another request has locked could close a lock cycle (that
/// request's insert may be waiting on this very booking, when both are the same fan's). A
/// seat skipped is being taken by someone, or else read as free anyway and tidied by the
/// sweeper (`free_orphaned_seats`).
#[macro_export]
macro_rules! free_ended_seats {
    () => {
        concat!(
            "freed AS (UPDATE seats SET ",
            $crate::seat_back_on_sale!(),
            " WHERE (show_id, seat_id) IN (
                SELECT seats.show_id, seats.seat_id FROM seats JOIN ended
                  ON seats.show_id = ended.show_id AND seats.seat_id = ANY(ended.seat_ids)
                WHERE seats.booking_id = ended.id AND seats.status = 'held'
                FOR UPDATE OF seats SKIP LOCKED)) "
        )
    };
}

mod batch;
mod extend;
mod gate;
mod give_back;
mod release;
mod reserve;
mod shows;
mod take;

pub use batch::{Figures as BatchFigures, HoldBatches};
pub use extend::extend;
pub use gate::{Refusal, ReserveGate};
pub use release::{RecentHolds, release};
pub use reserve::{Pick, reserve};
pub use shows::{ShowInfo, ShowInfos, show_info};
pub use take::{Miss, new_reservation_id};

/// Expire the lapsed holds among `bookings` (of one show). SKIP LOCKED: a booking locked by
/// another request is being expired by it (its owner reserving again); waiting for it could
/// deadlock, and the sweeper tidies whatever is left.
pub async fn expire_lapsed(
    conn: &mut sqlx::PgConnection,
    show_id: &str,
    bookings: &[&str],
) -> Result<(), sqlx::Error> {
    if bookings.is_empty() {
        return Ok(());
    }
    sqlx::query(concat!(
        "WITH ended AS (
            UPDATE bookings SET status = 'expired', status_reason = 'hold lapsed', updated_at = now()
            WHERE (show_id, id) IN (
                SELECT show_id, id FROM bookings
                WHERE show_id = $1 AND id = ANY($2) AND ",
        crate::hold_lapsed!(),
        "
                FOR UPDATE SKIP LOCKED)
            RETURNING show_id, id, seat_ids),",
        free_ended_seats!(),
        "SELECT 1"
    ))
    .bind(show_id)
    .bind(bookings)
    .execute(conn)
    .await?;
    Ok(())
}

/// Free seats best available may offer right now (ordinary seats, of `category` if named),
/// counting lapsed holds as free and locked rows as whatever they are.
pub async fn free_count(db: &PgPool, show_id: &str, category: Option<&str>) -> ApiResult<i64> {
    Ok(sqlx::query_scalar(concat!(
        "SELECT count(*) FROM seats
         WHERE show_id = $1 AND kind = 'standard' AND ($2::text IS NULL OR category = $2) AND ",
        crate::seat_free!()
    ))
    .bind(show_id)
    .bind(category)
    .fetch_one(db)
    .await?)
}
