//! The edge's guard: load shedding, the request timeout and per-client rate limits.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use marquee_e2e::stack;

/// With room for one request in flight: a reserve whose body never arrives takes the room;
/// others are refused at once (503 + Retry-After) without spending their client's allowance;
/// the stuck request gets a 503 at the timeout and frees the room; then each client address
/// gets its burst and a 429 + Retry-After past it, and another address is unaffected.
#[tokio::test]
async fn the_edge_sheds_times_out_and_limits_each_client() {
    let s = stack(0, |s| {
        s.set("gateway.concurrency_limit", 1)
            .set("gateway.request_timeout_ms", 1500)
            .set("gateway.upstream_timeout_ms", 1000)
            .set("booking.request_timeout_ms", 800)
            .set("gateway.per_ip_per_second", 1)
            .set("gateway.per_ip_burst", 3)
    })
    .await;
    let get = |client: &'static str| {
        s.http
            .get(s.at("/openapi.json"))
            .header("x-forwarded-for", client)
            .send()
    };

    let mut stuck = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    stuck
        .write_all(
            b"POST /v1/queue/an-event/join HTTP/1.1\r\nhost: gateway\r\nx-forwarded-for: 10.0.0.1\r\n\
              content-type: application/json\r\n\
              content-length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    let shed = marquee_testkit::wait_for(
        "the stuck request to fill the gateway",
        Duration::from_secs(5),
        || async {
            let res = get("10.0.0.2").await.unwrap();
            (res.status() == 503).then_some(res)
        },
    )
    .await;
    assert!(shed.headers().contains_key("retry-after"));
    assert_eq!(
        shed.headers()["content-type"],
        "application/problem+json",
        "a problem, not an empty refusal"
    );
    // More than the burst, all shed: none may count against 10.0.0.2.
    for _ in 0..4 {
        assert_eq!(get("10.0.0.2").await.unwrap().status(), 503);
    }

    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stuck.read(&mut buf))
            .await
            .expect("the timeout answers the stuck request")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");

    // The room is free again, and 10.0.0.2 has its whole burst (at most one more token has
    // come back meanwhile at 1/s, so spent allowance would show as a 429 here).
    for i in 0..3 {
        assert_eq!(get("10.0.0.2").await.unwrap().status(), 200, "request {i}");
    }
    let limited = get("10.0.0.2").await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "retry after {retry} s");
    assert_eq!(get("10.0.0.3").await.unwrap().status(), 200);
}

/// Status polls take their own path in front of the router (`queue_gateway::poll_path`); it
/// must give them everything the router's stack gives every route. Each client address gets its
/// burst of polls and then a 429; every poll has a request id (its own if it sent one); polls
/// are counted in the HTTP metrics under the route, by status; and a poll the path leaves to
/// the router (HEAD) is answered there the same way.
#[tokio::test]
async fn status_polls_meet_the_edge_and_are_counted_like_every_route() {
    let s = stack(0, |s| {
        s.set("gateway.per_ip_per_second", 1)
            .set("gateway.per_ip_burst", 3)
    })
    .await;
    let event = s.event(serde_json::json!({})).await;
    let (fan, _) = s.join(&event, None).await;
    let path = s.at(&format!("/v1/queue/{event}/status"));
    let poll = |method: reqwest::Method, client: &'static str| {
        s.http
            .request(method, &path)
            .bearer_auth(&fan.queue_token)
            .header("x-forwarded-for", client)
    };

    let made = poll(reqwest::Method::GET, "10.1.0.1").send().await.unwrap();
    assert_eq!(made.status(), 200);
    let id = made.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "a made request id: {id}");
    let kept = poll(reqwest::Method::GET, "10.1.0.1")
        .header("x-request-id", "fan-poll-7")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status(), 200);
    assert_eq!(kept.headers()["x-request-id"], "fan-poll-7");
    let mut ok = 2;
    let limited = loop {
        let res = poll(reqwest::Method::GET, "10.1.0.1").send().await.unwrap();
        match res.status().as_u16() {
            200 if ok < 10 => ok += 1,
            429 => break res,
            other => panic!("poll {}: {other}, wanted 200s then a 429", ok + 1),
        }
    };
    assert!(limited.headers().contains_key("retry-after"));
    assert!(limited.headers().contains_key("x-request-id"));
    assert_eq!(
        poll(reqwest::Method::GET, "10.1.0.2")
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "another address has its own allowance"
    );
    ok += 1;
    let unsigned = s.http.get(&path).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);

    let head = poll(reqwest::Method::HEAD, "10.1.0.3")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.headers().contains_key("x-request-id"));

    let metrics = s.text(&s.at("/metrics")).await;
    let count = |method: &str, status: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("marquee_http_requests_total{"))
            .filter(|l| l.contains(r#"route="/v1/queue/{event_id}/status""#))
            .filter(|l| l.contains(&format!(r#"method="{method}""#)))
            .filter(|l| l.contains(&format!(r#"status="{status}""#)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(count("GET", "200"), ok, "{metrics}");
    assert_eq!(count("GET", "429"), 1, "{metrics}");
    assert_eq!(count("GET", "401"), 1, "{metrics}");
    assert_eq!(count("HEAD", "200"), 1, "{metrics}");
}
