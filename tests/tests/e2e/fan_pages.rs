//! Issue 14's fan pages in headless Chromium at 360 × 740 and 1280 × 800 (`tests/browser/
//! fan-pages.mjs`): a 500-seat house of 30-seat rows in three categories, with aisles,
//! wheelchair spaces and companion seats; at each size a fan sees the whole map, chooses two
//! seats with the keyboard alone, holds them, pays and opens the ticket page, and axe-core
//! finds no serious or critical violation on the waiting, booking, ticket and console pages.
//! Afterwards this test audits what the pages did: each booking's total is its seats' prices,
//! the Stripe simulator was asked for exactly that, and the ticket email lists every seat with
//! its price. Screenshots are kept in `tests/browser/artifacts/`.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use marquee_e2e::stack;

/// 16 rows of 30 and one of 20: Classic A-F (£9), Prime G-L (£14), Recliner M-Q (£21.50).
pub fn house() -> Value {
    let rows: Vec<Value> = (0..17usize)
        .map(|r| {
            let seats = if r == 16 { 20 } else { 30 };
            json!({
                "name": marquee_testkit::api::row_name(r),
                "seats": seats,
                "category": match r { 0..=5 => "Classic", 6..=11 => "Prime", _ => "Recliner" },
                "gaps_after": [6, seats - 6],
            })
        })
        .collect();
    json!({
        "price_cents": null,
        "layout": {
            "categories": [
                {"name": "Classic", "price_cents": 900},
                {"name": "Prime", "price_cents": 1400},
                {"name": "Recliner", "price_cents": 2150},
            ],
            "rows": rows,
            "wheelchair": [{"row": "A", "number": 1}, {"row": "A", "number": 30}],
            "companion": [{"row": "A", "number": 2}, {"row": "A", "number": 29}],
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fans_choose_hold_and_pay_on_a_phone_and_a_laptop_with_the_keyboard_alone() {
    let s = stack(1, |s| s.set("worker.tick_ms", 100)).await;
    // The paused sale shows the operator's message (markup in it shown as text), its own
    // name, colour and logo (a logo from elsewhere that the page is allowed to ask for).
    let waiting = s
        .event(
            json!({"state": "paused", "display_name": "Dune: Part Three — opening night",
                      "accent_color": "#7cc4ff", "logo_url": "https://logo.invalid/dune.png",
                      "message": "Friday is sold out; Saturday still has seats <b>not bold</b>"}),
        )
        .await;
    let open = s.event(json!({})).await;
    let show = s.api.show(&open, 0, 0, house()).await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let artifacts = dir.join("artifacts");
    let run = tokio::process::Command::new("node")
        .arg(dir.join("fan-pages.mjs"))
        .arg(&s.base)
        .arg(&waiting)
        .arg(&open)
        .arg("test-operator-token")
        .arg(&artifacts)
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the pages' journey finished within 4 minutes")
        .expect("node runs (make test installs node, chromium, playwright-core and axe-core)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("DONE"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for size in ["phone", "laptop"] {
        for page in [
            "1-waiting-room",
            "2-seat-map",
            "4-held",
            "6-ticket",
            "7-console",
        ] {
            assert!(artifacts.join(format!("{size}-{page}.png")).exists());
        }
    }
    let fans: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(fans.len(), 2, "{stdout}");

    let db = sqlx::PgPool::connect(&s.env.database_url).await.unwrap();
    for fan in &fans {
        let id = fan["reservation"].as_str().unwrap();
        // The booking's total is the sum of its seats' prices, both Prime.
        let (status, total, prices): (String, i64, Vec<i64>) = sqlx::query_as(
            "SELECT b.status, b.total_cents,
                    (SELECT array_agg(s.price_cents) FROM seats s
                      WHERE s.show_id = b.show_id AND s.seat_id = ANY(b.seat_ids))
             FROM bookings b WHERE b.show_id = $1 AND b.id = $2",
        )
        .bind(&show)
        .bind(id)
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(status, "confirmed");
        assert_eq!(prices, vec![1400, 1400], "{fan}");
        assert_eq!(total, 2800);
        // Stripe was asked for exactly that.
        let pi: String = sqlx::query_scalar(
            "SELECT payment_intent_id FROM payment_attempts WHERE booking_id = $1 AND state = 'succeeded'",
        )
        .bind(id)
        .fetch_one(&db)
        .await
        .unwrap();
        let intent: Value = s
            .http
            .get(format!("{}/v1/payment_intents/{pi}", s.stripe_url))
            .bearer_auth("sk_test_demo")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(intent["amount"], 2800, "{intent}");
        // The booking as the ticket page reads it: each seat with its category and price.
        let view: Value = s.booking(id).await;
        assert!(
            view["seats"]
                .as_array()
                .unwrap()
                .iter()
                .all(|seat| seat["category"] == "Prime" && seat["price_cents"] == 1400),
            "{view}"
        );
        assert_eq!(view["show"]["title"], "Test Film", "{view}");
    }

    // Each fan's email lists its seats with their prices and links to the ticket page.
    // Both ticket emails, and the find-my-booking email the pages asked for (at each size).
    let all = marquee_testkit::wait_for(
        "the ticket and lookup emails",
        Duration::from_secs(60),
        || async {
            let texts = s.emails();
            let tickets = texts
                .iter()
                .filter(|m| m.contains("Subject: Your tickets"))
                .count();
            let lookups = texts
                .iter()
                .filter(|m| m.contains("Subject: Your Marquee bookings"))
                .count();
            (tickets == 2 && lookups == 2).then_some(texts)
        },
    )
    .await;
    let lookups: Vec<&String> = all
        .iter()
        .filter(|m| m.contains("Subject: Your Marquee bookings"))
        .collect();
    let mails: Vec<&String> = all
        .iter()
        .filter(|m| m.contains("Subject: Your tickets"))
        .collect();
    for fan in &fans {
        let id = fan["reservation"].as_str().unwrap();
        let mail = mails
            .iter()
            .find(|m| m.contains(id))
            .unwrap_or_else(|| panic!("no email for {id}"));
        for seat in fan["seats"].as_array().unwrap() {
            let (row, number) = seat.as_str().unwrap().split_once('-').unwrap();
            assert!(
                mail.contains(&format!("Row {row} seat {number}  Prime  14.00 GBP")),
                "{mail}"
            );
        }
        assert!(mail.contains("Total paid: 28.00 GBP"), "{mail}");
        assert!(mail.contains(&format!("/t/{id}")), "{mail}");
        assert!(
            lookups.iter().any(|m| m.contains(&format!("/t/{id}"))),
            "{lookups:?}"
        );
    }
}
