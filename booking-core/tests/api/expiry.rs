//! Invariant 2: a hold lapses after its window, never blocks another fan after that, and the
//! sweeper puts its seats back.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{spawn, spawn_with};

#[tokio::test]
async fn a_lapsed_hold_frees_its_seats_and_reads_expired() {
    let app = spawn().await;
    let event = app.event(2).await; // 2-second holds
    let show = app.show(&event, 1, 4).await;
    let first = app
        .reserve(
            &app.token("slow", &event),
            &json!({"show_id": show, "seat_ids": ["A-1", "A-2"]}),
        )
        .await;
    assert_eq!(first.status(), 201);
    let id = first.json::<Value>().await.unwrap()["reservation_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // While the hold lasts, nobody else gets the seats.
    let res = app
        .reserve(
            &app.token("fast", &event),
            &json!({"show_id": show, "seat_ids": ["A-2"]}),
        )
        .await;
    assert_eq!(res.status(), 409);

    // Once it lapses, another fan takes them (whether or not the sweeper ran yet) …
    let second =
        marquee_testkit::wait_for("the hold to lapse", Duration::from_secs(10), || async {
            let res = app
                .reserve(
                    &app.token("patient", &event),
                    &json!({"show_id": show, "seat_ids": ["A-2", "A-3"]}),
                )
                .await;
            (res.status() == 201).then_some(res)
        })
        .await;
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["status"], "held");
    // … and the lapsed booking reads expired and can no longer be released back into play.
    let got: Value = app
        .http
        .get(app.at(&format!("/v1/bookings/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "expired");
    let res = app.release(&id).await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "expired");
    let a2: (String, Option<String>) = sqlx::query_as(
        "SELECT status, booking_id FROM seats WHERE show_id = $1 AND seat_id = 'A-2'",
    )
    .bind(&show)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        a2,
        (
            "held".into(),
            Some(second["reservation_id"].as_str().unwrap().to_owned())
        )
    );

    // The sweeper returns A-1 (lapsed, taken by nobody) to available in the table itself.
    marquee_testkit::wait_for(
        "the sweeper to free A-1",
        Duration::from_secs(10),
        || async {
            let status: String = sqlx::query_scalar(
                "SELECT status FROM seats WHERE show_id = $1 AND seat_id = 'A-1'",
            )
            .bind(&show)
            .fetch_one(&app.db)
            .await
            .unwrap();
            (status == "available").then_some(())
        },
    )
    .await;
    let booking_status: String = sqlx::query_scalar("SELECT status FROM bookings WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(booking_status, "expired");
}

#[tokio::test]
async fn the_sweeper_expires_in_batches_and_is_safe_to_run_twice_at_once() {
    // booking-core's own sweeper runs at start and then not for an hour: the two below are
    // the only ones, so they race each other for every lapsed hold.
    let app = spawn_with(|s| s.set("booking.sweep_interval_ms", 3_600_000)).await;
    let event = app.event(1).await;
    let show = app.show(&event, 5, 10).await;
    for i in 0..20 {
        let res = app
            .reserve(
                &app.token(&format!("v{i}"), &event),
                &json!({"show_id": show, "quantity": 2}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    // Two sweepers at once with small batches, as two replicas would run them. Between them
    // they change each of the 20 holds and each of their 40 seats exactly once: a row changed
    // by both would count twice.
    let swept = std::sync::Mutex::new(booking_core::sweeper::Swept::default());
    marquee_testkit::wait_for(
        "every hold to be swept",
        Duration::from_secs(15),
        || async {
            let (a, b) = tokio::join!(
                booking_core::sweeper::sweep_once(&app.db, 3),
                booking_core::sweeper::sweep_once(&app.db, 3)
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            let total = {
                let mut s = swept.lock().unwrap();
                s.bookings += a.bookings + b.bookings;
                s.seats += a.seats + b.seats;
                *s
            };
            (total.bookings == 20 && app.nothing_held(&show).await).then_some(())
        },
    )
    .await;
    let total = *swept.lock().unwrap();
    assert_eq!(
        (total.bookings, total.seats),
        (20, 40),
        "each row changed once"
    );
    let expired: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bookings WHERE show_id = $1 AND status = 'expired'",
    )
    .bind(&show)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(expired, 20);
}

/// With no sweeper running, a lapsed hold is undone by the next reserve that needs it: its
/// owner holds again at once, and another fan takes its seats and ends it.
#[tokio::test]
async fn a_lapsed_hold_is_undone_by_the_next_reserve_before_any_sweep() {
    let app = spawn_with(|s| s.set("booking.sweep_interval_ms", 3_600_000)).await;
    let event = app.event(1).await; // 1-second holds
    let show = app.show(&event, 1, 4).await;
    let first = app.hold(&event, &show, "again", &["A-1", "A-2"]).await;
    let other = app.hold(&event, &show, "gone", &["A-3", "A-4"]).await;
    marquee_testkit::wait_for("both holds to lapse", Duration::from_secs(10), || async {
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bookings WHERE show_id = $1 AND expires_at > now()",
        )
        .bind(&show)
        .fetch_one(&app.db)
        .await
        .unwrap();
        (live == 0).then_some(())
    })
    .await;

    // The owner of a lapsed hold holds again (the unique "one hold per visitor" index must
    // not see the lapsed one as live) …
    let second = app.hold(&event, &show, "again", &["A-1"]).await;
    // … and a fan taking a seat of another lapsed hold ends that hold.
    let taker = app.hold(&event, &show, "taker", &["A-3"]).await;

    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, status, status_reason FROM bookings WHERE show_id = $1 ORDER BY created_at",
    )
    .bind(&show)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let lapsed = Some("hold lapsed".to_owned());
    assert_eq!(
        rows,
        vec![
            (first, "expired".into(), lapsed.clone()),
            (other.clone(), "expired".into(), lapsed),
            (second.clone(), "held".into(), None),
            (taker.clone(), "held".into(), None),
        ]
    );
    let seats = app.seat_rows(&show).await;
    // A hold ended by a reserve frees the seats it still had, with no sweep.
    let free = |seat: &str| (seat.to_owned(), "available".to_owned(), None);
    assert_eq!(
        seats,
        vec![
            ("A-1".into(), "held".into(), Some(second)),
            free("A-2"),
            ("A-3".into(), "held".into(), Some(taker)),
            free("A-4"),
        ]
    );
    app.hold(&event, &show, "late", &["A-2", "A-4"]).await;
}

/// A hold ended by a reserve frees its seats with `SKIP LOCKED`; a seat another request had
/// locked at that moment stays marked with the ended hold if that request then took nothing.
/// The sweeper's tidy-up frees such seats, and only those.
#[tokio::test]
async fn seats_left_marked_by_an_ended_hold_are_freed_by_the_tidy_up() {
    let app = spawn_with(|s| s.set("booking.sweep_interval_ms", 3_600_000)).await;
    let event = app.event(600).await;
    let show = app.show(&event, 1, 4).await;
    let ended = app.hold(&event, &show, "ended", &["A-1", "A-2"]).await;
    let live = app.hold(&event, &show, "live", &["A-3"]).await;
    // What such a reserve leaves: the hold ended and past its window, its seats still marked.
    app.lapse(&ended).await;
    sqlx::query("UPDATE bookings SET status = 'expired' WHERE id = $1")
        .bind(&ended)
        .execute(&app.db)
        .await
        .unwrap();

    // The sweep works through lapsed holds that have not ended, so it does not see them …
    let swept = booking_core::sweeper::sweep_once(&app.db, 10)
        .await
        .unwrap();
    assert_eq!(swept, booking_core::sweeper::Swept::default());
    // … the tidy-up does, and leaves the live hold alone.
    let freed = booking_core::sweeper::free_orphaned_seats(&app.db)
        .await
        .unwrap();
    assert_eq!(freed, 2);
    let seats = app.seat_rows(&show).await;
    assert_eq!(
        seats,
        vec![
            ("A-1".into(), "available".into(), None),
            ("A-2".into(), "available".into(), None),
            ("A-3".into(), "held".into(), Some(live)),
            ("A-4".into(), "available".into(), None),
        ]
    );
}
