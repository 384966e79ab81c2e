//! What a reserve needs to know about its show, remembered for a second.

use std::time::Duration;

use sqlx::PgPool;

use crate::error::{ApiError, ApiResult};
use crate::expiring::Expiring;
use crate::partitions;

/// What a reserve needs to know about its show.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ShowInfo {
    pub id: String,
    pub event_id: String,
    pub currency: String,
    pub hold_ttl_s: i32,
    /// The event's idle time: how long an admitted fan keeps its slot under the cap beyond
    /// its hold (see `marquee_waitroom::session`).
    pub idle_after_s: i32,
    /// The show was cancelled (`crate::cancellation`): nothing more may be held.
    pub cancelled: bool,
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
        "SELECT s.id, s.event_id, s.currency, e.hold_ttl_s, e.idle_after_s,
                s.status = 'cancelled' AS cancelled
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

    /// Forget a show, so this replica reads it afresh at once (it was just cancelled here;
    /// other replicas see it within the second).
    pub fn forget(&self, show_id: &str) {
        self.0.take(show_id);
    }
}
