//! Admission tokens at the edge: only a valid token for the show's event reaches booking, and
//! a bound token only with its visitor key.

use std::time::Duration;

use serde_json::{Value, json};

use marquee_e2e::stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admitted_fan_reserves_and_nobody_else_does() {
    let s = stack(1, |s| s.set("worker.tick_ms", 50)).await;
    let event = s.event(json!({})).await;
    let other_event = s.event(json!({})).await;
    let show = s.show(&event, 2, 5).await;
    let (mut fan, joined) = s.join(&event, Some("pocket-secret")).await;
    assert_eq!(joined["state"], "waiting");
    let token = s
        .wait_admitted(&event, &mut fan, Duration::from_secs(10))
        .await;

    let reserve = |token: Option<String>, key: Option<&'static str>| {
        let mut req = s
            .http
            .post(s.at("/v1/bookings/reserve"))
            .json(&json!({"show_id": show, "seat_ids": ["A-1"]}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header("x-visitor-key", k);
        }
        req.send()
    };
    // Bound token: needs the secret whose hash was sent at join.
    assert_eq!(
        reserve(Some(token.clone()), None).await.unwrap().status(),
        401
    );
    assert_eq!(
        reserve(Some(token.clone()), Some("guess"))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(reserve(None, None).await.unwrap().status(), 401);
    let mut tampered = token.clone();
    tampered.insert(tampered.len() / 2, 'x');
    assert_eq!(
        reserve(Some(tampered), Some("pocket-secret"))
            .await
            .unwrap()
            .status(),
        401
    );
    // A token for another event is 403 at the gateway.
    let foreign = s.env.admission_token(&fan.visitor_id, &other_event, 60);
    assert_eq!(reserve(Some(foreign), None).await.unwrap().status(), 403);
    let expired = s.env.admission_token(&fan.visitor_id, &event, -120);
    assert_eq!(
        reserve(Some(expired.clone()), None).await.unwrap().status(),
        401
    );
    // The credential is judged first, at the gateway as in booking-core: a bad token is 401
    // whatever is wrong with the body or the show.
    for body in [
        json!({"show_id": "s_nosuchshow0000000000000", "seat_ids": ["A-1"]}),
        json!({"show_id": show, "seat_ids": "A-1"}),
        json!({"seat_ids": ["A-1"]}),
    ] {
        for bad in ["not-a-jwt", expired.as_str()] {
            let res = s
                .http
                .post(s.at("/v1/bookings/reserve"))
                .bearer_auth(bad)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401, "{body}");
        }
    }

    let res = reserve(Some(token.clone()), Some("pocket-secret"))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let held: Value = res.json().await.unwrap();
    assert_eq!(held["seats"][0]["id"], "A-1");

    // The booking is read through the gateway by its reservation id alone.
    let id = held["reservation_id"].as_str().unwrap();
    let got: Value = s
        .http
        .get(s.at(&format!("/v1/bookings/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserve_with_the_admission_cookie_needs_the_csrf_header() {
    let s = stack(1, |s| s.set("worker.tick_ms", 50)).await;
    let event = s.event(json!({})).await;
    let show = s.show(&event, 1, 5).await;
    let (mut fan, _) = s.join(&event, None).await;
    let token = s
        .wait_admitted(&event, &mut fan, Duration::from_secs(10))
        .await;
    let cookie = format!("marquee_admission={token}");
    let body = json!({"show_id": show, "quantity": 1});
    let res = s
        .http
        .post(s.at("/v1/bookings/reserve"))
        .header("cookie", &cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = s
        .http
        .post(s.at("/v1/bookings/reserve"))
        .header("cookie", &cookie)
        .header("x-marquee-csrf", &fan.csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// A search is kept at the gateway for what is left of booking-core's lifetime for it, by
/// what it asked and the encodings it takes, and forgotten when an operator changes the
/// catalog through the gateway.
#[tokio::test]
async fn the_gateway_keeps_a_search_for_its_lifetime_and_forgets_it_on_an_operators_change() {
    let s = stack(0, |s| s).await;
    let event = s.event(json!({})).await;
    let first = s.show(&event, 1, 3).await;
    let s = &s;
    let kept = || async {
        let metrics = s.text(&s.at("/metrics")).await;
        metrics
            .lines()
            .find(|l| l.starts_with(r#"marquee_catalog_answers_total{from="kept""#))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let search = |gzip: bool| async move {
        let mut req = s.http.get(s.at("/v1/movies?city=Testville&genre=drama"));
        if gzip {
            req = req.header("accept-encoding", "gzip, br");
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        let age: u64 = res.headers()["cache-control"].to_str().unwrap()["public, max-age=".len()..]
            .parse()
            .unwrap();
        assert!(
            age <= 5,
            "no longer than booking-core's own lifetime: {age}"
        );
        let encoding = res.headers().get("content-encoding").cloned();
        assert_eq!(encoding.is_some(), gzip);
        assert_eq!(res.headers()["vary"], "accept-encoding");
        let body = res.bytes().await.unwrap();
        let mut plain = Vec::new();
        if gzip {
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
                .unwrap();
        } else {
            plain = body.to_vec();
        }
        let answer: Value = serde_json::from_slice(&plain).unwrap();
        let shows: Vec<String> = (answer["movies"].as_array().unwrap().iter())
            .flat_map(|film| film["shows"].as_array().unwrap())
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        shows
    };
    assert_eq!(search(false).await, [first.as_str()]);
    let before = kept().await;
    assert_eq!(search(false).await, [first.as_str()], "kept");
    assert_eq!(kept().await, before + 1);
    // The gzip answer is another answer: asked of booking-core, then kept too.
    assert_eq!(search(true).await, [first.as_str()]);
    assert_eq!(kept().await, before + 1);
    assert_eq!(search(true).await, [first.as_str()]);
    assert_eq!(kept().await, before + 2);
    // An operator's new show, through the gateway: both forgotten, the show in both at once.
    let second = s.show(&event, 1, 3).await;
    for gzip in [false, true] {
        let mut shows = search(gzip).await;
        shows.sort();
        let mut both = [first.clone(), second.clone()];
        both.sort();
        assert_eq!(shows, both, "gzip {gzip}");
    }
    assert_eq!(kept().await, before + 2);
}

#[tokio::test]
async fn the_gateway_proxies_catalog_and_admin_and_serves_openapi() {
    let s = stack(0, |s| s).await;
    let event = s.event(json!({})).await;
    let show = s.show(&event, 1, 3).await;
    let movies: Value = s
        .http
        .get(s.at("/v1/movies?city=Testville"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(movies["movies"][0]["shows"][0]["id"], show.as_str());
    let res = s
        .http
        .get(s.at(&format!("/v1/shows/{show}/seats")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("etag"));
    assert!(res.headers().contains_key("x-request-id"));
    let openapi: Value = s
        .http
        .get(s.at("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"]["/v1/queue/{event_id}/join"].is_object());
    let ready = s.http.get(s.at("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    // Past the body limit: a problem, not a dropped connection.
    let res = s
        .http
        .post(s.at("/v1/bookings/reserve"))
        .header("content-type", "application/json")
        .body(vec![b' '; 200_000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}
