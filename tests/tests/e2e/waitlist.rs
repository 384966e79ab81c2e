//! Sold out, then a waitlist (issue 19, API.md): waiting fans keep their place while every
//! seat is taken; as holds lapse the worker admits exactly as many as seats came back (never
//! more than the seats available beyond what admitted fans not yet holding could take); the
//! console's history records the hour.

use std::time::Duration;

use redis::AsyncCommands;
use serde_json::{Value, json};

use marquee_e2e::{Fan, Stack, stack};

async fn admitted_total(s: &Stack, event: &str) -> u64 {
    let mut redis = s.redis.clone();
    let v: Option<u64> = redis
        .hget(marquee_waitroom::keys::state(event), "admitted_total")
        .await
        .unwrap();
    v.unwrap_or(0)
}

async fn figures_at(s: &Stack, event: &str) -> i64 {
    let mut redis = s.redis.clone();
    let at: Option<i64> = redis
        .hget(marquee_waitroom::keys::seats(event), "at")
        .await
        .unwrap();
    at.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sold_out_event_admits_exactly_as_many_waiting_fans_as_seats_come_back() {
    let s = stack(1, |s| s.set("worker.tick_ms", 50)).await;
    let event = s
        .event(
            json!({"rate_per_minute": 60000, "max_active": 100, "hold_ttl_s": 3,
                      "max_hold_s": 3, "idle_after_s": 6}),
        )
        .await;
    let show = s.show(&event, 1, 4).await;

    // Four fans take the four seats.
    for n in 1..=4 {
        let (mut fan, _) = s.join(&event, None).await;
        let token = s
            .wait_admitted(&event, &mut fan, Duration::from_secs(10))
            .await;
        let res = s
            .reserve(
                &token,
                None,
                &json!({"show_id": show, "seat_ids": [format!("A-{n}")]}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    // Sold out (as the workers read it): six more fans wait, told so, keeping their places.
    marquee_testkit::wait_for(
        "sold out in the live settings",
        Duration::from_secs(10),
        || async {
            let mut redis = s.redis.clone();
            let cfg: String = redis
                .get(marquee_waitroom::keys::cfg(&event))
                .await
                .unwrap();
            cfg.contains("\"sold_out\":true").then_some(())
        },
    )
    .await;
    let mut waiting: Vec<Fan> = Vec::new();
    for _ in 0..6 {
        waiting.push(s.join(&event, None).await.0);
    }
    marquee_testkit::wait_for("told it is sold out", Duration::from_secs(5), || async {
        let v: Value = s.status(&event, &waiting[5]).await.json().await.unwrap();
        (v["state"] == "sold_out").then_some(())
    })
    .await;
    let before = admitted_total(&s, &event).await;
    assert_eq!(before, 4);

    // The holds lapse (3 s); their fans' slots end the idle time after (6 s). Then the four
    // seats are available and nobody admitted is without a hold: four waiting fans come in.
    let after =
        marquee_testkit::wait_for("the waitlist moves", Duration::from_secs(30), || async {
            let n = admitted_total(&s, &event).await;
            (n > before).then_some(n)
        })
        .await;
    // However many ticks pass with fresh figures, no more than the four come in while the
    // four admitted fans have not held yet.
    let seen = figures_at(&s, &event).await;
    marquee_testkit::wait_for(
        "two more publications of the figures",
        Duration::from_secs(10),
        || async { (figures_at(&s, &event).await >= seen + 1500).then_some(()) },
    )
    .await;
    let settled = admitted_total(&s, &event).await;
    assert!(after <= before + 4, "{after}");
    assert_eq!(settled, before + 4, "exactly as many as seats came back");
    let mut still = 0;
    for fan in &waiting {
        let v: Value = s.status(&event, fan).await.json().await.unwrap();
        if v["state"] != "admitted" {
            still += 1;
        }
    }
    assert_eq!(still, 2, "two fans keep waiting for seats");

    // The console's history: points with the queue and the seats.
    let history = s
        .admin_get(&format!("/admin/v1/events/{event}/history"))
        .await;
    let points = history["points"].as_array().unwrap();
    assert!(points.len() >= 3, "{history}");
    assert!(
        points.iter().any(|p| p["held"] == 4),
        "the holds were recorded: {history}"
    );
    assert!(
        points.iter().any(|p| p["waiting"].as_u64() >= Some(6)),
        "{history}"
    );
}
