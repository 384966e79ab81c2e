//! Seat categories, prices and kinds (issue 14): a layout names categories a row each, aisles
//! and wheelchair and companion places; the seat map says each seat's category, price, kind
//! and aisle; best available can ask for a category and never offers a wheelchair or
//! companion place or a pair split by an aisle; a hold costs the sum of its seats' prices.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn};

/// Row A: Classic £9 with a wheelchair space, its companion and an aisle after
/// A-4; row B: Prime £14, an aisle after B-2; row C: Recliner £21.50.
async fn house(app: &TestApp, event: &str) -> String {
    app.api
        .show(
            event,
            0,
            0,
            json!({
                "price_cents": null,
                "layout": {
                    "categories": [
                        {"name": "Classic", "price_cents": 900},
                        {"name": "Prime", "price_cents": 1400},
                        {"name": "Recliner", "price_cents": 2150},
                    ],
                    "rows": [
                        {"name": "A", "seats": 8, "category": "Classic", "gaps_after": [4]},
                        {"name": "B", "seats": 4, "category": "Prime", "gaps_after": [2]},
                        {"name": "C", "seats": 4, "category": "Recliner"},
                    ],
                    "wheelchair": [{"row": "A", "number": 1}],
                    "companion": [{"row": "A", "number": 2}],
                },
            }),
        )
        .await
}

fn seat<'a>(map: &'a Value, id: &str) -> &'a Value {
    map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {map}"))
}

#[tokio::test]
async fn the_seat_map_and_catalog_say_each_seats_category_price_kind_and_aisle() {
    let app = spawn().await;
    let event = app.event(600).await;
    let show = house(&app, &event).await;
    let map = app.seat_map(&show).await;
    assert_eq!(map["currency"], "gbp");
    assert_eq!(
        map["categories"],
        json!([
            {"name": "Classic", "price_cents": 900},
            {"name": "Prime", "price_cents": 1400},
            {"name": "Recliner", "price_cents": 2150},
        ])
    );
    let a1 = seat(&map, "A-1");
    assert_eq!(
        (&a1["category"], &a1["price_cents"], &a1["kind"]),
        (&json!("Classic"), &json!(900), &json!("wheelchair"))
    );
    assert_eq!(seat(&map, "A-2")["kind"], "companion");
    assert_eq!(seat(&map, "A-3")["kind"], "standard");
    assert_eq!(seat(&map, "A-4")["gap_after"], true);
    assert_eq!(seat(&map, "A-5")["gap_after"], false);
    assert_eq!(seat(&map, "C-3")["price_cents"], 2150);

    // The catalog's price is the show's lowest.
    let movies: Value = app.get_json("/v1/movies").await;
    let listed = movies["movies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["shows"].as_array().unwrap())
        .find(|s| s["id"] == show.as_str())
        .unwrap();
    assert_eq!(listed["price_cents"], 900);
}

#[tokio::test]
async fn a_hold_costs_its_seats_prices_and_says_each() {
    let app = spawn().await;
    let event = app.event(600).await;
    let show = house(&app, &event).await;
    let res = app
        .reserve(
            &app.token("mixed", &event),
            &json!({"show_id": show, "seat_ids": ["A-3", "B-1", "C-4"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let held: Value = res.json().await.unwrap();
    assert_eq!(held["total_cents"], 900 + 1400 + 2150, "{held}");
    let prices: Vec<(String, i64)> = held["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["category"].as_str().unwrap().to_owned(),
                s["price_cents"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        prices,
        vec![
            ("Classic".into(), 900),
            ("Prime".into(), 1400),
            ("Recliner".into(), 2150)
        ]
    );
    // Read back, the booking says the same.
    let id = held["reservation_id"].as_str().unwrap();
    let got: Value = app.booking(id).await;
    assert_eq!(got["total_cents"], held["total_cents"]);
    assert_eq!(got["seats"], held["seats"]);
    assert_eq!(got["show"]["title"], "Test Film", "{got}");
    // And the wheelchair space can be held by name.
    let res = app
        .reserve(
            &app.token("chair", &event),
            &json!({"show_id": show, "seat_ids": ["A-1", "A-2"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn best_available_keeps_to_the_category_and_never_offers_an_accessible_place_or_crosses_an_aisle()
 {
    let app = spawn().await;
    let event = app.event(600).await;
    let show = house(&app, &event).await;
    let best = |visitor: &'static str, body: Value| {
        let app = &app;
        let token = app.token(visitor, &event);
        async move {
            let res = app.reserve(&token, &body).await;
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let ids = |held: &Value| -> Vec<String> {
        held["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };

    // Prime pairs: B-1+B-2 or B-3+B-4, never B-2+B-3 across the aisle.
    let (status, held) = best(
        "p1",
        json!({"show_id": show, "quantity": 2, "category": "Prime"}),
    )
    .await;
    assert_eq!(status, 201, "{held}");
    let first = ids(&held);
    assert!(
        first == ["B-1", "B-2"] || first == ["B-3", "B-4"],
        "{first:?}"
    );
    assert_eq!(held["total_cents"], 2800);
    let (status, held) = best(
        "p2",
        json!({"show_id": show, "quantity": 2, "category": "Prime"}),
    )
    .await;
    assert_eq!(status, 201, "{held}");
    assert!(ids(&held).iter().all(|id| id.starts_with("B-")));
    let (status, body) = best(
        "p3",
        json!({"show_id": show, "quantity": 1, "category": "Prime"}),
    )
    .await;
    assert_eq!(status, 409, "Prime is sold out: {body}");

    // Classic has 6 ordinary seats (A-3..A-8): six fans of one each never get.
    for fan in ["c1", "c2", "c3", "c4", "c5", "c6"] {
        let (status, held) = best(
            fan,
            json!({"show_id": show, "quantity": 1, "category": "Classic"}),
        )
        .await;
        assert_eq!(status, 201, "{held}");
        let got = ids(&held);
        assert!(got != ["A-1"] && got != ["A-2"], "{fan} got {got:?}");
    }
    let (status, body) = best(
        "c7",
        json!({"show_id": show, "quantity": 1, "category": "Classic"}),
    )
    .await;
    assert_eq!(status, 409, "only the accessible places are left: {body}");

    // An unknown category, or a category with named seats, is the caller's mistake.
    let (status, body) = best(
        "x1",
        json!({"show_id": show, "quantity": 1, "category": "Balcony"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("category"), "{body}");
    let (status, body) = best(
        "x2",
        json!({"show_id": show, "seat_ids": ["C-1"], "category": "Recliner"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn a_layout_with_mistakes_is_refused_naming_every_one() {
    let app = spawn().await;
    let event = app.event(600).await;
    let res = app
        .admin_post(
            "/admin/v1/shows",
            &json!({
                "event_id": event, "movie": {"title": "Bad Layout"},
                "theater": {"name": "Cinema", "city": "Testville", "time_zone": "Europe/London"},
                "screen": "1", "starts_at": "2030-06-01T19:30:00+01:00", "currency": "GBP",
                "layout": {
                    "categories": [{"name": "Prime", "price_cents": 1400}, {"name": "Prime", "price_cents": 10}],
                    "rows": [
                        {"name": "A", "seats": 4, "category": "Balcony", "gaps_after": [4]},
                        {"name": "B", "seats": 4, "category": "Prime"},
                    ],
                    "wheelchair": [{"row": "Z", "number": 1}],
                    "companion": [{"row": "B", "number": 9}],
                },
            }),
        )
        .await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    for field in [
        "layout.categories[1].name",
        "layout.rows[0].category",
        "layout.rows[0].gaps_after",
        "layout.wheelchair[0]",
        "layout.companion[0]",
    ] {
        assert!(body.contains(field), "{field} not named in {body}");
    }

    // Without categories, the single price is required.
    let res = app
        .admin_post(
            "/admin/v1/shows",
            &json!({
                "event_id": event, "movie": {"title": "No Price"},
                "theater": {"name": "Cinema", "city": "Testville", "time_zone": "Europe/London"},
                "screen": "1", "starts_at": "2030-06-01T19:30:00+01:00", "currency": "GBP",
                "layout": {"rows": [{"name": "A", "seats": 4}]},
            }),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("price_cents"));
}
