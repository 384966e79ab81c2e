//! Invariant 5 when Redis crashes mid-sale (SIGKILL, then a restart on its append-only file):
//! fans already waiting keep their answers, a join is a clear 503 to retry, and once Redis is
//! back the worker goes on admitting in queue order, never above the cap, nobody twice.

use std::time::Duration;

use serde_json::{Value, json};

use marquee_e2e::{Fan, stack};
use marquee_testkit::{RedisServer, wait_for};

async fn state_of(s: &marquee_e2e::Stack, event: &str, fan: &mut Fan) -> (u16, Value) {
    let res = s.status(event, fan).await;
    let status = res.status().as_u16();
    let v: Value = res.json().await.unwrap_or_default();
    if let Some(t) = v["queue_token"].as_str() {
        fan.queue_token = t.to_owned();
    }
    (status, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_mid_sale_loses_no_place_and_admits_nobody_out_of_turn() {
    let mut redis_server = RedisServer::start().await;
    let url = redis_server.url();
    let mut s = stack(1, |src| {
        src.set("redis.url", &url).set("worker.tick_ms", 50)
    })
    .await;
    let event = s
        .event(json!({"state": "paused", "rate_per_minute": 60000, "max_active": 4}))
        .await;
    let mut fans = Vec::new();
    for _ in 0..10 {
        fans.push(s.join(&event, None).await.0);
    }
    s.patch_event(&event, json!({"state": "open"})).await;
    for fan in &mut fans[..4] {
        s.wait_admitted(&event, fan, Duration::from_secs(10)).await;
    }

    // Redis dies. Waiting fans are answered from the gateway's memory, still waiting and
    // still in their places; a newcomer is told to come back (503, Retry-After, a problem).
    redis_server.crash();
    for (i, fan) in fans[4..].iter_mut().enumerate() {
        let (status, v) = state_of(&s, &event, fan).await;
        assert_eq!((status, v["state"].as_str()), (200, Some("waiting")), "{v}");
        assert_eq!(v["position"], i as u64 + 1, "{v}");
    }
    let res = s.join_request(&event, &json!({})).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["status"], 503, "{problem}");

    // Redis is back with everything it acknowledged. Room for three more: exactly the next
    // three in line are admitted, the others wait, and a newcomer joins behind them.
    redis_server.restart().await;
    let joined = wait_for(
        "a join to succeed again",
        Duration::from_secs(15),
        || async {
            let res = s.join_request(&event, &json!({})).await;
            (res.status() == 201).then_some(res.json::<Value>().await.unwrap())
        },
    )
    .await;
    // The operator's change reaches Redis in the same request, or is rolled back with a 503 to
    // retry (booking-core's connection may be the one that finds Redis gone).
    wait_for(
        "the operator's change to be taken",
        Duration::from_secs(15),
        || async {
            let res = s
                .patch_event_request(&event, &json!({"max_active": 7}))
                .await;
            match res.status().as_u16() {
                200 => Some(()),
                503 => None,
                other => panic!("{other}: {}", res.text().await.unwrap()),
            }
        },
    )
    .await;
    for fan in &mut fans[4..7] {
        s.wait_admitted(&event, fan, Duration::from_secs(15)).await;
    }
    for _ in 0..10 {
        assert_eq!(s.active_count(&event).await, 7);
        assert_eq!(s.admitted_total(&event).await, 7);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (i, fan) in fans[7..].iter_mut().enumerate() {
        let (status, v) = state_of(&s, &event, fan).await;
        assert_eq!((status, v["state"].as_str()), (200, Some("waiting")), "{v}");
        assert_eq!(v["position"], i as u64 + 1, "{v}");
    }
    assert_eq!(
        (joined["state"].as_str(), joined["position"].as_u64()),
        (Some("waiting"), Some(7)),
        "{joined}"
    );
    let mut late = Fan::joined(&joined, None);
    let (_, v) = state_of(&s, &event, &mut late).await;
    assert_eq!(
        (v["state"].as_str(), v["position"].as_u64()),
        (Some("waiting"), Some(4)),
        "{v}"
    );
}

/// Every service's Redis connection comes back by itself once Redis does, so the first
/// request after a restart does not pay for finding the old connection dead; its `redis_up`
/// gauge says 0 while Redis is away.
#[tokio::test]
async fn a_connection_to_a_restarted_redis_is_back_before_the_next_command() {
    let mut server = RedisServer::start().await;
    let mut conn = marquee_waitroom::connect::redis(&server.url(), false, None)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("kept")
        .arg("yes")
        .query_async(&mut conn)
        .await
        .unwrap();
    let up = conn.up_gauge();
    assert_eq!(up.get(), 1);
    server.crash();
    wait_for("redis_up to fall to 0", Duration::from_secs(5), || async {
        (up.get() == 0).then_some(())
    })
    .await;
    server.restart().await;

    // A connection of the test's own counts the clients; the managed connection appears
    // among them without being used.
    let observer = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    wait_for(
        "the connection to come back",
        Duration::from_secs(5),
        || {
            let mut observer = observer.clone();
            async move {
                let clients: String = redis::cmd("CLIENT")
                    .arg("LIST")
                    .query_async(&mut observer)
                    .await
                    .unwrap();
                (clients.lines().count() >= 2).then_some(())
            }
        },
    )
    .await;
    let kept: String = redis::cmd("GET")
        .arg("kept")
        .query_async(&mut conn)
        .await
        .expect("the first command after the restart succeeds");
    assert_eq!(kept, "yes");
    wait_for("redis_up back at 1", Duration::from_secs(5), || async {
        (up.get() == 1).then_some(())
    })
    .await;
}

/// The keepalive checks only an idle connection: one whose commands are being answered is not
/// PINGed as well (every service's background PINGs were a share of the Redis commands a
/// status poll is measured by), and an idle one still is, four times a second.
#[tokio::test]
async fn only_an_idle_connection_is_pinged() {
    let server = RedisServer::start().await;
    let observer = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pings = |mut observer: redis::aio::MultiplexedConnection| async move {
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut observer)
            .await
            .unwrap();
        stats
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_ping:calls="))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    let mut conn = marquee_waitroom::connect::redis(&server.url(), false, None)
        .await
        .unwrap();
    // Busy: a command answered every 50 ms for 1.5 s (six keepalive periods).
    let before = pings(observer.clone()).await;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        let _: Option<String> = redis::cmd("GET")
            .arg("k")
            .query_async(&mut conn)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let busy = pings(observer.clone()).await - before;
    assert!(busy <= 1, "{busy} PINGs on a busy connection");
    // Idle: PINGed again, four times a second.
    let before = pings(observer.clone()).await;
    wait_for(
        "the keepalive to PING an idle connection",
        Duration::from_secs(5),
        || {
            let observer = observer.clone();
            async move { (pings(observer).await - before >= 3).then_some(()) }
        },
    )
    .await;
}
