//! Named seats taken in batches: the requests for one show that arrive while its last batch
//! is at the database go together (`crate::coalesce`; `[booking] hold_batch_max` requests at
//! most, `hold_batches_per_show` batches at the database at once), in one transaction of three
//! statements
//! whatever their number: lock every seat any of them names (`FOR UPDATE SKIP LOCKED`, as a
//! request alone would) and read their visitors' holds; decide here, in arrival order, what
//! each request would get if they ran one after another (`decide`); write every booking and
//! mark every seat taken in one statement; commit. So a busy show pays a commit, a lock step
//! and a write step per batch rather than per fan, and a lone request still runs at once, on
//! the one-statement path (`take::alone`). If any statement of a batch fails, or a visitor in
//! it has a lapsed hold the sweeper has not ended (which the one-hold-per-visitor index would
//! refuse), nothing of it stays and each request runs alone, in arrival order. A show's
//! releases go the same way, in one statement a batch (`release_all`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use prometheus::{IntCounter, Registry};
use sqlx::Connection;

use super::give_back::{self, Released};
use super::take::{self, Lock, Miss, Outcome, held_view, new_reservation_id};
use super::{ShowInfo, expire_lapsed};
use crate::error::{ApiError, ApiResult};
use crate::lane::Lane;
use crate::model::{BookingView, SeatRef};
use crate::partitions::{self, PerPartition};
use marquee_platform::coalesce::Coalescer;

/// The batches of every show this replica holds seats of.
pub struct HoldBatches {
    lane: Arc<Lane>,
    /// 1: no batches at all, each request alone at once, as many at a time as come.
    max_batch: usize,
    queues: Arc<Coalescer<String, Ask, Outcome>>,
    releases: Arc<Coalescer<String, Release, ApiResult<Released>>>,
    figures: Arc<Figures>,
}

/// How batching goes, for operators (`/metrics`) and tests.
pub struct Figures {
    /// `hold_batches_total`: batches of two or more requests taken in one transaction.
    pub together: IntCounter,
    /// `hold_batched_requests_total`: the requests in those batches.
    pub requests: IntCounter,
    /// `hold_batches_one_by_one_total`: batches run request by request instead (a statement
    /// failed, or a visitor in it had a lapsed hold not yet ended).
    pub one_by_one: IntCounter,
    /// `release_batches_total`: batches of two or more releases of one show in one statement.
    pub releases_together: IntCounter,
    /// `release_batched_requests_total`: the releases in those batches.
    pub releases: IntCounter,
}

impl Figures {
    fn new(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        Self {
            together: counter(
                "hold_batches_total",
                "Batches of two or more named-seat holds of one show taken in one transaction",
            ),
            requests: counter(
                "hold_batched_requests_total",
                "Named-seat holds taken in batches of two or more",
            ),
            one_by_one: counter(
                "hold_batches_one_by_one_total",
                "Batches of holds run request by request instead (a statement failed, or a visitor had a lapsed hold not yet ended)",
            ),
            releases_together: counter(
                "release_batches_total",
                "Batches of two or more releases of one show's holds in one statement",
            ),
            releases: counter(
                "release_batched_requests_total",
                "Releases taken in batches of two or more",
            ),
        }
    }
}

/// Fewer requests than this run at once, each alone, as requests did before batches: a
/// transaction of three statements costs more than that few statements of one each, and at a
/// few clients the batch's one-at-a-time added latency (measured at 8 clients: p99 up to 4 ms
/// more).
const TOGETHER_FROM: usize = 4;

/// One release in a batch: the booking, and its show's partition if known.
type Release = (String, Option<i32>);

/// One request in a batch: these seats for this visitor.
pub(super) struct Ask {
    show: ShowInfo,
    visitor: String,
    seats: Vec<String>,
    traceparent: Option<String>,
}

impl HoldBatches {
    /// Batches of at most `max_batch` requests (1: every request alone), at most `per_show`
    /// of a show's holds (and as many of its releases) at the database at once.
    pub fn new(lane: Arc<Lane>, max_batch: usize, per_show: usize, registry: &Registry) -> Self {
        Self {
            lane,
            max_batch,
            queues: Coalescer::new(max_batch, per_show),
            releases: Coalescer::new(max_batch, per_show),
            figures: Arc::new(Figures::new(registry)),
        }
    }

    pub fn lane(&self) -> &Lane {
        &self.lane
    }

    pub fn figures(&self) -> &Figures {
        &self.figures
    }

    /// `requests` (show, visitor, seats) taken as one batch, in this order, as `hold` takes
    /// requests that arrive together (fewer than four: each alone, at once): for tests, which
    /// cannot make requests arrive together on cue.
    pub async fn in_one_batch(
        &self,
        requests: Vec<(ShowInfo, String, Vec<String>)>,
    ) -> Vec<Result<Result<BookingView, Miss>, ApiError>> {
        run(&self.lane, &self.figures, asks(requests)).await
    }

    /// `requests` each alone, one after another: what a batch's answers must equal.
    pub async fn one_by_one(
        &self,
        requests: Vec<(ShowInfo, String, Vec<String>)>,
    ) -> Vec<Result<Result<BookingView, Miss>, ApiError>> {
        let mut outcomes = Vec::new();
        for ask in asks(requests) {
            outcomes.push(alone(&self.lane, &ask).await);
        }
        outcomes
    }

    /// Take `seats` for `visitor` in the show's next batch.
    pub(super) async fn hold(
        &self,
        show: &ShowInfo,
        visitor: &str,
        seats: &[String],
        traceparent: Option<String>,
    ) -> Outcome {
        let ask = Ask {
            show: show.clone(),
            visitor: visitor.to_owned(),
            seats: seats.to_vec(),
            traceparent,
        };
        if self.max_batch <= 1 {
            return alone(&self.lane, &ask).await;
        }
        let (lane, figures) = (self.lane.clone(), self.figures.clone());
        self.queues
            .submit(show.id.clone(), ask, move |asks| {
                let (lane, figures) = (lane.clone(), figures.clone());
                async move { run(&lane, &figures, asks).await }
            })
            .await
            .map_err(|lost| ApiError::Internal(lost.into()))?
    }
}

fn asks(requests: Vec<(ShowInfo, String, Vec<String>)>) -> Vec<Ask> {
    requests
        .into_iter()
        .map(|(show, visitor, seats)| Ask {
            show,
            visitor,
            seats,
            traceparent: None,
        })
        .collect()
}

impl HoldBatches {
    /// Release booking `id` of `show_id` (whose partition is `partition`, if known) in the
    /// show's next batch of releases: its event and visitor if it was a live hold.
    pub(super) async fn release(
        &self,
        show_id: &str,
        partition: Option<i32>,
        id: &str,
    ) -> ApiResult<Released> {
        if self.max_batch <= 1 {
            return Ok(give_back::one(&self.lane, show_id, partition, id).await?);
        }
        let (lane, figures) = (self.lane.clone(), self.figures.clone());
        let show = show_id.to_owned();
        self.releases
            .submit(show_id.to_owned(), (id.to_owned(), partition), move |ids| {
                let (lane, figures, show) = (lane.clone(), figures.clone(), show.clone());
                async move { release_all(&lane, &figures, &show, ids).await }
            })
            .await
            .map_err(|lost| ApiError::Internal(lost.into()))?
    }
}

/// A batch of releases in one statement, each answered as if alone, in arrival order: a
/// booking named twice is released by the first (the second finds it ended). If the statement
/// fails, each runs alone.
async fn release_all(
    lane: &Lane,
    figures: &Figures,
    show: &str,
    requests: Vec<Release>,
) -> Vec<ApiResult<Released>> {
    // A partition unknown to one request (its hold made by another replica) is the same
    // partition: the show's.
    let partition = requests.iter().find_map(|(_, p)| *p);
    if requests.len() < TOGETHER_FROM {
        let each = requests.iter().map(|(id, _)| async move {
            give_back::one(lane, show, partition, id)
                .await
                .map_err(Into::into)
        });
        return futures::future::join_all(each).await;
    }
    let ids: Vec<&str> = requests.iter().map(|(id, _)| id.as_str()).collect();
    match give_back::many(lane, show, partition, &ids).await {
        Ok(released) => {
            figures.releases_together.inc();
            figures.releases.inc_by(requests.len() as u64);
            let mut released: HashMap<String, (String, String)> = released
                .into_iter()
                .map(|(id, event, visitor)| (id, (event, visitor)))
                .collect();
            ids.iter().map(|id| Ok(released.remove(*id))).collect()
        }
        Err(e) => {
            tracing::warn!(error = %e, requests = ids.len(), "a batch of releases failed; each runs alone");
            let mut outcomes = Vec::with_capacity(ids.len());
            for id in ids {
                outcomes.push(
                    give_back::one(lane, show, partition, id)
                        .await
                        .map_err(Into::into),
                );
            }
            outcomes
        }
    }
}

/// A batch's answers, one per request in its order.
async fn run(lane: &Lane, figures: &Figures, asks: Vec<Ask>) -> Vec<Outcome> {
    if asks.len() < TOGETHER_FROM {
        return futures::future::join_all(asks.iter().map(|ask| alone(lane, ask))).await;
    }
    match together(lane, &asks).await {
        Ok(Some(outcomes)) => {
            figures.together.inc();
            figures.requests.inc_by(asks.len() as u64);
            return outcomes;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, requests = asks.len(), "a batch of holds failed; each runs alone");
        }
    }
    figures.one_by_one.inc();
    let mut outcomes = Vec::with_capacity(asks.len());
    for ask in &asks {
        outcomes.push(alone(lane, ask).await);
    }
    outcomes
}

async fn alone(lane: &Lane, ask: &Ask) -> Outcome {
    let lock = Lock::Seats(&ask.seats);
    take::alone(
        lane,
        &ask.show,
        &ask.visitor,
        &lock,
        ask.traceparent.as_deref(),
    )
    .await
}

/// Every seat any request names that is free and not locked by another transaction, now
/// locked by this one (`$1` show, `$2` the seats), and the holds of the batch's visitors on
/// the show (`$3` the visitors), live or lapsed but not yet ended. Each seat and each visitor
/// is looked up by its own key (a lateral subquery the planner cannot flatten): with
/// `seat_id = ANY($2)` a show's partition that had not been analyzed yet was read whole, every
/// seat of the show for each batch (6 ms against 1 ms for 60 seats of a 10,000-seat show).
static LOCK: PerPartition = PerPartition::new(|| {
    partitions::variants(concat!(
        "WITH locked AS MATERIALIZED (
            SELECT seats.* FROM unnest($2::text[]) AS named(seat_id) CROSS JOIN LATERAL (
                SELECT seat_id, row_name, number, row_index, booking_id, category, price_cents
                FROM {seats} AS seats
                WHERE show_id = $1 AND seat_id = named.seat_id AND ",
        crate::seat_free!(),
        " FOR UPDATE SKIP LOCKED) AS seats),
         holding AS MATERIALIZED (
            SELECT held.* FROM unnest($3::text[]) AS asking(visitor_id) CROSS JOIN LATERAL (
                SELECT visitor_id, id, ",
        crate::hold_live!(),
        " AS live FROM {bookings} AS bookings
                WHERE show_id = $1 AND visitor_id = asking.visitor_id AND status = 'held'
                OFFSET 0) AS held)
         SELECT coalesce(array_agg(seat_id), '{}') AS seat_ids,
                coalesce(array_agg(row_name), '{}') AS row_names,
                coalesce(array_agg(number), '{}') AS numbers,
                coalesce(array_agg(row_index), '{}') AS row_indexes,
                coalesce(array_agg(category), '{}') AS categories,
                coalesce(array_agg(price_cents), '{}') AS prices,
                coalesce(array_agg(booking_id), '{}') AS bookings,
                (SELECT coalesce(array_agg(visitor_id), '{}') FROM holding) AS holders,
                (SELECT coalesce(array_agg(id), '{}') FROM holding) AS holds,
                (SELECT coalesce(array_agg(live), '{}') FROM holding) AS live
         FROM locked"
    ))
});

#[derive(sqlx::FromRow)]
struct Locked {
    seat_ids: Vec<String>,
    row_names: Vec<String>,
    numbers: Vec<i32>,
    row_indexes: Vec<i32>,
    categories: Vec<String>,
    prices: Vec<i64>,
    /// The (lapsed) hold each seat still names, if any.
    bookings: Vec<Option<String>>,
    holders: Vec<String>,
    holds: Vec<String>,
    live: Vec<bool>,
}

/// Every booking of the batch and its seats (`$1` show, `$2` event, `$3` currency, `$4` hold
/// seconds; the bookings' `$5` ids, `$6` visitors, `$7` totals (their seats' prices, as
/// alone), `$8` traceparents; their seats as `$9` booking and `$10` seat, each booking's best
/// first).
static WRITE: PerPartition = PerPartition::new(|| {
    partitions::variants(
        "WITH f AS MATERIALIZED (
            SELECT * FROM unnest($9::text[], $10::text[]) WITH ORDINALITY AS f(booking_id, seat_id, ord)),
         b AS (
            INSERT INTO {bookings} AS bookings (id, show_id, event_id, visitor_id, status, seat_ids, total_cents, currency, expires_at, traceparent)
            SELECT n.id, $1, $2, n.visitor_id, 'held',
                   ARRAY(SELECT f.seat_id FROM f WHERE f.booking_id = n.id ORDER BY f.ord),
                   n.total_cents, $3, now() + make_interval(secs => $4), n.traceparent
            FROM unnest($5::text[], $6::text[], $7::bigint[], $8::text[])
                 AS n(id, visitor_id, total_cents, traceparent)
            RETURNING id, expires_at),
         i AS (INSERT INTO booking_index (id, show_id) SELECT id, $1 FROM b),
         s AS (
            UPDATE {seats} AS seats SET status = 'held', booking_id = b.id, held_until = b.expires_at,
                   version = nextval('seat_version_seq')
            FROM f JOIN b ON b.id = f.booking_id
            WHERE seats.show_id = $1 AND seats.seat_id = f.seat_id)
         SELECT max(expires_at) FROM b",
    )
});

/// What one request of a batch gets.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Its seats: every one was locked and no earlier request took it.
    Take,
    /// The visitor holds this booking (from before the batch, or an earlier request's).
    Holding(String),
    /// These of its seats were not free, or an earlier request took them.
    Unavailable(Vec<String>),
}

/// What each request gets if the requests run one after another in arrival order, as a
/// request alone does it (`take::alone`): the visitor's live hold first (one made earlier in
/// the batch counts), then all its seats or none. `free` are the seats the lock step locked;
/// `holds` the live holds by visitor when the batch began; `ids[i]` the booking request `i`
/// makes if it takes its seats.
fn decide(
    asks: &[(&str, &[String])],
    free: &HashSet<&str>,
    holds: &HashMap<&str, &str>,
    ids: &[String],
) -> Vec<Decision> {
    let mut holds: HashMap<&str, &str> = holds.clone();
    let mut taken: HashSet<&str> = HashSet::new();
    asks.iter()
        .zip(ids)
        .map(|(&(visitor, seats), id)| {
            if let Some(hold) = holds.get(visitor) {
                return Decision::Holding((*hold).to_owned());
            }
            let missing: Vec<String> = seats
                .iter()
                .filter(|s| !free.contains(s.as_str()) || taken.contains(s.as_str()))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Decision::Unavailable(missing);
            }
            taken.extend(seats.iter().map(String::as_str));
            holds.insert(visitor, id);
            Decision::Take
        })
        .collect()
}

/// A batch decided and written, not yet committed.
struct Written {
    locked: Locked,
    ids: Vec<String>,
    decisions: Vec<Decision>,
    /// The requests that took their seats: each one's place in the batch and its seats, best
    /// first.
    made: Vec<(usize, Vec<SeatRef>)>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The batch in one transaction; `None` if it must run request by request instead (a visitor
/// with a lapsed hold not yet ended). Whatever does not commit is rolled back before this
/// returns: its locks must be gone before any request runs alone.
async fn together(lane: &Lane, asks: &[Ask]) -> Result<Option<Vec<Outcome>>, sqlx::Error> {
    let show = &asks[0].show;
    let mut conn = lane.acquire().await?;
    let ended = async {
        let mut tx = conn.begin().await?;
        match lock_and_write(&mut tx, asks).await {
            Ok(Some(written)) => tx.commit().await.map(|()| Some(written)),
            Ok(None) => tx.rollback().await.map(|()| None),
            // A rollback that fails says more (the connection is gone).
            Err(e) => Err(tx.rollback().await.err().unwrap_or(e)),
        }
    }
    .await;
    let written = conn.settle(ended)?;
    drop(conn);
    let Some(Written {
        locked,
        ids,
        decisions,
        made,
        expires_at,
    }) = written
    else {
        return Ok(None);
    };

    // The lapsed holds whose seats were taken read as ended already; end them now (the
    // sweeper does if this replica stops first), as alone does.
    let taken: HashSet<&str> = made
        .iter()
        .flat_map(|(i, _)| asks[*i].seats.iter().map(String::as_str))
        .collect();
    let lapsed: Vec<&str> = {
        let mut seen = HashSet::new();
        locked
            .seat_ids
            .iter()
            .zip(&locked.bookings)
            .filter(|(s, _)| taken.contains(s.as_str()))
            .filter_map(|(_, b)| b.as_deref())
            .filter(|b| seen.insert(*b))
            .collect()
    };
    if !lapsed.is_empty() {
        let ended =
            async { expire_lapsed(&mut *lane.pool().acquire().await?, &show.id, &lapsed).await };
        if let Err(e) = ended.await {
            tracing::warn!(error = %e, "could not end lapsed holds whose seats were taken; the sweeper will");
        }
    }

    let mut made = made.into_iter();
    let outcomes = decisions
        .into_iter()
        .enumerate()
        .map(|(i, decision)| match decision {
            Decision::Take => {
                let (_, seats) = made.next().expect("a booking for each take");
                let expires_at = expires_at.expect("written with the bookings");
                Ok(Ok(held_view(
                    &asks[i].show,
                    ids[i].clone(),
                    seats,
                    expires_at,
                )))
            }
            Decision::Holding(id) => Ok(Err(Miss::Holding(Some(id)))),
            Decision::Unavailable(seats) => Ok(Err(Miss::Unavailable(seats))),
        })
        .collect();
    Ok(Some(outcomes))
}

/// Inside the batch's transaction: lock, decide, write.
async fn lock_and_write(
    tx: &mut sqlx::PgConnection,
    asks: &[Ask],
) -> Result<Option<Written>, sqlx::Error> {
    let show = &asks[0].show;
    let named: Vec<&str> = {
        let mut seen = HashSet::new();
        asks.iter()
            .flat_map(|a| a.seats.iter().map(String::as_str))
            .filter(|s| seen.insert(*s))
            .collect()
    };
    let visitors: Vec<&str> = {
        let mut seen = HashSet::new();
        asks.iter()
            .map(|a| a.visitor.as_str())
            .filter(|v| seen.insert(*v))
            .collect()
    };
    let locked: Locked = sqlx::query_as(LOCK.get(show.partition))
        .bind(&show.id)
        .bind(&named)
        .bind(&visitors)
        .fetch_one(&mut *tx)
        .await?;
    if locked.live.iter().any(|live| !live) {
        return Ok(None);
    }
    let holds: HashMap<&str, &str> = locked
        .holders
        .iter()
        .map(String::as_str)
        .zip(locked.holds.iter().map(String::as_str))
        .collect();
    let at: HashMap<&str, usize> = locked
        .seat_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let free: HashSet<&str> = at.keys().copied().collect();
    let ids: Vec<String> = asks.iter().map(|_| new_reservation_id()).collect();
    let shapes: Vec<(&str, &[String])> = asks
        .iter()
        .map(|a| (a.visitor.as_str(), a.seats.as_slice()))
        .collect();
    let decisions = decide(&shapes, &free, &holds, &ids);

    // Each booking's seats best first (by row, then number), as alone.
    let seats_of = |ask: &Ask| -> Vec<SeatRef> {
        let mut seats: Vec<usize> = ask.seats.iter().map(|s| at[s.as_str()]).collect();
        seats.sort_by_key(|&i| (locked.row_indexes[i], locked.numbers[i]));
        seats
            .into_iter()
            .map(|i| SeatRef {
                id: locked.seat_ids[i].clone(),
                row: locked.row_names[i].clone(),
                number: locked.numbers[i],
                category: locked.categories[i].clone(),
                price_cents: locked.prices[i],
            })
            .collect()
    };
    let made: Vec<(usize, Vec<SeatRef>)> = decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| **d == Decision::Take)
        .map(|(i, _)| (i, seats_of(&asks[i])))
        .collect();
    let mut expires_at = None;
    if !made.is_empty() {
        let (mut booking_of, mut seat) = (Vec::new(), Vec::new());
        for (i, seats) in &made {
            for s in seats {
                booking_of.push(ids[*i].as_str());
                seat.push(s.id.as_str());
            }
        }
        expires_at = sqlx::query_scalar(WRITE.get(show.partition))
            .bind(&show.id)
            .bind(&show.event_id)
            .bind(&show.currency)
            .bind(f64::from(show.hold_ttl_s))
            .bind(
                made.iter()
                    .map(|(i, _)| ids[*i].as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                made.iter()
                    .map(|(i, _)| asks[*i].visitor.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                made.iter()
                    .map(|(_, seats)| seats.iter().map(|s| s.price_cents).sum::<i64>())
                    .collect::<Vec<_>>(),
            )
            .bind(
                made.iter()
                    .map(|(i, _)| asks[*i].traceparent.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(&booking_of)
            .bind(&seat)
            .fetch_one(&mut *tx)
            .await?;
    }
    Ok(Some(Written {
        locked,
        ids,
        decisions,
        made,
        expires_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(seats: &[&str]) -> Vec<String> {
        seats.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The model: each request alone, one after another, against the seats as the previous
    /// requests left them (the one-statement path's rules, written out the long way).
    fn one_by_one(
        asks: &[(&str, Vec<String>)],
        free: &[&str],
        holds: &[(&str, &str)],
        ids: &[String],
    ) -> Vec<Decision> {
        let mut free: Vec<String> = free.iter().map(|s| (*s).to_owned()).collect();
        let mut holds: Vec<(String, String)> = holds
            .iter()
            .map(|(v, h)| ((*v).to_owned(), (*h).to_owned()))
            .collect();
        let mut out = Vec::new();
        for ((visitor, seats), id) in asks.iter().zip(ids) {
            if let Some((_, h)) = holds.iter().find(|(v, _)| v == visitor) {
                out.push(Decision::Holding(h.clone()));
                continue;
            }
            let missing: Vec<String> = seats
                .iter()
                .filter(|s| !free.contains(s))
                .cloned()
                .collect();
            if missing.is_empty() {
                free.retain(|s| !seats.contains(s));
                holds.push(((*visitor).to_owned(), id.clone()));
                out.push(Decision::Take);
            } else {
                out.push(Decision::Unavailable(missing));
            }
        }
        out
    }

    #[test]
    fn a_batch_decides_as_its_requests_would_one_after_another() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        let seats: Vec<String> = (1..=12).map(|n| format!("A-{n}")).collect();
        for _ in 0..5_000 {
            let free: Vec<&str> = seats
                .iter()
                .filter(|_| rng.random_bool(0.7))
                .map(String::as_str)
                .collect();
            let visitors = ["v1", "v2", "v3", "v4", "v5"];
            let holds: Vec<(&str, &str)> = visitors
                .iter()
                .filter(|_| rng.random_bool(0.15))
                .map(|v| (*v, "r_before"))
                .collect();
            let n = rng.random_range(1..10);
            let asks: Vec<(&str, Vec<String>)> = (0..n)
                .map(|_| {
                    let from = rng.random_range(0..seats.len() - 1);
                    let len = rng.random_range(1..=4).min(seats.len() - from);
                    (
                        visitors[rng.random_range(0..visitors.len())],
                        seats[from..from + len].to_vec(),
                    )
                })
                .collect();
            let ids: Vec<String> = (0..n).map(|i| format!("r_{i}")).collect();
            let shapes: Vec<(&str, &[String])> =
                asks.iter().map(|(v, s)| (*v, s.as_slice())).collect();
            let batch = decide(
                &shapes,
                &free.iter().copied().collect(),
                &holds.iter().copied().collect(),
                &ids,
            );
            assert_eq!(
                batch,
                one_by_one(&asks, &free, &holds, &ids),
                "{asks:?} free {free:?}"
            );
        }
    }

    #[test]
    fn the_first_of_two_requests_for_a_seat_takes_it_and_a_visitor_holds_once() {
        let ids = v(&["r_1", "r_2", "r_3", "r_4"]);
        let (a, b, c) = (v(&["A-1", "A-2"]), v(&["A-2", "A-3"]), v(&["A-4"]));
        let asks: Vec<(&str, &[String])> = vec![
            ("v1", a.as_slice()),
            ("v2", b.as_slice()),
            ("v1", c.as_slice()),
            ("v3", c.as_slice()),
        ];
        let free: HashSet<&str> = ["A-1", "A-2", "A-3", "A-4"].into();
        let held = decide(&asks, &free, &HashMap::new(), &ids);
        assert_eq!(
            held,
            [
                Decision::Take,
                Decision::Unavailable(v(&["A-2"])),
                Decision::Holding("r_1".into()),
                Decision::Take,
            ]
        );
    }
}
