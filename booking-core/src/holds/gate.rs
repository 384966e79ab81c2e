//! The gate before a hold (see `marquee_waitroom::session`): the visitor's slot under the cap,
//! and its per-visitor allowance of attempts.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use marquee_waitroom::session::Gate;

use super::ShowInfo;
use crate::error::ApiError;

/// The gate before a hold: the visitor must still hold its slot under the event's active cap
/// (`marquee_waitroom::session`), and make at most N reserve attempts per minute, counted in
/// Redis so that every booking-core replica shares one allowance. If Redis does not answer,
/// this replica's own count decides, so an outage never blocks reserves.
pub struct ReserveGate {
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

impl ReserveGate {
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
