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

    let mut stuck = tokio::net::TcpStream::connect(s.url.trim_start_matches("http://"))
        .await
        .unwrap();
    stuck
        .write_all(
            b"POST /v1/bookings/reserve HTTP/1.1\r\nhost: gateway\r\nx-forwarded-for: 10.0.0.1\r\n\
              authorization: Bearer x\r\ncontent-type: application/json\r\n\
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
