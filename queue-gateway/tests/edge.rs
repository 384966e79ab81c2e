//! The gateway on its own, in front of a fake booking-core that records what reaches it: a
//! reserve is refused at the edge unless its admission token is for the show's event (and,
//! when bound, comes with its visitor key), so a request from outside the queue never reaches
//! booking-core; one that passes goes through unchanged; a booking-core that is gone is a 503.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use marquee_platform::shutdown::Shutdown;
use marquee_testkit::TestEnv;
use marquee_waitroom::admission::{Confirmation, visitor_key_hash};
use serde_json::{Value, json};

const EVENT: &str = "fake-event";

/// What reached the fake booking-core's reserve route: bodies and visitor keys.
type Seen = Arc<Mutex<Vec<(Value, Option<String>)>>>;

async fn fake_booking_core() -> (String, Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/shows/{id}",
            get(|Path(id): Path<String>| async move {
                if id == "show-1" {
                    (StatusCode::OK, Json(json!({"id": id, "event_id": EVENT})))
                } else {
                    (StatusCode::NOT_FOUND, Json(json!({"status": 404})))
                }
            }),
        )
        .route(
            "/v1/bookings/reserve",
            post(
                |State(seen): State<Seen>, headers: HeaderMap, Json(body): Json<Value>| async move {
                    let key = headers
                        .get("x-visitor-key")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    seen.lock().unwrap().push((body, key));
                    (
                        StatusCode::CREATED,
                        Json(json!({"reservation_id": "r_fake"})),
                    )
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, seen, server)
}

struct Gateway {
    url: String,
    env: TestEnv,
    _stop: StopOnDrop,
}

struct StopOnDrop(Shutdown);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.trigger();
    }
}

async fn gateway(booking_url: &str) -> Gateway {
    let env = TestEnv::new().await;
    let settings =
        marquee_platform::Settings::load(&env.source().set("gateway.booking_url", booking_url))
            .unwrap();
    let stop = Shutdown::new();
    let app = queue_gateway::Application::build_with(settings, stop.clone())
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Gateway {
        url,
        env,
        _stop: StopOnDrop(stop),
    }
}

async fn reserve(g: &Gateway, token: Option<&str>, key: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/bookings/reserve", g.url))
        .json(&json!({"show_id": "show-1", "quantity": 2}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(k) = key {
        req = req.header("x-visitor-key", k);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_reserve_reaches_booking_core_only_with_a_token_for_the_shows_event() {
    let (booking, seen, _server) = fake_booking_core().await;
    let g = gateway(&booking).await;

    let (status, problem) = reserve(&g, None, None).await;
    assert_eq!(status, 401, "{problem}");
    assert!(problem["detail"].is_string());
    let foreign = g.env.admission_token("fan", "another-event", 600);
    assert_eq!(reserve(&g, Some(&foreign), None).await.0, 403);
    let expired = g.env.admission_token("fan", EVENT, -600);
    assert_eq!(reserve(&g, Some(&expired), None).await.0, 401);
    assert_eq!(reserve(&g, Some("not-a-token"), None).await.0, 401);
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached booking-core"
    );

    let token = g.env.admission_token("fan", EVENT, 600);
    let (status, answer) = reserve(&g, Some(&token), None).await;
    assert_eq!(
        (status, answer["reservation_id"].as_str()),
        (201, Some("r_fake"))
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, [(json!({"show_id": "show-1", "quantity": 2}), None)]);
}

#[tokio::test]
async fn a_bound_token_needs_its_visitor_key() {
    let (booking, seen, _server) = fake_booking_core().await;
    let g = gateway(&booking).await;
    let mut claims = marquee_testkit::claims("fan", EVENT, 600);
    claims.cnf = Some(Confirmation {
        vkh: visitor_key_hash("the-secret"),
    });
    let bound = g.env.keys.sign(&claims).unwrap();
    assert_eq!(reserve(&g, Some(&bound), None).await.0, 401);
    assert_eq!(reserve(&g, Some(&bound), Some("another")).await.0, 401);
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(reserve(&g, Some(&bound), Some("the-secret")).await.0, 201);
    assert_eq!(
        seen.lock().unwrap()[0].1.as_deref(),
        Some("the-secret"),
        "the key goes on for booking-core to check again"
    );
}

#[tokio::test]
async fn booking_core_gone_is_a_503_with_retry_after() {
    let (booking, _seen, server) = fake_booking_core().await;
    let g = gateway(&booking).await;
    server.abort();
    let _ = server.await;
    let res = reqwest::Client::new()
        .get(format!("{}/v1/shows/show-2", g.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}
