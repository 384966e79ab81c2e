//! The statements that end holds at a fan's request: one booking, or a batch of one show's
//! (`batch`). Each is one statement, so one transaction: the bookings and their seats change
//! together.

use crate::lane::Lane;
use crate::partitions::{self, PerPartition};

pub(super) const RELEASED_BY_FAN: &str = "released by the fan";

/// The release statement, for the bookings `$which` names (`$1` show, `$3` the reason). The
/// conditions keep every plan on the primary keys, so a generic plan is as good as a custom
/// one and Postgres keeps it: `(status = 'held') IS TRUE` matches no partial "held" index on
/// `bookings` (which exist for the sweeper and one-hold-per-visitor; with stale statistics
/// the planner took them as selective and scanned every hold of a busy show, 1.5 ms per
/// release; so this spells out `crate::hold_live!` in a form no such index matches), and the
/// seats come from the booking row (as a parameter their unknown count made the generic plan
/// look dearer, and each release was planned anew).
macro_rules! release_statement {
    ($which:literal) => {
        partitions::variants(concat!(
            "WITH r AS (
                UPDATE {bookings} AS bookings
                SET status = 'released', status_reason = $3, updated_at = now()
                WHERE show_id = $1 AND ",
            $which,
            " AND (status = 'held') IS TRUE AND expires_at > now()
                RETURNING id, seat_ids, event_id, visitor_id),
             s AS (
                UPDATE {seats} AS seats SET ",
            crate::seat_back_on_sale!(),
            " FROM r
                WHERE seats.show_id = $1 AND seats.seat_id = ANY(r.seat_ids) AND seats.booking_id = r.id
                  AND seats.status = 'held')
             SELECT id, event_id, visitor_id FROM r"
        ))
    };
}

/// One booking (`$2`).
static ONE: PerPartition = PerPartition::new(|| release_statement!("id = $2"));

/// A batch of one show's bookings (`$2` their ids): planned for each batch (the ids' number
/// varies), which a batch pays once.
static MANY: PerPartition = PerPartition::new(|| release_statement!("id = ANY($2)"));

/// A released hold's event and visitor; `None` if it was not a live hold.
pub(super) type Released = Option<(String, String)>;

/// Release booking `id` of `show_id` if it is a live hold: its event and visitor if it was.
pub(super) async fn one(
    lane: &Lane,
    show_id: &str,
    partition: Option<i32>,
    id: &str,
) -> Result<Released, sqlx::Error> {
    let mut conn = lane.acquire().await?;
    let released = sqlx::query_as(ONE.get(partition))
        .bind(show_id)
        .bind(id)
        .bind(RELEASED_BY_FAN)
        .fetch_optional(&mut *conn)
        .await;
    let released: Option<(String, String, String)> = conn.settle(released)?;
    Ok(released.map(|(_, event, visitor)| (event, visitor)))
}

/// Release those of `ids` that are live holds: each one's id, event and visitor.
pub(super) async fn many(
    lane: &Lane,
    show_id: &str,
    partition: Option<i32>,
    ids: &[&str],
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    let mut conn = lane.acquire().await?;
    let released = sqlx::query_as(MANY.get(partition))
        .bind(show_id)
        .bind(ids)
        .bind(RELEASED_BY_FAN)
        .fetch_all(&mut *conn)
        .await;
    conn.settle(released)
}
