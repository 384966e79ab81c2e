//! Taking seats: one statement locks the candidate seats with `FOR UPDATE SKIP LOCKED` and,
//! only if the visitor holds nothing and every wanted seat was locked, makes the booking and
//! marks the seats; otherwise it changes nothing. Best available chooses adjacent blocks from
//! the cached map first, then lets the database pick in order of preference.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sqlx::PgPool;

use super::{ShowInfo, expire_lapsed, free_count};
use crate::error::{ApiError, ApiResult};
use crate::lane::Lane;
use crate::model::{BookingStatus, BookingView, SeatRef};
use crate::partitions::{self, PerPartition};
use crate::seatmap::Snapshot;

/// Which seats to take.
#[derive(Debug, Clone)]
pub enum Pick {
    /// Exactly these.
    Seats(Vec<String>),
    /// The best `quantity` free ordinary seats (of `category`, if named), adjacent in one row
    /// where possible. Wheelchair spaces and companion seats are only held by name.
    Best {
        quantity: u32,
        category: Option<String>,
    },
}

/// Why one attempt took nothing.
enum Miss {
    /// These requested seats were held, booked or locked by another request.
    Unavailable(Vec<String>),
    /// The visitor already holds seats for this show.
    Holding(Option<String>),
    /// Fewer free unlocked seats than asked for.
    Short,
}

/// Hold seats for `visitor`. `seatmap` is the (possibly slightly stale) cached map, used only
/// to choose candidates; the locking statement decides. Its span is the one the booking's
/// trace continues from (its PaymentIntent, its announcements).
#[tracing::instrument(name = "hold seats", skip_all, fields(show = %show.id))]
pub async fn reserve(
    lane: &Lane,
    show: &ShowInfo,
    visitor: &str,
    pick: &Pick,
    seatmap: &Snapshot,
) -> ApiResult<BookingView> {
    let db = lane.pool();
    let outcome = match pick {
        Pick::Seats(ids) => hold_once(lane, show, visitor, Lock::Seats(ids)).await?,
        Pick::Best { quantity, category } => {
            reserve_best(lane, show, visitor, *quantity, category.as_deref(), seatmap).await?
        }
    };
    match outcome {
        Ok(view) => Ok(view),
        Err(Miss::Unavailable(seats)) => Err(ApiError::SeatsUnavailable(seats)),
        Err(Miss::Holding(Some(id))) => Err(ApiError::AlreadyHolding(id)),
        Err(Miss::Holding(None)) => match active_hold(db, &show.id, visitor).await? {
            Some(id) => Err(ApiError::AlreadyHolding(id)),
            None => Err(ApiError::Conflict(
                "a concurrent reserve by this visitor finished first; try again".into(),
            )),
        },
        Err(Miss::Short) => {
            let (asked, category) = match pick {
                Pick::Best { quantity, category } => (*quantity, category.as_deref()),
                Pick::Seats(s) => (s.len() as u32, None),
            };
            Err(ApiError::NotEnoughSeats {
                asked,
                free: free_count(db, &show.id, category).await?,
            })
        }
    }
}

/// Best available: adjacent blocks first (chosen from the cached map, spread among the best
/// few so concurrent requests do not all chase one block), then any free seats in order of
/// preference. Rows skipped because another request had them locked are retried briefly, so
/// this fails only when fewer seats than asked remain free.
async fn reserve_best(
    lane: &Lane,
    show: &ShowInfo,
    visitor: &str,
    quantity: u32,
    category: Option<&str>,
    seatmap: &Snapshot,
) -> ApiResult<Result<BookingView, Miss>> {
    let (best_row, center) = seatmap.sweet_spot(category);
    let blocks = seatmap.adjacent_blocks(quantity as usize, category);
    let mut tried = std::collections::HashSet::new();
    for attempt in 0..40u32 {
        if attempt < 4 && !blocks.is_empty() {
            for _ in 0..2 {
                let spread = blocks.len().min(8 + attempt as usize * 8);
                let i = rand::rng().random_range(0..spread);
                if !tried.insert(i) {
                    continue;
                }
                match hold_once(lane, show, visitor, Lock::Seats(&blocks[i])).await? {
                    Ok(view) => return Ok(Ok(view)),
                    Err(Miss::Unavailable(_)) => continue,
                    Err(other) => return Ok(Err(other)),
                }
            }
        }
        let lock = Lock::Best {
            quantity,
            best_row,
            center,
            category,
        };
        match hold_once(lane, show, visitor, lock).await? {
            Ok(view) => return Ok(Ok(view)),
            Err(Miss::Short) => {
                if free_count(lane.pool(), &show.id, category).await? < i64::from(quantity) {
                    return Ok(Err(Miss::Short));
                }
                // Seats are free but locked by requests still deciding; let them finish.
                let pause = rand::rng().random_range(2..10) * (1 + attempt.min(5));
                tokio::time::sleep(Duration::from_millis(u64::from(pause))).await;
            }
            Err(other) => return Ok(Err(other)),
        }
    }
    Ok(Err(Miss::Short))
}

enum Lock<'a> {
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

/// Take the seats or nothing.
async fn hold_once(
    lane: &Lane,
    show: &ShowInfo,
    visitor: &str,
    lock: Lock<'_>,
) -> ApiResult<Result<BookingView, Miss>> {
    match try_hold(lane, show, visitor, &lock).await? {
        // The one-hold-per-visitor index saw a hold the statement did not count as live: one
        // that lapsed and is not ended yet. End it and try once more.
        Err(Miss::Holding(None))
            if expire_own_lapsed(lane.pool(), &show.id, visitor).await? > 0 =>
        {
            try_hold(lane, show, visitor, &lock).await
        }
        other => Ok(other),
    }
}

/// The visitor's lapsed holds on this show, ended, with the seats they still had; how many
/// holds there were.
async fn expire_own_lapsed(db: &PgPool, show_id: &str, visitor: &str) -> ApiResult<u64> {
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

/// One statement: take the seats or nothing.
async fn try_hold(
    lane: &Lane,
    show: &ShowInfo,
    visitor: &str,
    lock: &Lock<'_>,
) -> ApiResult<Result<BookingView, Miss>> {
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
        .bind(marquee_platform::trace::traceparent(
            &tracing::Span::current(),
        ));
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
    let total = held.prices.iter().sum();
    Ok(Ok(BookingView {
        reservation_id: id,
        show_id: show.id.clone(),
        event_id: show.event_id.clone(),
        status: BookingStatus::Held,
        seats: held
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
            .collect(),
        expires_at,
        total_cents: total,
        currency: show.currency.clone(),
        status_reason: None,
        payment: None,
        ticket: None,
        show: None,
    }))
}

async fn active_hold<'e, E: sqlx::PgExecutor<'e>>(
    db: E,
    show_id: &str,
    visitor: &str,
) -> ApiResult<Option<String>> {
    Ok(sqlx::query_scalar(concat!(
        "SELECT id FROM bookings WHERE show_id = $1 AND visitor_id = $2 AND ",
        crate::hold_live!()
    ))
    .bind(show_id)
    .bind(visitor)
    .fetch_optional(db)
    .await?)
}

/// At least 128 random bits: the reservation id is the capability for its booking.
pub fn new_reservation_id() -> String {
    let bytes: [u8; 18] = rand::rng().random();
    format!("r_{}", URL_SAFE_NO_PAD.encode(bytes))
}
