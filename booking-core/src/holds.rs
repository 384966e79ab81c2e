//! Seat holds. Every hold locks only the requested seat rows with `FOR UPDATE SKIP LOCKED`
//! inside one transaction: it never waits on another fan's lock, never locks the show, and
//! takes all requested seats or none. A lapsed hold counts as free inside the locking
//! statement itself, so it never blocks anyone, whether or not the sweeper has run.

use std::num::NonZeroU32;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use marquee_waitroom::session::Gate;
use rand::Rng;
use sqlx::PgPool;

use crate::error::{ApiError, ApiResult};
use crate::expiring::Expiring;
use crate::lane::Lane;
use crate::model::{BookingView, SeatRef};
use crate::partitions::{self, PerPartition};
use crate::seatmap::Snapshot;

/// The condition under which a seat row may be taken: free, or held past its window.
macro_rules! free {
    () => {
        "(status = 'available' OR (status = 'held' AND held_until <= now()))"
    };
}

/// A step after an `ended` step (bookings just ended: `show_id, id, seat_ids`): their seats
/// they still hold go back on sale. `SKIP LOCKED`, because the booking rows are locked
/// already: waiting for a seat another request has locked could close a lock cycle (that
/// request's insert may be waiting on this very booking, when both are the same fan's). A
/// seat skipped is being taken by someone, or else read as free anyway and tidied by the
/// sweeper (`free_orphaned_seats`).
macro_rules! free_ended_seats {
    () => {
        "freed AS (
            UPDATE seats SET status = 'available', booking_id = NULL, held_until = NULL,
                   version = nextval('seat_version_seq')
            WHERE (show_id, seat_id) IN (
                SELECT seats.show_id, seats.seat_id FROM seats JOIN ended
                  ON seats.show_id = ended.show_id AND seats.seat_id = ANY(ended.seat_ids)
                WHERE seats.booking_id = ended.id AND seats.status = 'held'
                FOR UPDATE OF seats SKIP LOCKED)) "
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
    /// The event's idle time: how long an admitted fan keeps its slot under the cap beyond
    /// its hold (see `marquee_waitroom::session`).
    pub idle_after_s: i32,
    /// The partition of `seats` and `bookings` holding this show's rows, when known.
    #[sqlx(default)]
    pub partition: Option<i32>,
}

pub async fn show_info(db: &PgPool, show_id: &str) -> ApiResult<ShowInfo> {
    // Only speed depends on the partition: if the lookup fails (tables partitioned some other
    // way, say), holds go through the parents.
    let partition = partitions::of_show(db, show_id).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, show_id, "partition lookup failed; using the parent tables");
        None
    });
    sqlx::query_as(
        "SELECT s.id, s.event_id, s.price_cents, s.currency, e.hold_ttl_s, e.idle_after_s
         FROM shows s JOIN events e ON e.id = s.event_id WHERE s.id = $1",
    )
    .bind(show_id)
    .fetch_optional(db)
    .await?
    .ok_or(ApiError::NotFound("show"))
    .map(|info: ShowInfo| ShowInfo { partition, ..info })
}

/// What reserves need of each show, remembered for a second: a hot show's every hold would
/// otherwise read the same row (an operator's change to the hold window applies within 2 s,
/// as every live setting does).
pub struct ShowInfos(Expiring<ShowInfo>);

impl Default for ShowInfos {
    fn default() -> Self {
        Self(Expiring::new(Duration::from_secs(1), 10_000))
    }
}

impl ShowInfos {
    pub async fn get(&self, db: &PgPool, show_id: &str) -> ApiResult<ShowInfo> {
        if let Some(info) = self.0.get(show_id) {
            return Ok(info);
        }
        let info = show_info(db, show_id).await?;
        self.0.insert(show_id.to_owned(), info.clone());
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
    lane: &Lane,
    show: &ShowInfo,
    visitor: &str,
    pick: &Pick,
    seatmap: &Snapshot,
) -> ApiResult<BookingView> {
    let db = lane.pool();
    let outcome = match pick {
        Pick::Seats(ids) => hold_once(lane, show, visitor, Lock::Seats(ids)).await?,
        Pick::Best(quantity) => reserve_best(lane, show, visitor, *quantity, seatmap).await?,
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
    lane: &Lane,
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
        };
        match hold_once(lane, show, visitor, lock).await? {
            Ok(view) => return Ok(Ok(view)),
            Err(Miss::Short) => {
                if free_count(lane.pool(), &show.id).await? < i64::from(quantity) {
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

/// The hold statement around its locking step (`$1` show, `$2` visitor, `$3` new reservation
/// id, `$4` event, `$5` price per seat, `$6` currency, `$7` hold seconds; the locking step's
/// own parameters from `$8`). One statement, so one round trip and one implicit transaction:
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
                WHERE show_id = $1 AND visitor_id = $2 AND status = 'held' AND expires_at > now()),
             locked AS MATERIALIZED (",
            $locked,
            "),
             go AS MATERIALIZED (
                SELECT NOT EXISTS (SELECT 1 FROM holding)
                   AND (SELECT count(*) FROM locked) = ",
            $want,
            " AS ok),
             b AS (
                INSERT INTO {bookings} AS bookings (id, show_id, event_id, visitor_id, status, seat_ids, total_cents, currency, expires_at)
                SELECT $3, $1, $4, $2, 'held', array_agg(seat_id ORDER BY row_index, number),
                       $5 * count(*), $6, now() + make_interval(secs => $7)
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
            "SELECT seat_id, row_name, number, row_index, booking_id FROM {seats} AS seats
                 WHERE show_id = $1 AND seat_id = ANY($8) AND ",
            free!(),
            " FOR UPDATE SKIP LOCKED"
        ),
        "cardinality($8)"
    ))
});

static HOLD_BEST: PerPartition = PerPartition::new(|| {
    partitions::variants(hold_statement!(
        concat!(
            "SELECT seat_id, row_name, number, row_index, booking_id FROM {seats} AS seats
                 WHERE show_id = $1 AND ",
            free!(),
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
            WHERE show_id = $1 AND visitor_id = $2 AND status = 'held' AND expires_at <= now()
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
        .bind(show.price_cents)
        .bind(&show.currency)
        .bind(f64::from(show.hold_ttl_s));
    let query = match lock {
        Lock::Seats(ids) => query.bind(*ids),
        Lock::Best {
            quantity,
            best_row,
            center,
        } => query
            .bind(*best_row)
            .bind(*center)
            .bind(i64::from(*quantity)),
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
    let total = show.price_cents * held.seat_ids.len() as i64;
    Ok(Ok(BookingView {
        reservation_id: id,
        show_id: show.id.clone(),
        event_id: show.event_id.clone(),
        status: "held".into(),
        seats: held
            .seat_ids
            .into_iter()
            .zip(held.row_names)
            .zip(held.numbers)
            .map(|((id, row), number)| SeatRef { id, row, number })
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
    sqlx::query(concat!(
        "WITH ended AS (
            UPDATE bookings SET status = 'expired', status_reason = 'hold lapsed', updated_at = now()
            WHERE (show_id, id) IN (
                SELECT show_id, id FROM bookings
                WHERE show_id = $1 AND id = ANY($2) AND status = 'held' AND expires_at <= now()
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
        status: String,
        expires_at: chrono::DateTime<chrono::Utc>,
        total_cents: i64,
        currency: String,
        status_reason: Option<String>,
        seats: sqlx::types::Json<Vec<SeatRef>>,
    }
    let show_id = show_of(db, id).await?;
    let row: Row = sqlx::query_as(
        "SELECT b.id, b.show_id, b.event_id,
                CASE WHEN b.status = 'held' AND b.expires_at <= now() THEN 'expired' ELSE b.status END AS status,
                b.expires_at, b.total_cents, b.currency, b.status_reason,
                (SELECT coalesce(json_agg(json_build_object('id', s.seat_id, 'row', s.row_name, 'number', s.number)
                                 ORDER BY s.row_index, s.number), '[]'::json)
                   FROM seats s WHERE s.show_id = $1 AND s.seat_id = ANY(b.seat_ids)) AS seats
         FROM bookings b WHERE b.show_id = $1 AND b.id = $2",
    )
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
    })
}

const RELEASED_BY_FAN: &str = "released by the fan";

/// One statement, so one transaction: the booking and its seats change together. The
/// conditions keep every plan on the primary keys, so a generic plan is as good as a custom
/// one and Postgres keeps it: `(status = 'held') IS TRUE` matches no partial "held" index on
/// `bookings` (which exist for the sweeper and one-hold-per-visitor; with stale statistics
/// the planner took them as selective and scanned every hold of a busy show, 1.5 ms per
/// release), and the seats come from the booking row (as a parameter their unknown count
/// made the generic plan look dearer, and each release was planned anew).
static RELEASE: PerPartition = PerPartition::new(|| {
    partitions::variants(
        "WITH r AS (
            UPDATE {bookings} AS bookings
            SET status = 'released', status_reason = $3, updated_at = now()
            WHERE show_id = $1 AND id = $2 AND (status = 'held') IS TRUE AND expires_at > now()
            RETURNING id, seat_ids, event_id, visitor_id),
         s AS (
            UPDATE {seats} AS seats SET status = 'available', booking_id = NULL, held_until = NULL,
                   version = nextval('seat_version_seq')
            FROM r
            WHERE seats.show_id = $1 AND seats.seat_id = ANY(r.seat_ids) AND seats.booking_id = r.id
              AND seats.status = 'held')
         SELECT event_id, visitor_id FROM r",
    )
});

/// Release a hold: its seats go back on sale at once, and its fan keeps its slot under the cap
/// for the event's idle time at most (to choose again, or else it goes to the next fan).
/// Releasing a hold that already ended (released or lapsed) changes nothing and answers the
/// booking as it is. A hold made by this replica is released in one round trip (`recent` knows
/// its show, which never changes); any other is looked up first.
pub async fn release(
    lane: &Lane,
    recent: &RecentHolds,
    shows: &ShowInfos,
    redis: &marquee_waitroom::connect::Redis,
    id: &str,
) -> ApiResult<BookingView> {
    let db = lane.pool();
    let (known, partition) = recent.take(id).unzip();
    let show_id = match &known {
        Some(view) => view.show_id.clone(),
        None => show_of(db, id).await?,
    };
    let mut conn = lane.acquire().await?;
    let released = sqlx::query_as(RELEASE.get(partition.flatten()))
        .bind(&show_id)
        .bind(id)
        .bind(RELEASED_BY_FAN)
        .fetch_optional(&mut *conn)
        .await;
    let released: Option<(String, String)> = conn.settle(released)?;
    drop(conn);
    if let Some((event_id, visitor_id)) = &released {
        let idle_s = shows
            .get(db, &show_id)
            .await
            .map_or(marquee_waitroom::live::default_idle_after_s(), |s| {
                s.idle_after_s.max(0) as u32
            });
        let idled = marquee_waitroom::session::idle(
            &mut redis.clone(),
            event_id,
            visitor_id,
            chrono::Utc::now().timestamp_millis(),
            u64::from(idle_s) * 1000,
        )
        .await;
        if let Err(e) = idled {
            tracing::warn!(booking = id, error = %e, "could not shorten the fan's slot; it lapses by itself");
        }
    }
    if let (true, Some(mut view)) = (released.is_some(), known) {
        view.status = "released".into();
        view.status_reason = Some(RELEASED_BY_FAN.into());
        return Ok(view);
    }
    let view = get(db, id).await?;
    match view.status.as_str() {
        "confirmed" | "refunded" => Err(ApiError::Conflict(format!(
            "a {} booking cannot be released; ask for a refund",
            view.status
        ))),
        _ => Ok(view),
    }
}

/// Holds made by this replica, as they were answered, so that releasing one needs no lookup:
/// a booking's show never changes. Remembered for an hour, at most `CAP` of them; a hold no
/// longer remembered is looked up.
pub struct RecentHolds(Expiring<Recent>);

/// A hold as answered, and its show's partition.
type Recent = (BookingView, Option<i32>);

impl Default for RecentHolds {
    fn default() -> Self {
        Self(Expiring::new(Duration::from_secs(3600), Self::CAP))
    }
}

impl RecentHolds {
    const CAP: usize = 40_000;

    pub fn remember(&self, view: &BookingView, partition: Option<i32>) {
        self.0
            .insert(view.reservation_id.clone(), (view.clone(), partition));
    }

    /// The hold as it was made, forgotten from now on.
    pub fn take(&self, id: &str) -> Option<Recent> {
        self.0.take(id)
    }
}

/// The gate before a hold: the visitor must still hold its slot under the event's active cap
/// (`marquee_waitroom::session`), and make at most N reserve attempts per minute, counted in
/// Redis so that every booking-core replica shares one allowance. If Redis does not answer,
/// this replica's own count decides, so an outage never blocks reserves.
pub struct ReserveLimiter {
    redis: marquee_waitroom::connect::Redis,
    per_minute: u32,
    local: DefaultKeyedRateLimiter<String>,
}

/// Why a reserve attempt may not go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the per-visitor limit: seconds to wait.
    Wait(u64),
    /// The visitor's turn is over: its slot went to the next fan.
    Ended,
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Wait(retry_after_s) => ApiError::TooManyRequests { retry_after_s },
            Refusal::Ended => ApiError::SessionEnded,
        }
    }
}

impl ReserveLimiter {
    pub fn new(redis: marquee_waitroom::connect::Redis, per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        let n = NonZeroU32::new(per_minute).expect("nonzero");
        Self {
            redis,
            per_minute,
            local: RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)),
        }
    }

    /// May `visitor` (admitted to `show`'s event until `session_end_s`) try to hold now? On
    /// yes, its slot is kept for a hold's window plus the idle time.
    pub async fn check(
        &self,
        show: &ShowInfo,
        visitor: &str,
        session_end_s: i64,
    ) -> Result<(), Refusal> {
        let keep_ms = (u64::from(show.hold_ttl_s.max(0) as u32)
            + u64::from(show.idle_after_s.max(0) as u32))
            * 1000;
        let gate = marquee_waitroom::session::gate_reserve(
            &mut self.redis.clone(),
            &show.event_id,
            visitor,
            self.per_minute,
            keep_ms,
            session_end_s.saturating_mul(1000),
        )
        .await;
        match gate {
            Ok(Gate::Pass) => Ok(()),
            Ok(Gate::Wait(ms)) => Err(Refusal::Wait(ms.div_ceil(1000).max(1))),
            Ok(Gate::Ended) => Err(Refusal::Ended),
            Err(e) => {
                tracing::warn!(error = %e, "reserve gate: Redis did not answer; counting here");
                self.check_locally(visitor).map_err(Refusal::Wait)
            }
        }
    }

    fn check_locally(&self, visitor: &str) -> Result<(), u64> {
        use governor::clock::{Clock, DefaultClock};
        self.local
            .check_key(&visitor.to_owned())
            .map_err(|not_until| {
                not_until
                    .wait_time_from(DefaultClock::default().now())
                    .as_secs()
                    .max(1)
            })
    }

    /// Forget visitors idle long enough to be back at full allowance.
    pub fn tidy(&self) {
        self.local.retain_recent();
        self.local.shrink_to_fit();
    }
}
