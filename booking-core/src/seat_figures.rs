//! Each live event's seat figures in Redis (`wr:{event}:seats`, see `marquee_waitroom::keys`),
//! every second: seats available (on sale, neither held nor sold, of shows not cancelled),
//! held, sold, and the fans holding. The admitting worker lets a sold-out event's waitlist in
//! no faster than seats come back (never more fans than the seats available beyond what
//! admitted fans not yet holding could take), and records the figures in the event's history
//! for the console's charts.

use marquee_waitroom::keys;

use crate::state::AppState;

#[derive(sqlx::FromRow)]
struct Figures {
    id: String,
    available: i64,
    held: i64,
    sold: i64,
    holders: i64,
}

/// Publish the figures of every live (not closed) event with shows (the join leaves out one
/// with none yet: it has no seats to count, and is admitted by the rate and cap alone).
pub async fn publish_all(state: &AppState) -> anyhow::Result<()> {
    // Each live show's seats are read once, by its primary key (`show_id` leads it), in one
    // pass that counts the free and the held together, and its sold seats likewise: what it
    // costs follows the live events' seats, not every seat the database has ever had.
    // Counting across the join, the planner scanned every partition of `seats` and
    // `sold_seats` (220–270 ms a second after the soak's hour); joined to events after the
    // count, it counted every show there ever was before keeping the live ones (164 ms a
    // second after the third hour's 318 shows, 60 of them live). The live shows are found
    // first (`MATERIALIZED`: the planner may not fold them back into the join): 26 ms.
    let rows: Vec<Figures> = sqlx::query_as(concat!(
        "WITH live AS MATERIALIZED (
            SELECT sh.id, sh.event_id, sh.status FROM events e
            JOIN shows sh ON sh.event_id = e.id
            WHERE e.state <> 'closed')
         SELECT live.event_id AS id,
            coalesce(sum(c.available), 0)::bigint AS available,
            coalesce(sum(c.held), 0)::bigint AS held,
            coalesce(sum(c.sold), 0)::bigint AS sold,
            (SELECT count(DISTINCT visitor_id) FROM bookings
              WHERE event_id = live.event_id AND ",
        crate::hold_live!(),
        ") AS holders
         FROM live
         CROSS JOIN LATERAL (
            SELECT count(*) FILTER (WHERE live.status = 'on_sale' AND ",
        crate::seat_free!("s"),
        ") AS available,
                   count(*) FILTER (WHERE ",
        crate::seat_held_live!("s"),
        ") AS held,
                   (SELECT count(*) FROM sold_seats ss WHERE ss.show_id = live.id) AS sold
            FROM seats s WHERE s.show_id = live.id) c
         GROUP BY live.event_id"
    ))
    .fetch_all(&state.db)
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut pipe = redis::pipe();
    for f in &rows {
        let key = keys::seats(&f.id);
        pipe.hset_multiple(
            &key,
            &[
                ("available", f.available),
                ("held", f.held),
                ("sold", f.sold),
                ("holders", f.holders),
                ("at", now_ms),
            ],
        )
        .ignore()
        .pexpire(&key, 60_000)
        .ignore();
    }
    let () = pipe.query_async(&mut state.redis.clone()).await?;
    Ok(())
}
