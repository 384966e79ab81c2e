//! Invariant 1 under load: 2,000 distinct visitors race for overlapping seats of one
//! 200-seat show. Every answer is checked from the client side and against the database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::helpers::{row_name, seat_ids, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_concurrent_reserves_never_double_sell() {
    let app = Arc::new(
        spawn_with(|s| {
            s.set("database.acquire_timeout_ms", 30_000)
                .set("booking.reserve_attempts_per_minute", 100)
        })
        .await,
    );
    let event = app.event(600).await;
    let show = app.show(&event, 10, 20).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let requests: Vec<(String, Vec<String>)> = (0..2000)
        .map(|i| {
            // 1 to 4 adjacent seats somewhere in the first 5 rows: heavy overlap.
            let n = rng.random_range(1..=4);
            let row = row_name(rng.random_range(0..5));
            let start = rng.random_range(1..=(20 - n + 1));
            let seats = (start..start + n).map(|k| format!("{row}-{k}")).collect();
            (format!("racer-{i}"), seats)
        })
        .collect();
    let tokens: Vec<String> = requests.iter().map(|(v, _)| app.token(v, &event)).collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(requests.len()));
    let mut tasks = Vec::new();
    for ((visitor, seats), token) in requests.into_iter().zip(tokens) {
        let app = app.clone();
        let show = show.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let res = app
                .reserve(&token, &json!({"show_id": show, "seat_ids": seats}))
                .await;
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            (visitor, seats, status, body)
        }));
    }
    let mut won: HashMap<String, String> = HashMap::new();
    let mut created = 0;
    let mut conflicts = 0;
    for task in tasks {
        let (visitor, asked, status, body) = task.await.unwrap();
        match status {
            201 => {
                created += 1;
                assert_eq!(
                    seat_ids(&body),
                    asked,
                    "a hold is exactly the seats asked for"
                );
                for seat in asked {
                    if let Some(first) = won.insert(
                        seat.clone(),
                        body["reservation_id"].as_str().unwrap().to_owned(),
                    ) {
                        panic!(
                            "seat {seat} held twice: {first} and {} ({visitor})",
                            body["reservation_id"]
                        );
                    }
                }
            }
            409 => {
                conflicts += 1;
                let named: Vec<String> = body["unavailable"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect();
                assert!(!named.is_empty(), "{body}");
                assert!(
                    named.iter().all(|s| asked.contains(s)),
                    "409 names {named:?}, asked {asked:?}"
                );
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        created > 10 && conflicts > 100,
        "the race was real: {created} holds, {conflicts} conflicts"
    );
    // Requests that arrived together were taken in batches (`holds::batch`): the race ran
    // through them, not only through holds alone.
    let batched = app.metric("hold_batched_requests_total").await;
    assert!(batched > 100, "{batched} requests were taken in batches");

    // The database agrees with the client side, row by row.
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT seat_id, booking_id FROM seats WHERE show_id = $1 AND status = 'held'",
    )
    .bind(&show)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let db: HashMap<String, String> = rows.into_iter().collect();
    assert_eq!(db, won);
    let bookings: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bookings WHERE show_id = $1 AND status = 'held'")
            .bind(&show)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(bookings, created);
    let seats_in_bookings: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT unnest(seat_ids) FROM bookings WHERE show_id = $1 AND status = 'held') s",
    )
    .bind(&show)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(seats_in_bookings as usize, won.len());

    // And so does the seat map, once its cache has turned over.
    let won_seats: HashSet<&String> = won.keys().collect();
    marquee_testkit::wait_for(
        "the seat map to show every hold",
        std::time::Duration::from_secs(5),
        || async {
            let map = app.seat_map(&show).await;
            let held: HashSet<String> = map["seats"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["status"] == "held")
                .map(|s| s["id"].as_str().unwrap().to_owned())
                .collect();
            (held.iter().collect::<HashSet<_>>() == won_seats).then_some(())
        },
    )
    .await;
}
