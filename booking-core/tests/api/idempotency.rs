//! Invariant 7: a repeated reserve with the same key returns the first answer and holds
//! nothing twice.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::helpers::spawn;

#[tokio::test]
async fn a_repeat_returns_the_first_response_and_holds_nothing_twice() {
    let app = spawn().await;
    let event = app.event(600).await;
    let show = app.show(&event, 2, 5).await;
    let token = app.token("fan", &event);
    let send = |key: &'static str, body: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            app.http
                .post(app.at("/v1/bookings/reserve"))
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let body = json!({"show_id": show, "quantity": 2});
    let first = send("k-1", body.clone()).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send("k-1", body.clone()).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let holds: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE show_id = $1")
        .bind(&show)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(holds, 1);

    // Same key, different body: 422 naming the key.
    let res = send("k-1", json!({"show_id": show, "quantity": 3})).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>().await.unwrap()["errors"][0]["field"],
        "Idempotency-Key"
    );

    // The body's request_id is the same key; if both are sent they must match.
    let res = app
        .http
        .post(app.at("/v1/bookings/reserve"))
        .bearer_auth(&token)
        .header("idempotency-key", "k-2")
        .json(&json!({"show_id": show, "quantity": 1, "request_id": "k-3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let res = app
        .reserve(
            &token,
            &json!({"show_id": show, "quantity": 2, "request_id": "k-1"}),
        )
        .await;
    assert_eq!(res.status(), 201, "request_id k-1 replays the first answer");
    assert_eq!(
        res.json::<Value>().await.unwrap()["reservation_id"],
        first["reservation_id"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_repeats_run_once() {
    let app = Arc::new(spawn().await);
    let event = app.event(600).await;
    let show = app.show(&event, 2, 5).await;
    let token = app.token("double-clicker", &event);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let app = app.clone();
        let token = token.clone();
        let show = show.clone();
        tasks.push(tokio::spawn(async move {
            let res = app
                .http
                .post(app.at("/v1/bookings/reserve"))
                .bearer_auth(token)
                .header("idempotency-key", "same")
                .json(&json!({"show_id": show, "seat_ids": ["A-1"]}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let retry = res.headers().get("retry-after").is_some();
            (status, retry, res.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        match status {
            201 => {
                ids.insert(body["reservation_id"].as_str().unwrap().to_owned());
            }
            409 => assert!(retry, "an in-flight repeat carries Retry-After: {body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ids.len(), 1, "every 201 is the same reservation");
    let holds: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE show_id = $1")
        .bind(&show)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(holds, 1);
}
