use serde_json::Value;

use crate::helpers::spawn;

#[tokio::test]
async fn movies_filter_by_city_local_date_and_genre() {
    let app = spawn().await;
    let event = app.event(600).await;
    // 23:30 in Los Angeles on 1 June is 06:30 UTC on 2 June: the local date must win.
    let la = app
        .show_in(
            &event,
            2,
            5,
            "Los Angeles",
            "America/Los_Angeles",
            "2030-06-01T23:30:00-07:00",
        )
        .await;
    let ldn = app
        .show_in(
            &event,
            2,
            5,
            "London",
            "Europe/London",
            "2030-06-02T10:00:00+01:00",
        )
        .await;

    assert_eq!(
        show_ids(&app, "city=los%20angeles&date=2030-06-01").await,
        vec![la.clone()]
    );
    assert!(
        show_ids(&app, "city=Los%20Angeles&date=2030-06-02")
            .await
            .is_empty()
    );
    assert_eq!(show_ids(&app, "date=2030-06-02").await, vec![ldn.clone()]);
    assert_eq!(
        show_ids(&app, "genre=DRAMA&city=London").await,
        vec![ldn.clone()]
    );
    assert!(show_ids(&app, "genre=horror").await.is_empty());
    // Every shape of filter (each has a statement of its own), against both shows.
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    let mut all = vec![la.clone(), ldn.clone()];
    all.sort();
    for (q, want) in [
        ("", all.clone()),
        ("city=LONDON", vec![ldn.clone()]),
        ("date=2030-06-01", vec![la.clone()]),
        ("genre=drama", all.clone()),
        ("city=london&date=2030-06-02", vec![ldn.clone()]),
        ("city=los%20angeles&genre=drama", vec![la.clone()]),
        ("date=2030-06-01&genre=Drama", vec![la.clone()]),
        ("city=london&date=2030-06-02&genre=drama", vec![ldn.clone()]),
        ("city=london&date=2030-06-01&genre=drama", vec![]),
        ("city=london&date=2030-06-02&genre=horror", vec![]),
        ("city=paris", vec![]),
    ] {
        assert_eq!(sorted(show_ids(&app, q).await), want, "{q}");
    }

    let show: Value = app
        .http
        .get(app.at(&format!("/v1/shows/{la}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(show["event_id"], event.as_str());
    assert_eq!(show["seat_count"], 10);
}

/// The ids of the shows `/v1/movies?{q}` lists, in its order.
async fn show_ids(app: &crate::helpers::TestApp, q: &str) -> Vec<String> {
    let v = app.get_json(&format!("/v1/movies?{q}")).await;
    v["movies"]
        .as_array()
        .unwrap_or_else(|| panic!("{q}: {v}"))
        .iter()
        .flat_map(|m| m["shows"].as_array().unwrap().clone())
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn seat_map_has_an_etag_and_answers_304() {
    let app = spawn().await;
    let event = app.event(600).await;
    let show = app.show(&event, 3, 4).await;
    let res = app
        .http
        .get(app.at(&format!("/v1/shows/{show}/seats")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["seats"].as_array().unwrap().len(), 12);
    assert_eq!(body["seats"][0]["id"], "A-1");
    assert_eq!(body["seats"][0]["status"], "available");
    let again = app
        .http
        .get(app.at(&format!("/v1/shows/{show}/seats")))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn seat_changes_arrive_as_server_sent_events() {
    use std::time::{Duration, Instant};
    let app = spawn().await;
    let event = app.event(600).await;
    let show = app.show(&event, 1, 4).await;
    let mut stream = app
        .http
        .get(app.at(&format!("/v1/shows/{show}/seats/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    // Read the stream until `want` appears, or fail after `deadline`.
    async fn read_until(
        stream: &mut reqwest::Response,
        seen: &mut String,
        want: &[&str],
        deadline: Duration,
    ) {
        let end = Instant::now() + deadline;
        while !want.iter().all(|w| seen.contains(w)) {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.chunk()).await {
                Ok(Ok(Some(bytes))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
                other => {
                    panic!("stream ended or timed out waiting for {want:?}: {other:?}\n{seen}")
                }
            }
        }
    }
    read_until(
        &mut stream,
        &mut seen,
        &["event: snapshot", "\"A-2\""],
        Duration::from_secs(5),
    )
    .await;
    seen.clear();
    let held_at = Instant::now();
    let res = app
        .reserve(&app.token("streamer", &event), &json_body(&show))
        .await;
    assert_eq!(res.status(), 201);
    read_until(
        &mut stream,
        &mut seen,
        &["event: seats", "\"A-2\"", "\"held\""],
        Duration::from_secs(5),
    )
    .await;
    // The contract: within 1 s (cache TTL plus one watcher tick); a little slack for a busy machine.
    assert!(
        held_at.elapsed() < Duration::from_millis(1800),
        "took {:?}",
        held_at.elapsed()
    );
    assert!(
        !seen.contains("\"A-1\""),
        "only changed seats are sent: {seen}"
    );
}

fn json_body(show: &str) -> Value {
    serde_json::json!({"show_id": show, "seat_ids": ["A-2"]})
}

/// `marquee_catalog_queries_total` from booking-core's `/metrics`.
async fn catalog_queries(app: &crate::helpers::TestApp) -> u64 {
    let text = app
        .http
        .get(app.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    marquee_testkit::metric(&text, "catalog_queries_total")
        .expect("marquee_catalog_queries_total exported")
}

#[tokio::test]
async fn a_search_asks_the_database_once_per_lifetime_and_sees_a_new_show_at_once() {
    let app = spawn().await;
    let event = app.event(600).await;
    let first = app
        .show_in(&event, 1, 2, "Cachetown", "UTC", "2030-07-01T20:00:00Z")
        .await;
    let before = catalog_queries(&app).await;
    // Fifty fans at once, the same search spelled three ways: one query.
    let answers = futures::future::join_all((0..50).map(|i| {
        show_ids(
            &app,
            match i % 3 {
                0 => "city=Cachetown",
                1 => "city=cachetown",
                _ => "city=CACHETOWN",
            },
        )
    }))
    .await;
    assert!(
        answers.iter().all(|a| *a == vec![first.clone()]),
        "{answers:?}"
    );
    assert_eq!(
        catalog_queries(&app).await - before,
        1,
        "one query for one search"
    );
    assert!(show_ids(&app, "city=Cachetown&genre=drama").await.len() == 1);
    assert_eq!(
        catalog_queries(&app).await - before,
        2,
        "another search, another query"
    );

    // A show created through this replica is in the next answer, not one lifetime later.
    let second = app
        .show_in(&event, 1, 2, "Cachetown", "UTC", "2030-07-02T20:00:00Z")
        .await;
    assert_eq!(show_ids(&app, "city=Cachetown").await, vec![first, second]);
}
