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

    let list = |q: &'static str| {
        let app = &app;
        async move {
            let v: Value = app
                .http
                .get(app.at(&format!("/v1/movies?{q}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["movies"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|m| {
                    m["shows"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s["id"].as_str().unwrap().to_owned())
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list("city=los%20angeles&date=2030-06-01").await,
        vec![la.clone()]
    );
    assert!(list("city=Los%20Angeles&date=2030-06-02").await.is_empty());
    assert_eq!(list("date=2030-06-02").await, vec![ldn.clone()]);
    assert_eq!(list("genre=DRAMA&city=London").await, vec![ldn.clone()]);
    assert!(list("genre=horror").await.is_empty());

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
