//! The active cap counts fans who are shopping, not fans admitted within the last session:
//! a fan who buys gives its slot to the next fan at once, one who released its hold or does
//! nothing gives it up after the event's idle time (`marquee_waitroom::session`). Found by the
//! opening-night run: with slots held for the whole session, a cap of 40 admitted 40 fans and
//! then nobody for the rest of the sale.

use std::time::Duration;

use serde_json::{Value, json};

use marquee_e2e::{Fan, Stack, stack};

/// Poll `fan` until the answer is `admitted` or the deadline passes; the admission token.
async fn admitted_within(s: &Stack, event: &str, fan: &mut Fan, secs: u64) -> String {
    s.wait_admitted(event, fan, Duration::from_secs(secs)).await
}

async fn state_of(s: &Stack, event: &str, fan: &Fan) -> Value {
    s.status(event, fan).await.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_who_buys_hands_its_slot_to_the_next_fan() {
    let mut s = stack(1, |s| s.set("worker.tick_ms", 50)).await;
    // One slot; sessions and idle time far longer than the test, so only the purchase can
    // free the slot.
    let event = s
        .event(json!({"max_active": 1, "session_ttl_s": 900, "idle_after_s": 900}))
        .await;
    let show = s.show(&event, 1, 5).await;
    let (mut first, _) = s.join(&event, None).await;
    let (mut second, _) = s.join(&event, None).await;
    let token = admitted_within(&s, &event, &mut first, 10).await;
    let answer = state_of(&s, &event, &first).await;
    assert!(answer["admitted_at"].is_string(), "{answer}");
    assert_eq!(state_of(&s, &event, &second).await["state"], "waiting");
    assert_eq!(s.active_count(&event).await, 1);

    let held: Value = s
        .reserve(&token, None, &json!({"show_id": show, "quantity": 2}))
        .await
        .json()
        .await
        .unwrap();
    let reservation = held["reservation_id"].as_str().expect("held").to_owned();
    assert_eq!(state_of(&s, &event, &second).await["state"], "waiting");
    let (status, body) = s.pay(&reservation, "pm_card_visa").await;
    assert_eq!(status, 200, "{body}");

    // The slot is free: the next fan is admitted long before any session or idle time ends.
    admitted_within(&s, &event, &mut second, 10).await;
    // The buyer's token still verifies, but its turn is over: a reserve is refused, saying so.
    let res = s
        .reserve(&token, None, &json!({"show_id": show, "quantity": 1}))
        .await;
    assert_eq!(res.status(), 401);
    let problem: Value = res.json().await.unwrap();
    assert!(
        problem["type"].as_str().unwrap().ends_with("session-ended"),
        "{problem}"
    );
    assert_eq!(state_of(&s, &event, &first).await["state"], "expired");
    assert!(s.active_count(&event).await <= 1, "never above the cap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_fans_and_fans_who_release_give_up_their_slots_after_the_idle_time() {
    let mut s = stack(1, |s| s.set("worker.tick_ms", 50)).await;
    let event = s
        .event(json!({"max_active": 1, "session_ttl_s": 900, "idle_after_s": 2}))
        .await;
    let show = s.show(&event, 1, 5).await;
    let mut fans = Vec::new();
    for _ in 0..3 {
        fans.push(s.join(&event, None).await.0);
    }
    let [idle, releasing, last] = &mut fans[..] else {
        unreachable!()
    };

    // Admitted, then nothing: after the idle time the slot goes to the next fan.
    let idle_token = admitted_within(&s, &event, idle, 10).await;
    let releasing_token = admitted_within(&s, &event, releasing, 10).await;
    let res = s
        .reserve(&idle_token, None, &json!({"show_id": show, "quantity": 1}))
        .await;
    assert_eq!(res.status(), 401, "the idle fan's turn is over");

    // Holding keeps the slot past the idle time (the hold lasts 600 s here) ...
    let held: Value = s
        .reserve(
            &releasing_token,
            None,
            &json!({"show_id": show, "quantity": 1}),
        )
        .await
        .json()
        .await
        .unwrap();
    let reservation = held["reservation_id"].as_str().expect("held").to_owned();
    let after_hold = tokio::time::Instant::now();
    assert_eq!(state_of(&s, &event, last).await["state"], "waiting");
    // ... and releasing leaves it the idle time, during which the fan may choose again.
    let res = s
        .http
        .delete(s.at(&format!("/v1/bookings/{reservation}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = s
        .reserve(
            &releasing_token,
            None,
            &json!({"show_id": show, "quantity": 1}),
        )
        .await;
    assert_eq!(res.status(), 201, "choosing again within the idle time");
    let again: Value = res.json().await.unwrap();
    let res = s
        .http
        .delete(s.at(&format!(
            "/v1/bookings/{}",
            again["reservation_id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    admitted_within(&s, &event, last, 10).await;
    assert!(
        after_hold.elapsed() >= Duration::from_secs(2),
        "the slot was kept for the idle time after the release"
    );
    assert!(s.active_count(&event).await <= 1, "never above the cap");
}
