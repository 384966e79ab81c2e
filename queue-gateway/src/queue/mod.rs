//! The waiting room's API: join, status and leaving. What both answer, and the cookies they set.

pub mod answer;
pub mod credentials;
pub mod join;
pub mod joins;
pub mod leave;
pub mod pow;
pub mod status;

use std::sync::Arc;

use rand::Rng;
use serde::Serialize;

pub use marquee_waitroom::admission::COOKIE as ADMISSION_COOKIE;
pub use marquee_waitroom::queue_token::COOKIE as QUEUE_COOKIE;

/// Where a visitor stands, as join and status answer it (`state`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Before opening; the order is decided by the shuffle at opening.
    Prequeue,
    #[default]
    Waiting,
    Admitted,
    /// The session is over, or the visitor was dropped for not polling.
    Expired,
    Paused,
    Closed,
    /// No seat left in any show; the visitor keeps its place.
    SoldOut,
}

/// What join and status return: where the visitor stands, then what every answer says about
/// the event.
#[derive(Debug, Serialize, Default)]
pub struct QueueView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visitor_id: Option<String>,
    pub state: QueueState,
    /// Place in line, 1 = next; `null` in the pre-queue (the order is decided at opening).
    pub position: Option<u64>,
    pub estimated_wait_s: Option<u64>,
    pub poll_after_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_token: Option<String>,
    pub csrf: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admitted_until: Option<chrono::DateTime<chrono::Utc>>,
    /// When the worker admitted this visitor: the server's own record, the same on every poll.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admitted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The event's members (`crate::event_views::About`), already JSON: `answer::respond`
    /// writes them after the visitor's.
    #[serde(skip)]
    pub about: Arc<str>,
}

/// When to poll next: about a tenth of the expected wait, between the event's minimum and
/// 30 s (and at most half the abandonment window, so a patient fan is never taken for gone),
/// with up to 20 % jitter so a crowd's polls do not synchronise.
pub fn poll_after_ms(min_poll_ms: u32, expected_wait_s: Option<u64>, abandon_after_s: u32) -> u64 {
    let floor = u64::from(min_poll_ms).max(1000);
    let ceiling = 30_000
        .min(u64::from(abandon_after_s) * 1000 / 2 * 5 / 6)
        .max(floor);
    let base = expected_wait_s
        .map(|s| (s * 1000 / 10).clamp(floor, ceiling))
        .unwrap_or(floor);
    let jitter = rand::rng().random_range(0..=base / 5);
    // Never below the event's minimum interval, whatever the jitter.
    (base + jitter).max(u64::from(min_poll_ms))
}

pub use marquee_platform::ids::valid_event_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_spread_out_and_respect_the_minimum() {
        // A 60 s wait: a tenth of it is 6 s, plus up to 20 % jitter.
        let samples: Vec<u64> = (0..200)
            .map(|_| poll_after_ms(2000, Some(60), 600))
            .collect();
        assert!(
            samples.iter().all(|&p| (6000..=7200).contains(&p)),
            "{samples:?}"
        );
        assert!(samples.iter().any(|&p| p != samples[0]), "jittered");
        assert!((0..100).all(|_| poll_after_ms(5000, Some(1), 600) >= 5000));
        assert!((0..100).all(|_| poll_after_ms(0, Some(100_000), 600) <= 36_000));
        // Never long enough to miss a presence window (10 s here): at most 5 s with jitter.
        assert!((0..100).all(|_| poll_after_ms(0, Some(100_000), 10) <= 5_000));
    }
}
