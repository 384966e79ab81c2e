//! Safety-net mode (issue 19, API.md): a fan passes straight through while nobody is waiting,
//! the event is open and the rate and cap allow it, decided with the worker's admissions from
//! one budget; under a burst a queue forms, never admitting above the rate or the cap, and once
//! it drains fans pass straight through again.

use std::time::Duration;

use serde_json::{Value, json};

use marquee_e2e::{Stack, stack};

async fn join(s: &Stack, event: &str) -> Value {
    let res = s.join_request(event, &json!({})).await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_queues_within_the_rate_and_cap_and_the_queue_drains_back_to_pass_through() {
    let mut s = stack(1, |s| s.set("worker.tick_ms", 50)).await;
    let start = tokio::time::Instant::now();
    let rate = 600; // ten a second
    let event = s
        .event(json!({"queue_mode": "safety_net", "rate_per_minute": rate, "max_active": 1000}))
        .await;

    // A fan on a quiet event, with a whole admission in the budget, goes straight on, with its
    // admission token in the join answer.
    banked(&s, &event).await;
    let first = join(&s, &event).await;
    assert_eq!(first["state"], "admitted", "{first}");
    assert!(first["admission_token"].is_string(), "{first}");

    // A burst: a few pass, the rest queue.
    let burst = futures::future::join_all((0..40).map(|_| join(&s, &event))).await;
    let passed = burst.iter().filter(|v| v["state"] == "admitted").count();
    let queued = burst.iter().filter(|v| v["state"] == "waiting").count();
    assert_eq!(passed + queued, 40);
    assert!(
        queued >= 30,
        "a queue formed: {passed} passed, {queued} queued"
    );

    // The queue drains at the rate, and once the worker has banked a whole admission again
    // the next fan passes straight through.
    wait_until_empty(&s, &event).await;
    banked(&s, &event).await;
    let again = join(&s, &event).await;
    assert_eq!(
        again["state"], "admitted",
        "straight through again: {again}"
    );

    // Pass-throughs and the worker's admissions together never beat the rate: at most what
    // the time since the event was made allows, plus the one admission a budget may carry.
    let admitted = s.admitted_total(&event).await;
    let allowed = rate as f64 * start.elapsed().as_secs_f64() / 60.0 + 2.0;
    assert!(
        admitted as f64 <= allowed,
        "{admitted} admitted in {:?}; the rate allows {allowed:.1}",
        start.elapsed()
    );
    assert!(
        admitted >= 42,
        "every fan of the burst was admitted: {admitted}"
    );
}

/// Until the budget the worker keeps holds a whole admission (at most one is banked while
/// nobody waits): a join before that queues, and is admitted at a later tick.
async fn banked(s: &Stack, event: &str) {
    marquee_testkit::wait_for(
        "a whole admission banked",
        Duration::from_secs(10),
        || async {
            let mut redis = s.redis.clone();
            let carry: Option<f64> = redis::AsyncCommands::hget(
                &mut redis,
                marquee_waitroom::keys::state(event),
                "carry",
            )
            .await
            .unwrap();
            (carry.unwrap_or(0.0) >= 1.0).then_some(())
        },
    )
    .await;
}

async fn wait_until_empty(s: &Stack, event: &str) {
    marquee_testkit::wait_for("the queue drained", Duration::from_secs(30), || async {
        let mut redis = s.redis.clone();
        let waiting: u64 =
            redis::AsyncCommands::zcard(&mut redis, marquee_waitroom::keys::waiting(event))
                .await
                .unwrap();
        (waiting == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pass_through_stops_at_the_cap_and_in_always_mode_everyone_queues() {
    let mut s = stack(1, |s| s.set("worker.tick_ms", 50)).await;
    let capped = s
        .event(json!({"queue_mode": "safety_net", "rate_per_minute": 60000, "max_active": 3}))
        .await;
    let mut answers = Vec::new();
    for _ in 0..8 {
        answers.push(
            join(&s, &capped).await["state"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let passed = answers.iter().filter(|a| *a == "admitted").count();
    assert!(passed <= 3, "never above the cap: {answers:?}");
    assert!(s.active_count(&capped).await <= 3);

    let always = s
        .event(json!({"rate_per_minute": 60000, "max_active": 1000}))
        .await;
    for _ in 0..5 {
        let v = join(&s, &always).await;
        assert_eq!(v["state"], "waiting", "always mode queues everyone: {v}");
        assert!(v.get("admission_token").is_none());
    }
}
