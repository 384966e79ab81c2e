//! Best-available under contention: a show sells out exactly, no seat twice, and no request
//! fails while enough seats remained free after it finished.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::helpers::{seat_ids, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_quantity_requests_sell_out_exactly() {
    let app = Arc::new(
        spawn_with(|s| {
            s.set("database.acquire_timeout_ms", 30_000)
                .set("booking.reserve_attempts_per_minute", 100)
        })
        .await,
    );
    let event = app.event(600).await;
    let show = app.show(&event, 10, 20).await; // 200 seats
    // 150 requests of 1..=3 seats: about 300 seats asked for 200.
    let asks: Vec<u32> = (0..150).map(|i| 1 + (i % 3)).collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(asks.len()));
    let mut tasks = Vec::new();
    for (i, q) in asks.into_iter().enumerate() {
        let app = app.clone();
        let show = show.clone();
        let token = app.token(&format!("q-{i}"), &event);
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let res = app
                .reserve(&token, &json!({"show_id": show, "quantity": q}))
                .await;
            let status = res.status().as_u16();
            (q, status, res.json::<Value>().await.unwrap())
        }));
    }
    let mut taken = HashSet::new();
    let mut failed_asks = Vec::new();
    for t in tasks {
        let (q, status, body) = t.await.unwrap();
        match status {
            201 => {
                let seats = seat_ids(&body);
                assert_eq!(seats.len(), q as usize);
                for s in seats {
                    assert!(taken.insert(s.clone()), "seat {s} sold twice");
                }
            }
            409 => failed_asks.push(q),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let free = 200 - taken.len();
    for q in &failed_asks {
        assert!(
            (*q as usize) > free,
            "a request for {q} failed although {free} seats are still free"
        );
    }
    // Asked for more than exists, so the show is sold out down to what no request could use.
    assert!(free < 3, "{free} seats left free");
    let held: i64 =
        sqlx::query_scalar("SELECT count(*) FROM seats WHERE show_id = $1 AND status = 'held'")
            .bind(&show)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(held as usize, taken.len());
}
