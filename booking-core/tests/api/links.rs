//! booking-core's links cut and slowed while it runs (issue 17): its Postgres link hangs (no
//! RST: packets just stop) and Stripe answers in 30 s. What a caller sees meanwhile is a `503`
//! with `Retry-After` within the stated timeouts, never a hang; nothing is lost or doubled
//! afterwards, and service comes back within a stated time once the link does.

use std::time::{Duration, Instant};

use marquee_testkit::fault_proxy::Fault;
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{TestApp, disagreements, spawn_behind_proxies};

/// `[booking] request_timeout_ms` in these tests, and the slack allowed past it.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1500);
const SLACK: Duration = Duration::from_millis(1500);
/// Once a link is back, service is back within this.
const RECOVERY: Duration = Duration::from_secs(10);

/// A `503` with a `Retry-After`, answered within the request timeout and its slack.
fn refused_in_time(res: &Response, took: Duration, what: &str) {
    assert_eq!(res.status(), 503, "{what}");
    assert!(res.headers().contains_key("retry-after"), "{what}");
    assert!(took < REQUEST_TIMEOUT + SLACK, "{what} took {took:?}");
}

async fn reserve_keyed(
    app: &TestApp,
    token: &str,
    key: &str,
    body: &Value,
) -> (Response, Duration) {
    let t = Instant::now();
    let res = app
        .http
        .post(app.at("/v1/bookings/reserve"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    (res, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_database_link_is_a_prompt_503_and_no_hold_is_lost_doubled_or_stuck() {
    let app = spawn_behind_proxies(|s| s.set("booking.request_timeout_ms", 1500)).await;
    let pg = &app.links.as_ref().unwrap().postgres;
    let event = app.event(600).await;
    let show = app.show(&event, 2, 5).await;
    app.hold(&event, &show, "before", &["A-1"]).await;

    pg.set(Fault::Freeze);
    // Four fans reserve while the link hangs: each hears a prompt 503, whatever stage its
    // request had reached.
    let fans: Vec<(String, String, Value)> = (0..4)
        .map(|i| {
            (
                app.token(&format!("fan{i}"), &event),
                format!("key-{i}"),
                json!({"show_id": show, "seat_ids": [format!("B-{}", i + 1)]}),
            )
        })
        .collect();
    let tries = fans
        .iter()
        .map(|(token, key, body)| reserve_keyed(&app, token, key, body));
    for (i, (res, took)) in futures::future::join_all(tries)
        .await
        .into_iter()
        .enumerate()
    {
        refused_in_time(&res, took, &format!("fan{i}'s reserve"));
    }
    // The readiness probe says so too, in time.
    let t = Instant::now();
    let ready = app.http.get(app.at("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(t.elapsed() < REQUEST_TIMEOUT + SLACK, "{:?}", t.elapsed());

    pg.set(Fault::None);
    let started = Instant::now();
    marquee_testkit::wait_for("reserves to work again", RECOVERY, || async {
        let (res, _) = reserve_keyed(
            &app,
            &app.token("after", &event),
            "after",
            &json!({"show_id": show, "seat_ids": ["A-5"]}),
        )
        .await;
        (res.status() == 201).then_some(())
    })
    .await;
    eprintln!("reserves work again {:?} after the link", started.elapsed());

    // Each fan retries with its key: exactly one hold each, on the seat it asked for, however
    // far its first attempt got before the link hung.
    for (i, (token, key, body)) in fans.iter().enumerate() {
        let (res, _) = reserve_keyed(&app, token, key, body).await;
        let status = res.status();
        let answer: Value = res.json().await.unwrap();
        assert!(
            status == 201 || (status == 409 && answer["reservation_id"].is_string()),
            "fan{i}'s retry: {status} {answer}"
        );
        let holds: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bookings WHERE show_id = $1 AND visitor_id = $2 AND status = 'held'",
        )
        .bind(&show)
        .bind(format!("fan{i}"))
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(holds, 1, "fan{i} holds once");
    }
    assert_eq!(
        disagreements(&app.db, &show).await,
        0,
        "seats and holds agree"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_answering_in_30_s_is_a_prompt_503_and_the_payment_goes_through_once_after() {
    // The test configuration gives each Stripe call 500 ms and opens the breaker after 3
    // failures for 1 s.
    let app = spawn_behind_proxies(|s| s.set("booking.request_timeout_ms", 1500)).await;
    let stripe = &app.links.as_ref().unwrap().stripe;
    let event = app.event(600).await;
    let show = app.show(&event, 1, 5).await;
    let id = app.hold(&event, &show, "payer", &["A-3"]).await;

    stripe.set(Fault::Latency(Duration::from_secs(30)));
    for attempt in 0..5 {
        let t = Instant::now();
        let res = app.checkout_response(&id, "fan@example.com").await;
        refused_in_time(&res, t.elapsed(), &format!("checkout {attempt}"));
    }
    // The hold is untouched by the failed attempts.
    let got: Value = app.get_json(&format!("/v1/bookings/{id}")).await;
    assert_eq!(got["status"], "held");

    stripe.set(Fault::None);
    let pi = marquee_testkit::wait_for("checkout to work again", RECOVERY, || async {
        let res = app.checkout_response(&id, "fan@example.com").await;
        if res.status() != 200 {
            return None;
        }
        let body: Value = res.json().await.unwrap();
        body["payment_intent_id"].as_str().map(str::to_owned)
    })
    .await;
    assert_eq!(
        marquee_testkit::api::stripe_confirm(&app.http, &app.stripe, &pi, "pm_card_visa").await,
        200
    );
    let (status, body) = app.api.confirm(&id, &pi).await;
    assert_eq!(status, 200, "{body}");
    // One payment attempt reached a PaymentIntent that was paid; one booking confirmed.
    let paid: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bookings WHERE id = $1 AND status = 'confirmed' AND payment_intent_id = $2",
    )
    .bind(&id)
    .bind(&pi)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(paid, 1);
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payment_attempts WHERE booking_id = $1 AND state = 'open'",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(open, 0, "no attempt left open");
}
