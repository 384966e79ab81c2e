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

/// Publish the figures of every live (not closed) event with shows: one with none yet has no
/// seats to count, and is admitted by the rate and cap alone.
pub async fn publish_all(state: &AppState) -> anyhow::Result<()> {
    let rows: Vec<Figures> = sqlx::query_as(concat!(
        "SELECT e.id,
            (SELECT count(*) FROM shows sh JOIN seats s ON s.show_id = sh.id
              WHERE sh.event_id = e.id AND sh.status = 'on_sale' AND ",
        crate::seat_free!("s"),
        ") AS available,
            (SELECT count(*) FROM shows sh JOIN seats s ON s.show_id = sh.id
              WHERE sh.event_id = e.id AND ",
        crate::seat_held_live!("s"),
        ") AS held,
            (SELECT count(*) FROM sold_seats ss JOIN shows sh ON sh.id = ss.show_id
              WHERE sh.event_id = e.id) AS sold,
            (SELECT count(DISTINCT visitor_id) FROM bookings
              WHERE event_id = e.id AND ",
        crate::hold_live!(),
        ") AS holders
         FROM events e
         WHERE e.state <> 'closed' AND EXISTS (SELECT 1 FROM shows WHERE event_id = e.id)"
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
