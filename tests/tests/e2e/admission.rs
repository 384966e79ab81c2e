//! Invariant 5: admission at the operator's rate, never above the cap, in queue order, with a
//! fair pre-queue shuffle; several workers never over-admit, whether the leader stops, its
//! runtime is dropped mid-tick or its process is SIGKILLed; visitors who leave are dropped.
//!
//! Over 400 lines because it is invariant 5's whole proof in one place: each test is one
//! clause of the invariant (rate, cap, order, shuffle, replicas, leaving).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde_json::{Value, json};

use marquee_e2e::{CrashableWorker, Fan, Stack, stack};
use marquee_platform::config::Source;
use marquee_testkit::process::{ServiceProcess, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admits_at_the_rate_and_never_above_the_cap() {
    let mut s = stack(1, |s| s.set("worker.tick_ms", 50)).await;
    // 600 a minute = 10 a second; 300 waiting so the queue never runs dry in the window.
    let event = s
        .event(json!({"state": "paused", "rate_per_minute": 600, "max_active": 1000}))
        .await;
    for _ in 0..300 {
        s.join(&event, None).await;
    }
    s.patch_event(&event, json!({"state": "open"})).await;
    marquee_testkit::wait_for("admission to start", Duration::from_secs(5), || {
        let mut r = s.redis.clone();
        let key = marquee_waitroom::keys::state(&event);
        async move {
            r.hget::<_, _, Option<u64>>(key, "admitted_total")
                .await
                .unwrap()
                .filter(|n| *n > 0)
        }
    })
    .await;
    let start = (Instant::now(), s.admitted_total(&event).await);
    let mut samples = Vec::new();
    while start.0.elapsed() < Duration::from_secs(4) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        samples.push((
            start.0.elapsed().as_secs_f64(),
            s.admitted_total(&event).await - start.1,
        ));
    }
    let (secs, admitted) = *samples.last().unwrap();
    let expected = 10.0 * secs;
    assert!(
        (admitted as f64 - expected).abs() <= 0.15 * expected + 2.0,
        "admitted {admitted} in {secs:.2}s, expected about {expected:.0}"
    );
    for (t, n) in &samples {
        assert!(
            (*n as f64) <= 10.0 * t + 3.0,
            "ahead of the rate: {n} by {t:.2}s"
        );
    }

    // The cap: a fast rate with room for only 15 stops at 15.
    let capped = s
        .event(json!({"state": "paused", "rate_per_minute": 60000, "max_active": 15}))
        .await;
    for _ in 0..40 {
        s.join(&capped, None).await;
    }
    s.patch_event(&capped, json!({"state": "open"})).await;
    marquee_testkit::wait_for("the cap to fill", Duration::from_secs(5), || {
        let mut r = s.redis.clone();
        let key = marquee_waitroom::keys::active(&capped);
        async move { (r.zcard::<_, u64>(key).await.unwrap() == 15).then_some(()) }
    })
    .await;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(s.active_count(&capped).await, 15);
        assert_eq!(s.admitted_total(&capped).await, 15);
    }
}

/// Kendall's tau over the pairs whose observed order is strict: 1.0 means no pair of fans was
/// admitted in the opposite order to the one they joined in.
fn kendall_tau(order_a: &[usize], order_b: &HashMap<usize, f64>) -> (f64, usize) {
    let (mut concordant, mut discordant) = (0usize, 0usize);
    for i in 0..order_a.len() {
        for j in i + 1..order_a.len() {
            let (ti, tj) = (order_b[&order_a[i]], order_b[&order_a[j]]);
            if ti < tj {
                concordant += 1;
            } else if ti > tj {
                discordant += 1;
            }
        }
    }
    (
        (concordant as f64 - discordant as f64) / (concordant + discordant).max(1) as f64,
        concordant + discordant,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fans_are_admitted_in_the_order_they_joined() {
    let s = stack(1, |s| {
        s.set("worker.tick_ms", 25)
            .set("gateway.view_refresh_ms", 10)
    })
    .await;
    // 240 a minute: one admission every 250 ms, far apart relative to the 10 ms refresh.
    let event = s
        .event(json!({"state": "paused", "rate_per_minute": 240}))
        .await;
    let mut fans: Vec<Fan> = Vec::new();
    for _ in 0..16 {
        fans.push(s.join(&event, None).await.0);
    }
    s.patch_event(&event, json!({"state": "open"})).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, mut fan) in fans.into_iter().enumerate() {
        let url = s.base.clone();
        let event = event.clone();
        let http = s.http.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let v: Value = http
                    .get(format!("{url}/v1/queue/{event}/status"))
                    .bearer_auth(&fan.queue_token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if v["state"] == "admitted" {
                    return (i, started.elapsed().as_secs_f64());
                }
                if let Some(t) = v["queue_token"].as_str() {
                    fan.queue_token = t.to_owned();
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "fan {i} never admitted"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let mut seen = HashMap::new();
    for t in tasks {
        let (i, at) = t.await.unwrap();
        seen.insert(i, at);
    }
    let joined: Vec<usize> = (0..16).collect();
    let (tau, pairs) = kendall_tau(&joined, &seen);
    assert!(
        pairs >= 100,
        "too many ties to judge: {pairs} ordered pairs; {seen:?}"
    );
    assert_eq!(
        tau, 1.0,
        "admission order differs from join order: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prequeue_is_shuffled_fairly_and_replays_from_the_published_seed() {
    let s = stack(1, |s| s.set("worker.tick_ms", 50)).await;
    let opens = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    // A trickle rate so nobody is admitted while we look at places.
    let event = s
        .event(json!({"state": "prequeue", "opens_at": opens, "rate_per_minute": 1}))
        .await;
    let mut early = Vec::new();
    for _ in 0..40 {
        let (fan, body) = s.join(&event, None).await;
        assert_eq!(body["state"], "prequeue");
        assert!(body["position"].is_null());
        early.push(fan);
    }
    // The operator opens early; the worker shuffles.
    s.patch_event(&event, json!({"state": "open"})).await;
    let mut positions = HashMap::new();
    let mut seed = String::new();
    for fan in &mut early {
        let v: Value = marquee_testkit::wait_for(
            "a place after the shuffle",
            Duration::from_secs(10),
            || async {
                let v: Value = s.status(&event, fan).await.json().await.unwrap();
                (v["state"] == "waiting").then_some(v)
            },
        )
        .await;
        fan.queue_token = v["queue_token"]
            .as_str()
            .expect("a fresh token with the place")
            .to_owned();
        seed = v["shuffle_seed"].as_str().unwrap().to_owned();
        positions.insert(fan.visitor_id.clone(), v["position"].as_u64().unwrap());
    }
    let mut by_place: Vec<String> = early.iter().map(|f| f.visitor_id.clone()).collect();
    by_place.sort_by_key(|v| positions[v]);
    let arrival: Vec<String> = early.iter().map(|f| f.visitor_id.clone()).collect();
    let replay = marquee_waitroom::queue::shuffle_order(&seed, arrival.clone());
    assert_eq!(
        by_place, replay,
        "the order replays from the published seed"
    );
    assert_ne!(by_place, arrival, "not arrival order");
    assert_ne!(
        by_place,
        arrival.iter().rev().cloned().collect::<Vec<_>>(),
        "nor its reverse"
    );
    let places: Vec<u64> = by_place.iter().map(|v| positions[v]).collect();
    assert_eq!(
        places,
        (1..=40).collect::<Vec<_>>(),
        "places 1..=40 with no gaps"
    );

    // Someone arriving after opening is behind every pre-queue fan.
    let (late, body) = s.join(&event, None).await;
    assert_eq!(body["state"], "waiting");
    assert_eq!(body["position"], 41, "{body}");
    let _ = late;
}

/// The leader tests' settings: leases of 300 ms renewed on every 50 ms tick.
fn leader_settings(src: Source) -> Source {
    src.set("worker.tick_ms", 50)
        .set("worker.lease_ttl_ms", 300)
}

/// A paused event at 20 admissions a second with room for 70, and 120 fans waiting.
async fn paused_event_of_120(s: &Stack) -> String {
    let event = s
        .event(json!({"state": "paused", "rate_per_minute": 1200, "max_active": 70}))
        .await;
    for _ in 0..120 {
        s.join(&event, None).await;
    }
    event
}

/// Opens `event` and watches admission for 5 s: never ahead of the rate, never above the cap,
/// and carried on to the cap although `stop_leader` takes away the replica holding the lease
/// (given its id) once 10 are in. The lease's holder at the end.
async fn admits_to_the_cap_while_the_leader_goes(
    s: &mut Stack,
    event: &str,
    mut stop_leader: impl FnMut(&str),
) -> String {
    s.patch_event(event, json!({"state": "open"})).await;
    let t0 = Instant::now();
    let mut stopped_one = false;
    let mut last = 0;
    while t0.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let n = s.admitted_total(event).await;
        let secs = t0.elapsed().as_secs_f64();
        // A tick may count up to `max_elapsed_ms` since the last one (a late tick catches up
        // that far, never further) plus one admission carried over: the rate's own bound.
        let catch_up = marquee_waitroom::queue::max_elapsed_ms(50) as f64 / 1000.0;
        assert!(
            (n as f64) <= 20.0 * (secs + catch_up) + 1.0,
            "{n} admitted by {secs:.2}s at 20/s"
        );
        assert!(
            n <= 70 && s.active_count(event).await <= 70,
            "above the cap: {n}"
        );
        if !stopped_one && n >= 10 {
            let holder: String = s
                .redis
                .get(marquee_waitroom::keys::lease(event))
                .await
                .unwrap();
            stop_leader(&holder);
            stopped_one = true;
        }
        last = n;
    }
    assert!(stopped_one);
    assert_eq!(
        last, 70,
        "admission carried on to the cap after the leader went"
    );
    s.redis
        .get(marquee_waitroom::keys::lease(event))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_never_over_admit_and_survive_losing_the_leader() {
    let mut s = stack(3, leader_settings).await;
    let event = paused_event_of_120(&s).await;
    let (mut workers, mut ids) = (std::mem::take(&mut s.workers), s.worker_ids.clone());
    // A clean stop: the leader hands its lease back and another replica takes over at once.
    let holder = admits_to_the_cap_while_the_leader_goes(&mut s, &event, |holder| {
        let leader = ids
            .iter()
            .position(|id| id == holder)
            .unwrap_or_else(|| panic!("the lease names a replica: {holder:?}"));
        workers.remove(leader).trigger();
        ids.remove(leader);
    })
    .await;
    assert!(
        ids.contains(&holder),
        "a remaining replica leads: {holder:?}"
    );
    s.workers = workers;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_killed_mid_tick_is_replaced_once_its_lease_lapses() {
    let mut s = stack(0, leader_settings).await;
    let event = paused_event_of_120(&s).await;
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(CrashableWorker::start(&s.env, &leader_settings).await);
    }
    // A crash: the leader's tasks vanish wherever they are and its lease is not handed back;
    // the others wait for it to lapse (300 ms), then one of them leads.
    let holder = admits_to_the_cap_while_the_leader_goes(&mut s, &event, |holder| {
        let leader = workers
            .iter()
            .position(|w| w.id == holder)
            .unwrap_or_else(|| panic!("the lease names a replica: {holder:?}"));
        workers.remove(leader).crash();
    })
    .await;
    assert!(
        workers.iter().any(|w| w.id == holder),
        "a remaining replica leads: {holder:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_process_killed_with_sigkill_is_replaced_and_nothing_is_over_admitted() {
    let mut s = stack(0, leader_settings).await;
    let event = paused_event_of_120(&s).await;
    // Three admission-worker processes of the test's own, named so the lease says which.
    let mut workers: Vec<(String, ServiceProcess)> = Vec::new();
    for name in ["proc-a", "proc-b", "proc-c"] {
        let port = free_port();
        let source = leader_settings(s.env.source())
            .set("worker.id", name)
            .set("worker.listen", format!("127.0.0.1:{port}"));
        let mut p = ServiceProcess::start("admission-worker", &source, &[]);
        p.wait_healthy(
            &format!("http://127.0.0.1:{port}/healthz"),
            Duration::from_secs(20),
        )
        .await;
        workers.push((name.to_owned(), p));
    }
    let holder = admits_to_the_cap_while_the_leader_goes(&mut s, &event, |holder| {
        let leader = workers
            .iter()
            .position(|(name, _)| holder.starts_with(&format!("{name}-")))
            .unwrap_or_else(|| panic!("the lease names a process: {holder:?}"));
        let (_, mut process) = workers.remove(leader);
        process.kill();
    })
    .await;
    assert!(
        workers
            .iter()
            .any(|(name, _)| holder.starts_with(&format!("{name}-"))),
        "a remaining process leads: {holder:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fans_who_stop_polling_are_dropped_and_free_their_place() {
    let mut s = stack(1, |s| s.set("worker.tick_ms", 100)).await;
    let event = s
        .event(json!({"state": "paused", "abandon_after_s": 5}))
        .await;
    let (mut stays, _) = s.join(&event, None).await;
    let (leaves, _) = s.join(&event, None).await;
    let (mut behind, _) = s.join(&event, None).await;
    // `stays` and `behind` keep polling through two presence windows (5 s each); `leaves`
    // goes quiet after joining.
    let until = Instant::now() + Duration::from_secs(11);
    while Instant::now() < until {
        for fan in [&stays, &behind] {
            assert_eq!(s.status(&event, fan).await.status(), 200);
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    s.patch_event(&event, json!({"state": "open"})).await;
    s.wait_admitted(&event, &mut stays, Duration::from_secs(10))
        .await;
    s.wait_admitted(&event, &mut behind, Duration::from_secs(10))
        .await;
    let v: Value = s.status(&event, &leaves).await.json().await.unwrap();
    assert_eq!(
        v["state"], "expired",
        "the quiet fan was dropped at its turn"
    );
    assert_eq!(
        s.admitted_total(&event).await,
        2,
        "only the fans still polling used slots"
    );
    let dropped: Option<u64> = s
        .redis
        .hget(marquee_waitroom::keys::state(&event), "dropped_total")
        .await
        .unwrap();
    assert_eq!(dropped, Some(1));
    // The worker's record of the queue's pace counts the drop as a place passed.
    let ticks: Vec<String> = s
        .redis
        .zrange(marquee_waitroom::keys::admits(&event), 0, -1)
        .await
        .unwrap();
    let pace = marquee_waitroom::queue::Pace::of(&ticks);
    assert_eq!((pace.admitted, pace.passed), (2, 3), "{ticks:?}");
    // And operators see it.
    let v = s.admin_get(&format!("/admin/v1/events/{event}")).await;
    assert_eq!(
        (
            v["admitted_last_minute"].as_u64(),
            v["dropped_last_minute"].as_u64()
        ),
        (Some(2), Some(1)),
        "{v}"
    );
}

/// The wait estimate divides the places ahead by the pace the queue moved at lately, counting
/// fans dropped for having left as well as those admitted: a position counts both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_estimate_follows_the_pace_of_the_queue_including_fans_who_left() {
    // No worker: the queue stands still while the test says how it moved.
    let mut s = stack(0, |s| s).await;
    let event = s.event(json!({"rate_per_minute": 60})).await;
    let mut fans = Vec::new();
    for _ in 0..20 {
        fans.push(s.join(&event, None).await.0);
    }
    let last = fans.last().unwrap();
    let v: Value = s.status(&event, last).await.json().await.unwrap();
    assert_eq!(
        (v["position"].as_u64(), v["estimated_wait_s"].as_u64()),
        (Some(20), Some(20)),
        "nothing measured yet: the operator's rate, one a second: {v}"
    );
    // Over the last ten seconds, ticks admitted two fans each and dropped two who had left:
    // 44 places in 10 s. 20 ahead at 4.4 a second is about 5 s (2.2 admissions a second
    // alone would say 10).
    let now = chrono::Utc::now().timestamp_millis();
    for i in 0..=10 {
        let tick = now - 10_000 + i * 1_000;
        let _: () = s
            .redis
            .zadd(
                marquee_waitroom::keys::admits(&event),
                format!("{tick}:2:2"),
                tick,
            )
            .await
            .unwrap();
    }
    let wait = marquee_testkit::wait_for(
        "the gateway to read the pace",
        Duration::from_secs(10),
        || async {
            let v: Value = s.status(&event, last).await.json().await.unwrap();
            v["estimated_wait_s"].as_u64().filter(|w| *w < 20)
        },
    )
    .await;
    assert!((4..=6).contains(&wait), "{wait}");
}
