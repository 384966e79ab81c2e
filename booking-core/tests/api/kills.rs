//! Processes SIGKILLed under load (issue 17): booking-core mid-hold (a real process of the
//! test's own, killed while a crowd reserves, then started again: every hold it acknowledged is
//! there, whole, no hold is partial, and no seat stays held past its hold's lifetime), and
//! Postgres itself under the hot show (crash recovery; every acknowledged hold survives).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use marquee_testkit::postgres::PostgresServer;
use marquee_testkit::process::{ServiceProcess, free_port};
use marquee_testkit::{Api, TestEnv};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{disagreements, spawn_with};

const HOLD_TTL_S: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_mid_hold_it_leaves_no_partial_hold_and_no_seat_held_past_its_ttl() {
    let env = TestEnv::new().await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let source = env
        .source()
        .set("booking.listen", format!("127.0.0.1:{port}"));
    let mut process = ServiceProcess::start("booking-core", &source, &[]);
    process
        .wait_healthy(&format!("{url}/healthz"), Duration::from_secs(30))
        .await;
    let api = Api::new(url.clone());
    let event = api
        .event(json!({"rate_per_minute": 600, "hold_ttl_s": HOLD_TTL_S}))
        .await;
    let show = api.show(&event, 10, 20, json!({})).await;
    let db = PgPool::connect(&env.database_url).await.unwrap();

    // 150 fans reserve two seats each at once; the process dies once 20 have their answer.
    let answered = Arc::new(AtomicUsize::new(0));
    let fans = (0..150).map(|i| {
        let visitor = format!("fan{i}");
        marquee_testkit::admit(&visitor, &event, 600);
        let token = env.admission_token(&visitor, &event, 600);
        let (http, url, show, answered) = (
            reqwest::Client::new(),
            url.clone(),
            show.clone(),
            answered.clone(),
        );
        tokio::spawn(async move {
            let res = http
                .post(format!("{url}/v1/bookings/reserve"))
                .bearer_auth(token)
                .json(&json!({"show_id": show, "quantity": 2}))
                .send()
                .await;
            answered.fetch_add(1, Ordering::Relaxed);
            match res {
                Ok(r) if r.status() == 201 => r.json::<Value>().await.ok(),
                _ => None,
            }
        })
    });
    let fans: Vec<_> = fans.collect();
    marquee_testkit::wait_for("20 answers", Duration::from_secs(30), || async {
        (answered.load(Ordering::Relaxed) >= 20).then_some(())
    })
    .await;
    process.kill();
    let mut acknowledged = Vec::new();
    for f in fans {
        if let Some(hold) = f.await.unwrap() {
            acknowledged.push(hold);
        }
    }
    assert!(!acknowledged.is_empty(), "some holds were acknowledged");

    process.restart();
    process
        .wait_healthy(&format!("{url}/healthz"), Duration::from_secs(30))
        .await;
    // Every acknowledged hold is there with the seats it was given.
    for hold in &acknowledged {
        let id = hold["reservation_id"].as_str().unwrap();
        let (status, seats): (String, Vec<String>) =
            sqlx::query_as("SELECT status, seat_ids FROM bookings WHERE id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap_or_else(|e| panic!("acknowledged hold {id} lost: {e}"));
        let given: Vec<String> = hold["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(seats, given, "{id}");
        assert!(status == "held" || status == "expired", "{id}: {status}");
    }
    // Nothing is half-held: whatever committed before the kill is whole.
    assert_eq!(disagreements(&db, &show).await, 0, "seats and holds agree");
    // And nothing stays held past its lifetime: the sweeper gives every seat back and ends
    // every hold.
    marquee_testkit::wait_for(
        "every seat back and every hold ended once they lapse",
        Duration::from_secs(HOLD_TTL_S + 15),
        || async {
            let (seats, holds): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM seats WHERE show_id = $1 AND status <> 'available'),
                        (SELECT count(*) FROM bookings WHERE show_id = $1 AND status = 'held')",
            )
            .bind(&show)
            .fetch_one(&db)
            .await
            .unwrap();
            (seats == 0 && holds == 0).then_some(())
        },
    )
    .await;
}

/// Postgres itself SIGKILLed (the postmaster and every backend) while 32 fans hammer one
/// show, then started again: it recovers from its WAL, booking-core reconnects by itself, and
/// every hold booking-core acknowledged is there, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_killed_under_the_hot_show_keeps_every_acknowledged_hold() {
    let mut pg = PostgresServer::start().await;
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&pg.url("postgres"))
            .await
            .unwrap();
        sqlx::query("CREATE DATABASE marquee")
            .execute(&mut c)
            .await
            .unwrap();
    }
    let url = pg.url("marquee");
    let app = Arc::new(spawn_with(|s| s.set("database.url", &url)).await);
    let event = app.event(600).await;
    let show = app.show(&event, 20, 25).await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let fans: Vec<_> = (0..32)
        .map(|f| {
            let (app, event, show, stop, acked) = (
                app.clone(),
                event.clone(),
                show.clone(),
                stop.clone(),
                acked.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let token = app.token(&format!("f{f}-{n}"), &event);
                    let res = app
                        .reserve(&token, &json!({"show_id": show, "quantity": 1}))
                        .await;
                    if res.status() == 201 {
                        let hold: Value = res.json().await.unwrap();
                        acked.lock().unwrap().push((
                            hold["reservation_id"].as_str().unwrap().to_owned(),
                            hold["seats"][0]["id"].as_str().unwrap().to_owned(),
                        ));
                    } else if res.status() == 409 {
                        return; // sold out
                    }
                }
            })
        })
        .collect();
    marquee_testkit::wait_for("50 holds", Duration::from_secs(60), || async {
        (acked.lock().unwrap().len() >= 50).then_some(())
    })
    .await;
    pg.kill();
    let at_kill = acked.lock().unwrap().len();
    pg.restart().await;
    assert!(
        pg.log().contains("database system was interrupted")
            || pg.log().contains("not properly shut down"),
        "Postgres crash-recovered:\n{}",
        pg.log()
    );
    // Service comes back by itself: holds are acknowledged again.
    marquee_testkit::wait_for(
        "holds after the restart",
        Duration::from_secs(30),
        || async { (acked.lock().unwrap().len() >= at_kill + 20).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for f in fans {
        f.await.unwrap();
    }

    let db = PgPool::connect(&url).await.unwrap();
    let acked = acked.lock().unwrap().clone();
    for (id, seat) in &acked {
        let row: Option<(String, Vec<String>)> =
            sqlx::query_as("SELECT status, seat_ids FROM bookings WHERE id = $1")
                .bind(id)
                .fetch_optional(&db)
                .await
                .unwrap();
        let (status, seats) = row.unwrap_or_else(|| panic!("acknowledged hold {id} lost"));
        assert_eq!(status, "held", "{id}");
        assert_eq!(seats, vec![seat.clone()], "{id}");
        let holder: Option<String> =
            sqlx::query_scalar("SELECT booking_id FROM seats WHERE show_id = $1 AND seat_id = $2")
                .bind(&show)
                .bind(seat)
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(holder.as_deref(), Some(id.as_str()), "{seat}");
    }
    assert_eq!(disagreements(&db, &show).await, 0, "seats and holds agree");
}
