//! Access codes (issue 19, API.md): a single-use code raced by 50 fans admits exactly one;
//! wrong codes are limited per client address and per event; a priority code goes before the
//! general queue within the cap; a rejoin uses no further use; a revoked code stops at once;
//! codes appear nowhere but in the one answer that made them.

use std::time::Duration;

use serde_json::{Value, json};

use marquee_e2e::{Stack, stack};

/// A batch for `event`; its id and codes.
async fn batch(
    s: &Stack,
    event: &str,
    count: u32,
    uses: u32,
    effect: &str,
) -> (String, Vec<String>) {
    let res = s
        .admin_post(
            &format!("/admin/v1/events/{event}/access-codes"),
            &json!({"count": count, "uses_per_code": uses, "effect": effect,
                    "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    let codes = v["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (v["batch_id"].as_str().unwrap().to_owned(), codes)
}

async fn join_with(s: &Stack, event: &str, code: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = s
        .http
        .post(s.at(&format!("/v1/queue/{event}/join")))
        .json(&json!({ "access_code": code }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_use_code_raced_by_50_fans_admits_exactly_one() {
    let mut s = stack(1, |s| s.set("admission.access_code_fails_per_client", 1000)).await;
    // Nobody is admitted from the general queue (a rate of one a minute, already spent).
    let event = s
        .event(json!({"rate_per_minute": 1, "max_active": 100}))
        .await;
    let (_, codes) = batch(&s, &event, 1, 1, "skip").await;
    let code = &codes[0];
    assert_eq!(code.len(), 15, "XXXX-XXXX-XXXXX: {code}");

    let answers =
        futures::future::join_all((0..50).map(|_| join_with(&s, &event, code, None))).await;
    let admitted: Vec<&Value> = answers
        .iter()
        .filter(|(st, v)| *st == 201 && v["state"] == "admitted")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(admitted.len(), 1, "exactly one fan: {answers:?}");
    assert!(admitted[0]["admission_token"].is_string());
    for (status, v) in answers.iter().filter(|(st, _)| *st != 201) {
        assert_eq!(*status, 403, "{v}");
        assert!(v["type"].as_str().unwrap().ends_with("/access-code"), "{v}");
        assert!(
            !v.to_string().contains(code.as_str()),
            "a refusal never echoes the code"
        );
    }
    assert_eq!(s.active_count(&event).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_are_limited_per_client_and_per_event() {
    let s = stack(1, |s| s).await;
    let event = s.event(json!({})).await;
    let (_, codes) = batch(&s, &event, 1, 5, "priority").await;
    // The test configuration allows ten wrong codes a minute from one client address.
    for i in 0..10 {
        let (status, _) = join_with(&s, &event, &format!("WRNG-CODE-000{i:02}"), None).await;
        assert_eq!(status, 403, "wrong code {i}");
    }
    let res = s
        .http
        .post(s.at(&format!("/v1/queue/{event}/join")))
        .json(&json!({ "access_code": codes[0] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "even a right code waits out the minute");
    assert!(res.headers().contains_key("retry-after"));

    // On the event from everyone together, however many addresses a guesser uses.
    let mut redis = s.redis.clone();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let key = b"test-access-code-key-0123456789abcdef0123";
    let mut limited = 0;
    for i in 0..400 {
        let client = format!("198.51.100.{}", i % 250);
        let outcome = marquee_waitroom::access_codes::redeem(
            &mut redis,
            &marquee_waitroom::access_codes::Redeem {
                event: &event,
                visitor: &format!("guesser-{i}"),
                code_hash: &marquee_waitroom::access_codes::hash(key, &format!("GUESS{i:08}")),
                client: &client,
                now_ms,
                fails_per_client: 10,
                fails_per_event: 300,
                max_active: 1000,
                session_ttl_ms: 600_000,
                idle_ms: 180_000,
                open: true,
            },
        )
        .await
        .unwrap();
        if matches!(
            outcome,
            marquee_waitroom::access_codes::Redeemed::Limited { .. }
        ) {
            limited += 1;
        }
    }
    assert!(
        limited >= 90,
        "past 300 wrong codes on the event, every try is limited: {limited}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_code_goes_first_a_rejoin_uses_nothing_and_a_revoked_batch_stops() {
    let s = stack(1, |s| s.set("worker.tick_ms", 50)).await;
    // Paused while the line forms; then one slot.
    let event = s
        .event(json!({"state": "paused", "rate_per_minute": 6000, "max_active": 1}))
        .await;
    let (general, _) = s.join(&event, None).await;
    let (batch_id, codes) = batch(&s, &event, 2, 2, "priority").await;
    let (status, lane) = join_with(&s, &event, &codes[0], None).await;
    assert_eq!(
        status, 409,
        "codes work while open or in the pre-queue: {lane}"
    );
    s.patch_event(
        &event,
        json!({"state": "prequeue", "opens_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    // Typed in lower case: read forgivingly. (Once every gateway has the new state; a 409
    // uses nothing.)
    let lane = marquee_testkit::wait_for(
        "a code join in the pre-queue",
        Duration::from_secs(5),
        || async {
            let (status, v) = join_with(&s, &event, &codes[0].to_lowercase(), None).await;
            assert!(status == 201 || status == 409, "{status} {v}");
            (status == 201).then_some(v)
        },
    )
    .await;
    assert_eq!(lane["state"], "prequeue", "{lane}");
    let lane_token = lane["queue_token"].as_str().unwrap().to_owned();
    // Joining again with the same token and code keeps the place and uses nothing more.
    let (status, again) = join_with(&s, &event, &codes[0], Some(&lane_token)).await;
    assert_eq!(status, 201);
    assert_eq!(again["visitor_id"], lane["visitor_id"], "the same visitor");
    let listed = s
        .admin_get(&format!("/admin/v1/events/{event}/access-codes"))
        .await;
    assert_eq!(listed["batches"][0]["used"], 1, "{listed}");
    assert!(
        !listed.to_string().contains(&codes[0]),
        "codes are never listed"
    );

    // Open with one slot: the lane's fan gets it, the general queue's first fan waits.
    s.patch_event(
        &event,
        json!({"state": "open", "opens_at": "2026-01-01T00:00:00Z"}),
    )
    .await;
    let mut lane_fan = marquee_e2e::Fan {
        visitor_id: lane["visitor_id"].as_str().unwrap().to_owned(),
        queue_token: lane_token,
        csrf: lane["csrf"].as_str().unwrap().to_owned(),
        key: None,
    };
    s.wait_admitted(&event, &mut lane_fan, Duration::from_secs(10))
        .await;
    let v: Value = s.status(&event, &general).await.json().await.unwrap();
    assert_eq!(
        v["state"], "waiting",
        "the general queue waits for the slot: {v}"
    );

    // Revoked: the batch's other code stops at once.
    let res = s
        .http
        .delete(s.at(&format!("/admin/v1/events/{event}/access-codes/{batch_id}")))
        .header("authorization", marquee_e2e::OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(join_with(&s, &event, &codes[1], None).await.0, 403);
    let listed = s
        .admin_get(&format!("/admin/v1/events/{event}/access-codes"))
        .await;
    assert_eq!(listed["batches"][0]["revoked"], true);

    // The audit trail has the batch and its revocation, and no code.
    let audit = s
        .admin_get(&format!("/admin/v1/audit?event_id={event}"))
        .await;
    let text = audit.to_string();
    assert!(
        text.contains("access_codes.create") && text.contains("access_codes.revoke"),
        "{text}"
    );
    assert!(
        codes.iter().all(|c| !text.contains(c.as_str())),
        "no code in the trail"
    );
}
