//! Gateways are interchangeable: a fan's requests may land on any replica behind the load
//! balancer (no sticky sessions), and each answers the same from the shared Redis, queue-token
//! secret and admission keys.

use std::time::Duration;

use serde_json::{Value, json};

use marquee_e2e::stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_can_land_on_any_gateway_replica() {
    let s = stack(1, |src| src.set("worker.tick_ms", 50)).await;
    let other = s.another_gateway().await;
    let event = s.event(json!({"state": "paused"})).await;
    let show = s.show(&event, 1, 4).await;
    s.join(&event, None).await;
    let (fan, joined) = s.join(&event, Some("pocket-secret")).await;
    assert_eq!(joined["position"], 2);

    // The other replica knows the fan's place from the token alone, and a rejoin there keeps it.
    let v: Value = s
        .status_at(&other, &event, &fan)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["state"].as_str(), v["position"].as_u64()),
        (Some("paused"), Some(2)),
        "{v}"
    );
    let again = s.rejoin_at(&other, &event, &fan).await;
    assert_eq!(again["position"], 2, "{again}");
    assert_eq!(again["queue_token"], fan.queue_token.as_str());

    // Opened: admitted as seen from the other replica; the admission token it hands out is
    // good on the first, bound to the fan's key there too.
    s.patch_event(&event, json!({"state": "open"})).await;
    let token = marquee_testkit::wait_for(
        "admission seen on the other replica",
        Duration::from_secs(10),
        || async {
            let v: Value = s
                .status_at(&other, &event, &fan)
                .await
                .json()
                .await
                .unwrap_or_default();
            v["admission_token"].as_str().map(str::to_owned)
        },
    )
    .await;
    let body = json!({"show_id": show, "seat_ids": ["A-1"]});
    let refused = s.reserve(&token, Some("guess"), &body).await;
    assert_eq!(refused.status(), 401);
    let res = s.reserve(&token, Some("pocket-secret"), &body).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    // Both replicas publish the same signing keys.
    let mut published = Vec::new();
    for base in [&s.base, &other] {
        let jwks: Value = s
            .http
            .get(format!("{base}/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        published.push(jwks);
    }
    assert_eq!(published[0], published[1]);
}
