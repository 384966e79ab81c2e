//! An event's life in the worker: ticked while listed, retired once closed with no admitted
//! fan left (off the list, lease given back, its metric series gone), listed and ticked again
//! when reopened. Against the real Redis, through the worker's own tick.

use admission_worker::metrics::WorkerMetrics;
use admission_worker::tick::{Outcome, Ticker};
use chrono::Utc;
use marquee_waitroom::connect::Redis;
use marquee_waitroom::{keys, lease};
use prometheus::{Registry, TextEncoder};
use redis::AsyncCommands;

async fn redis() -> Redis {
    marquee_waitroom::connect::redis(&marquee_testkit::redis_url(), false, None)
        .await
        .expect("Redis")
}

fn ticker(worker: &str, events_key: &str) -> Ticker {
    Ticker {
        worker_id: worker.to_owned(),
        lease_ttl_ms: 60_000,
        max_elapsed_ms: 1_000,
        events_key: events_key.to_owned(),
        history_interval_ms: 10_000,
    }
}

/// Publish an event's settings as booking-core does: settings first, then the listing.
async fn publish(redis: &mut Redis, events_key: &str, event: &str, state: &str, revision: i64) {
    let cfg = serde_json::json!({
        "id": event, "name": event, "state": state, "opens_at": "2026-01-01T00:00:00Z",
        "rate_per_minute": 60, "max_active": 10, "session_ttl_s": 600, "hold_ttl_s": 600,
        "min_poll_interval_ms": 1000, "abandon_after_s": 3600, "sold_out": false,
        "revision": revision,
    });
    let _: () = redis.set(keys::cfg(event), cfg.to_string()).await.unwrap();
    let _: () = redis.sadd(events_key, event).await.unwrap();
}

/// The names of the series `registry` exports for `event`, as a scrape reads them.
fn series_of(registry: &Registry, event: &str) -> Vec<String> {
    let text = TextEncoder::new()
        .encode_to_string(&registry.gather())
        .expect("metrics encode");
    let label = format!("{{event=\"{event}\"}}");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once(&label).map(|(name, _)| name.to_owned()))
        .collect()
}

async fn listed(redis: &mut Redis, events_key: &str, event: &str) -> bool {
    redis.sismember(events_key, event).await.unwrap()
}

#[tokio::test]
async fn a_closed_event_is_ticked_until_its_last_slot_lapses_then_retired_until_reopened() {
    let mut redis = redis().await;
    let events_key = marquee_testkit::unique("wr:test-events");
    let event = marquee_testkit::unique("life");
    let ticker = ticker("worker-a", &events_key);
    let registry = Registry::new();
    let metrics = WorkerMetrics::new(&registry);
    publish(&mut redis, &events_key, &event, "closed", 1).await;
    // One fan admitted before closing still holds a slot for a while.
    let now = Utc::now().timestamp_millis();
    let _: () = redis
        .zadd(keys::active(&event), "fan", now + 600_000)
        .await
        .unwrap();

    ticker.run_all(&mut redis, &metrics).await;
    assert!(listed(&mut redis, &events_key, &event).await);
    let mut series = series_of(&registry, &event);
    series.sort();
    assert_eq!(
        series,
        [
            "admitted_total",
            "dropped_total",
            "lease_held",
            "queue_active",
            "queue_waiting"
        ]
    );

    // The slot lapses: the next tick frees it and retires the event.
    let _: () = redis
        .zadd(keys::active(&event), "fan", now - 1)
        .await
        .unwrap();
    ticker.run_all(&mut redis, &metrics).await;
    assert!(!listed(&mut redis, &events_key, &event).await);
    assert!(series_of(&registry, &event).is_empty());
    assert!(
        lease::take(&mut redis, &event, "worker-b", 60_000)
            .await
            .unwrap(),
        "the retired event's lease was given back"
    );
    let _ = lease::give_back(&mut redis, &event, "worker-b").await;

    // Reopened: listed by the publish, ticked again.
    publish(&mut redis, &events_key, &event, "open", 2).await;
    ticker.run_all(&mut redis, &metrics).await;
    assert!(listed(&mut redis, &events_key, &event).await);
    assert!(series_of(&registry, &event).contains(&"lease_held".to_owned()));
}

#[tokio::test]
async fn an_open_or_paused_event_with_nobody_admitted_stays_listed() {
    let mut redis = redis().await;
    let events_key = marquee_testkit::unique("wr:test-events");
    let ticker = ticker("worker-a", &events_key);
    for state in ["open", "paused", "prequeue"] {
        let event = marquee_testkit::unique(state);
        publish(&mut redis, &events_key, &event, state, 1).await;
        let outcome = ticker.run_event(&mut redis, &event).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Ticked(_)),
            "{state}: {outcome:?}"
        );
        assert!(listed(&mut redis, &events_key, &event).await, "{state}");
    }
}

#[tokio::test]
async fn a_replica_that_does_not_lead_drops_the_series_of_an_event_another_retired() {
    let mut redis = redis().await;
    let events_key = marquee_testkit::unique("wr:test-events");
    let event = marquee_testkit::unique("life");
    let (leader, follower) = (
        ticker("worker-a", &events_key),
        ticker("worker-b", &events_key),
    );
    let registry = Registry::new();
    let metrics = WorkerMetrics::new(&registry);
    publish(&mut redis, &events_key, &event, "open", 1).await;
    assert!(matches!(
        leader.run_event(&mut redis, &event).await.unwrap(),
        Outcome::Ticked(_)
    ));
    follower.run_all(&mut redis, &metrics).await;
    assert_eq!(series_of(&registry, &event), ["lease_held"]);

    publish(&mut redis, &events_key, &event, "closed", 2).await;
    assert_eq!(
        leader.run_event(&mut redis, &event).await.unwrap(),
        Outcome::Delisted
    );
    follower.run_all(&mut redis, &metrics).await;
    assert!(series_of(&registry, &event).is_empty());
}

/// The race the lifecycle must lose nothing to: an operator reopens the event between the
/// tick that found it retired and its removal from the list.
#[tokio::test]
async fn a_reopening_that_lands_while_the_event_is_delisted_lists_it_again() {
    let mut redis = redis().await;
    let events_key = marquee_testkit::unique("wr:test-events");
    let event = marquee_testkit::unique("life");
    let ticker = ticker("worker-a", &events_key);
    // Decided on revision 1 (closed); revision 2 (open) was published meanwhile.
    publish(&mut redis, &events_key, &event, "open", 2).await;
    assert!(!ticker.delist(&mut redis, &event, Some(1)).await.unwrap());
    assert!(listed(&mut redis, &events_key, &event).await);
    // Decided with no settings; they were published meanwhile.
    assert!(!ticker.delist(&mut redis, &event, None).await.unwrap());
    assert!(listed(&mut redis, &events_key, &event).await);
    // Nothing changed: it stays off.
    assert!(ticker.delist(&mut redis, &event, Some(2)).await.unwrap());
    assert!(!listed(&mut redis, &events_key, &event).await);
}

#[tokio::test]
async fn an_event_listed_without_settings_is_retired() {
    let mut redis = redis().await;
    let events_key = marquee_testkit::unique("wr:test-events");
    let event = marquee_testkit::unique("life");
    let _: () = redis.sadd(&events_key, &event).await.unwrap();
    let outcome = ticker("worker-a", &events_key)
        .run_event(&mut redis, &event)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Delisted);
    assert!(!listed(&mut redis, &events_key, &event).await);
}
