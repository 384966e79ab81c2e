//! The queue API's contract: join, status, cookies, errors.

use serde_json::{Value, json};

use marquee_e2e::stack;

#[tokio::test]
async fn join_gives_a_place_a_token_and_a_cookie_and_rejoining_keeps_it() {
    let s = stack(0, |s| s).await;
    let event = s.event(json!({"state": "paused"})).await;
    let (first, _) = s.join(&event, None).await;
    let res = s
        .http
        .post(s.at(&format!("/v1/queue/{event}/join")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("marquee_queue="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let body: Value = res.json().await.unwrap();
    for f in [
        "visitor_id",
        "state",
        "position",
        "estimated_wait_s",
        "poll_after_ms",
        "queue_token",
        "csrf",
    ] {
        assert!(body.get(f).is_some(), "{f} missing: {body}");
    }
    assert_eq!(body["state"], "paused");
    assert!(
        body["estimated_wait_s"].is_null(),
        "no estimate while paused"
    );
    assert_eq!(body["position"], 2, "second in line");

    // Joining again with the same token returns the same place, not a new one.
    let again = s.rejoin_at(&s.base, &event, &first).await;
    assert_eq!(again["position"], 1);
    assert_eq!(again["queue_token"], first.queue_token.as_str());
    assert_eq!(again["visitor_id"], first.visitor_id.as_str(), "{again}");

    // With the cookie instead of the header, a rejoin must carry the CSRF value.
    let cookie_value = cookie.split(';').next().unwrap().to_owned();
    let res = s
        .http
        .post(s.at(&format!("/v1/queue/{event}/join")))
        .header("cookie", &cookie_value)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = s
        .http
        .post(s.at(&format!("/v1/queue/{event}/join")))
        .header("cookie", &cookie_value)
        .header("x-marquee-csrf", body["csrf"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["position"], 2);
    assert_eq!(again["visitor_id"], body["visitor_id"], "{again}");

    // Status by cookie works too.
    let res = s
        .http
        .get(s.at(&format!("/v1/queue/{event}/status")))
        .header("cookie", &cookie_value)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // A poll whose place did not change carries no token back, in the body or as a cookie.
    for res in [
        s.status(&event, &first).await,
        s.http
            .get(s.at(&format!("/v1/queue/{event}/status")))
            .header("cookie", &cookie_value)
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(res.status(), 200);
        assert!(res.headers().get("set-cookie").is_none());
        let body: Value = res.json().await.unwrap();
        assert!(body.get("queue_token").is_none(), "{body}");
        assert!(body["position"].is_u64(), "{body}");
    }
}

#[tokio::test]
async fn queue_errors_are_problems() {
    let s = stack(0, |s| s).await;
    let closed = s.event(json!({"state": "closed"})).await;
    let open = s.event(json!({})).await;
    let other = s.event(json!({})).await;
    let post = |path: String| s.http.post(s.at(&path)).json(&json!({})).send();
    assert_eq!(
        post("/v1/queue/no-such-event/join".into())
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        post("/v1/queue/BAD_ID/join".into()).await.unwrap().status(),
        404
    );
    assert_eq!(
        post(format!("/v1/queue/{closed}/join"))
            .await
            .unwrap()
            .status(),
        409
    );
    let res = s
        .http
        .post(s.at(&format!("/v1/queue/{open}/join")))
        .json(&json!({"visitor_key_hash": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>().await.unwrap()["errors"][0]["field"],
        "visitor_key_hash"
    );

    let res = s
        .http
        .get(s.at(&format!("/v1/queue/{open}/status")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let (fan, _) = s.join(&open, None).await;
    assert_eq!(
        s.status(&other, &fan).await.status(),
        403,
        "a token for another event"
    );
    let res = s
        .http
        .get(s.at(&format!("/v1/queue/{open}/status")))
        .bearer_auth("forged.token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn polling_faster_than_the_minimum_interval_gets_a_cheap_429() {
    let s = stack(0, |s| s).await;
    let event = s
        .event(json!({"state": "paused", "min_poll_interval_ms": 5000}))
        .await;
    let (fan, _) = s.join(&event, None).await;
    assert_eq!(s.status(&event, &fan).await.status(), 200);
    let res = s.status(&event, &fan).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "5");
    // Another visitor is not affected.
    let (other, _) = s.join(&event, None).await;
    assert_eq!(s.status(&event, &other).await.status(), 200);
}

#[tokio::test]
async fn pages_and_assets_are_served() {
    let s = stack(0, |s| s).await;
    let event = s.event(json!({})).await;
    let page = s
        .http
        .get(s.at(&format!("/e/{event}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("aria-live"));
    // The page's own script (after the shared i18n one), under its hashed name.
    let js = html
        .split("src=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|s| s.starts_with("/assets/waiting-room."))
        .expect("the waiting room's script")
        .to_owned();
    assert!(js.ends_with(".js"), "{js}");
    let asset = s.http.get(s.at(&js)).send().await.unwrap();
    assert_eq!(asset.status(), 200);
    assert!(
        asset.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(
        s.http
            .get(s.at("/e/no-such-event"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        s.http
            .get(s.at(&format!("/b/{event}")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(s.http.get(s.at("/ops")).send().await.unwrap().status(), 200);
    let jwks: Value = s
        .http
        .get(s.at("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
}

/// Proof of work at join, when the operator asks for it (`pow_bits`): a new visitor without a
/// solution, with a forged, another event's or an unsolved challenge is refused, naming `pow`;
/// a solved challenge joins once and only once; a fan rejoining with a token needs none; an
/// event without it hands out challenges of 0 bits and joins without one.
#[tokio::test]
async fn joining_an_event_that_asks_for_proof_of_work() {
    use sha2::{Digest, Sha256};
    let s = stack(0, |s| s).await;
    let event = s.event(json!({"pow_bits": 8})).await;
    let other = s.event(json!({})).await;
    let challenge = |event: String| {
        let s = &s;
        async move {
            let res = s
                .http
                .get(s.at(&format!("/v1/queue/{event}/challenge")))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let solve = |c: &str, bits: u32| {
        (0u64..)
            .map(|n| n.to_string())
            .find(|n| {
                let digest = Sha256::digest(format!("{c}:{n}"));
                queue_gateway::queue::pow::leading_zero_bits(&digest) >= bits
            })
            .unwrap()
    };
    let join = |body: Value| {
        let (s, event) = (&s, event.clone());
        async move {
            let res = s
                .http
                .post(s.at(&format!("/v1/queue/{event}/join")))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let refused = |(status, body): (u16, Value), why: &str| {
        assert_eq!(status, 422, "{body}");
        let error = &body["errors"][0];
        assert_eq!(error["field"], "pow", "{body}");
        let detail = error["message"].as_str().unwrap();
        assert!(detail.contains(why), "{detail} should say {why}");
    };

    let c = challenge(event.clone()).await;
    assert_eq!(c["bits"], 8);
    let text = c["challenge"].as_str().unwrap().to_owned();
    let nonce = solve(&text, 8);

    refused(join(json!({})).await, "asks new visitors for proof of work");
    let forged = text.replace(&event, &other);
    refused(
        join(json!({"pow": {"challenge": forged, "nonce": nonce}})).await,
        "not a challenge from this gateway",
    );
    let elsewhere = challenge(other.clone()).await["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let elsewhere_nonce = solve(&elsewhere, 8);
    refused(
        join(json!({"pow": {"challenge": elsewhere, "nonce": elsewhere_nonce}})).await,
        "for another event",
    );
    let unsolved = (0u64..)
        .map(|n| n.to_string())
        .find(|n| {
            let digest = Sha256::digest(format!("{text}:{n}"));
            queue_gateway::queue::pow::leading_zero_bits(&digest) < 8
        })
        .unwrap();
    refused(
        join(json!({"pow": {"challenge": text, "nonce": unsolved}})).await,
        "must start with 8 zero bits",
    );

    let (status, joined) = join(json!({"pow": {"challenge": text, "nonce": nonce}})).await;
    assert_eq!(status, 201, "{joined}");
    refused(
        join(json!({"pow": {"challenge": text, "nonce": nonce}})).await,
        "used already",
    );
    // Rejoining with the token keeps the place, without a new proof.
    let res = s
        .http
        .post(s.at(&format!("/v1/queue/{event}/join")))
        .bearer_auth(joined["queue_token"].as_str().unwrap())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.json::<Value>().await.unwrap()["position"],
        joined["position"]
    );

    // An event without proof of work.
    assert_eq!(challenge(other.clone()).await["bits"], 0);
    s.join(&other, None).await;
}

/// A fan who leaves gives its place up (the worker passes over it and the next fan is admitted
/// first) and its slot, if it held one; leaving needs the fan's own token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_who_leaves_gives_up_the_place_and_the_next_fan_goes_first() {
    let mut s = marquee_e2e::stack(1, |s| s.set("worker.tick_ms", 50)).await;
    let event = s.event(json!({"state": "paused"})).await;
    let (leaver, _) = s.join(&event, None).await;
    let (mut next, _) = s.join(&event, None).await;
    let leave = |token: Option<String>| {
        let req = s.http.delete(s.at(&format!("/v1/queue/{event}/place")));
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        async move { req.send().await.unwrap() }
    };
    assert_eq!(leave(None).await.status(), 401, "no token, no leaving");
    let res = leave(Some(leaver.queue_token.clone())).await;
    assert_eq!(res.status(), 204);
    let cleared = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().contains("Max-Age=0"));
    assert!(cleared, "the queue cookie is cleared");
    let mut redis = s.redis.clone();
    let waiting: u64 =
        redis::AsyncCommands::zcard(&mut redis, marquee_waitroom::keys::waiting(&event))
            .await
            .unwrap();
    assert_eq!(waiting, 1, "only the next fan is left in line");

    // Opened with room for one: the next fan is admitted, the one who left never is.
    s.patch_event(&event, json!({"state": "open", "max_active": 1}))
        .await;
    s.wait_admitted(&event, &mut next, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(s.active_count(&event).await, 1);
    let v: Value = s.status(&event, &leaver).await.json().await.unwrap();
    assert_ne!(v["state"], "admitted", "{v}");
}

/// Fans joining at the same moment go to Redis together (the gateway coalesces an event's new
/// joins): each still gets a place of its own, the one it is told, and one pre-queue entry
/// before opening.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fans_joining_at_once_each_get_the_place_they_are_told() {
    use marquee_waitroom::{keys, queue};
    use redis::AsyncCommands;
    let s = stack(0, |s| {
        s.set("gateway.per_ip_per_second", 100_000)
            .set("gateway.per_ip_burst", 100_000)
    })
    .await;
    let event = s.event(json!({"state": "paused"})).await;
    let fans = 300;
    let joined = futures::future::join_all((0..fans).map(|_| s.join(&event, None))).await;
    let mut redis = s.redis.clone();
    let mut positions = Vec::new();
    for (fan, body) in &joined {
        let position = body["position"].as_u64().expect("a position");
        let place: Option<u64> = redis
            .zscore(keys::waiting(&event), &fan.visitor_id)
            .await
            .unwrap();
        assert_eq!(place, Some(queue::OFFSET + position), "{body}");
        positions.push(position);
    }
    positions.sort_unstable();
    assert_eq!(positions, (1..=fans).collect::<Vec<u64>>());
    let waiting: u64 = redis.zcard(keys::waiting(&event)).await.unwrap();
    assert_eq!(waiting, fans);
    // Each told the same by its next poll.
    for (fan, body) in joined.iter().step_by(37) {
        let polled: Value = s.status(&event, fan).await.json().await.unwrap();
        assert_eq!(polled["position"], body["position"], "{polled}");
    }
    // The gateway counts the calls that joined two or more, and the fans in them.
    let metrics = s.text(&format!("{}/metrics", s.base)).await;
    let figure = |name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(name));
        line.and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
    };
    let (batches, batched) = (
        figure("marquee_join_batches_total"),
        figure("marquee_join_batched_total"),
    );
    assert!(
        batched >= 2 * batches && batched <= fans,
        "{batches} {batched}"
    );

    let opens = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let early = s
        .event(json!({"state": "prequeue", "opens_at": opens}))
        .await;
    let joined = futures::future::join_all((0..100).map(|_| s.join(&early, None))).await;
    for (fan, body) in &joined {
        assert_eq!(body["state"], "prequeue", "{body}");
        let member: bool = redis
            .sismember(keys::prequeue(&early), &fan.visitor_id)
            .await
            .unwrap();
        assert!(member, "{body}");
    }
    let prequeue: u64 = redis.scard(keys::prequeue(&early)).await.unwrap();
    assert_eq!(prequeue, 100);
}
