//! Invariant 1 held by the database itself: with the application bypassed, a second sale or a
//! second holder of a seat is refused by constraints.

use serde_json::json;

use crate::helpers::spawn;

#[tokio::test]
async fn the_database_refuses_a_double_sale_even_from_raw_sql() {
    let app = spawn().await;
    let event = app.event(600).await;
    let show = app.show(&event, 1, 3).await;

    sqlx::query("INSERT INTO sold_seats (show_id, seat_id, booking_id) VALUES ($1, 'A-1', 'b1')")
        .bind(&show)
        .execute(&app.db)
        .await
        .unwrap();
    let second = sqlx::query(
        "INSERT INTO sold_seats (show_id, seat_id, booking_id) VALUES ($1, 'A-1', 'b2')",
    )
    .bind(&show)
    .execute(&app.db)
    .await;
    let err = second.expect_err("a seat cannot be sold twice");
    assert_eq!(
        err.as_database_error().unwrap().code().as_deref(),
        Some("23505")
    );

    // A sale must name a real seat of the show.
    let ghost = sqlx::query(
        "INSERT INTO sold_seats (show_id, seat_id, booking_id) VALUES ($1, 'Z-9', 'b3')",
    )
    .bind(&show)
    .execute(&app.db)
    .await;
    assert!(ghost.is_err());

    // A seat row has one holder; it cannot be held with no holder, or be available with one.
    for bad in [
        "UPDATE seats SET status = 'held', held_until = now() + interval '1 minute' WHERE show_id = $1 AND seat_id = 'A-2'",
        "UPDATE seats SET booking_id = 'someone' WHERE show_id = $1 AND seat_id = 'A-2'",
        "UPDATE seats SET status = 'booked' WHERE show_id = $1 AND seat_id = 'A-2'",
    ] {
        let res = sqlx::query(bad).bind(&show).execute(&app.db).await;
        assert!(res.is_err(), "{bad} must be refused");
    }

    // One active hold per visitor per show, even inserted by hand.
    let res = app
        .reserve(
            &app.token("fan", &event),
            &json!({"show_id": show, "seat_ids": ["A-3"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let dup = sqlx::query(
        "INSERT INTO bookings (id, show_id, event_id, visitor_id, status, seat_ids, total_cents, currency, expires_at)
         VALUES ('r_dup', $1, $2, 'fan', 'held', '{A-2}', 0, 'gbp', now() + interval '1 minute')",
    )
    .bind(&show)
    .bind(&event)
    .execute(&app.db)
    .await;
    assert!(
        dup.is_err(),
        "a second active hold for one visitor is refused"
    );
}

/// Holds and releases are heap-only (HOT) updates, which is most of what a hot show's seat
/// changes cost: no index on any `seats` partition may cover a column they change, in its
/// key, its expression or its predicate.
#[tokio::test]
async fn no_index_on_seats_covers_what_a_hold_changes() {
    let app = spawn().await;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_indexdef(i.indexrelid)
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_class t ON t.oid = i.indrelid
         WHERE t.relname = 'seats' OR t.oid IN (SELECT inhrelid FROM pg_inherits
                                                WHERE inhparent = 'seats'::regclass)",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        indexes.len() >= 17,
        "the primary key on seats and each partition: {indexes:?}"
    );
    for (name, def) in &indexes {
        for column in ["status", "booking_id", "held_until", "version"] {
            assert!(!def.contains(column), "{name} covers {column}: {def}");
        }
    }
    // And the partitions keep room on each page for their rows' next versions.
    let fillfactors: Vec<Option<Vec<String>>> = sqlx::query_scalar(
        "SELECT c.reloptions FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid
         WHERE inhparent = 'seats'::regclass",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(fillfactors.len(), 16);
    assert!(
        fillfactors
            .iter()
            .all(|o| o.as_deref() == Some(&["fillfactor=70".to_owned()][..])),
        "{fillfactors:?}"
    );
}
