//! The operator's live message reaches the crowd (issue 19, API.md): a change is in every
//! status answer, on every gateway, within 2 s, and cleared as fast; the event's presentation
//! rides along; the waiting page allows images only from itself and https.

use std::time::Duration;

use serde_json::{Value, json};

use marquee_e2e::stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_in_every_status_answer_on_every_gateway_within_2_s() {
    // Nobody is admitted: the fans stay waiting and keep polling.
    let s = stack(1, |s| s).await;
    let other = s.another_gateway().await;
    let event = s
        .event(json!({"rate_per_minute": 1, "max_active": 1}))
        .await;
    let (_ahead, _) = s.join(&event, None).await;
    let (fan, _) = s.join(&event, None).await;
    let status = |base: String| {
        let fan = fan.clone();
        let s = &s;
        let event = event.clone();
        async move {
            let res = s.status_at(&base, &event, &fan).await;
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let before = status(s.base.clone()).await;
    assert!(before.get("message").is_none(), "no message yet: {before}");

    let text = "Friday is sold out; Saturday still has seats <b>not bold</b>";
    s.patch_event(
        &event,
        json!({"message": text, "display_name": "Opening night", "accent_color": "#7cc4ff",
               "logo_url": "https://cdn.example.com/logo.png"}),
    )
    .await;
    let changed = tokio::time::Instant::now();
    for base in [s.base.clone(), other.clone()] {
        let seen = marquee_testkit::wait_for(
            "the message in the status answer",
            Duration::from_secs(2).saturating_sub(changed.elapsed()),
            || {
                let status = status(base.clone());
                async move {
                    let v = status.await;
                    (v["message"] == text).then_some(v)
                }
            },
        )
        .await;
        assert_eq!(seen["display_name"], "Opening night");
        assert_eq!(seen["accent_color"], "#7cc4ff");
        assert_eq!(seen["logo_url"], "https://cdn.example.com/logo.png");
        assert_eq!(seen["state"], "waiting", "the fan keeps its place");
    }

    s.patch_event(&event, json!({"message": null})).await;
    let cleared = tokio::time::Instant::now();
    marquee_testkit::wait_for(
        "the message gone",
        Duration::from_secs(2).saturating_sub(cleared.elapsed()),
        || {
            let status = status(other.clone());
            async move { status.await.get("message").is_none().then_some(()) }
        },
    )
    .await;

    // The page: images from itself or https only, nothing else from elsewhere.
    let page = s
        .http
        .get(s.at(&format!("/e/{event}")))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("img-src 'self' https:"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"referrerpolicy="no-referrer""#),
        "the logo sends no referrer"
    );
}
