//! Find my booking, end to end (issue 15): a fan who paid asks through the gateway with the
//! address in another case, and an email arrives through the outbox, Kafka and the notifier
//! with a link to the ticket page; an address with no booking gets the same `202`; each client
//! address and each email address is limited, and nothing on the way holds the address in
//! clear.

use std::time::Duration;

use serde_json::{Value, json};

use marquee_e2e::stack;

async fn lookup(s: &marquee_e2e::Stack, client: &str, email: &str) -> (u16, Value) {
    let res = s
        .http
        .post(s.at("/v1/bookings/lookup"))
        .header("x-forwarded-for", client)
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_gets_links_to_their_tickets_and_nobody_learns_whether_an_address_booked() {
    let s = stack(1, |s| s).await;
    let event = s.event(json!({})).await;
    let show = s.show(&event, 1, 4).await;
    let id = s.buy(&event, &show, "A-1").await;
    marquee_testkit::wait_for("the ticket email", Duration::from_secs(60), || async {
        (s.emails().len() == 1).then_some(())
    })
    .await;

    // Nobody's address and the fan's give the same answer.
    let (nobody, nobody_body) = lookup(&s, "198.51.100.1", "nobody@example.net").await;
    let (known, known_body) = lookup(&s, "198.51.100.2", "  FAN@Example.COM").await;
    assert_eq!((nobody, known), (202, 202));
    assert_eq!(nobody_body, known_body);

    let mail = marquee_testkit::wait_for("the lookup email", Duration::from_secs(60), || async {
        s.emails()
            .into_iter()
            .find(|m| m.contains("Subject: Your Marquee bookings"))
    })
    .await;
    assert!(mail.contains("To: fan@example.com"), "{mail}");
    assert!(mail.contains(&format!("/t/{id}")), "{mail}");
    let (announced,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM outbox WHERE type = 'BookingsLookup'")
            .fetch_one(&sqlx::PgPool::connect(&s.env.database_url).await.unwrap())
            .await
            .unwrap();
    assert_eq!(announced, 1, "the unknown address announced nothing");

    // Each email address: three an hour, whatever the client or the case.
    for client in ["198.51.100.3", "198.51.100.4"] {
        assert_eq!(lookup(&s, client, "fan@example.com").await.0, 202);
    }
    let (limited, body) = lookup(&s, "198.51.100.5", "Fan@example.com").await;
    assert_eq!(limited, 429, "{body}");
    // Each client address: five a minute, whatever the email.
    for n in 0..5 {
        assert_eq!(
            lookup(&s, "203.0.113.7", &format!("probe{n}@example.org"))
                .await
                .0,
            202
        );
    }
    assert_eq!(lookup(&s, "203.0.113.7", "probe5@example.org").await.0, 429);
    assert_eq!(lookup(&s, "203.0.113.8", "probe5@example.org").await.0, 202);
    // A bad address is the caller's mistake.
    assert_eq!(lookup(&s, "203.0.113.9", "not-an-address").await.0, 422);
}
