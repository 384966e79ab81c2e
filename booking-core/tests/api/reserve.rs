//! Holding seats (invariant 1's public half): chosen and best-available holds, the token
//! and slot checks in front of them, quantities, releases, and the answers a fan gets.
//! Over 400 lines because each test is one rule of the reserve call, kept together.

use serde_json::{Value, json};

use booking_core::holds::{Refusal, ShowInfo};

use crate::helpers::{seat_ids, spawn, spawn_with};

#[tokio::test]
async fn hold_then_get_then_release_puts_seats_back() {
    let app = spawn().await;
    let event = app.event(600).await;
    let show = app.show(&event, 2, 5).await;
    let token = app.token("fan-1", &event);

    let res = app
        .reserve(
            &token,
            &json!({"show_id": show, "seat_ids": ["A-2", "A-3"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let held: Value = res.json().await.unwrap();
    assert_eq!(held["status"], "held");
    assert_eq!(held["total_cents"], 2000);
    assert_eq!(held["currency"], "gbp");
    assert_eq!(seat_ids(&held), ["A-2", "A-3"]);
    let id = held["reservation_id"].as_str().unwrap();
    assert!(
        id.len() >= 24,
        "reservation ids carry at least 128 random bits: {id}"
    );

    // The seat map shows the hold within its freshness window (1 s).
    let map = marquee_testkit::wait_for(
        "the hold on the map",
        std::time::Duration::from_secs(2),
        || async {
            let map = app.seat_map(&show).await;
            let status = |seat: &str| {
                map["seats"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["id"] == seat)
                    .unwrap()["status"]
                    .clone()
            };
            (status("A-2") == "held").then_some(map)
        },
    )
    .await;
    let a1 = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "A-1")
        .unwrap();
    assert_eq!(a1["status"], "available");

    // Someone else asking for an overlapping set gets 409 naming only the taken seat.
    let other = app.token("fan-2", &event);
    let res = app
        .reserve(
            &other,
            &json!({"show_id": show, "seat_ids": ["A-3", "A-4"]}),
        )
        .await;
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["unavailable"], json!(["A-3"]));

    // The same visitor cannot hold twice for one show.
    let res = app
        .reserve(&token, &json!({"show_id": show, "seat_ids": ["B-1"]}))
        .await;
    assert_eq!(res.status(), 409);
    assert_eq!(res.json::<Value>().await.unwrap()["reservation_id"], id);

    let got: Value = app
        .http
        .get(app.at(&format!("/v1/bookings/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "held");
    assert_eq!(got["seats"][0]["row"], "A");

    let res = app.release(id).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "released");
    let res = app
        .reserve(
            &other,
            &json!({"show_id": show, "seat_ids": ["A-3", "A-4"]}),
        )
        .await;
    assert_eq!(res.status(), 201, "released seats are holdable at once");
    // Releasing again is harmless.
    let res = app.release(id).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn reserve_needs_a_valid_token_for_the_shows_event() {
    let app = spawn().await;
    let event = app.event(600).await;
    let other_event = app.event(600).await;
    let show = app.show(&event, 1, 5).await;
    let body = json!({"show_id": show, "seat_ids": ["A-1"]});

    let res = app
        .http
        .post(app.at("/v1/bookings/reserve"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(app.reserve("not-a-jwt", &body).await.status(), 401);
    let expired = app.env.admission_token("fan", &event, -120);
    assert_eq!(app.reserve(&expired, &body).await.status(), 401);
    let foreign = app.token("fan", &other_event);
    assert_eq!(app.reserve(&foreign, &body).await.status(), 403);

    // The credential is judged first: a bad token is 401 whatever else is wrong.
    for bad in [
        json!({"show_id": show, "seat_ids": "A-1"}),
        json!({"show_id": "s_nosuchshow00000000000000", "seat_ids": ["A-1"]}),
        json!({"quantity": 0}),
    ] {
        assert_eq!(app.reserve("not-a-jwt", &bad).await.status(), 401, "{bad}");
        assert_eq!(app.reserve(&expired, &bad).await.status(), 401, "{bad}");
    }
    let not_json = app
        .http
        .post(app.at("/v1/bookings/reserve"))
        .bearer_auth(&expired)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 401);
    // With a good token the same bodies get what is wrong with them.
    let good = app.token("fan2", &event);
    let res = app
        .reserve(&good, &json!({"show_id": show, "seat_ids": "A-1"}))
        .await;
    assert_eq!(res.status(), 422);
    // The cookie works as well as the header.
    let res = app
        .http
        .post(app.at("/v1/bookings/reserve"))
        .header(
            "cookie",
            format!("marquee_admission={}", app.token("fan", &event)),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn a_visitor_gets_ten_reserve_attempts_a_minute() {
    let app = spawn_with(|s| s.set("booking.reserve_attempts_per_minute", 10)).await;
    let event = app.event(600).await;
    let show = app.show(&event, 1, 5).await;
    let token = app.token("eager", &event);
    let mut statuses = Vec::new();
    for _ in 0..11 {
        // Asking for a seat that does not exist fails validation but still counts.
        let res = app
            .reserve(&token, &json!({"show_id": show, "seat_ids": ["Z-99"]}))
            .await;
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(&statuses[..10], &[422; 10]);
    assert_eq!(statuses[10], 429);
    // Another visitor is unaffected.
    let res = app
        .reserve(
            &app.token("calm", &event),
            &json!({"show_id": show, "seat_ids": ["A-1"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn quantity_prefers_adjacent_seats_in_one_row() {
    let app = spawn().await;
    let event = app.event(600).await;
    let show = app.show(&event, 5, 10).await;
    let res = app
        .reserve(
            &app.token("group", &event),
            &json!({"show_id": show, "quantity": 4}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let held: Value = res.json().await.unwrap();
    let seats = held["seats"].as_array().unwrap();
    assert_eq!(seats.len(), 4);
    let row = &seats[0]["row"];
    assert!(seats.iter().all(|s| &s["row"] == row), "{held}");
    let mut numbers: Vec<i64> = seats
        .iter()
        .map(|s| s["number"].as_i64().unwrap())
        .collect();
    numbers.sort();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
}

/// The hot statements name a show's own partitions; the partition Postgres reports for a show
/// is where its rows really are, and a hold made elsewhere (another replica, so not
/// remembered here) is released through the partitioned parents just the same.
#[tokio::test]
async fn holds_go_to_the_shows_partition_and_any_replica_releases_them() {
    let app = spawn().await;
    let event = app.event(600).await;
    let mut shows = Vec::new();
    for _ in 0..6 {
        shows.push(app.show(&event, 1, 4).await);
    }
    for (i, show) in shows.iter().enumerate() {
        let id = app
            .hold(&event, show, &format!("fan-{i}"), &["A-1", "A-2"])
            .await;
        let partition = booking_core::partitions::of_show(&app.db, show)
            .await
            .unwrap()
            .expect("a partition for every show");
        let (seats_in, bookings_in): (String, String) = sqlx::query_as(
            "SELECT (SELECT tableoid::regclass::text FROM seats WHERE show_id = $1 LIMIT 1),
                    (SELECT tableoid::regclass::text FROM bookings WHERE id = $2)",
        )
        .bind(show)
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(
            (seats_in, bookings_in),
            (
                format!("seats_p{partition}"),
                format!("bookings_p{partition}")
            )
        );

        // This replica never made the hold: it finds the show and releases through the parents.
        let other_replica = booking_core::holds::RecentHolds::default();
        let redis = marquee_waitroom::connect::redis(&marquee_testkit::redis_url(), false, None)
            .await
            .unwrap();
        let view = booking_core::holds::release(
            &booking_core::holds::HoldBatches::new(
                std::sync::Arc::new(booking_core::lane::Lane::new(app.db.clone())),
                64,
                2,
                &prometheus::Registry::new(),
            ),
            &other_replica,
            &booking_core::holds::ShowInfos::default(),
            &redis,
            &id,
        )
        .await
        .unwrap();
        assert_eq!(view.status, booking_core::model::BookingStatus::Released);
        assert_eq!(view.seats.len(), 2);
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM seats WHERE show_id = $1 AND status <> 'available'",
        )
        .bind(show)
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(held, 0);
    }
}

/// A token whose signature checked out is trusted for a while, but its times and event are
/// judged on every use: once it expires it is refused, cached or not.
#[tokio::test]
async fn a_token_verified_before_is_still_refused_once_expired_or_for_another_event() {
    let app = spawn().await;
    let event = app.event(600).await;
    let other_event = app.event(600).await;
    let show = app.show(&event, 1, 5).await;
    let other_show = app.show(&other_event, 1, 5).await;
    let signed_at = chrono::Utc::now().timestamp();
    marquee_testkit::admit("brief", &event, 600);
    let token = app.env.admission_token("brief", &event, 1);
    let res = app
        .reserve(&token, &json!({"show_id": show, "seat_ids": ["A-1"]}))
        .await;
    assert_eq!(res.status(), 201, "fresh and valid");
    let res = app
        .reserve(&token, &json!({"show_id": other_show, "seat_ids": ["A-1"]}))
        .await;
    assert_eq!(res.status(), 403, "trusted, but for another event");
    let leeway = marquee_waitroom::admission::LEEWAY_S as i64;
    marquee_testkit::wait_for(
        "the token to expire",
        std::time::Duration::from_secs(10),
        || async { (chrono::Utc::now().timestamp() > signed_at + 1 + leeway).then_some(()) },
    )
    .await;
    let res = app
        .reserve(&token, &json!({"show_id": show, "seat_ids": ["A-2"]}))
        .await;
    assert_eq!(res.status(), 401, "expired, though verified 3 s ago");
}

/// Partitions Marquee does not recognise (renamed here) only cost speed: holds, conflicts and
/// releases go through the partitioned parents.
#[tokio::test]
async fn holds_work_through_the_parent_tables_when_partitions_are_unrecognised() {
    let app = spawn().await;
    sqlx::query(
        "DO $$ BEGIN FOR i IN 0..15 LOOP
            EXECUTE format('ALTER TABLE seats_p%s RENAME TO seats_part%s', i, i);
         END LOOP; END $$",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let event = app.event(600).await;
    let show = app.show(&event, 2, 5).await;
    assert_eq!(
        booking_core::partitions::of_show(&app.db, &show)
            .await
            .unwrap(),
        None
    );
    let res = app
        .reserve(
            &app.token("by-seat", &event),
            &json!({"show_id": show, "seat_ids": ["A-1", "A-2"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let held: Value = res.json().await.unwrap();
    let res = app
        .reserve(
            &app.token("by-count", &event),
            &json!({"show_id": show, "quantity": 3}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let best: Value = res.json().await.unwrap();
    assert!(seat_ids(&best).iter().all(|s| !seat_ids(&held).contains(s)));
    let res = app
        .reserve(
            &app.token("late", &event),
            &json!({"show_id": show, "seat_ids": ["A-2", "A-5"]}),
        )
        .await;
    assert_eq!(res.status(), 409);
    let id = held["reservation_id"].as_str().unwrap();
    let res = app.release(id).await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "released");
    let taken: i64 =
        sqlx::query_scalar("SELECT count(*) FROM seats WHERE show_id = $1 AND status = 'held'")
            .bind(&show)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(taken, 3, "only the quantity hold's seats remain held");
}

/// The per-visitor allowance is one across booking-core replicas (counted in Redis): two
/// replicas together grant ten attempts a minute, not ten each.
#[tokio::test]
async fn replicas_share_one_reserve_allowance_per_visitor() {
    let url = marquee_testkit::redis_url();
    let replica = || async {
        booking_core::holds::ReserveGate::new(
            marquee_waitroom::connect::redis(&url, false, None)
                .await
                .unwrap(),
            10,
        )
    };
    let (a, b) = (replica().await, replica().await);
    let event = marquee_testkit::unique("limit");
    let other_event = marquee_testkit::unique("limit");
    for (visitor, event) in [
        ("fan", &event),
        ("other-fan", &event),
        ("fan", &other_event),
    ] {
        marquee_testkit::admit(visitor, event, 600);
    }
    let session_end = chrono::Utc::now().timestamp() + 600;
    let mut granted = 0;
    for i in 0..20 {
        let replica = if i % 2 == 0 { &a } else { &b };
        match replica.check(&show(&event), "fan", session_end).await {
            Ok(()) => granted += 1,
            Err(Refusal::Ended) => panic!("the fan holds its slot"),
            Err(Refusal::Wait(retry_after_s)) => assert!(
                (1..=6).contains(&retry_after_s),
                "one attempt every 6 s: {retry_after_s}"
            ),
        }
    }
    assert_eq!(granted, 10);
    // Another visitor, and the same visitor in another event, have their own allowance.
    assert!(
        a.check(&show(&event), "other-fan", session_end)
            .await
            .is_ok()
    );
    assert!(
        b.check(&show(&other_event), "fan", session_end)
            .await
            .is_ok()
    );
    // A visitor without a slot (never admitted, or its turn over) is refused outright.
    assert_eq!(
        a.check(&show(&event), "stranger", session_end).await,
        Err(Refusal::Ended)
    );
}

/// What the reserve gate needs of a show of `event`.
fn show(event: &str) -> ShowInfo {
    ShowInfo {
        id: "show".into(),
        event_id: event.into(),
        currency: "usd".into(),
        hold_ttl_s: 600,
        idle_after_s: 180,
        cancelled: false,
        partition: None,
    }
}

/// When Redis cannot count (here the visitor's key holds the wrong type, so the script fails),
/// the replica counts on its own: reserves go on, still limited.
#[tokio::test]
async fn the_reserve_allowance_falls_back_to_this_replica_when_redis_fails() {
    let redis = marquee_waitroom::connect::redis(&marquee_testkit::redis_url(), false, None)
        .await
        .unwrap();
    let event = marquee_testkit::unique("limit");
    marquee_testkit::admit("fan", &event, 600);
    let key = marquee_waitroom::keys::reserve_attempts(&event, "fan");
    let _: () = redis::cmd("LPUSH")
        .arg(&key)
        .arg("not a due time")
        .query_async(&mut redis.clone())
        .await
        .unwrap();
    let _: () = redis::cmd("EXPIRE")
        .arg(&key)
        .arg(60)
        .query_async(&mut redis.clone())
        .await
        .unwrap();
    let gate = booking_core::holds::ReserveGate::new(redis, 10);
    let session_end = chrono::Utc::now().timestamp() + 600;
    let mut granted = 0;
    for _ in 0..15 {
        if gate.check(&show(&event), "fan", session_end).await.is_ok() {
            granted += 1;
        }
    }
    assert_eq!(granted, 10);
}
