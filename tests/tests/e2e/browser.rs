//! Issue 4's browser journey: headless Chromium (Debian `chromium`, driven by playwright-core)
//! opens the waiting room, is admitted by the worker, lands on the booking page and holds
//! seats, pays (a decline, then a good card) and sees its ticket. Screenshots are kept in
//! `tests/browser/artifacts/`.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use marquee_e2e::stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_waits_is_admitted_and_holds_seats_in_a_real_browser() {
    let s = stack(1, |s| s.set("worker.tick_ms", 100)).await;
    let event = s
        .event(json!({"state": "paused", "min_poll_interval_ms": 1000, "pow_bits": 10}))
        .await;
    let show = s.show(&event, 6, 12).await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let artifacts = dir.join("artifacts");
    let run = tokio::process::Command::new("node")
        .arg(dir.join("fan-journey.mjs"))
        .arg(&s.base)
        .arg(&event)
        .arg("test-operator-token")
        .arg(&artifacts)
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser journey finished within 2 minutes")
        .expect("node runs (make test installs node, chromium and playwright-core)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("DONE"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(artifacts.join("3-ticket.png").exists());

    // The seats the page paid for are sold, once, to one confirmed booking with a ticket.
    let db = sqlx::PgPool::connect(&s.env.database_url).await.unwrap();
    let (sold, bookings, tickets): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sold_seats WHERE show_id = $1),
                (SELECT count(*) FROM bookings WHERE show_id = $1 AND status = 'confirmed'),
                (SELECT count(*) FROM tickets WHERE show_id = $1)",
    )
    .bind(&show)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((sold, bookings, tickets), (2, 1, 1));

    // And the ticket arrives by email, once, through the outbox, Kafka and the notifier.
    let mail = marquee_testkit::wait_for("the ticket email", Duration::from_secs(60), || async {
        let mut mails = s.emails();
        (mails.len() == 1).then(|| mails.remove(0))
    })
    .await;
    assert!(mail.contains("To: fan@example.com"), "{mail}");
    assert!(mail.contains("ticket-qr.svg"));
}
