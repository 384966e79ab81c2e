//! An admitted fan's slot under the event's active cap (`wr:{event}:active`), and the record
//! of its admission (`wr:{event}:sessions`).
//!
//! The cap bounds how many fans shop at once, so a slot is held only while its fan is
//! shopping. The admit script gives a fan its slot for the event's idle time (`idle_after_s`,
//! at most the session). After that:
//!
//! * each reserve attempt passes [`gate_reserve`], which keeps the slot for the hold's
//!   window plus the idle time (never past the session's end), and an extended hold moves
//!   it on the same way ([`keep_for_hold`]);
//! * a confirmed booking ends it at once ([`finish`]): the fan has bought;
//! * a released hold leaves it the idle time at most ([`idle`]): the fan may choose again,
//!   or has left;
//! * otherwise it lapses by itself and the admit script frees it.
//!
//! The admission token stays valid until the session's end for what needs it (viewing is
//! by reservation id anyway), but once the slot is gone a reserve with it is refused: the
//! fan's turn is over, and it counts against the cap no longer.

use std::sync::LazyLock;

use redis::Script;

use crate::keys;

/// Built once: a script's hash is computed when it is made, and this runs on every reserve.
static GATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/reserve_gate.lua")));

/// What the gate says to a reserve attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Go ahead; the slot is kept for the hold.
    Pass,
    /// Over the per-visitor reserve limit: wait this many ms.
    Wait(u64),
    /// The visitor no longer holds a slot: bought, left, idle, or the session is over.
    Ended,
}

/// The reserve gate (`scripts/reserve_gate.lua`; its KEYS and ARGV order lives only here).
/// `per_minute` reserve attempts per visitor, shared by every booking-core replica.
pub async fn gate_reserve<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    event: &str,
    visitor: &str,
    per_minute: u32,
    keep_ms: u64,
    session_end_ms: i64,
) -> redis::RedisResult<Gate> {
    let per_minute = per_minute.max(1);
    let answer: i64 = GATE
        .key(keys::active(event))
        .key(keys::reserve_attempts(event, visitor))
        .arg(visitor)
        .arg(60_000 / u64::from(per_minute))
        .arg(per_minute)
        .arg(keep_ms)
        .arg(session_end_ms)
        .invoke_async(redis)
        .await?;
    Ok(match answer {
        0 => Gate::Pass,
        n if n < 0 => Gate::Ended,
        n => Gate::Wait(n as u64),
    })
}

/// The fan bought: its slot goes to the next fan in line at the next tick.
pub async fn finish<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    event: &str,
    visitor: &str,
) -> redis::RedisResult<()> {
    redis::cmd("ZREM")
        .arg(keys::active(event))
        .arg(visitor)
        .query_async(redis)
        .await
}

/// The fan released its hold: it keeps its slot for `idle_ms` at most from `now_ms` (to
/// choose again), never longer than it had.
pub async fn idle<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    event: &str,
    visitor: &str,
    now_ms: i64,
    idle_ms: u64,
) -> redis::RedisResult<()> {
    redis::cmd("ZADD")
        .arg(keys::active(event))
        .arg("XX")
        .arg("LT")
        .arg(now_ms + idle_ms as i64)
        .arg(visitor)
        .query_async(redis)
        .await
}

/// The fan's hold was extended: it keeps its slot until `until_ms` (the new window plus the
/// idle time), never past its session's end (`session_ms` after admission), and only if it
/// still holds one; a slot is never shortened here.
pub async fn keep_for_hold<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    event: &str,
    visitor: &str,
    until_ms: i64,
    session_ms: i64,
) -> redis::RedisResult<()> {
    let standing = standing(redis, event, visitor).await?;
    let Some(end) = standing.session_end_ms(session_ms) else {
        return Ok(());
    };
    redis::cmd("ZADD")
        .arg(keys::active(event))
        .arg("XX")
        .arg("GT")
        .arg(until_ms.min(end))
        .arg(visitor)
        .query_async(redis)
        .await
}

/// Where an admitted visitor stands, read in one round trip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// When the visitor was admitted (ms), while its session is remembered.
    pub admitted_at_ms: Option<i64>,
    /// Until when it holds a slot (ms), if it holds one.
    pub slot_until_ms: Option<i64>,
}

impl Standing {
    /// Still holding a slot at `now_ms`.
    pub fn shopping(&self, now_ms: i64) -> bool {
        self.slot_until_ms.is_some_and(|s| s > now_ms)
    }

    /// When the visitor's session ends (ms), for a session of `session_ms`: from its recorded
    /// admission, or, for a visitor admitted before admissions were recorded (by a worker of
    /// an earlier version, during a rolling upgrade), its slot's end, which was then the
    /// session's end.
    pub fn session_end_ms(&self, session_ms: i64) -> Option<i64> {
        match self.admitted_at_ms {
            Some(at) => Some(at + session_ms),
            None => self.slot_until_ms,
        }
    }
}

pub async fn standing<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    event: &str,
    visitor: &str,
) -> redis::RedisResult<Standing> {
    let (admitted_at, slot_until): (Option<f64>, Option<f64>) = redis::pipe()
        .zscore(keys::sessions(event), visitor)
        .zscore(keys::active(event), visitor)
        .query_async(redis)
        .await?;
    Ok(Standing {
        admitted_at_ms: admitted_at.map(|v| v as i64),
        slot_until_ms: slot_until.map(|v| v as i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visitor_admitted_before_sessions_were_recorded_keeps_its_session() {
        let old = Standing {
            admitted_at_ms: None,
            slot_until_ms: Some(5_000),
        };
        assert!(old.shopping(4_000));
        assert_eq!(old.session_end_ms(600_000), Some(5_000));
        let new = Standing {
            admitted_at_ms: Some(1_000),
            slot_until_ms: Some(3_000),
        };
        assert_eq!(new.session_end_ms(600_000), Some(601_000));
        assert!(
            !new.shopping(3_000),
            "the slot lapsed: bought, left or idle"
        );
        assert!(!Standing::default().shopping(0));
    }
}
