//! A small opening night on every change: hundreds of fans through the whole system (gateway,
//! worker, booking-core, the Stripe simulator, the events service with its Kafka and emails),
//! played by `marquee-loadtest opening-night`'s own code and audited from the outside.

use marquee_e2e::stack;
use marquee_loadtest::opening_night::{self, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_opening_night_sells_every_seat_once_fairly_and_loses_nothing() {
    let s = stack(1, |s| s.set("stripe.payment_grace_s", 5)).await;
    let report = tempfile::tempdir().unwrap();
    let database_url = s.env.database_url.clone();
    let report_file = report.path().join("night.json");
    let mail_dir = s.mail_dir.path().display().to_string();
    let bootstrap = s
        .mail_dir
        .path()
        .join("kafka-bootstrap")
        .display()
        .to_string();
    let redis_url = marquee_testkit::redis_url();
    let args = [
        "--gateway",
        &s.base,
        "--operator-token",
        "test-operator-token",
        "--fans",
        "300",
        "--arrival",
        "prequeue",
        "--prequeue-s",
        "4",
        "--shows",
        "2",
        "--rows",
        "5",
        "--seats-per-row",
        "10",
        "--rate-per-minute",
        "3000",
        "--max-active",
        "30",
        "--hold-ttl-s",
        "3",
        "--idle-after-s",
        "3",
        "--abandon-after-s",
        "5",
        "--walkaway-share",
        "0.05",
        "--decline-share",
        // Some of the ~50 buyers must meet a declined card (asserted below): at 0.1, none
        // did in about one night in two hundred.
        "0.3",
        "--abandon-share",
        "0.05",
        "--duration-s",
        "90",
        "--audit-wait-s",
        "30",
        "--database-url",
        &database_url,
        "--stripe-url",
        &s.stripe_url,
        "--stripe-key",
        "sk_test_demo",
        "--mail-dir",
        &mail_dir,
        "--kafka-bootstrap-file",
        &bootstrap,
        "--sweep-interval-ms",
        "100",
        "--redis-url",
        &redis_url,
        "--report",
        report_file.to_str().unwrap(),
    ];
    let options = Options::from_args(&args).expect("valid options");
    let night = opening_night::run(options).await.expect("the evening runs");
    let summary = night.summary();
    println!("{summary}");

    assert!(night.audit.clean(), "the audit: {summary}");
    assert_eq!(night.sold, night.seats_total, "sold out: {summary}");
    assert_eq!(night.audit.confirmed_bookings, night.fans_who_bought);
    assert!(night.audit.confirmed_bookings > 0);
    assert!(night.admission.cap_respected, "{summary}");
    let fairness = night.fairness.expect("fans were admitted");
    assert!(fairness.kendall_tau >= 0.99, "{summary}");
    assert_eq!(night.prequeue_places_match_seed, Some(true), "{summary}");
    // Walk-aways' holds lapsed and their seats sold again; declined cards paid on a retry.
    assert!(
        night.status_codes["confirm"].contains_key(&402),
        "declined cards were tried: {summary}"
    );
    // The report's files: the JSON and a self-contained page beside it.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();
    assert_eq!(json["audit"]["double_sells"], 0);
    let page = std::fs::read_to_string(report_file.with_extension("html")).unwrap();
    assert!(page.contains("<svg") && !page.contains("<script"));
}
