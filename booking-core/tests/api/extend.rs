//! Hold extension (issue 15, API.md): once, by the event's `hold_extend_s`, never past
//! `max_hold_s` from the hold's start, only while the hold is live; the booking and its seats
//! move together, and however many ask at once, one extension happens.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn};

async fn extend(app: &TestApp, id: &str) -> (u16, Value) {
    let res = app
        .http
        .post(app.at(&format!("/v1/bookings/{id}/extend")))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

/// The booking's expiry and every seat's `held_until`, from the tables.
async fn windows(app: &TestApp, id: &str) -> (DateTime<Utc>, Vec<DateTime<Utc>>) {
    sqlx::query_as(
        "SELECT b.expires_at,
                (SELECT array_agg(s.held_until) FROM seats s
                  WHERE s.show_id = b.show_id AND s.booking_id = b.id)
         FROM bookings b JOIN booking_index i ON i.show_id = b.show_id AND i.id = b.id
         WHERE i.id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_hold_is_extended_once_by_the_events_time_booking_and_seats_together() {
    let app = spawn().await;
    let event = app
        .api
        .event(json!({"hold_ttl_s": 600, "hold_extend_s": 300}))
        .await;
    let show = app.show(&event, 2, 5).await;
    let id = app.hold(&event, &show, "slow-payer", &["A-1", "A-2"]).await;
    let (before, _) = windows(&app, &id).await;

    let (status, body) = extend(&app, &id).await;
    assert_eq!(status, 200, "{body}");
    let (after, seats) = windows(&app, &id).await;
    assert_eq!((after - before).num_seconds(), 300);
    assert_eq!(seats, vec![after, after], "the seats move with the booking");
    let answered: DateTime<Utc> = serde_json::from_value(body["expires_at"].clone()).unwrap();
    assert_eq!(answered, after);

    let (status, body) = extend(&app, &id).await;
    assert_eq!(status, 409, "only once: {body}");
    assert_eq!(windows(&app, &id).await.0, after);
    // The seats stay the hold's: nobody else can take them.
    let res = app
        .reserve(
            &app.token("other", &event),
            &json!({"show_id": show, "seat_ids": ["A-1"]}),
        )
        .await;
    assert_eq!(res.status(), 409);
}

#[tokio::test]
async fn an_extension_never_goes_past_the_longest_hold_and_none_is_left_at_the_limit() {
    let app = spawn().await;
    let capped = app
        .api
        .event(json!({"hold_ttl_s": 600, "hold_extend_s": 300, "max_hold_s": 700}))
        .await;
    let show = app.show(&capped, 1, 5).await;
    let id = app.hold(&capped, &show, "capped", &["A-1"]).await;
    let (status, body) = extend(&app, &id).await;
    assert_eq!(status, 200, "a shortened extension is still 200: {body}");
    let (start, expires): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT created_at, expires_at FROM bookings WHERE show_id = $1 AND id = $2",
    )
    .bind(&show)
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((expires - start).num_seconds(), 700);

    let full = app
        .api
        .event(json!({"hold_ttl_s": 600, "max_hold_s": 600}))
        .await;
    let show = app.show(&full, 1, 5).await;
    let id = app.hold(&full, &show, "full", &["A-1"]).await;
    let (status, body) = extend(&app, &id).await;
    assert_eq!(status, 409, "{body}");

    // max_hold_s below hold_ttl_s is refused when the event is made.
    let res = app
        .admin_post(
            "/admin/v1/events",
            &json!({"name": "x", "opens_at": "2026-01-01T00:00:00Z", "rate_per_minute": 60,
                    "max_active": 10, "session_ttl_s": 600, "hold_ttl_s": 600, "max_hold_s": 300}),
        )
        .await;
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn a_lapsed_or_released_hold_is_never_revived() {
    let app = spawn().await;
    let event = app.event(600).await;
    let show = app.show(&event, 1, 5).await;
    let lapsed = app.hold(&event, &show, "late", &["A-1"]).await;
    app.lapse(&lapsed).await;
    let (status, _) = extend(&app, &lapsed).await;
    assert_eq!(status, 409);
    let view: Value = app.booking(&lapsed).await;
    assert_eq!(view["status"], "expired");

    let released = app.hold(&event, &show, "gone", &["A-2"]).await;
    assert_eq!(app.release(&released).await.status(), 200);
    assert_eq!(extend(&app, &released).await.0, 409);
    assert_eq!(extend(&app, "r_no-such-reservation-here").await.0, 404);
}

#[tokio::test]
async fn many_asking_at_once_get_one_extension() {
    let app = spawn().await;
    let event = app.event(600).await;
    let show = app.show(&event, 1, 5).await;
    let id = app
        .hold(&event, &show, "eager", &["A-1", "A-2", "A-3"])
        .await;
    let (before, _) = windows(&app, &id).await;
    let answers = futures::future::join_all((0..16).map(|_| extend(&app, &id))).await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let refused = answers.iter().filter(|(s, _)| *s == 409).count();
    assert_eq!((ok, refused), (1, 15), "{answers:?}");
    let (after, seats) = windows(&app, &id).await;
    assert_eq!((after - before).num_seconds(), 300);
    assert!(seats.iter().all(|s| *s == after));
}

/// When the fan's slot under the active cap ends (ms), from Redis.
fn slot_until_ms(event: &str, visitor: &str) -> i64 {
    let mut conn = redis::Client::open(marquee_testkit::redis_url())
        .and_then(|c| c.get_connection())
        .expect("Redis");
    let score: f64 = redis::cmd("ZSCORE")
        .arg(marquee_waitroom::keys::active(event))
        .arg(visitor)
        .query(&mut conn)
        .expect("the fan holds a slot");
    score as i64
}

#[tokio::test]
async fn an_extended_hold_keeps_the_fans_slot_under_the_cap_as_much_longer() {
    let app = spawn().await;
    let event = app
        .api
        .event(json!({"hold_ttl_s": 600, "hold_extend_s": 300, "session_ttl_s": 3600}))
        .await;
    let show = app.show(&event, 1, 5).await;
    marquee_testkit::admit("long-session", &event, 3600);
    // As the worker admits: a session of an hour, a slot for the idle time (180 s).
    let mut conn = redis::Client::open(marquee_testkit::redis_url())
        .and_then(|c| c.get_connection())
        .expect("Redis");
    let () = redis::cmd("ZADD")
        .arg(marquee_waitroom::keys::active(&event))
        .arg(chrono::Utc::now().timestamp_millis() + 180_000)
        .arg("long-session")
        .query(&mut conn)
        .unwrap();
    let token = app.env.admission_token("long-session", &event, 3600);
    let res = app
        .reserve(&token, &json!({"show_id": show, "seat_ids": ["A-1"]}))
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["reservation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = slot_until_ms(&event, "long-session");

    assert_eq!(extend(&app, &id).await.0, 200);
    let after = slot_until_ms(&event, "long-session");
    // The reserve gate kept it for the window and the idle time from Redis's clock; the
    // extension from the new expiry: 300 s later, give or take the clocks' and the calls' skew.
    assert!(
        (after - before - 300_000).abs() < 5_000,
        "the slot moved by {} ms",
        after - before
    );
}
