//! Holds lapsing while fans reserve. Ending a lapsed hold touches two kinds of rows (the
//! booking and its seats) while fans' reserves lock seats and insert bookings; every path that
//! ends a hold is written so that none waits for a seat another request has locked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};

use crate::helpers::spawn_with;

/// All the paths at once, under load: fans reserving again over their own lapsed holds
/// (twice at once, as a double click does), fans taking seats of lapsed holds, releases, and
/// two sweepers. No request fails (a lock cycle would surface as a server error), no seat
/// ever has two live holds, and once everything has lapsed the sweep leaves nothing held.
#[tokio::test]
async fn lapsing_holds_under_load_never_deadlock_or_double_hold() {
    let app = Arc::new(
        spawn_with(|s| {
            s.set("booking.sweep_interval_ms", 3_600_000)
                .set("booking.reserve_attempts_per_minute", 100_000)
        })
        .await,
    );
    let event = app.event(1).await; // 1-second holds
    let show = app.show(&event, 2, 6).await; // 12 seats for 12 fans: constant contention
    let seats: Vec<String> = ["A", "B"]
        .iter()
        .flat_map(|r| (1..=6).map(move |n| format!("{r}-{n}")))
        .collect();
    let until = tokio::time::Instant::now() + Duration::from_secs(6);
    let created = Arc::new(AtomicUsize::new(0));

    let mut tasks = tokio::task::JoinSet::new();
    for fan in 0..12 {
        let (app, event, show, seats, created) = (
            app.clone(),
            event.clone(),
            show.clone(),
            seats.clone(),
            created.clone(),
        );
        tasks.spawn(async move {
            let token = app.token(&format!("fan-{fan}"), &event);
            let pick = || {
                let mut rng = rand::rng();
                let n = rng.random_range(1..=2);
                let start = rng.random_range(0..seats.len() - n);
                json!({"show_id": show, "seat_ids": seats[start..start + n]})
            };
            while tokio::time::Instant::now() < until {
                let (first, second) = (pick(), pick());
                let (a, b) =
                    tokio::join!(app.reserve(&token, &first), app.reserve(&token, &second));
                for res in [a, b] {
                    let status = res.status().as_u16();
                    let body: Value = res.json().await.unwrap();
                    assert!(matches!(status, 201 | 409), "{status}: {body}");
                    if status == 201 {
                        created.fetch_add(1, Ordering::Relaxed);
                        // Release a third of the holds; the rest lapse.
                        if rand::rng().random_range(0..3) == 0 {
                            let id = body["reservation_id"].as_str().unwrap();
                            let res = app.release(id).await;
                            assert!(res.status().is_success(), "{}", res.status());
                        }
                    }
                }
            }
        });
    }
    for _ in 0..2 {
        let db = app.db.clone();
        tasks.spawn(async move {
            while tokio::time::Instant::now() < until {
                booking_core::sweeper::sweep_once(&db, 2).await.unwrap();
            }
        });
    }
    // Meanwhile: never two live holds naming the same seat.
    let db = app.db.clone();
    let show_id = show.clone();
    tasks.spawn(async move {
        while tokio::time::Instant::now() < until {
            let doubles: Vec<(String, i64)> = sqlx::query_as(
                "SELECT seat, count(*) FROM (
                     SELECT unnest(seat_ids) AS seat FROM bookings
                     WHERE show_id = $1 AND status = 'held' AND expires_at > now()) s
                 GROUP BY seat HAVING count(*) > 1",
            )
            .bind(&show_id)
            .fetch_all(&db)
            .await
            .unwrap();
            assert!(doubles.is_empty(), "{doubles:?}");
        }
    });
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert!(
        created.load(Ordering::Relaxed) > 24,
        "the fans held seats again and again"
    );

    // Once every hold has lapsed, sweeping leaves nothing held and no seat marked.
    marquee_testkit::wait_for(
        "every hold to be swept",
        Duration::from_secs(15),
        || async {
            booking_core::sweeper::sweep_once(&app.db, 100)
                .await
                .unwrap();
            booking_core::sweeper::free_orphaned_seats(&app.db)
                .await
                .unwrap();
            app.nothing_held(&show).await.then_some(())
        },
    )
    .await;
    let ended: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM bookings WHERE show_id = $1 GROUP BY status ORDER BY status",
    )
    .bind(&show)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let statuses: Vec<&str> = ended.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses, ["expired", "released"], "{ended:?}");
}

/// The step that ends a fan's own lapsed hold (met when the fan reserves again) frees that
/// hold's seats without waiting for a seat another request has locked: that request may be
/// the same fan's second reserve, whose insert waits for this very hold to end, and waiting
/// here would close the cycle. The seat it skipped is left to the tidy-up.
#[tokio::test]
async fn ending_an_own_lapsed_hold_never_waits_for_a_locked_seat() {
    let app = spawn_with(|s| s.set("booking.sweep_interval_ms", 3_600_000)).await;
    let event = app.event(600).await;
    let show = app.show(&event, 1, 4).await;
    let lapsed = app.hold(&event, &show, "fan", &["A-1", "A-2"]).await;
    app.lapse(&lapsed).await;

    // Another request holds A-1's row lock (as a reserve in flight does) …
    let mut other = app.db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM seats WHERE show_id = $1 AND seat_id = 'A-1' FOR UPDATE")
        .bind(&show)
        .execute(&mut *other)
        .await
        .unwrap();
    // … while the fan reserves other seats: the lapsed hold ends and the new one is made.
    let res = tokio::time::timeout(
        Duration::from_secs(10),
        app.reserve(
            &app.token("fan", &event),
            &json!({"show_id": show, "seat_ids": ["A-3"]}),
        ),
    )
    .await
    .expect("the reserve must not wait for the locked seat");
    assert_eq!(res.status(), 201);
    other.rollback().await.unwrap();

    let now = app.seat_rows(&show).await;
    assert_eq!(
        now[0],
        ("A-1".into(), "held".into(), Some(lapsed)),
        "skipped"
    );
    assert_eq!(now[1], ("A-2".into(), "available".into(), None), "freed");
    assert_eq!(
        booking_core::sweeper::free_orphaned_seats(&app.db)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        app.seat_rows(&show).await[0],
        ("A-1".into(), "available".into(), None)
    );
}
