//! The operators' event and show routes, and what they publish to Redis.

use std::time::Duration;

use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::helpers::{OPERATOR, spawn};

#[tokio::test]
async fn events_are_created_listed_patched_and_published_to_redis() {
    let app = spawn().await;
    let id = marquee_testkit::unique("gala");
    let res = app
        .admin_post(
            "/admin/v1/events",
            &json!({"id": id, "name": "Gala", "opens_at": "2030-01-01T18:00:00+05:30",
                    "rate_per_minute": 100, "max_active": 50, "session_ttl_s": 600, "hold_ttl_s": 300}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["state"], "prequeue");
    assert_eq!(created["min_poll_interval_ms"], 2000);

    let mut redis = redis::Client::open(marquee_testkit::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let cfg: String = redis.get(marquee_waitroom::keys::cfg(&id)).await.unwrap();
    let cfg: Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(cfg["rate_per_minute"], 100);
    assert_eq!(cfg["opens_at"], "2030-01-01T12:30:00Z");
    let listed: bool = redis.sismember(&app.env.events_key, &id).await.unwrap();
    assert!(listed);

    let res = app
        .http
        .patch(app.at(&format!("/admin/v1/events/{id}")))
        .header("authorization", OPERATOR)
        .json(&json!({"state": "open", "rate_per_minute": 900, "pow_bits": 12}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cfg: String = redis.get(marquee_waitroom::keys::cfg(&id)).await.unwrap();
    let cfg: Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(
        (
            cfg["state"].clone(),
            cfg["rate_per_minute"].clone(),
            cfg["pow_bits"].clone()
        ),
        (json!("open"), json!(900), json!(12))
    );

    let got: Value = app
        .http
        .get(app.at(&format!("/admin/v1/events/{id}")))
        .header("authorization", OPERATOR)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for field in [
        "waiting",
        "active",
        "admitted_total",
        "admitted_last_minute",
        "held_seats",
        "sold_seats",
    ] {
        assert!(got[field].is_number(), "{field} in {got}");
    }
    let list: Value = app
        .http
        .get(app.at("/admin/v1/events"))
        .header("authorization", OPERATOR)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        list["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == id.as_str())
    );

    // A duplicate id conflicts; an unknown one is 404.
    let res = app
        .admin_post(
            "/admin/v1/events",
            &json!({"id": id, "name": "Again", "opens_at": "2030-01-01T18:00:00Z",
                    "rate_per_minute": 1, "max_active": 1, "session_ttl_s": 60, "hold_ttl_s": 60}),
        )
        .await;
    assert_eq!(res.status(), 409);
    let res = app
        .http
        .get(app.at("/admin/v1/events/no-such-event"))
        .header("authorization", OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn admin_routes_need_an_operator_token() {
    let app = spawn().await;
    let res = app
        .http
        .get(app.at("/admin/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .http
        .get(app.at("/admin/v1/events"))
        .header("authorization", "Bearer nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn an_event_is_sold_out_in_redis_when_no_seat_is_left_and_back_when_holds_lapse() {
    let app = spawn().await;
    // Holds of 4 s: long enough for the once-a-second monitor to see the sell-out.
    let event = app.event(4).await;
    let show = app.show(&event, 1, 2).await;
    let res = app
        .reserve(
            &app.token("all-of-it", &event),
            &json!({"show_id": show, "quantity": 2}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let redis = redis::Client::open(marquee_testkit::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let sold_out = |want: bool| {
        let key = marquee_waitroom::keys::cfg(&event);
        let mut redis = redis.clone();
        async move {
            let cfg: String = redis.get(&key).await.unwrap();
            let cfg: Value = serde_json::from_str(&cfg).unwrap();
            (cfg["sold_out"] == want).then_some(())
        }
    };
    marquee_testkit::wait_for("sold_out", std::time::Duration::from_secs(10), || {
        sold_out(true)
    })
    .await;
    marquee_testkit::wait_for("back on sale", std::time::Duration::from_secs(10), || {
        sold_out(false)
    })
    .await;
}

/// The sold-out check itself: an event with no shows is not sold out; one whose every seat
/// is held is, whichever of its shows comes first; a cancelled show's free seats never count.
#[tokio::test]
async fn sold_out_needs_shows_and_no_seat_free_on_any_show_on_sale() {
    let app = spawn().await;
    let event = app.event(600).await;
    let sold_out = || async {
        let mut conn = app.db.acquire().await.unwrap();
        booking_core::live::sold_out(&mut conn, &event)
            .await
            .unwrap()
    };
    assert!(!sold_out().await, "no shows yet");
    let first = app.show(&event, 1, 2).await;
    let second = app.show(&event, 1, 1).await;
    assert!(!sold_out().await);
    for (fan, show, n) in [("a", &first, 2), ("b", &second, 1)] {
        let res = app
            .reserve(
                &app.token(fan, &event),
                &json!({"show_id": show, "quantity": n}),
            )
            .await;
        assert_eq!(res.status(), 201);
        // One show still has a free seat until the last hold.
        assert_eq!(sold_out().await, fan == "b", "after {fan}");
    }
    // A seat freed on a cancelled show does not count.
    let third = app.show(&event, 1, 1).await;
    assert!(!sold_out().await);
    sqlx::query("UPDATE shows SET status = 'cancelled' WHERE id = $1")
        .bind(&third)
        .execute(&app.db)
        .await
        .unwrap();
    assert!(sold_out().await);
}

/// A change whose publish took effect in Redis though its request failed (the answer was
/// lost, the transaction rolled back) leaves Redis with settings Postgres never committed,
/// under a newer revision that an ordinary republish may not overwrite. The once-a-second sync
/// puts Postgres's settings back.
#[tokio::test]
async fn settings_in_redis_that_postgres_never_committed_are_put_right() {
    let app = spawn().await;
    let event = app.event(600).await;
    let mut redis = redis::Client::open(marquee_testkit::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = marquee_waitroom::keys::cfg(&event);
    let committed: String = redis.get(&key).await.unwrap();
    let mut stray: Value = serde_json::from_str(&committed).unwrap();
    stray["max_active"] = json!(999_999);
    stray["revision"] = json!(stray["revision"].as_i64().unwrap() + 60_000_000);
    let _: () = redis.set(&key, stray.to_string()).await.unwrap();

    let restored: Value = marquee_testkit::wait_for(
        "Postgres's settings in Redis",
        Duration::from_secs(10),
        || {
            let (mut redis, key) = (redis.clone(), key.clone());
            async move {
                let cfg: String = redis.get(&key).await.unwrap();
                let cfg: Value = serde_json::from_str(&cfg).unwrap();
                (cfg["max_active"] != 999_999).then_some(cfg)
            }
        },
    )
    .await;
    assert_eq!(restored, serde_json::from_str::<Value>(&committed).unwrap());
}
