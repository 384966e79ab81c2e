//! Seat holds. Every hold locks only the requested seat rows with `FOR UPDATE SKIP LOCKED`
//! inside one transaction: it never waits on another fan's lock, never locks the show, and
//! takes all requested seats or none. A lapsed hold counts as free inside the locking
//! statement itself, so it never blocks anyone, whether or not the sweeper has run.

use std::num::NonZeroU32;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::Rng;
use sqlx::PgPool;

use crate::error::{ApiError, ApiResult};
use crate::model::{BookingView, SeatRef};
use crate::seatmap::Snapshot;

/// The condition under which a seat row may be taken: free, or held past its window.
macro_rules! free {
    () => {
        "(status = 'available' OR (status = 'held' AND held_until <= now()))"
    };
}

/// What a reserve needs to know about its show.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ShowInfo {
    pub id: String,
    pub event_id: String,
    pub price_cents: i64,
    pub currency: String,
    pub hold_ttl_s: i32,
}

pub async fn show_info(db: &PgPool, show_id: &str) -> ApiResult<ShowInfo> {
    sqlx::query_as(
        "SELECT s.id, s.event_id, s.price_cents, s.currency, e.hold_ttl_s
         FROM shows s JOIN events e ON e.id = s.event_id WHERE s.id = $1",
    )
    .bind(show_id)
    .fetch_optional(db)
    .await?
    .ok_or(ApiError::NotFound("show"))
}

/// What reserves need of each show, remembered for a second: a hot show's every hold would
/// otherwise read the same row (an operator's change to the hold window applies within 2 s,
/// as every live setting does).
#[derive(Default)]
pub struct ShowInfos {
    entries: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, ShowInfo)>>,
}

impl ShowInfos {
    pub async fn get(&self, db: &PgPool, show_id: &str) -> ApiResult<ShowInfo> {
        if let Some((at, info)) = self.entries.lock().expect("show cache").get(show_id)
            && at.elapsed() < Duration::from_secs(1)
        {
            return Ok(info.clone());
        }
        let info = show_info(db, show_id).await?;
        let mut entries = self.entries.lock().expect("show cache");
        if entries.len() > 10_000 {
            entries.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(1));
        }
        entries.insert(
            show_id.to_owned(),
            (std::time::Instant::now(), info.clone()),
        );
        Ok(info)
    }
}

/// Which seats to take.
#[derive(Debug, Clone)]
pub enum Pick {
    /// Exactly these.
    Seats(Vec<String>),
    /// The best `quantity` free seats, adjacent in one row where possible.
    Best(u32),
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
/// to choose candidates; the locking statement decides.
pub async fn reserve(
    db: &PgPool,
    show: &ShowInfo,
    visitor: &str,
    pick: &Pick,
    seatmap: &Snapshot,
) -> ApiResult<BookingView> {
    let outcome = match pick {
        Pick::Seats(ids) => hold_once(db, show, visitor, Lock::Seats(ids)).await?,
        Pick::Best(quantity) => reserve_best(db, show, visitor, *quantity, seatmap).await?,
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
            let asked = match pick {
                Pick::Best(q) => *q,
                Pick::Seats(s) => s.len() as u32,
            };
            Err(ApiError::NotEnoughSeats {
                asked,
                free: free_count(db, &show.id).await?,
            })
        }
    }
}

/// Best available: adjacent blocks first (chosen from the cached map, spread among the best
/// few so concurrent requests do not all chase one block), then any free seats in order of
/// preference. Rows skipped because another request had them locked are retried briefly, so
/// this fails only when fewer seats than asked remain free.
async fn reserve_best(
    db: &PgPool,
    show: &ShowInfo,
    visitor: &str,
    quantity: u32,
    seatmap: &Snapshot,
) -> ApiResult<Result<BookingView, Miss>> {
    let (best_row, center) = seatmap.sweet_spot();
    let blocks = seatmap.adjacent_blocks(quantity as usize);
    let mut tried = std::collections::HashSet::new();
    for attempt in 0..40u32 {
        if attempt < 4 && !blocks.is_empty() {
            for _ in 0..2 {
                let spread = blocks.len().min(8 + attempt as usize * 8);
                let i = rand::rng().random_range(0..spread);
                if !tried.insert(i) {
                    continue;
                }
                match hold_once(db, show, visitor, Lock::Seats(&blocks[i])).await? {
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
        };
        match hold_once(db, show, visitor, lock).await? {
            Ok(view) => return Ok(Ok(view)),
            Err(Miss::Short) => {
                if free_count(db, &show.id).await? < i64::from(quantity) {
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
    },
}

#[derive(sqlx::FromRow)]
struct LockedSeat {
    seat_id: String,
    row_name: String,
    number: i32,
    booking_id: Option<String>,
}

/// One transaction: take the seats or nothing.
async fn hold_once(
    db: &PgPool,
    show: &ShowInfo,
    visitor: &str,
    lock: Lock<'_>,
) -> ApiResult<Result<BookingView, Miss>> {
    let mut tx = db.begin().await?;
    // The visitor's own lapsed hold no longer counts against "one hold per show"; any other
    // hold of theirs does. One round trip: the SELECT sees the rows as they were, and a
    // lapsed hold fails its `expires_at > now()` either way.
    let holding: Option<String> = sqlx::query_scalar(
        "WITH lapsed AS (
            UPDATE bookings SET status = 'expired', status_reason = 'hold lapsed', updated_at = now()
            WHERE show_id = $1 AND visitor_id = $2 AND status = 'held' AND expires_at <= now())
         SELECT id FROM bookings
         WHERE show_id = $1 AND visitor_id = $2 AND status = 'held' AND expires_at > now()",
    )
    .bind(&show.id)
    .bind(visitor)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = holding {
        return Ok(Err(Miss::Holding(Some(id))));
    }

    let locked: Vec<LockedSeat> =
        match &lock {
            Lock::Seats(ids) => {
                sqlx::query_as(concat!(
                    "SELECT seat_id, row_name, number, booking_id FROM seats
                 WHERE show_id = $1 AND seat_id = ANY($2) AND ",
                    free!(),
                    " ORDER BY row_index, number FOR UPDATE SKIP LOCKED"
                ))
                .bind(&show.id)
                .bind(*ids)
                .fetch_all(&mut *tx)
                .await?
            }
            Lock::Best {
                quantity,
                best_row,
                center,
            } => sqlx::query_as(concat!(
                "SELECT seat_id, row_name, number, booking_id FROM seats WHERE show_id = $1 AND ",
                free!(),
                " ORDER BY abs(row_index - $2), abs(number - $3), row_index, number
                  LIMIT $4 FOR UPDATE SKIP LOCKED"
            ))
            .bind(&show.id)
            .bind(best_row)
            .bind(center)
            .bind(i64::from(*quantity))
            .fetch_all(&mut *tx)
            .await?,
        };
    match &lock {
        Lock::Seats(ids) if locked.len() < ids.len() => {
            let missing = ids
                .iter()
                .filter(|id| !locked.iter().any(|l| &l.seat_id == *id))
                .cloned()
                .collect();
            return Ok(Err(Miss::Unavailable(missing)));
        }
        Lock::Best { quantity, .. } if locked.len() < *quantity as usize => {
            return Ok(Err(Miss::Short));
        }
        _ => {}
    }

    // Holds that lapsed on the seats we just took are over.
    let mut lapsed: Vec<&str> = locked
        .iter()
        .filter_map(|l| l.booking_id.as_deref())
        .collect();
    lapsed.sort_unstable();
    lapsed.dedup();
    expire_lapsed(&mut tx, &show.id, &lapsed).await?;

    let id = new_reservation_id();
    let seat_ids: Vec<&str> = locked.iter().map(|l| l.seat_id.as_str()).collect();
    let total = show.price_cents * locked.len() as i64;
    // The booking, its index entry and the seats in one statement.
    let inserted = sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
        "WITH b AS (
            INSERT INTO bookings (id, show_id, event_id, visitor_id, status, seat_ids, total_cents, currency, expires_at)
            VALUES ($1, $2, $3, $4, 'held', $5, $6, $7, now() + make_interval(secs => $8))
            RETURNING id, show_id, expires_at),
         i AS (INSERT INTO booking_index (id, show_id) SELECT id, show_id FROM b),
         s AS (
            UPDATE seats SET status = 'held', booking_id = b.id, held_until = b.expires_at,
                   version = nextval('seat_version_seq')
            FROM b WHERE seats.show_id = $2 AND seats.seat_id = ANY($5))
         SELECT expires_at FROM b",
    )
    .bind(&id)
    .bind(&show.id)
    .bind(&show.event_id)
    .bind(visitor)
    .bind(&seat_ids)
    .bind(total)
    .bind(&show.currency)
    .bind(f64::from(show.hold_ttl_s))
    .fetch_one(&mut *tx)
    .await;
    let expires_at = match inserted {
        Ok(t) => t,
        // Another reserve of this visitor for this show committed first.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            return Ok(Err(Miss::Holding(None)));
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;

    Ok(Ok(BookingView {
        reservation_id: id,
        show_id: show.id.clone(),
        event_id: show.event_id.clone(),
        status: "held".into(),
        seats: locked
            .into_iter()
            .map(|l| SeatRef {
                id: l.seat_id,
                row: l.row_name,
                number: l.number,
            })
            .collect(),
        expires_at,
        total_cents: total,
        currency: show.currency.clone(),
        status_reason: None,
        payment: None,
        ticket: None,
    }))
}

async fn active_hold<'e, E: sqlx::PgExecutor<'e>>(
    db: E,
    show_id: &str,
    visitor: &str,
) -> ApiResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM bookings WHERE show_id = $1 AND visitor_id = $2 AND status = 'held'
           AND expires_at > now()",
    )
    .bind(show_id)
    .bind(visitor)
    .fetch_optional(db)
    .await?)
}

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
    sqlx::query(
        "UPDATE bookings SET status = 'expired', status_reason = 'hold lapsed', updated_at = now()
         WHERE (show_id, id) IN (
             SELECT show_id, id FROM bookings
             WHERE show_id = $1 AND id = ANY($2) AND status = 'held' AND expires_at <= now()
             FOR UPDATE SKIP LOCKED)",
    )
    .bind(show_id)
    .bind(bookings)
    .execute(conn)
    .await?;
    Ok(())
}

/// Free seats right now, counting lapsed holds as free and locked rows as whatever they are.
pub async fn free_count(db: &PgPool, show_id: &str) -> ApiResult<i64> {
    Ok(sqlx::query_scalar(concat!(
        "SELECT count(*) FROM seats WHERE show_id = $1 AND ",
        free!()
    ))
    .bind(show_id)
    .fetch_one(db)
    .await?)
}

/// At least 128 random bits: the reservation id is the capability for its booking.
pub fn new_reservation_id() -> String {
    let bytes: [u8; 18] = rand::rng().random();
    format!("r_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Look up a booking by its reservation id. A hold past its window reads as `expired` even
/// before the sweeper has run.
pub async fn get(db: &PgPool, id: &str) -> ApiResult<BookingView> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        show_id: String,
        event_id: String,
        status: String,
        expires_at: chrono::DateTime<chrono::Utc>,
        total_cents: i64,
        currency: String,
        status_reason: Option<String>,
        seats: sqlx::types::Json<Vec<SeatRef>>,
    }
    let row: Row = sqlx::query_as(
        "SELECT b.id, b.show_id, b.event_id,
                CASE WHEN b.status = 'held' AND b.expires_at <= now() THEN 'expired' ELSE b.status END AS status,
                b.expires_at, b.total_cents, b.currency, b.status_reason,
                (SELECT coalesce(json_agg(json_build_object('id', s.seat_id, 'row', s.row_name, 'number', s.number)
                                 ORDER BY s.row_index, s.number), '[]'::json)
                   FROM seats s WHERE s.show_id = b.show_id AND s.seat_id = ANY(b.seat_ids)) AS seats
         FROM booking_index i JOIN bookings b ON b.show_id = i.show_id AND b.id = i.id
         WHERE i.id = $1",
    )
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
    })
}

/// Release a hold: its seats go back on sale at once. Releasing a hold that already ended
/// (released or lapsed) changes nothing and answers the booking as it is.
pub async fn release(db: &PgPool, id: &str) -> ApiResult<BookingView> {
    let found: Option<(String, Vec<String>)> = sqlx::query_as(
        "SELECT b.show_id, b.seat_ids FROM booking_index i
         JOIN bookings b ON b.show_id = i.show_id AND b.id = i.id WHERE i.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    let (show_id, seat_ids) = found.ok_or(ApiError::NotFound("booking"))?;
    // One statement, so one transaction: the booking and its seats change together. The seat
    // ids and the show are parameters so the planner can go straight to the primary keys, and
    // `(status = 'held') IS TRUE` keeps it off the partial "held" indexes (which exist for the
    // sweeper and one-hold-per-visitor): with stale statistics it took them as selective and
    // scanned every hold of a busy show, 1.5 ms per release on a 10,000-seat show under load.
    sqlx::query(
        "WITH r AS (
            UPDATE bookings SET status = 'released', status_reason = 'released by the fan', updated_at = now()
            WHERE show_id = $1 AND id = $2 AND (status = 'held') IS TRUE AND expires_at > now()
            RETURNING id)
         UPDATE seats SET status = 'available', booking_id = NULL, held_until = NULL,
                version = nextval('seat_version_seq')
         FROM r
         WHERE seats.show_id = $1 AND seats.seat_id = ANY($3) AND seats.booking_id = r.id
           AND (seats.status = 'held') IS TRUE",
    )
    .bind(&show_id)
    .bind(id)
    .bind(&seat_ids)
    .execute(db)
    .await?;
    let view = get(db, id).await?;
    match view.status.as_str() {
        "confirmed" | "refunded" => Err(ApiError::Conflict(format!(
            "a {} booking cannot be released; ask for a refund",
            view.status
        ))),
        _ => Ok(view),
    }
}

/// At most N reserve attempts per visitor per minute (per booking-core replica).
pub struct ReserveLimiter(DefaultKeyedRateLimiter<String>);

impl ReserveLimiter {
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("nonzero");
        Self(RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)))
    }

    /// `Err(seconds)` to wait when over the limit.
    pub fn check(&self, visitor: &str) -> Result<(), u64> {
        use governor::clock::{Clock, DefaultClock};
        self.0.check_key(&visitor.to_owned()).map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }

    /// Forget visitors idle long enough to be back at full allowance.
    pub fn tidy(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }
}
