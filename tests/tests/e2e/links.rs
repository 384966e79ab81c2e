//! The gateway's links cut and slowed while it runs (issue 17), and clients that send slowly:
//! booking-core frozen, refused and cut behind a fault proxy; Redis (a single node) frozen;
//! headers and bodies trickled a byte at a time. What a fan sees meanwhile is a `503` with
//! `Retry-After` within the stated timeouts (or, for the waiting room, its place as before),
//! never a hang; nothing is lost or doubled, and service is back within `RECOVERY` of the link.

use std::time::{Duration, Instant};

use marquee_testkit::fault_proxy::{Fault, FaultProxy};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use marquee_e2e::stack;

/// The gateway's `upstream_timeout_ms` and Redis's `response_timeout_ms` in these tests, and
/// the slack allowed past them.
const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(1500);
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
const SLACK: Duration = Duration::from_millis(1500);
/// Once a link is back, service is back within this.
const RECOVERY: Duration = Duration::from_secs(10);

fn assert_503_in_time(status: u16, retry_after: bool, took: Duration, limit: Duration, what: &str) {
    assert_eq!(status, 503, "{what}");
    assert!(retry_after, "{what}: no Retry-After");
    assert!(took < limit + SLACK, "{what} took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_cut_off_from_booking_core_answers_503_in_time_and_recovers() {
    let s = stack(1, |s| s.set("worker.tick_ms", 50)).await;
    let event = s.event(json!({})).await;
    let show = s.show(&event, 2, 5).await;
    let proxy = FaultProxy::to_url(&s.booking_url).await;
    let gw = s
        .another_gateway_with(|src| {
            src.set("gateway.booking_url", proxy.url(&s.booking_url))
                .set("gateway.upstream_timeout_ms", UPSTREAM_TIMEOUT.as_millis())
                .set("booking.request_timeout_ms", 1000)
        })
        .await;
    let (fan, _) = s.join(&event, None).await;
    let (_, token) = s.admitted_fan(&event).await;
    let get_show = || async {
        let t = Instant::now();
        let res = s
            .http
            .get(format!("{gw}/v1/shows/{show}"))
            .send()
            .await
            .unwrap();
        (res, t.elapsed())
    };
    assert_eq!(get_show().await.0.status(), 200);
    // The fan's reserve of B-2, under an idempotency key named for the fault it was sent in.
    let reserve = |fault: Fault| {
        let (s, gw, token, show) = (&s, &gw, &token, &show);
        async move {
            let t = Instant::now();
            let res = s
                .http
                .post(format!("{gw}/v1/bookings/reserve"))
                .bearer_auth(token)
                .header("idempotency-key", format!("during-{fault:?}"))
                .json(&json!({"show_id": show, "seat_ids": ["B-2"]}))
                .send()
                .await
                .unwrap();
            (res, t.elapsed())
        }
    };

    for fault in [Fault::Freeze, Fault::Refuse] {
        proxy.set(fault);
        if fault == Fault::Refuse {
            // Pooled connections would carry on: cut them, so every request needs a new one.
            proxy.cut();
        }
        let (res, took) = get_show().await;
        assert_503_in_time(
            res.status().as_u16(),
            res.headers().contains_key("retry-after"),
            took,
            UPSTREAM_TIMEOUT,
            &format!("a show read, {fault:?}"),
        );
        let (res, took) = reserve(fault).await;
        assert_503_in_time(
            res.status().as_u16(),
            res.headers().contains_key("retry-after"),
            took,
            UPSTREAM_TIMEOUT,
            &format!("a reserve, {fault:?}"),
        );
        // The waiting room needs no booking-core: a fan in line still learns its place.
        let poll = s.status_at(&gw, &event, &fan).await;
        assert_eq!(poll.status(), 200, "{fault:?}");

        proxy.set(Fault::None);
        let t = Instant::now();
        marquee_testkit::wait_for("the show to be served again", RECOVERY, || async {
            (get_show().await.0.status() == 200).then_some(())
        })
        .await;
        eprintln!("{fault:?}: back {:?} after the link", t.elapsed());
    }

    // Every open connection cut with an RST: the next requests find new ones.
    proxy.cut();
    marquee_testkit::wait_for("the show after a cut", RECOVERY, || async {
        (get_show().await.0.status() == 200).then_some(())
    })
    .await;

    // The reserve the fan sent while the link hung, sent again with its key: one hold.
    let mut holds = Vec::new();
    for fault in [Fault::Freeze, Fault::Refuse] {
        let (res, _) = reserve(fault).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert!(
            status == 201 || (status == 409 && body["reservation_id"].is_string()),
            "{status} {body}"
        );
        holds.push(body["reservation_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(holds[0], holds[1], "one hold for the fan");
    let held: Vec<(String, String)> = sqlx::query_as(
        "SELECT seat_id, status FROM seats WHERE show_id = $1 AND status <> 'available'",
    )
    .bind(&show)
    .fetch_all(&sqlx::PgPool::connect(&s.env.database_url).await.unwrap())
    .await
    .unwrap();
    assert_eq!(held, vec![("B-2".to_owned(), "held".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_whose_redis_hangs_answers_503_in_time_keeps_its_line_and_recovers() {
    let s = stack(0, |s| s).await;
    let event = s.event(json!({"state": "paused"})).await;
    let redis_url = marquee_testkit::redis_url();
    let proxy = FaultProxy::to_url(&redis_url).await;
    let gw = s
        .another_gateway_with(|src| {
            src.set("redis.url", proxy.url(&redis_url))
                .set("redis.response_timeout_ms", REDIS_TIMEOUT.as_millis())
        })
        .await;
    let (fan, first) = s.join(&event, None).await;
    assert_eq!(first["position"], 1);
    let join = || async {
        let t = Instant::now();
        let res = s
            .http
            .post(format!("{gw}/v1/queue/{event}/join"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        (res, t.elapsed())
    };
    // The gateway has read the event; now its Redis link hangs.
    marquee_testkit::wait_for("a join through the gateway", RECOVERY, || async {
        (join().await.0.status() == 201).then_some(())
    })
    .await;
    proxy.set(Fault::Freeze);
    let (res, took) = join().await;
    assert_503_in_time(
        res.status().as_u16(),
        res.headers().contains_key("retry-after"),
        took,
        REDIS_TIMEOUT,
        "a join while Redis hangs",
    );
    // A fan already in line keeps its place: the answer comes from the signed token and the
    // gateway's view, not from Redis.
    let poll = s.status_at(&gw, &event, &fan).await;
    assert_eq!(poll.status(), 200);
    assert_eq!(poll.json::<Value>().await.unwrap()["position"], 1);

    proxy.set(Fault::None);
    let t = Instant::now();
    let again = marquee_testkit::wait_for("joins to work again", RECOVERY, || async {
        let (res, _) = join().await;
        (res.status() == 201).then_some(res)
    })
    .await;
    eprintln!("joins work again {:?} after the link", t.elapsed());
    let body: Value = again.json().await.unwrap();
    assert!(body["position"].as_u64().unwrap() >= 3, "{body}");
    // The first fan is still first.
    let poll: Value = s.status(&event, &fan).await.json().await.unwrap();
    assert_eq!(poll["position"], 1);
}

/// A slowloris client (headers a byte a second) and a body trickled a byte a second are cut
/// off by the gateway's timeouts; while dozens of them hang on, everyone else is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_send_a_byte_a_second_are_cut_off_and_take_no_one_elses_turn() {
    let s = stack(0, |s| {
        s.set("gateway.request_timeout_ms", 2000)
            .set("gateway.upstream_timeout_ms", 1500)
            .set("booking.request_timeout_ms", 1000)
            .set("gateway.header_read_timeout_ms", 2000)
    })
    .await;
    let event = s.event(json!({})).await;
    let addr = s.base.trim_start_matches("http://").to_owned();

    // Headers: each slow client sends a request line and then a header byte a second.
    let slow_headers = (0..30).map(|_| {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let t = Instant::now();
            c.write_all(b"GET /openapi.json HTTP/1.1\r\nhost: x\r\n")
                .await
                .unwrap();
            for b in b"x-slow: 1234567890123456789012345678901234567890"
                .iter()
                .cycle()
            {
                if c.write_all(&[*b]).await.is_err() {
                    break;
                }
                let mut buf = [0u8; 512];
                match tokio::time::timeout(Duration::from_secs(1), c.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) => break, // answered (a 408 or similar) and closed
                    Err(_) => {}
                }
                assert!(t.elapsed() < Duration::from_secs(30), "never cut off");
            }
            t.elapsed()
        })
    });
    let slow_headers: Vec<_> = slow_headers.collect();
    // A body trickled a byte a second to a route that reads it.
    let trickle = {
        let addr = addr.clone();
        let event = event.clone();
        tokio::spawn(async move {
            let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let t = Instant::now();
            c.write_all(
                format!(
                    "POST /v1/queue/{event}/join HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 60\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
            let mut answer = Vec::new();
            loop {
                if c.write_all(b" ").await.is_err() {
                    break;
                }
                let mut buf = [0u8; 1024];
                match tokio::time::timeout(Duration::from_secs(1), c.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
                assert!(t.elapsed() < Duration::from_secs(30), "never cut off");
            }
            (t.elapsed(), String::from_utf8_lossy(&answer).into_owned())
        })
    };

    // Meanwhile everyone else is served at once.
    for _ in 0..10 {
        let t = Instant::now();
        let res = s.join_request(&event, &json!({})).await;
        assert_eq!(res.status(), 201);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }

    for h in slow_headers {
        let took = h.await.unwrap();
        assert!(
            took < Duration::from_secs(2) + SLACK * 2,
            "slow headers held {took:?}"
        );
    }
    let (took, answer) = trickle.await.unwrap();
    assert!(
        took < Duration::from_secs(2) + SLACK * 2,
        "a trickled body held {took:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
}
