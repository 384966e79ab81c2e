//! Named-seat holds taken in batches (`holds::batch`): a batch answers each request exactly as
//! the requests would be answered one after another in arrival order, and leaves the same
//! seats held by the same requests. Two identical shows with the same holds before: one takes
//! a list of requests as one batch, the other one request at a time.

use std::collections::HashMap;
use std::sync::Arc;

use booking_core::holds::{HoldBatches, Miss, show_info};
use booking_core::lane::Lane;
use prometheus::Registry;
use rand::{Rng, SeedableRng};

use crate::helpers::{TestApp, row_name};

/// An answer with reservation ids named by who made them: `#k` the batch's `k`th request,
/// `before:<visitor>` a hold made before the batch.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Held { seats: Vec<String>, total: i64 },
    Holding(String),
    Unavailable(Vec<String>),
    Other(String),
}

struct Twin {
    show: String,
    /// Reservation id → its name (`before:<visitor>`, then `#k` as requests make them).
    names: HashMap<String, String>,
}

impl Twin {
    fn name(&self, id: &str) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("unknown {id}"))
    }

    fn seen(
        &mut self,
        outcomes: Vec<
            Result<Result<booking_core::model::BookingView, Miss>, booking_core::error::ApiError>,
        >,
    ) -> Vec<Seen> {
        // Name every hold made first: a later request of the batch may answer with it.
        for (k, o) in outcomes.iter().enumerate() {
            if let Ok(Ok(view)) = o {
                self.names
                    .insert(view.reservation_id.clone(), format!("#{k}"));
            }
        }
        outcomes
            .into_iter()
            .map(|o| match o {
                Ok(Ok(view)) => Seen::Held {
                    seats: view.seats.iter().map(|s| s.id.clone()).collect(),
                    total: view.total_cents,
                },
                Ok(Err(Miss::Holding(Some(id)))) => Seen::Holding(self.name(&id)),
                // A lapsed hold the sweeper has not ended (the reserve then ends it and tries
                // again, `holds::reserve`).
                Ok(Err(Miss::Holding(None))) => Seen::Holding("lapsed, not ended".into()),
                Ok(Err(Miss::Unavailable(seats))) => Seen::Unavailable(seats),
                Ok(Err(other)) => Seen::Other(format!("{other:?}")),
                Err(e) => Seen::Other(e.to_string()),
            })
            .collect()
    }

    /// Every seat and booking of the show, ids named.
    async fn state(&self, app: &TestApp) -> (Vec<(String, String, String)>, Vec<(String, String)>) {
        let seats = app
            .seat_rows(&self.show)
            .await
            .into_iter()
            .map(|(seat, status, booking)| {
                (
                    seat,
                    status,
                    booking.map(|b| self.name(&b)).unwrap_or_default(),
                )
            })
            .collect();
        let bookings: Vec<(String, String)> =
            sqlx::query_as("SELECT id, status FROM bookings WHERE show_id = $1")
                .bind(&self.show)
                .fetch_all(&app.db)
                .await
                .unwrap();
        let mut bookings: Vec<(String, String)> = bookings
            .into_iter()
            .map(|(id, status)| (self.name(&id), status))
            .collect();
        bookings.sort();
        (seats, bookings)
    }
}

const ROWS: usize = 3;
const PER_ROW: usize = 8;

/// Holds made before the batch, the same in both shows: `<round>-p0` holds A-1..2, `-p1`
/// holds B-3..5 (lapsed, not yet ended: its seats read as free), `-p2` holds C-8.
async fn twin(app: &TestApp, event: &str, round: usize) -> Twin {
    let show = app.show(event, ROWS, PER_ROW).await;
    let mut names = HashMap::new();
    for (holder, seats) in [
        ("p0", &["A-1", "A-2"][..]),
        ("p1", &["B-3", "B-4", "B-5"][..]),
        ("p2", &["C-8"][..]),
    ] {
        let id = app
            .hold(event, &show, &format!("r{round}-{holder}"), seats)
            .await;
        if holder == "p1" {
            app.lapse(&id).await;
        }
        names.insert(id, format!("before:{holder}"));
    }
    Twin { show, names }
}

#[tokio::test]
async fn a_batch_answers_and_holds_as_its_requests_would_one_after_another() {
    // No sweeper in the way: it would end the lapsed hold in one show and not the other.
    let app = crate::helpers::spawn_with(|s| s.set("booking.sweep_interval_ms", 3_600_000)).await;
    let event = app.event(600).await;
    let batches = HoldBatches::new(Arc::new(Lane::new(app.db.clone())), 64, 1, &Registry::new());
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    for round in 0..8 {
        let (mut batched, mut alone) = (
            twin(&app, &event, round).await,
            twin(&app, &event, round).await,
        );
        // Heavy overlap: 1–4 adjacent seats of three rows, ten visitors and two holders from
        // before (`p0` live, `p2` live); `p1`'s lapsed hold only in the last round, where it
        // sends the batch one by one (the one-hold-per-visitor index would refuse it).
        let mut visitors: Vec<String> = (0..10).map(|i| format!("r{round}-v{i}")).collect();
        visitors.extend([format!("r{round}-p0"), format!("r{round}-p2")]);
        if round == 7 {
            visitors.push(format!("r{round}-p1"));
        }
        let requests: Vec<(String, Vec<String>)> = (0..24)
            .map(|_| {
                let n = rng.random_range(1..=4);
                let row = row_name(rng.random_range(0..ROWS));
                let start = rng.random_range(1..=PER_ROW - n + 1);
                let seats = (start..start + n).map(|k| format!("{row}-{k}")).collect();
                (visitors[rng.random_range(0..visitors.len())].clone(), seats)
            })
            .collect();
        let asks = |show: &str, info: &booking_core::holds::ShowInfo| {
            assert_eq!(info.id, show);
            requests
                .iter()
                .map(|(v, s)| (info.clone(), v.clone(), s.clone()))
                .collect::<Vec<_>>()
        };
        let (a, b) = (
            show_info(&app.db, &batched.show).await.unwrap(),
            show_info(&app.db, &alone.show).await.unwrap(),
        );
        let together = batches.in_one_batch(asks(&batched.show, &a)).await;
        let one_by_one = batches.one_by_one(asks(&alone.show, &b)).await;
        let (together, one_by_one) = (batched.seen(together), alone.seen(one_by_one));
        assert_eq!(together, one_by_one, "round {round}: {requests:?}");
        assert!(
            together.iter().any(|s| matches!(s, Seen::Held { .. }))
                && together.iter().any(|s| matches!(s, Seen::Unavailable(_)))
                && together.iter().any(|s| matches!(s, Seen::Holding(_))),
            "round {round} raced: {together:?}"
        );
        assert!(
            !together.iter().any(|s| matches!(s, Seen::Other(_))),
            "{together:?}"
        );
        assert_eq!(
            batched.state(&app).await,
            alone.state(&app).await,
            "round {round}: the same seats held by the same requests, the same bookings"
        );
        assert_eq!(
            crate::helpers::disagreements(&app.db, &batched.show).await,
            0
        );
    }
    let f = batches.figures();
    assert_eq!(f.together.get(), 7, "seven rounds in one transaction");
    assert_eq!(f.requests.get(), 7 * 24);
    assert_eq!(f.one_by_one.get(), 1, "the round with p1's lapsed hold");
}

/// Releases that arrive together go in one statement: 150 holds each released twice at once
/// (300 releases racing), every answer `released`, every seat back on sale, and batches did
/// form.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn releases_racing_each_other_in_batches_free_every_seat_once() {
    let app = Arc::new(
        crate::helpers::spawn_with(|s| s.set("database.acquire_timeout_ms", 30_000)).await,
    );
    let event = app.event(600).await;
    let show = app.show(&event, 15, 20).await;
    let mut ids = Vec::new();
    for i in 0..150 {
        let (row, first) = (row_name(i / 10), (i % 10) * 2 + 1);
        let seats = [format!("{row}-{first}"), format!("{row}-{}", first + 1)];
        let seats: Vec<&str> = seats.iter().map(String::as_str).collect();
        ids.push(
            app.hold(&event, &show, &format!("leaver-{i}"), &seats)
                .await,
        );
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(ids.len() * 2));
    let tasks: Vec<_> = ids
        .iter()
        .chain(&ids)
        .map(|id| {
            let (app, id, barrier) = (app.clone(), id.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let res = app.release(&id).await;
                let status = res.status().as_u16();
                let body: serde_json::Value = res.json().await.unwrap();
                (status, body)
            })
        })
        .collect();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "released", "{body}");
    }
    assert!(app.nothing_held(&show).await, "every seat back on sale");
    let released: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bookings WHERE show_id = $1 AND status = 'released'",
    )
    .bind(&show)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(released, 150);
    let batched = app.metric("release_batched_requests_total").await;
    assert!(batched > 20, "{batched} releases were taken in batches");
}
