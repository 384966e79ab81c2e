//! The seat figures' passes (`booking_core::seat_figures::Tally`): a pass counts again exactly
//! the events whose seats may have moved since the last, and what it has is what counting
//! everything afresh says.

use std::time::{Duration, Instant};

use booking_core::seat_figures::{Figures, Pass, Tally};
use sqlx::PgPool;

use crate::helpers::{spawn, spawn_with};

fn of(pass: &Pass, event: &str) -> Figures {
    pass.figures
        .iter()
        .find(|(id, _)| id == event)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("{event} has figures"))
}

fn figures(available: i64, held: i64, sold: i64, holders: i64) -> Figures {
    Figures {
        available,
        held,
        sold,
        holders,
    }
}

/// A pass of `tally`, checked against a count of everything from nothing.
async fn pass(tally: &mut Tally, db: &PgPool) -> Pass {
    let pass = tally.pass(db).await.unwrap();
    let mut truth = Tally::new(Duration::from_secs(3600))
        .pass(db)
        .await
        .unwrap();
    let mut seen = pass.figures.clone();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    truth.figures.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen, truth.figures,
        "the figures kept are what a full count says"
    );
    pass
}

#[tokio::test]
async fn a_pass_counts_again_only_the_events_whose_seats_may_have_moved() {
    // No sweeper: a lapsed hold stays as it was written, so only its window tells.
    let app = spawn_with(|s| s.set("booking.sweep_interval_ms", 3_600_000)).await;
    let (a, b) = (app.event(600).await, app.event(600).await);
    let (show_a, show_b) = (app.show(&a, 2, 5).await, app.show(&b, 1, 4).await);
    let mut tally = Tally::new(Duration::from_secs(3600));

    let first = pass(&mut tally, &app.db).await;
    assert_eq!(first.counted, 2, "the first pass counts every live event");
    assert_eq!(of(&first, &a), figures(10, 0, 0, 0));
    assert_eq!(of(&first, &b), figures(4, 0, 0, 0));
    let idle = pass(&mut tally, &app.db).await;
    assert_eq!(idle.counted, 0, "nothing moved: nothing counted");
    assert_eq!(of(&idle, &a), figures(10, 0, 0, 0));

    // A hold: its event alone, then nothing.
    let held = app.hold(&a, &show_a, "fan-1", &["A-1", "A-2"]).await;
    let p = pass(&mut tally, &app.db).await;
    assert_eq!((p.counted, of(&p, &a)), (1, figures(8, 2, 0, 1)));
    assert_eq!(pass(&mut tally, &app.db).await.counted, 0);

    // Released.
    assert!(app.release(&held).await.status().is_success());
    let p = pass(&mut tally, &app.db).await;
    assert_eq!((p.counted, of(&p, &a)), (1, figures(10, 0, 0, 0)));

    // A hold whose window ends without anything written: booking and seats say it was
    // written long ago and lapses in 3 s (long enough for the pass before it).
    let lapsing = app.hold(&b, &show_b, "fan-2", &["A-1"]).await;
    let p = pass(&mut tally, &app.db).await;
    assert_eq!((p.counted, of(&p, &b)), (1, figures(3, 1, 0, 1)));
    sqlx::query(
        "WITH b AS (UPDATE bookings SET expires_at = now() + interval '3 seconds',
                                        updated_at = now() - interval '1 hour'
                    WHERE id = $1 RETURNING id)
         UPDATE seats SET held_until = now() + interval '3 seconds'
         WHERE booking_id IN (SELECT id FROM b)",
    )
    .bind(&lapsing)
    .execute(&app.db)
    .await
    .unwrap();
    let p = pass(&mut tally, &app.db).await;
    assert_eq!((p.counted, of(&p, &b)), (0, figures(3, 1, 0, 1)));
    // Polled until the window has passed: each pass before it counts nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    let lapsed = loop {
        let p = tally.pass(&app.db).await.unwrap();
        if of(&p, &b).held == 0 {
            break p;
        }
        assert_eq!(p.counted, 0);
        assert!(Instant::now() < deadline, "the lapse was never counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((lapsed.counted, of(&lapsed, &b)), (1, figures(4, 0, 0, 0)));

    // A show added to an event: that event.
    app.show(&a, 1, 3).await;
    let p = pass(&mut tally, &app.db).await;
    assert_eq!((p.counted, of(&p, &a)), (1, figures(13, 0, 0, 0)));
    assert_eq!(pass(&mut tally, &app.db).await.counted, 0);
}

#[tokio::test]
async fn what_no_sign_shows_is_counted_at_the_next_refresh() {
    let app = spawn().await;
    let event = app.event(600).await;
    let show = app.show(&event, 1, 4).await;
    let mut unrefreshed = Tally::new(Duration::from_secs(3600));
    let mut refreshed = Tally::new(Duration::ZERO);
    unrefreshed.pass(&app.db).await.unwrap();
    refreshed.pass(&app.db).await.unwrap();

    // A seat sold behind booking-core's back: no booking written.
    sqlx::query(
        "INSERT INTO sold_seats (show_id, seat_id, booking_id) VALUES ($1, 'A-1', 'by-hand')",
    )
    .bind(&show)
    .execute(&app.db)
    .await
    .unwrap();
    let p = unrefreshed.pass(&app.db).await.unwrap();
    assert_eq!(
        (p.counted, of(&p, &event).sold),
        (0, 0),
        "no sign of the change"
    );
    let p = refreshed.pass(&app.db).await.unwrap();
    assert_eq!((p.counted, of(&p, &event).sold), (1, 1), "refreshed");
}

#[tokio::test]
async fn a_release_in_flight_during_a_pass_is_counted_by_the_next() {
    let app = spawn().await;
    let event = app.event(600).await;
    let show = app.show(&event, 1, 4).await;
    let held = app.hold(&event, &show, "fan-1", &["A-1", "A-2"]).await;
    let mut tally = Tally::new(Duration::from_secs(3600));
    pass(&mut tally, &app.db).await;
    assert_eq!(pass(&mut tally, &app.db).await.counted, 0);

    // A release begun before the next pass and committed after it: its `updated_at` is from
    // before that pass, which could not see it.
    let mut release = app.db.begin().await.unwrap();
    sqlx::query(concat!(
        "UPDATE seats SET ",
        booking_core::seat_back_on_sale!(),
        " WHERE show_id = $1 AND booking_id = $2"
    ))
    .bind(&show)
    .bind(&held)
    .execute(&mut *release)
    .await
    .unwrap();
    sqlx::query("UPDATE bookings SET status = 'released', updated_at = now() WHERE id = $1")
        .bind(&held)
        .execute(&mut *release)
        .await
        .unwrap();
    let during = tally.pass(&app.db).await.unwrap();
    assert_eq!(
        (during.counted, of(&during, &event)),
        (0, figures(2, 2, 0, 1))
    );
    release.commit().await.unwrap();
    let after = pass(&mut tally, &app.db).await;
    assert_eq!(
        (after.counted, of(&after, &event)),
        (1, figures(4, 0, 0, 0))
    );
}
