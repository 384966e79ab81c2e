//! The lane of kept connections (holds and releases): it keeps connections whose statements
//! ended cleanly, never one a statement abandoned half-way, and after a connection failure
//! (here: the server ends every session, as a restart would) it serves no other dead one.

use std::time::{Duration, Instant};

use booking_core::lane::Lane;
use serde_json::json;
use sqlx::Connection;
use sqlx::postgres::PgPoolOptions;

use crate::helpers::spawn;

async fn lane() -> (Lane, String) {
    let (pool, url) = pool().await;
    (Lane::new(pool), url)
}

async fn pool() -> (sqlx::PgPool, String) {
    let url = marquee_testkit::database().await;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(&url)
        .await
        .unwrap();
    (pool, url)
}

/// What a fan's statement would be: one round trip, settled.
async fn select_one(lane: &Lane) -> Result<i32, sqlx::Error> {
    let mut conn = lane.acquire().await?;
    let r = sqlx::query_scalar("SELECT 1").fetch_one(&mut *conn).await;
    conn.settle(r)
}

/// End every other session on `url`'s database, from a connection of its own.
async fn end_sessions(url: &str) -> u64 {
    let mut admin = sqlx::PgConnection::connect(url).await.unwrap();
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    ended as u64
}

#[tokio::test]
async fn keeps_clean_connections_and_never_one_left_mid_statement() {
    let (lane, _url) = lane().await;
    assert_eq!(select_one(&lane).await.unwrap(), 1);
    assert_eq!(lane.kept(), 1, "a clean statement's connection is kept");

    // A statement error reported by Postgres leaves the connection in step: kept.
    {
        let mut conn = lane.acquire().await.unwrap();
        let r = sqlx::query_scalar::<_, i32>("SELECT 1 / 0")
            .fetch_one(&mut *conn)
            .await;
        assert!(conn.settle(r).is_err());
    }
    assert_eq!(lane.kept(), 1);

    // A statement started and never finished (its future dropped mid-way, as when a client
    // goes away): the connection is not kept.
    {
        let mut conn = lane.acquire().await.unwrap();
        let slow = sqlx::query("SELECT pg_sleep(5)").execute(&mut *conn);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), slow)
                .await
                .is_err()
        );
    }
    assert_eq!(
        lane.kept(),
        0,
        "an abandoned statement's connection is given back"
    );
    // The pool checks it before anyone else uses it, so the next statement is fine.
    assert_eq!(select_one(&lane).await.unwrap(), 1);
}

#[tokio::test]
async fn gives_back_connections_idle_or_borrowed_too_long() {
    let (pool, _url) = pool().await;
    let deadline = Instant::now() + Duration::from_secs(10);

    // Idle: the tidy-up gives it back once it has sat unused long enough.
    let lane = Lane::with_limits(pool.clone(), Duration::from_millis(50), Duration::MAX);
    select_one(&lane).await.unwrap();
    assert_eq!(lane.kept(), 1);
    while lane.kept() > 0 {
        assert!(
            Instant::now() < deadline,
            "an idle connection was never given back"
        );
        lane.tidy();
        tokio::task::yield_now().await;
    }

    // Borrowed: in steady use, it still goes back after its statement once borrowed too long.
    let lane = Lane::with_limits(pool, Duration::MAX, Duration::from_millis(50));
    select_one(&lane).await.unwrap();
    assert_eq!(lane.kept(), 1);
    loop {
        assert!(
            Instant::now() < deadline,
            "a long-borrowed connection was never given back"
        );
        select_one(&lane).await.unwrap();
        if lane.kept() == 0 {
            break;
        }
    }
}

/// The pool's connection lifetime holds for connections the lane keeps in steady use: the
/// session serving the lane's statements is replaced once it has lived that long.
#[tokio::test]
async fn a_connection_kept_in_steady_use_is_still_replaced_after_the_pools_lifetime() {
    let url = marquee_testkit::database().await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .max_lifetime(Duration::from_millis(200))
        .connect(&url)
        .await
        .unwrap();
    let lane = Lane::new(pool);
    let backend = || async {
        let mut conn = lane.acquire().await.unwrap();
        let r = sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
            .fetch_one(&mut *conn)
            .await;
        conn.settle(r).unwrap()
    };
    let first = backend().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend().await == first {
        assert!(
            Instant::now() < deadline,
            "the lane kept one session past the pool's lifetime"
        );
    }
}

#[tokio::test]
async fn after_the_server_ends_every_session_at_most_one_statement_fails() {
    let (lane, url) = lane().await;
    // Several statements at once, so the lane keeps several connections.
    let lane = std::sync::Arc::new(lane);
    let busy: Vec<_> = (0..8)
        .map(|_| {
            let lane = lane.clone();
            tokio::spawn(async move {
                let mut conn = lane.acquire().await.unwrap();
                let r = sqlx::query("SELECT pg_sleep(0.05)")
                    .execute(&mut *conn)
                    .await;
                conn.settle(r).unwrap();
            })
        })
        .collect();
    for b in busy {
        b.await.unwrap();
    }
    let kept = lane.kept();
    assert!(kept >= 4, "the lane keeps the connections it used: {kept}");
    assert!(end_sessions(&url).await >= kept as u64);

    // Every kept connection is dead now. The first statement may meet one; then the lane
    // gives all the others back to the pool (which checks them), so no second one fails.
    let mut failures = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ok_in_a_row = 0;
    while ok_in_a_row < 10 {
        assert!(Instant::now() < deadline, "statements never worked again");
        match select_one(&lane).await {
            Ok(_) => ok_in_a_row += 1,
            Err(_) => {
                failures += 1;
                ok_in_a_row = 0;
            }
        }
    }
    assert!(
        failures <= 1,
        "{failures} statements failed on dead kept connections (kept {kept})"
    );
}

#[tokio::test]
async fn holds_and_releases_go_on_after_the_database_ends_every_session() {
    let app = spawn().await;
    let event = app.event(600).await;
    let show = app.show(&event, 2, 10).await;
    // Busy, as in a sale: many connections in use within the last second, in the pool and
    // kept by the lane, when the database goes away.
    for round in 0..3 {
        let holds = (0..10).map(|i| {
            let (app, event, show) = (&app, &event, &show);
            async move {
                let seat = format!("{}-{}", ["A", "B"][i % 2], i / 2 + 1);
                let id = app
                    .hold(event, show, &format!("v{round}-{i}"), &[&seat])
                    .await;
                assert_eq!(app.release(&id).await.status(), 200);
            }
        });
        futures::future::join_all(holds).await;
    }
    let ended = end_sessions(&app.env.database_url).await;
    // The request that meets the first dead connection fails, as a 503 the fan may retry (and
    // one more may, whose statement was under way); after that, every connection is checked
    // before use for a while, so the other dead sessions cost a ping each, not a request.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut failures = Vec::new();
    let mut ok_in_a_row = 0;
    let mut i = 0;
    while ok_in_a_row < 5 {
        assert!(
            Instant::now() < deadline,
            "holds never worked again: {failures:?}"
        );
        i += 1;
        let res = app
            .reserve(
                &app.token(&format!("w{i}"), &event),
                &json!({"show_id": show, "seat_ids": ["A-1"]}),
            )
            .await;
        match res.status().as_u16() {
            201 => {
                ok_in_a_row += 1;
                let id = res.json::<serde_json::Value>().await.unwrap()["reservation_id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                assert_eq!(app.release(&id).await.status(), 200);
            }
            status => {
                assert_eq!(status, 503, "{}", res.text().await.unwrap());
                failures.push(status);
                ok_in_a_row = 0;
            }
        }
    }
    assert!(
        failures.len() <= 2,
        "{} failed requests after {ended} sessions ended: {failures:?}",
        failures.len()
    );
}
