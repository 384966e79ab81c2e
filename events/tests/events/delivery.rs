use std::time::Duration;

use marquee_events::relay::Relay;
use serde_json::Value;

use marquee_events::kafka::MockKafka;

use crate::helpers::{confirmed_booking, launch, prepare, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_booking_is_published_with_its_fields() {
    let ev = start(false).await;
    let booking = ev.confirmed_booking("ana@example.com").await;
    marquee_testkit::wait_for("the outbox to drain", Duration::from_secs(20), || async {
        (ev.unpublished().await == 0).then_some(())
    })
    .await;
    let topic = ev.env.settings().kafka.topic;
    let ev2 = &ev;
    let messages = tokio::task::block_in_place(|| ev2.read_topic(&topic, 1));
    let ours: Vec<&(Value, Option<String>)> = messages
        .iter()
        .filter(|(m, _)| m["booking_id"] == booking.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{messages:?}");
    let (m, key) = ours[0];
    assert_eq!(key.as_deref(), Some("s_events_test"), "keyed by show");
    assert_eq!(m["type"], "BookingConfirmed");
    assert_eq!(m["schema_version"], 1);
    assert_eq!(m["event_id"], "gala");
    assert_eq!(m["seats"], serde_json::json!(["A-1", "A-2"]));
    // The email is on the topic sealed only (DESIGN.md 9): nothing in the message reads as
    // an address, and the notifier's keys open it.
    assert!(m.get("email").is_none(), "{m}");
    assert!(!m.to_string().contains('@'), "{m}");
    let sealed: marquee_platform::pii::Sealed =
        serde_json::from_value(m["email_enc"].clone()).unwrap();
    assert_eq!(
        crate::helpers::test_pii().open(&sealed).unwrap(),
        "ana@example.com"
    );
    assert_eq!(m["total_cents"], 2400);
    assert_eq!(m["currency"], "eur");
    assert!(
        m["message_id"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .is_ok()
    );
    assert!(chrono::DateTime::parse_from_rfc3339(m["occurred_at"].as_str().unwrap()).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_down_loses_nothing_and_the_backlog_drains_after() {
    let ev = start(false).await;
    ev.mock.set_brokers_up(false);
    let mut ids = Vec::new();
    for i in 0..3 {
        // Confirming needs only Postgres: it goes on while Kafka is down.
        ids.push(ev.confirmed_booking(&format!("fan{i}@example.com")).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        ev.unpublished().await,
        3,
        "nothing published while the brokers are down"
    );
    ev.mock.set_brokers_up(true);
    marquee_testkit::wait_for("the backlog to drain", Duration::from_secs(40), || async {
        (ev.unpublished().await == 0).then_some(())
    })
    .await;
    marquee_testkit::wait_for("one email per booking", Duration::from_secs(40), || async {
        (ev.smtp.messages().len() == 3).then_some(())
    })
    .await;
    let topic = ev.env.settings().kafka.topic;
    let messages = tokio::task::block_in_place(|| ev.read_topic(&topic, 3));
    for id in &ids {
        assert!(
            messages.iter().any(|(m, _)| m["booking_id"] == id.as_str()),
            "{id} was lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_publish_and_mark_publishes_again_and_the_consumer_deduplicates() {
    // Before the service runs, a relay "crashes" after publishing: the row goes out to the
    // brokers but stays unmarked …
    let prepared = prepare(false).await;
    let settings = prepared.env.settings();
    let brokers =
        MockKafka::start(&[&settings.kafka.topic, &settings.kafka.dead_letter_topic]).unwrap();
    let crashed = Relay {
        db: prepared.db.clone(),
        producer: marquee_events::kafka::producer(&brokers.bootstrap, 10_000).unwrap(),
        topic: settings.kafka.topic.clone(),
        batch: 10,
        poll: Duration::from_secs(1),
        metrics: std::sync::Arc::new(marquee_events::metrics::EventMetrics::new(
            &prometheus::Registry::new(),
        )),
    };
    let booking = confirmed_booking(&prepared.db, "bo@example.com").await;
    assert_eq!(crashed.publish(false).await.unwrap(), 1);
    // … so the service's relay publishes it again when it starts: at least once.
    let ev = launch(prepared, Some(brokers)).await;
    marquee_testkit::wait_for("the row to be marked", Duration::from_secs(20), || async {
        (ev.unpublished().await == 0).then_some(())
    })
    .await;
    let topic = settings.kafka.topic;
    let copies = tokio::task::block_in_place(|| ev.read_topic(&topic, 2))
        .into_iter()
        .filter(|(m, _)| m["booking_id"] == booking.as_str())
        .count();
    assert!(
        copies >= 2,
        "published again after the crash ({copies} copies)"
    );
    // One email all the same.
    marquee_testkit::wait_for("the email", Duration::from_secs(30), || async {
        (ev.smtp.messages().len() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        ev.smtp.messages().len(),
        1,
        "the duplicate was not emailed again"
    );
    let sent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE booking_id = $1 AND state = 'sent'",
    )
    .bind(&booking)
    .fetch_one(&ev.db)
    .await
    .unwrap();
    assert_eq!(sent, 1);
}

/// Kafka reachable but silent (every answer later than `message_timeout_ms`), then refusing a
/// burst of produce requests: confirmations go on meanwhile, nothing is marked published that
/// the brokers did not acknowledge, and once Kafka answers again every booking is published
/// and emailed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_then_failing_broker_delays_but_never_loses_or_doubles_an_email() {
    let ev = start(false).await;
    let first = ev.confirmed_booking("before@example.com").await;
    marquee_testkit::wait_for("the first email", Duration::from_secs(40), || async {
        (ev.smtp.messages().len() == 1).then_some(())
    })
    .await;

    ev.mock.set_round_trip(Duration::from_secs(6));
    let mut ids = vec![first];
    for i in 0..3 {
        ids.push(
            ev.confirmed_booking(&format!("silent{i}@example.com"))
                .await,
        );
    }
    // Past the message timeout (3 s in the test configuration) the relay gives up on them;
    // none may be marked published, none emailed.
    marquee_testkit::wait_for(
        "the relay to give up on the silent sends",
        Duration::from_secs(30),
        || async { (ev.counter("outbox_unacknowledged_total").await >= 3).then_some(()) },
    )
    .await;
    assert_eq!(ev.unpublished().await, 3);
    assert_eq!(ev.smtp.messages().len(), 1);

    ev.mock.set_round_trip(Duration::ZERO);
    ev.mock.fail_produce(20);
    for i in 0..2 {
        ids.push(
            ev.confirmed_booking(&format!("failing{i}@example.com"))
                .await,
        );
    }
    marquee_testkit::wait_for("the backlog to drain", Duration::from_secs(60), || async {
        (ev.unpublished().await == 0).then_some(())
    })
    .await;
    marquee_testkit::wait_for("one email per booking", Duration::from_secs(60), || async {
        (ev.smtp.messages().len() == ids.len()).then_some(())
    })
    .await;
    // The notifier records an email sent just after the server has it: wait for the record.
    let per_booking: Vec<(String, i64)> =
        marquee_testkit::wait_for("every email recorded sent", Duration::from_secs(30), || async {
            let sent: Vec<(String, i64)> = sqlx::query_as(
                "SELECT booking_id, count(*) FROM notifications WHERE state = 'sent' GROUP BY booking_id",
            )
            .fetch_all(&ev.db)
            .await
            .unwrap();
            (sent.len() >= ids.len()).then_some(sent)
        })
        .await;
    assert_eq!(per_booking.len(), ids.len(), "{per_booking:?}");
    assert!(per_booking.iter().all(|(_, n)| *n == 1), "{per_booking:?}");
    for id in &ids {
        let mails = ev
            .smtp
            .messages()
            .iter()
            .filter(|m| m.contains(&format!("T{id}")))
            .count();
        assert_eq!(mails, 1, "{id}: one email");
    }
}
