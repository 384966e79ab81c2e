//! The queue in Redis, per event:
//!
//! * `waiting` — sorted set, visitor → place. Places of visitors who arrived after opening are
//!   [`OFFSET`] + arrival number; pre-queue visitors get places `1..=n` at the shuffle.
//! * `prequeue` — set of visitors who arrived before opening, frozen the moment the shuffle
//!   seed is published; their order is the members sorted by `sha1hex(seed + ":" + visitor)`,
//!   so anyone can replay it from the seed.
//! * `active` — sorted set, visitor → when its slot under the cap frees itself (ms); see
//!   [`crate::session`].
//! * `sessions` — sorted set, visitor → when it was admitted (ms).
//! * `seen:{window}:{a|p}` — bitmaps of the places seen polling per time window of
//!   `abandon_after_s`; a visitor seen in neither this window nor the last is dropped when its
//!   turn comes, and its slot goes to the next fan.
//! * `state` — hash: `next_place`, `watermark` (highest place admitted or dropped),
//!   `admitted_total`, `dropped_total`, `carry`, `last_tick_ms`, `shuffle_seed`,
//!   `prequeue_total`, `shuffled`.

use std::sync::LazyLock;

use redis::Script;
use sha1_smol::Sha1;

use crate::keys;

/// Places of post-opening arrivals start above every possible pre-queue place.
pub const OFFSET: u64 = 1_000_000_000_000;

static ADMIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/admit.lua")));

/// The presence window a moment falls in.
pub fn window(now_ms: i64, abandon_after_s: u32) -> i64 {
    now_ms.div_euclid(i64::from(abandon_after_s.max(1)) * 1000)
}

/// How long a presence bitmap is kept: its window, the next one that still reads it, and one
/// more for slack.
pub fn window_ttl_ms(abandon_after_s: u32) -> u64 {
    u64::from(abandon_after_s.max(1)) * 3000
}

/// Which of a window's two presence bitmaps a place's bit lives in (`true`: the pre-queue's,
/// `keys::seen(…, true)`), and the bit.
pub fn seen_slot(place: u64) -> (bool, u64) {
    if place > OFFSET {
        (false, place - OFFSET)
    } else {
        (true, place)
    }
}

/// The presence bitmap a place's bit lives in for `window`, and the bit.
pub fn seen_bit(event: &str, window: i64, place: u64) -> (String, u64) {
    let (prequeue, bit) = seen_slot(place);
    (keys::seen(event, window, prequeue), bit)
}

static JOIN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/join.lua")));

/// A visitor joining an event's queue (`scripts/join.lua`, whose KEYS and ARGV order lives
/// only in [`Join::invocation`]).
#[derive(Debug, Clone)]
pub struct Join<'a> {
    pub event: &'a str,
    pub visitor: &'a str,
    /// The event has not opened yet: the visitor goes to the pre-queue (until it is frozen).
    pub before_opening: bool,
    pub now_ms: i64,
    /// The presence window length, for the bitmap that marks the visitor as seen.
    pub abandon_after_s: u32,
    /// Safety-net mode with the event open and not sold out: the visitor may pass straight
    /// through, within this budget (the worker's).
    pub pass_through: Option<Budget>,
    /// The visitor's id was minted for this join (random, never handed out before): it cannot
    /// be in line, admitted or in the pre-queue, so the script skips the three lookups that
    /// make joining again idempotent. `false` for an id that may have joined before.
    pub fresh: bool,
}

/// The admission budget as the worker spends it: a safety-net join takes from the same one.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub rate_per_minute: u32,
    pub max_active: u32,
    pub session_ttl_ms: u64,
    /// How long an admitted fan holds a slot before any booking activity.
    pub idle_ms: u64,
    /// The most elapsed time one spend may count ([`max_elapsed_ms`]).
    pub max_elapsed_ms: u64,
}

/// The most elapsed time one admission tick (or pass-through) may count, for a worker ticking
/// every `tick_ms`: an outage or a quiet spell never banks a burst.
pub fn max_elapsed_ms(tick_ms: u64) -> u64 {
    tick_ms * 4
}

/// What a join answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// In line at this place.
    Waiting(u64),
    /// In the pre-queue: the place comes with the shuffle at opening.
    Prequeue,
    /// Already admitted.
    Admitted,
    /// Admitted by this join (safety-net mode), at this place.
    PassedThrough(u64),
}

impl Join<'_> {
    /// The script call, ready to invoke alone or add to a pipeline (a bulk load).
    pub fn invocation(&self) -> redis::ScriptInvocation<'static> {
        let window = window(self.now_ms, self.abandon_after_s);
        let mut call = JOIN.prepare_invoke();
        for key in [
            keys::state(self.event),
            keys::waiting(self.event),
            keys::prequeue(self.event),
            keys::active(self.event),
            keys::seen(self.event, window, false),
            keys::seen(self.event, window, true),
            keys::sessions(self.event),
            keys::admits(self.event),
        ] {
            call.key(key);
        }
        let budget = self.pass_through.unwrap_or(Budget {
            rate_per_minute: 0,
            max_active: 0,
            session_ttl_ms: 0,
            idle_ms: 0,
            max_elapsed_ms: 0,
        });
        call.arg(self.visitor)
            .arg(if self.before_opening { "1" } else { "0" })
            .arg(OFFSET)
            .arg(window_ttl_ms(self.abandon_after_s))
            .arg(if self.pass_through.is_some() {
                "1"
            } else {
                "0"
            })
            .arg(self.now_ms)
            .arg(budget.rate_per_minute)
            .arg(budget.max_active)
            .arg(budget.session_ttl_ms)
            .arg(budget.idle_ms)
            .arg(budget.max_elapsed_ms)
            .arg(if self.fresh { "1" } else { "0" });
        call
    }
}

impl Joined {
    /// From the script's answer `{kind, place}`.
    pub fn from_reply((kind, place): (String, String)) -> Self {
        match (kind.as_str(), place.parse::<u64>()) {
            ("waiting", Ok(p)) if p > 0 => Self::Waiting(p),
            ("admitted", _) => Self::Admitted,
            ("passed", Ok(p)) if p > 0 => Self::PassedThrough(p),
            _ => Self::Prequeue,
        }
    }
}

pub async fn join<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    join: &Join<'_>,
) -> redis::RedisResult<Joined> {
    let reply: Vec<(String, String)> = join.invocation().invoke_async(redis).await?;
    one_each(reply, 1).map(|mut joined| joined.remove(0))
}

/// Visitors minted for their joins (`join.visitor`, then `more`), joining together in one
/// round trip: each gets what it would joining alone, one after another in this order. Only
/// for fresh joins without pass-through (`Join::fresh` and no `Join::pass_through`): the
/// script refuses others.
pub async fn join_together<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    join: &Join<'_>,
    more: &[&str],
) -> redis::RedisResult<Vec<Joined>> {
    let mut call = join.invocation();
    for visitor in more {
        call.arg(*visitor);
    }
    let reply: Vec<(String, String)> = call.invoke_async(redis).await?;
    one_each(reply, 1 + more.len())
}

/// The script's answers, one for each of `n` visitors.
fn one_each(reply: Vec<(String, String)>, n: usize) -> redis::RedisResult<Vec<Joined>> {
    if reply.len() != n {
        return Err(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "the join script answered for another number of visitors",
        )));
    }
    Ok(reply.into_iter().map(Joined::from_reply).collect())
}

/// A visitor leaves: its place in line (or the pre-queue) is given up and its slot under the
/// cap, if it held one, freed; one atomic round trip (every key shares the event's hash tag).
pub async fn leave<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    event: &str,
    visitor: &str,
) -> redis::RedisResult<()> {
    redis::pipe()
        .atomic()
        .zrem(keys::waiting(event), visitor)
        .ignore()
        .srem(keys::prequeue(event), visitor)
        .ignore()
        .zrem(keys::active(event), visitor)
        .ignore()
        .query_async(redis)
        .await
}

/// Freeze the pre-queue by publishing its shuffle seed (`scripts/freeze_prequeue.lua`): the
/// first seed offered wins; the seed in force is returned.
pub async fn freeze_prequeue<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    event: &str,
    seed: &str,
) -> redis::RedisResult<String> {
    Script::new(include_str!("scripts/freeze_prequeue.lua"))
        .key(keys::state(event))
        .arg(seed)
        .invoke_async(redis)
        .await
}

/// How the queue moved over the ticks recorded in `wr:{event}:admits` (members
/// `"{tick_ms}:{admitted}:{dropped}"`; those written before drops were recorded lack the last
/// part).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub admitted: u64,
    /// Places passed: admitted plus dropped for having left.
    pub passed: u64,
    /// The earliest tick among the members read, if any.
    pub since_ms: Option<i64>,
}

impl Pace {
    pub fn of<S: AsRef<str>>(members: &[S]) -> Self {
        let mut pace = Self::default();
        for m in members {
            let mut parts = m.as_ref().split(':');
            let (Some(Ok(tick)), Some(Ok(admitted))) = (
                parts.next().map(str::parse::<i64>),
                parts.next().map(str::parse::<u64>),
            ) else {
                continue;
            };
            let dropped = parts
                .next()
                .and_then(|d| d.parse::<u64>().ok())
                .unwrap_or(0);
            pace.admitted += admitted;
            pace.passed += admitted + dropped;
            pace.since_ms = Some(pace.since_ms.map_or(tick, |s| s.min(tick)));
        }
        pace
    }

    /// Places passed per second from the earliest tick read until `now_ms`, once that spans
    /// at least `min_span_ms` (a shorter one says little).
    pub fn places_per_s(&self, now_ms: i64, min_span_ms: i64) -> Option<f64> {
        let span_ms = now_ms - self.since_ms?;
        (span_ms >= min_span_ms && self.passed > 0)
            .then(|| self.passed as f64 * 1000.0 / span_ms as f64)
    }
}

/// The admit script's keys, in order.
fn admit_keys(event: &str, window: i64) -> [String; 13] {
    [
        keys::state(event),
        keys::waiting(event),
        keys::active(event),
        keys::admits(event),
        keys::lease(event),
        keys::seen(event, window, false),
        keys::seen(event, window - 1, false),
        keys::seen(event, window, true),
        keys::seen(event, window - 1, true),
        keys::sessions(event),
        keys::priority(event),
        keys::seats(event),
        keys::history(event),
    ]
}

/// One admission tick for one event, as the lease holder runs it.
#[derive(Debug, Clone)]
pub struct Tick<'a> {
    pub event: &'a str,
    /// The worker replica; the script admits only while it holds the event's lease.
    pub worker_id: &'a str,
    /// The tick's clock (a test passes a synthetic one).
    pub now_ms: i64,
    pub rate_per_minute: u32,
    pub max_active: u32,
    pub session_ttl_ms: u64,
    /// How long an admitted fan holds a slot before any booking activity (at most the session).
    pub idle_ms: u64,
    /// The most elapsed time one tick may count, so an outage never banks a burst.
    pub max_elapsed_ms: u64,
    /// The presence window length, for which bitmaps say who is still polling.
    pub abandon_after_s: u32,
    /// False while the event is not open or is sold out: the clock runs, nobody is admitted.
    pub admitting: bool,
    /// How often the tick records a point of the event's history ([`keys::history`]).
    pub history_interval_ms: u64,
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Admitted {
    pub admitted: u64,
    /// Slots held after the tick.
    pub active: u64,
    pub waiting: u64,
    pub watermark: u64,
    /// Visitors passed over for having stopped polling.
    pub dropped: u64,
}

/// Run one admission tick (`scripts/admit.lua`, whose KEYS and ARGV order lives only here).
/// Fails with `NOTLEADER` when `tick.worker_id` does not hold the lease.
pub async fn admit<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    tick: &Tick<'_>,
) -> redis::RedisResult<Admitted> {
    let mut call = ADMIT.prepare_invoke();
    for key in admit_keys(tick.event, window(tick.now_ms, tick.abandon_after_s)) {
        call.key(key);
    }
    let (admitted, active, waiting, watermark, dropped): (u64, u64, u64, String, u64) = call
        .arg(tick.worker_id)
        .arg(tick.now_ms)
        .arg(tick.rate_per_minute)
        .arg(tick.max_active)
        .arg(tick.session_ttl_ms)
        .arg(OFFSET)
        .arg(tick.max_elapsed_ms)
        .arg(if tick.admitting { 1 } else { 0 })
        .arg(tick.idle_ms)
        .arg(tick.history_interval_ms)
        .invoke_async(redis)
        .await?;
    Ok(Admitted {
        admitted,
        active,
        waiting,
        watermark: watermark.parse().unwrap_or(0),
        dropped,
    })
}

/// Where a place stands in the one line everyone is in: pre-queue places first, then
/// post-opening arrivals in order.
pub fn sequence(place: u64, prequeue_total: u64) -> u64 {
    if place > OFFSET {
        prequeue_total + (place - OFFSET)
    } else {
        place
    }
}

/// Visitors ahead of `place` given the admission watermark.
pub fn position(place: u64, watermark: u64, prequeue_total: u64) -> u64 {
    sequence(place, prequeue_total).saturating_sub(sequence(watermark, prequeue_total))
}

/// The fair pre-queue order for a seed: anyone can recompute it once the seed is published.
pub fn shuffle_order(seed: &str, mut visitors: Vec<String>) -> Vec<String> {
    let key = |v: &str| {
        let mut h = Sha1::new();
        h.update(seed.as_bytes());
        h.update(b":");
        h.update(v.as_bytes());
        h.digest().to_string()
    };
    visitors.sort_by_cached_key(|v| (key(v), v.clone()));
    visitors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_counts_places_passed_over_the_ticks_read() {
        let pace = Pace::of(&["10000:3:1", "4000:2:0", "7000:5", "junk", "8000:x:1"]);
        assert_eq!(
            pace,
            Pace {
                admitted: 10,
                passed: 11,
                since_ms: Some(4000)
            }
        );
        // 11 places over 8 s (from the earliest tick to now).
        assert_eq!(pace.places_per_s(12_000, 5_000), Some(11.0 / 8.0));
        assert_eq!(pace.places_per_s(8_000, 5_000), None, "4 s says little");
        assert_eq!(Pace::of::<&str>(&[]).places_per_s(12_000, 5_000), None);
    }

    #[test]
    fn positions_span_the_prequeue_and_later_arrivals() {
        // 10 pre-queue visitors; watermark at place 4 of them.
        assert_eq!(position(7, 4, 10), 3);
        // A later arrival (the 2nd after opening) while the pre-queue is still being admitted.
        assert_eq!(position(OFFSET + 2, 4, 10), 8);
        // Once the watermark is among later arrivals.
        assert_eq!(position(OFFSET + 9, OFFSET + 5, 10), 4);
    }

    #[test]
    fn places_map_to_bits_in_two_ranges() {
        assert_eq!(seen_bit("e", 7, 12), ("wr:{e}:seen:7:p".to_owned(), 12));
        assert_eq!(
            seen_bit("e", 7, OFFSET + 3),
            ("wr:{e}:seen:7:a".to_owned(), 3)
        );
        assert_eq!(window(59_999, 60), 0);
        assert_eq!(window(60_000, 60), 1);
    }

    #[test]
    fn the_shuffle_replays_from_its_seed() {
        let visitors: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
        let a = shuffle_order("seed-1", visitors.clone());
        let b = shuffle_order("seed-1", visitors.iter().rev().cloned().collect());
        assert_eq!(a, b);
        assert_ne!(a, visitors);
        assert_ne!(a, shuffle_order("seed-2", visitors));
    }
}
