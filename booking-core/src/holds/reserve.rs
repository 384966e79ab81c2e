//! A reserve: which seats to try, and what a miss answers. Named seats are taken through the
//! show's batches (`batch`); best available chooses adjacent blocks from the cached map first
//! (taken as named seats), then lets the database pick in order of preference (`take`).

use std::time::Duration;

use rand::Rng;

use super::batch::HoldBatches;
use super::take::{self, Lock, Miss, Outcome};
use super::{ShowInfo, free_count};
use crate::error::{ApiError, ApiResult};
use crate::model::BookingView;
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

/// Hold seats for `visitor`. `seatmap` is the (possibly slightly stale) cached map, used only
/// to choose candidates; the locking statement decides. Its span is the one the booking's
/// trace continues from (its PaymentIntent, its announcements).
#[tracing::instrument(name = "hold seats", skip_all, fields(show = %show.id))]
pub async fn reserve(
    batches: &HoldBatches,
    show: &ShowInfo,
    visitor: &str,
    pick: &Pick,
    seatmap: &Snapshot,
) -> ApiResult<BookingView> {
    let db = batches.lane().pool();
    let outcome = match pick {
        Pick::Seats(ids) => hold_once(batches, show, visitor, Lock::Seats(ids)).await?,
        Pick::Best { quantity, category } => {
            reserve_best(
                batches,
                show,
                visitor,
                *quantity,
                category.as_deref(),
                seatmap,
            )
            .await?
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
    batches: &HoldBatches,
    show: &ShowInfo,
    visitor: &str,
    quantity: u32,
    category: Option<&str>,
    seatmap: &Snapshot,
) -> Outcome {
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
                match hold_once(batches, show, visitor, Lock::Seats(&blocks[i])).await? {
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
        match hold_once(batches, show, visitor, lock).await? {
            Ok(view) => return Ok(Ok(view)),
            Err(Miss::Short) => {
                if free_count(batches.lane().pool(), &show.id, category).await?
                    < i64::from(quantity)
                {
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

/// Take the seats or nothing.
async fn hold_once(
    batches: &HoldBatches,
    show: &ShowInfo,
    visitor: &str,
    lock: Lock<'_>,
) -> Outcome {
    match try_hold(batches, show, visitor, &lock).await? {
        // The one-hold-per-visitor index saw a hold the statement did not count as live: one
        // that lapsed and is not ended yet. End it and try once more.
        Err(Miss::Holding(None))
            if take::expire_own_lapsed(batches.lane().pool(), &show.id, visitor).await? > 0 =>
        {
            try_hold(batches, show, visitor, &lock).await
        }
        other => Ok(other),
    }
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

/// One attempt: named seats go through the show's batches (`batch`), best available's
/// database pick runs alone.
async fn try_hold(
    batches: &HoldBatches,
    show: &ShowInfo,
    visitor: &str,
    lock: &Lock<'_>,
) -> Outcome {
    let traceparent = marquee_platform::trace::traceparent(&tracing::Span::current());
    match lock {
        Lock::Seats(seats) => batches.hold(show, visitor, seats, traceparent).await,
        Lock::Best { .. } => {
            take::alone(batches.lane(), show, visitor, lock, traceparent.as_deref()).await
        }
    }
}
