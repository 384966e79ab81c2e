//! The events service SIGKILLed mid-batch (issue 17): a real process of the test's own, with
//! the mock Kafka cluster in the test (so it outlives the process), killed while it relays
//! and emails a backlog of confirmations, then started again. Every confirmed booking is
//! published, and each gets exactly one email.

use std::time::Duration;

use marquee_events::kafka::MockKafka;
use marquee_testkit::process::{ServiceProcess, free_port};

use crate::helpers::{Smtp, confirmed_booking, prepare};

const BOOKINGS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_mid_batch_it_publishes_every_booking_and_emails_each_once() {
    let p = prepare(false).await;
    let settings = p.env.settings();
    let kafka = MockKafka::start(&[&settings.kafka.topic, &settings.kafka.dead_letter_topic])
        .expect("mock Kafka");
    let smtp: &Smtp = &p.smtp;
    let port = free_port();
    let source = p
        .env
        .source()
        .set("events.listen", format!("127.0.0.1:{port}"))
        .set("kafka.brokers", &kafka.bootstrap)
        .set("mail.transport", "smtp")
        .set("mail.smtp_url", format!("smtp://127.0.0.1:{}", smtp.port));
    let mut ids = Vec::new();
    for i in 0..BOOKINGS {
        ids.push(confirmed_booking(&p.db, &format!("fan{i}@example.com")).await);
    }
    let mut process = ServiceProcess::start("marquee-events", &source, &[]);
    let health = format!("http://127.0.0.1:{port}/healthz");
    process.wait_healthy(&health, Duration::from_secs(30)).await;
    // Killed in the middle: some emails out, most not.
    marquee_testkit::wait_for("the first emails", Duration::from_secs(60), || async {
        (smtp.messages().len() >= 10).then_some(())
    })
    .await;
    process.kill();
    let at_kill = smtp.messages().len();
    assert!(at_kill < BOOKINGS, "killed before the end ({at_kill} sent)");

    process.restart();
    process.wait_healthy(&health, Duration::from_secs(30)).await;
    marquee_testkit::wait_for(
        "every booking emailed",
        Duration::from_secs(120),
        || async {
            let mails = smtp.messages();
            ids.iter()
                .all(|id| mails.iter().any(|m| m.contains(&format!("T{id}"))))
                .then_some(())
        },
    )
    .await;
    let unpublished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&p.db)
            .await
            .unwrap();
    assert_eq!(unpublished, 0, "every booking published");
    // Once each: no email lost, none doubled by the relay's or Kafka's redeliveries. The one
    // email the notifier may have been sending at the kill (sent, not yet recorded) goes again
    // with the same Message-ID, which a mail client shows once: so each booking has exactly
    // one Message-ID, and at most one email of all went twice.
    let mails = smtp.messages();
    for id in &ids {
        let theirs: Vec<&String> = mails
            .iter()
            .filter(|m| m.contains(&format!("T{id}")))
            .collect();
        let mut message_ids: Vec<&str> = theirs.iter().filter_map(|m| message_id(m)).collect();
        message_ids.dedup();
        assert_eq!(message_ids.len(), 1, "{id}: {message_ids:?}");
        assert!(theirs.len() <= 2, "{id}: {} emails", theirs.len());
    }
    assert!(
        (BOOKINGS..=BOOKINGS + 1).contains(&mails.len()),
        "{} emails for {BOOKINGS} bookings",
        mails.len()
    );
}

/// An email's `Message-ID` header.
fn message_id(mail: &str) -> Option<&str> {
    mail.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("message-id")
            .then(|| value.trim())
    })
}
