//! Taking seats in one statement: it locks the candidate seats with `FOR UPDATE SKIP LOCKED`
//! and, only if the visitor holds nothing and every wanted seat was locked, makes the booking
//! and marks the seats; otherwise it changes nothing. What a reserve runs alone (best
//! available's database pick, each request of a batch of fewer than four or of a batch that
//! failed); named seats otherwise go through `batch`, which takes a batch's seats in one
//! transaction.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sqlx::PgPool;

use super::{ShowInfo, expire_lapsed};
use crate::error::ApiResult;
use crate::lane::Lane;
use crate::model::{BookingStatus, BookingView, SeatRef};
use crate::partitions::{self, PerPartition};

/// Why one attempt took nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// These requested seats were held, booked or locked by another request.
    Unavailable(Vec<String>),
    /// The visitor already holds seats for this show.
    Holding(Option<String>),
    /// Fewer free unlocked seats than asked for.
    Short,
}

/// What one attempt to take seats came to: a hold, a miss, or an error.
pub(super) type Outcome = ApiResult<Result<BookingView, Miss>>;

/// Which seats one statement locks.
pub(super) enum Lock<'a> {
    Seats(&'a [String]),
    Best {
        quantity: u32,
        best_row: i32,
        center: i32,
        category: Option<&'a str>,
    },
}

/// The hold statement around its locking step (`$1` show, `$2` visitor, `$3` new reservation
/// id, `$4` event, `$5` currency, `$6` hold seconds, `$7` the request's `traceparent` or
/// NULL; the locking step's own parameters from `$8`). The booking's total is the sum of its seats' prices. One statement, so one round trip and one implicit transaction:
/// it finds the visitor's live hold if any, locks the candidate seats with `FOR UPDATE SKIP
/// LOCKED`, and only if the visitor holds nothing and every wanted seat was locked does it
/// insert the booking and its index entry and mark the seats. Otherwise it changes nothing
/// and the locks end with the statement. A lapsed hold of the visitor's that the sweeper has
/// not ended yet makes the insert fail on the one-hold-per-visitor index; `hold_once` then
/// ends it and tries again (rare, and it keeps an UPDATE out of every hold). The lapsed holds
/// whose seats were taken are ended right after, in a statement of their own: they read as
/// expired already, and if this replica stops in between the sweeper ends them. (Inside this
/// statement, a generic plan for that step scanned every booking of the show once per
/// booking.)
macro_rules! hold_statement {
    ($locked:expr, $want:expr) => {
        concat!(
            "WITH holding AS MATERIALIZED (
                SELECT id FROM {bookings} AS bookings
                WHERE show_id = $1 AND visitor_id = $2 AND ",
            crate::hold_live!(),
            "),
             locked AS MATERIALIZED (",
            $locked,
            "),
             go AS MATERIALIZED (
                SELECT NOT EXISTS (SELECT 1 FROM holding)
                   AND (SELECT count(*) FROM locked) = ",
            $want,
            " AS ok),
             b AS (
                INSERT INTO {bookings} AS bookings (id, show_id, event_id, visitor_id, status, seat_ids, total_cents, currency, expires_at, traceparent)
                SELECT $3, $1, $4, $2, 'held', array_agg(seat_id ORDER BY row_index, number),
                       sum(price_cents), $5, now() + make_interval(secs => $6), $7
                FROM locked HAVING (SELECT ok FROM go)
                RETURNING id, show_id, seat_ids, expires_at),
             i AS (INSERT INTO booking_index (id, show_id) SELECT id, show_id FROM b),
             s AS (
                UPDATE {seats} AS seats SET status = 'held', booking_id = b.id, held_until = b.expires_at,
                       version = nextval('seat_version_seq')
                FROM b WHERE seats.show_id = $1 AND seats.seat_id = ANY(b.seat_ids))
             SELECT (SELECT id FROM holding LIMIT 1) AS holding,
                    (SELECT expires_at FROM b) AS expires_at,
                    coalesce(array_agg(seat_id ORDER BY row_index, number), '{}') AS seat_ids,
                    coalesce(array_agg(row_name ORDER BY row_index, number), '{}') AS row_names,
                    coalesce(array_agg(number ORDER BY row_index, number), '{}') AS numbers,
                    coalesce(array_agg(category ORDER BY row_index, number), '{}') AS categories,
                    coalesce(array_agg(price_cents ORDER BY row_index, number), '{}') AS prices,
                    coalesce(array_agg(DISTINCT booking_id) FILTER (WHERE booking_id IS NOT NULL), '{}') AS lapsed
             FROM locked"
        )
    };
}

/// The seats are found by primary key: no other index on `seats` exists (a hold is a HOT
/// update), so a generic plan cannot wander off to read the whole show.
static HOLD_SEATS: PerPartition = PerPartition::new(|| {
    partitions::variants(hold_statement!(
        concat!(
            "SELECT seat_id, row_name, number, row_index, booking_id, category, price_cents
                 FROM {seats} AS seats
                 WHERE show_id = $1 AND seat_id = ANY($8) AND ",
            crate::seat_free!(),
            " FOR UPDATE SKIP LOCKED"
        ),
        "cardinality($8)"
    ))
});

/// Best available takes ordinary seats only (`$11`, the category, or any when NULL): a
/// wheelchair space or companion seat is held by name.
static HOLD_BEST: PerPartition = PerPartition::new(|| {
    partitions::variants(hold_statement!(
        concat!(
            "SELECT seat_id, row_name, number, row_index, booking_id, category, price_cents
                 FROM {seats} AS seats
                 WHERE show_id = $1 AND kind = 'standard' AND ($11::text IS NULL OR category = $11)
                   AND ",
            crate::seat_free!(),
            " ORDER BY abs(row_index - $8), abs(number - $9), row_index, number
                  LIMIT $10 FOR UPDATE SKIP LOCKED"
        ),
        "$10"
    ))
});

/// What the hold statement answers.
#[derive(sqlx::FromRow)]
struct Held {
    /// The visitor's live hold on this show, if any (then nothing was taken).
    holding: Option<String>,
    /// Set when the booking was made.
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The seats locked (all of them when the booking was made), best first.
    seat_ids: Vec<String>,
    row_names: Vec<String>,
    numbers: Vec<i32>,
    categories: Vec<String>,
    prices: Vec<i64>,
    /// The lapsed holds those seats belonged to.
    lapsed: Vec<String>,
}

/// One statement: take the seats or nothing. `traceparent` is the request's.
pub(super) async fn alone(
    lane: &Lane,
    show: &ShowInfo,
    visitor: &str,
    lock: &Lock<'_>,
    traceparent: Option<&str>,
) -> Outcome {
    let id = new_reservation_id();
    let query = match lock {
        Lock::Seats(_) => HOLD_SEATS.get(show.partition),
        Lock::Best { .. } => HOLD_BEST.get(show.partition),
    };
    let query = sqlx::query_as::<_, Held>(query);
    let query = query
        .bind(&show.id)
        .bind(visitor)
        .bind(&id)
        .bind(&show.event_id)
        .bind(&show.currency)
        .bind(f64::from(show.hold_ttl_s))
        .bind(traceparent);
    let query = match lock {
        Lock::Seats(ids) => query.bind(*ids),
        Lock::Best {
            quantity,
            best_row,
            center,
            category,
        } => query
            .bind(*best_row)
            .bind(*center)
            .bind(i64::from(*quantity))
            .bind(*category),
    };
    let mut conn = lane.acquire().await?;
    let held = query.fetch_one(&mut *conn).await;
    let held = conn.settle(held);
    drop(conn);
    let held = match held {
        Ok(held) => held,
        // Another reserve of this visitor for this show committed first.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            return Ok(Err(Miss::Holding(None)));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(id) = held.holding {
        return Ok(Err(Miss::Holding(Some(id))));
    }
    let Some(expires_at) = held.expires_at else {
        return Ok(Err(match lock {
            Lock::Seats(ids) => Miss::Unavailable(
                ids.iter()
                    .filter(|id| !held.seat_ids.contains(id))
                    .cloned()
                    .collect(),
            ),
            Lock::Best { .. } => Miss::Short,
        }));
    };
    if !held.lapsed.is_empty() {
        let lapsed: Vec<&str> = held.lapsed.iter().map(String::as_str).collect();
        expire_lapsed(&mut *lane.pool().acquire().await?, &show.id, &lapsed).await?;
    }
    let seats = held
        .seat_ids
        .into_iter()
        .zip(held.row_names)
        .zip(held.numbers)
        .zip(held.categories.into_iter().zip(held.prices))
        .map(|(((id, row), number), (category, price_cents))| SeatRef {
            id,
            row,
            number,
            category,
            price_cents,
        })
        .collect();
    Ok(Ok(held_view(show, id, seats, expires_at)))
}

/// The answer for a hold just made: `seats` best first (by row, then number).
pub(super) fn held_view(
    show: &ShowInfo,
    reservation_id: String,
    seats: Vec<SeatRef>,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> BookingView {
    BookingView {
        reservation_id,
        show_id: show.id.clone(),
        event_id: show.event_id.clone(),
        status: BookingStatus::Held,
        total_cents: seats.iter().map(|s| s.price_cents).sum(),
        seats,
        expires_at,
        currency: show.currency.clone(),
        status_reason: None,
        payment: None,
        ticket: None,
        show: None,
    }
}

/// The visitor's lapsed holds on this show, ended, with the seats they still had; how many
/// holds there were.
pub(super) async fn expire_own_lapsed(db: &PgPool, show_id: &str, visitor: &str) -> ApiResult<u64> {
    Ok(sqlx::query_scalar(concat!(
        "WITH ended AS (
            UPDATE bookings SET status = 'expired', status_reason = 'hold lapsed', updated_at = now()
            WHERE show_id = $1 AND visitor_id = $2 AND ",
        crate::hold_lapsed!(),
        "
            RETURNING show_id, id, seat_ids),",
        free_ended_seats!(),
        "SELECT count(*) FROM ended"
    ))
    .bind(show_id)
    .bind(visitor)
    .fetch_one(db)
    .await
    .map(|n: i64| n as u64)?)
}

/// At least 128 random bits: the reservation id is the capability for its booking.
pub fn new_reservation_id() -> String {
    let bytes: [u8; 18] = rand::rng().random();
    format!("r_{}", URL_SAFE_NO_PAD.encode(bytes))
}
