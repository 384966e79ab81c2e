use std::io::Read;

use serde_json::{Value, json};

use crate::helpers::{spawn, spawn_with};

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
    app.metric("catalog_queries_total").await
}

#[tokio::test]
async fn a_search_asks_the_database_once_per_lifetime_and_sees_a_new_show_at_once() {
    let app = spawn().await;
    let event = app.event(600).await;
    let first = app
        .show_in(&event, 1, 2, "Cachetown", "UTC", "2030-07-01T20:00:00Z")
        .await;
    let before = catalog_queries(&app).await;
    // Fifty fans at once, the same search spelled three ways: one read (of the listing).
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
        "one read for one search"
    );
    // Any other search naming a city is answered from that listing.
    assert!(show_ids(&app, "city=Cachetown&genre=drama").await.len() == 1);
    assert!(
        show_ids(&app, "city=elsewhere&date=2030-07-01")
            .await
            .is_empty()
    );
    assert_eq!(
        catalog_queries(&app).await - before,
        1,
        "searches naming a city: the listing"
    );
    // A search without a city asks the database.
    assert!(show_ids(&app, "genre=drama").await.len() == 1);
    assert_eq!(
        catalog_queries(&app).await - before,
        2,
        "a search without a city, a query"
    );

    // A show created through this replica is in the next answer, not one lifetime later.
    let second = app
        .show_in(&event, 1, 2, "Cachetown", "UTC", "2030-07-02T20:00:00Z")
        .await;
    assert_eq!(
        show_ids(&app, "city=Cachetown").await,
        vec![first.clone(), second.clone()]
    );
    assert_eq!(
        show_ids(&app, "city=Cachetown&date=2030-07-02").await,
        vec![second]
    );
}

/// Every search naming a city is answered from the listing held in memory: its answer must be
/// the database's own search's, byte for byte, whatever the city's spelling, the theaters'
/// time zones (a local date that is another day in UTC), the films' genres, a cancelled show;
/// and gzipped, for a client that takes it, the same bytes.
#[tokio::test]
async fn the_listing_answers_every_search_as_the_database_would() {
    let app = spawn().await;
    let event = app.event(600).await;
    let film = |title: &str, genres: &[&str]| json!({"title": title, "genres": genres});
    let films = [
        film("Arrival", &["Drama", "Sci-Fi"]),
        film("Bolero", &["comedy", "family"]),
        film("Crimson", &["Horror"]),
    ];
    let places = [
        ("Odeon", "London", "Europe/London"),
        ("Curzon", "LONDON", "Europe/London"),
        ("Vista", "Los Angeles", "America/Los_Angeles"),
        ("Hibiya", "Tokyo", "Asia/Tokyo"),
    ];
    // Around the local midnights of 1–3 June 2030, in every place, for every film.
    let times = [
        "2030-06-01T10:00:00Z",
        "2030-06-01T23:30:00Z",
        "2030-06-02T06:30:00Z",
        "2030-06-02T15:00:00Z",
        "2030-06-03T01:00:00Z",
    ];
    let mut shows = Vec::new();
    for (i, at) in times.iter().enumerate() {
        for (j, (theater, city, zone)) in places.iter().enumerate() {
            let movie = &films[(i + j) % films.len()];
            let place = json!({
                "movie": movie,
                "theater": {"name": theater, "city": city, "time_zone": zone},
                "screen": format!("{}", 1 + j),
                "starts_at": at,
                "price_cents": 900 + 100 * i,
            });
            shows.push(app.api.show(&event, 1, 2, place).await);
        }
    }
    // One cancelled, as another replica would: before the listing is first read.
    sqlx::query("UPDATE shows SET status = 'cancelled' WHERE id = $1")
        .bind(&shows[5])
        .execute(&app.db)
        .await
        .unwrap();

    let mut compared = 0;
    for city in ["london", "LoNdOn", "los angeles", "tokyo", "paris"] {
        for date in [
            None,
            Some("2030-06-01"),
            Some("2030-06-02"),
            Some("2030-06-03"),
        ] {
            for genre in [
                None,
                Some("drama"),
                Some("COMEDY"),
                Some("horror"),
                Some("western"),
            ] {
                let mut q = format!("city={}", city.replace(' ', "%20"));
                if let Some(d) = date {
                    q += &format!("&date={d}");
                }
                if let Some(g) = genre {
                    q += &format!("&genre={g}");
                }
                let path = format!("/v1/movies?{q}");
                let listed = app.get_json(&path).await;
                let asked = booking_core::catalog::search(
                    &app.db,
                    Some(&city.to_lowercase()),
                    date.map(|d| d.parse().unwrap()),
                    genre.map(str::to_lowercase).as_deref(),
                )
                .await
                .unwrap();
                let asked: Value = serde_json::from_slice(&asked).unwrap();
                assert_eq!(listed, asked, "{q}");
                // A client taking gzip gets the same answer gzipped (joined from pieces
                // deflated when the listing was read), marked so; one that does not, plain.
                let plain = app.http.get(app.at(&path)).send().await.unwrap();
                assert!(plain.headers().get("content-encoding").is_none(), "{q}");
                assert_eq!(plain.headers()["vary"], "accept-encoding", "{q}");
                let plain = plain.bytes().await.unwrap();
                let zipped = (app.http.get(app.at(&path)))
                    .header("accept-encoding", "gzip, deflate, br, zstd")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(zipped.headers()["content-encoding"], "gzip", "{q}");
                assert_eq!(zipped.headers()["vary"], "accept-encoding", "{q}");
                let mut unzipped = Vec::new();
                flate2::read::GzDecoder::new(&zipped.bytes().await.unwrap()[..])
                    .read_to_end(&mut unzipped)
                    .expect("a gzip answer");
                assert_eq!(unzipped, plain, "{q}");
                compared += usize::from(!asked["movies"].as_array().unwrap().is_empty());
            }
        }
    }
    assert!(compared > 20, "most searches found shows: {compared}");
    let london = show_ids(&app, "city=london").await;
    assert_eq!(
        london.len(),
        9,
        "two London theaters, five times, one cancelled"
    );
    assert!(
        !london.contains(&shows[5]),
        "a cancelled show is not listed"
    );
}

/// A change made through another replica (here, straight in the database) is in this
/// replica's answers once the listing's lifetime has passed.
#[tokio::test]
async fn another_replicas_change_is_seen_within_the_listings_lifetime() {
    let app = spawn_with(|s| {
        s.set("booking.catalog_listing_ttl_ms", 300)
            .set("booking.catalog_cache_ttl_ms", 100)
    })
    .await;
    let event = app.event(600).await;
    let show = app
        .show_in(&event, 1, 2, "Relisted", "UTC", "2030-07-01T20:00:00Z")
        .await;
    assert_eq!(show_ids(&app, "city=relisted").await, vec![show.clone()]);
    // While nothing changes, lifetimes pass without the listing being read again (only the
    // catalog's revision is).
    let before = catalog_queries(&app).await;
    let quiet = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    while std::time::Instant::now() < quiet {
        assert_eq!(show_ids(&app, "city=relisted").await, vec![show.clone()]);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        catalog_queries(&app).await,
        before,
        "five lifetimes of an unchanged catalog, no read of the listing"
    );
    sqlx::query("UPDATE shows SET status = 'cancelled' WHERE id = $1")
        .bind(&show)
        .execute(&app.db)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !show_ids(&app, "city=relisted").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the cancelled show is still listed 10 s later"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
