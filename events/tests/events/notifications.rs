use std::time::Duration;

use crate::helpers::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_booking_gets_one_email_with_its_qr_code() {
    let ev = start(false).await;
    let a = ev.confirmed_booking("a@example.com").await;
    let b = ev.confirmed_booking("b@example.com").await;
    marquee_testkit::wait_for("two emails", Duration::from_secs(40), || async {
        (ev.smtp.messages().len() == 2).then_some(())
    })
    .await;
    let mails = ev.smtp.messages();
    for (id, to) in [(&a, "a@example.com"), (&b, "b@example.com")] {
        let mail = mails
            .iter()
            .find(|m| m.contains(&format!("T{id}")))
            .expect("the ticket code is in an email");
        assert!(mail.contains(&format!("To: {to}")), "{mail}");
        assert!(mail.contains("image/svg+xml"), "the QR code is attached");
        assert!(mail.contains("ticket-qr.svg"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_mail_server_is_retried_then_the_message_is_dead_lettered() {
    let ev = start(true).await;
    let booking = ev.confirmed_booking("c@example.com").await;
    marquee_testkit::wait_for("the dead letter", Duration::from_secs(40), || async {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM notifications WHERE booking_id = $1")
                .bind(&booking)
                .fetch_optional(&ev.db)
                .await
                .unwrap();
        (state.as_deref() == Some("dead_lettered")).then_some(())
    })
    .await;
    assert_eq!(
        *ev.smtp.attempts.lock().unwrap(),
        3,
        "three attempts (max_attempts) before giving up"
    );
    let dlq = ev.env.settings().kafka.dead_letter_topic;
    let dead = tokio::task::block_in_place(|| ev.read_topic(&dlq, 1));
    assert!(
        dead.iter()
            .any(|(m, _)| m["booking_id"] == booking.as_str()),
        "{dead:?}"
    );
}
