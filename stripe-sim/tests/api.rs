//! The simulator as Marquee's services and the opening-night audit use it: PaymentIntents with
//! Stripe's test payment methods, refunds, Stripe's error shape, idempotency keys, injected
//! faults, and the list calls (newest first, paged with `limit` and `starting_after`).

use serde_json::{Value, json};

const KEY: &str = "sk_test_sim";

async fn simulator() -> String {
    let sim = stripe_sim::Simulator::new(stripe_sim::Config {
        webhook_urls: vec![],
        webhook_secret: "whsec_test".into(),
        secret_keys: vec![],
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = sim.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

async fn post(url: &str, form: &[(&str, &str)], key: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).bearer_auth(KEY).form(form);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn get(url: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(url)
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn intent(sim: &str, reservation: &str) -> String {
    let (status, pi) = post(
        &format!("{sim}/v1/payment_intents"),
        &[
            ("amount", "1200"),
            ("currency", "usd"),
            ("metadata[reservation_id]", reservation),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{pi}");
    assert_eq!(pi["metadata"]["reservation_id"], reservation);
    pi["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn test_cards_succeed_decline_or_ask_for_action_and_refunds_give_money_back() {
    let sim = simulator().await;
    let pi = intent(&sim, "r_1").await;
    let confirm = format!("{sim}/v1/payment_intents/{pi}/confirm");
    let (status, error) = post(
        &confirm,
        &[("payment_method", "pm_card_chargeDeclined")],
        None,
    )
    .await;
    assert_eq!(status, 402);
    assert_eq!(error["error"]["code"], "card_declined");
    let (status, paid) = post(&confirm, &[("payment_method", "pm_card_visa")], None).await;
    assert_eq!((status, paid["status"].as_str()), (200, Some("succeeded")));
    assert_eq!(paid["amount_received"], 1200);
    // Confirming again is Stripe's unexpected-state error.
    let (status, error) = post(&confirm, &[("payment_method", "pm_card_visa")], None).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("payment_intent_unexpected_state"))
    );
    let (status, refund) = post(
        &format!("{sim}/v1/refunds"),
        &[("payment_intent", &pi)],
        None,
    )
    .await;
    assert_eq!((status, refund["amount"].as_i64()), (200, Some(1200)));
    let (_, again) = get(&format!("{sim}/v1/payment_intents/{pi}")).await;
    assert_eq!(again["amount_received"], 0);

    let needs_action = intent(&sim, "r_2").await;
    let (status, pi) = post(
        &format!("{sim}/v1/payment_intents/{needs_action}/confirm"),
        &[("payment_method", "pm_card_authenticationRequired")],
        None,
    )
    .await;
    assert_eq!(
        (status, pi["status"].as_str()),
        (200, Some("requires_action"))
    );
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_answer_and_refuse_other_parameters() {
    let sim = simulator().await;
    let url = format!("{sim}/v1/payment_intents");
    let form = [("amount", "500"), ("currency", "usd")];
    let (_, first) = post(&url, &form, Some("key-1")).await;
    let (_, second) = post(&url, &form, Some("key-1")).await;
    assert_eq!(first["id"], second["id"]);
    let (status, error) = post(
        &url,
        &[("amount", "600"), ("currency", "usd")],
        Some("key-1"),
    )
    .await;
    assert_eq!(
        (status, error["error"]["type"].as_str()),
        (400, Some("idempotency_error"))
    );
}

#[tokio::test]
async fn injected_faults_fail_the_next_requests_then_clear() {
    let sim = simulator().await;
    let res = reqwest::Client::new()
        .post(format!("{sim}/_sim/faults"))
        .json(&serde_json::json!({"fail_requests": 2, "status": 503}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let url = format!("{sim}/v1/payment_intents");
    let form = [("amount", "500"), ("currency", "usd")];
    assert_eq!(post(&url, &form, None).await.0, 503);
    assert_eq!(post(&url, &form, None).await.0, 503);
    assert_eq!(post(&url, &form, None).await.0, 200);
    // An unknown key is Stripe's authentication error.
    let res = reqwest::Client::new()
        .get(format!("{sim}/v1/payment_intents"))
        .bearer_auth("not-a-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn lists_page_through_every_intent_and_refund_newest_first() {
    let sim = simulator().await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(intent(&sim, &format!("r_{i}")).await);
    }
    // Pages of three, each starting after the last one seen, until has_more is false.
    let mut seen = Vec::new();
    let mut created = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(a) => format!("{sim}/v1/payment_intents?limit=3&starting_after={a}"),
            None => format!("{sim}/v1/payment_intents?limit=3"),
        };
        let (status, page) = get(&url).await;
        assert_eq!((status, page["object"].as_str()), (200, Some("list")));
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        created.extend(data.iter().map(|pi| pi["created"].as_i64().unwrap()));
        seen.extend(data.iter().map(|pi| pi["id"].as_str().unwrap().to_owned()));
        after = seen.last().cloned();
        if page["has_more"] != true {
            break;
        }
    }
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    sorted_seen.dedup();
    let mut sorted_made = made.clone();
    sorted_made.sort();
    assert_eq!(sorted_seen, sorted_made, "every intent once");
    assert_eq!(seen.len(), 7);
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );

    // Refunds, filtered by PaymentIntent.
    for pi in &made[..2] {
        post(
            &format!("{sim}/v1/payment_intents/{pi}/confirm"),
            &[("payment_method", "pm_card_visa")],
            None,
        )
        .await;
        post(
            &format!("{sim}/v1/refunds"),
            &[("payment_intent", pi)],
            None,
        )
        .await;
    }
    let (_, all) = get(&format!("{sim}/v1/refunds?limit=100")).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    let (_, one) = get(&format!("{sim}/v1/refunds?payment_intent={}", made[0])).await;
    let one = one["data"].as_array().unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["payment_intent"], made[0].as_str());

    // Narrowed to those created from a time on: all of them from a minute ago, none from
    // a minute on (Unix seconds, as Stripe's `created[gte]`).
    let now = chrono::Utc::now().timestamp();
    let (_, recent) = get(&format!(
        "{sim}/v1/payment_intents?limit=100&created[gte]={}",
        now - 60
    ))
    .await;
    assert_eq!(recent["data"].as_array().unwrap().len(), 7);
    let (_, later) = get(&format!(
        "{sim}/v1/refunds?limit=100&created[gte]={}",
        now + 60
    ))
    .await;
    assert_eq!(
        (later["data"].as_array().unwrap().len(), &later["has_more"]),
        (0, &json!(false))
    );

    // Bad paging is Stripe's invalid-request error naming the parameter.
    let (status, error) = get(&format!("{sim}/v1/payment_intents?limit=0")).await;
    assert_eq!(
        (status, error["error"]["param"].as_str()),
        (400, Some("limit"))
    );
    let (status, error) = get(&format!("{sim}/v1/payment_intents?created[gte]=soon")).await;
    assert_eq!(
        (status, error["error"]["param"].as_str()),
        (400, Some("created[gte]"))
    );
    let (status, error) = get(&format!("{sim}/v1/refunds?starting_after=re_nope")).await;
    assert_eq!(
        (status, error["error"]["param"].as_str()),
        (400, Some("starting_after"))
    );
}
