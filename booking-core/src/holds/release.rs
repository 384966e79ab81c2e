//! Releasing a hold: the booking and its seats change in one statement (`give_back`; the
//! releases of one show that arrive together in one, `batch`), and the fan keeps its slot
//! under the cap for the idle time at most.

use std::time::Duration;

use super::ShowInfos;
use super::batch::HoldBatches;
use super::give_back::RELEASED_BY_FAN;
use crate::bookings::{get, show_of};
use crate::error::{ApiError, ApiResult};
use crate::expiring::Expiring;
use crate::model::{BookingStatus, BookingView};

/// Release a hold: its seats go back on sale at once, and its fan keeps its slot under the cap
/// for the event's idle time at most (to choose again, or else it goes to the next fan).
/// Releasing a hold that already ended (released or lapsed) changes nothing and answers the
/// booking as it is. A hold made by this replica is released in one round trip (`recent` knows
/// its show, which never changes); any other is looked up first.
pub async fn release(
    batches: &HoldBatches,
    recent: &RecentHolds,
    shows: &ShowInfos,
    redis: &marquee_waitroom::connect::Redis,
    id: &str,
) -> ApiResult<BookingView> {
    let db = batches.lane().pool();
    let (known, partition) = recent.take(id).unzip();
    let show_id = match &known {
        Some(view) => view.show_id.clone(),
        None => show_of(db, id).await?,
    };
    let released = batches.release(&show_id, partition.flatten(), id).await?;
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
        view.status = BookingStatus::Released;
        view.status_reason = Some(RELEASED_BY_FAN.into());
        return Ok(view);
    }
    let view = get(db, id).await?;
    match view.status {
        BookingStatus::Confirmed | BookingStatus::Refunded => Err(ApiError::Conflict(format!(
            "a {} booking cannot be released; ask for a refund",
            view.status
        ))),
        _ => Ok(view),
    }
}

/// Holds made by this replica, as they were answered, so that releasing one needs no lookup:
/// a booking's show never changes. Remembered until the hold's window ends (an hour at most),
/// at most `CAP` of them; a hold no longer remembered (extended past its first window, say)
/// is looked up.
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
        let Ok(left) = (view.expires_at - chrono::Utc::now()).to_std() else {
            return;
        };
        self.0
            .insert_for(view.reservation_id.clone(), (view.clone(), partition), left);
    }

    /// The hold as it was made, forgotten from now on.
    pub fn take(&self, id: &str) -> Option<Recent> {
        self.0.take(id)
    }
}
