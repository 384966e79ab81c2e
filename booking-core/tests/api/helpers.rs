//! Starting booking-core for one test and talking to it.

use std::time::Duration;

use marquee_platform::shutdown::Shutdown;
use marquee_testkit::{TestEnv, unique};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

pub const OPERATOR: &str = "Bearer test-operator-token";

pub struct TestApp {
    pub url: String,
    /// The Stripe simulator this booking-core talks to.
    pub stripe: String,
    pub http: reqwest::Client,
    pub db: PgPool,
    pub env: TestEnv,
    pub shutdown: Shutdown,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

pub async fn spawn() -> TestApp {
    spawn_with(|s| s).await
}

/// Start booking-core with test settings adjusted by `tweak`.
pub async fn spawn_with(
    tweak: impl FnOnce(marquee_platform::config::Source) -> marquee_platform::config::Source,
) -> TestApp {
    spawn_full(tweak, true).await
}

/// Start booking-core with a Stripe simulator whose webhooks never arrive.
pub async fn spawn_without_webhooks() -> TestApp {
    spawn_full(|s| s, false).await
}

pub async fn spawn_full(
    tweak: impl FnOnce(marquee_platform::config::Source) -> marquee_platform::config::Source,
    webhooks: bool,
) -> TestApp {
    let env = TestEnv::new().await;
    // The Stripe simulator's port is needed before booking-core starts, and booking-core's
    // webhook address before the simulator is built.
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stripe = format!(
        "http://127.0.0.1:{}",
        sim_listener.local_addr().unwrap().port()
    );
    let source = tweak(env.source().set("stripe.api_base", &stripe));
    let settings = marquee_platform::Settings::load(&source).expect("settings");
    let shutdown = Shutdown::new();
    let app = booking_core::Application::build_with(settings, shutdown.clone())
        .await
        .expect("booking-core starts");
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let sim = stripe_sim::Simulator::new(stripe_sim::Config {
        // Port 9 (discard) on loopback: nothing listens, so delivery always fails.
        webhook_urls: vec![if webhooks {
            format!("{url}/v1/payments/stripe/webhook")
        } else {
            "http://127.0.0.1:9/dropped".into()
        }],
        webhook_secret: "whsec_test".into(),
        secret_keys: vec![],
    });
    let router = sim.router();
    tokio::spawn(async move { axum::serve(sim_listener, router).await });
    let db = PgPool::connect(&env.database_url).await.expect("db");
    TestApp {
        url,
        stripe,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        db,
        env,
        shutdown,
    }
}

impl TestApp {
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn admin_post(&self, path: &str, body: &Value) -> Response {
        self.http
            .post(self.at(path))
            .header("authorization", OPERATOR)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A fresh open event with `hold_ttl_s`.
    pub async fn event(&self, hold_ttl_s: u32) -> String {
        let id = unique("ev");
        let res = self
            .admin_post(
                "/admin/v1/events",
                &json!({
                    "id": id, "name": "Test on-sale", "opens_at": "2026-01-01T00:00:00Z",
                    "state": "open", "rate_per_minute": 600, "max_active": 1000,
                    "session_ttl_s": 600, "hold_ttl_s": hold_ttl_s,
                }),
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{}",
            res.text().await.unwrap()
        );
        id
    }

    /// A show of `rows` rows × `per_row` seats in `event`; its id.
    pub async fn show(&self, event: &str, rows: usize, per_row: usize) -> String {
        self.show_in(
            event,
            rows,
            per_row,
            "Testville",
            "Europe/London",
            "2030-06-01T19:30:00+01:00",
        )
        .await
    }

    pub async fn show_in(
        &self,
        event: &str,
        rows: usize,
        per_row: usize,
        city: &str,
        zone: &str,
        starts_at: &str,
    ) -> String {
        let layout: Vec<Value> = (0..rows)
            .map(|r| json!({"name": row_name(r), "seats": per_row}))
            .collect();
        let res = self
            .admin_post(
                "/admin/v1/shows",
                &json!({
                    "event_id": event,
                    "movie": {"title": format!("Film {city}"), "genres": ["drama"]},
                    "theater": {"name": format!("Cinema {city}"), "city": city, "time_zone": zone},
                    "screen": "1", "starts_at": starts_at, "price_cents": 1000, "currency": "GBP",
                    "layout": {"rows": layout},
                }),
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{}",
            res.text().await.unwrap()
        );
        res.json::<Value>().await.unwrap()["show_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// An admitted visitor's token: its slot under the cap and its session are in Redis, as
    /// the admission worker leaves them.
    pub fn token(&self, visitor: &str, event: &str) -> String {
        marquee_testkit::admit(visitor, event, 600);
        self.env.admission_token(visitor, event, 600)
    }

    /// Hold `seats` of `show` for a fresh `visitor` of `event` (must answer 201); the
    /// reservation id.
    pub async fn hold(&self, event: &str, show: &str, visitor: &str, seats: &[&str]) -> String {
        let res = self
            .reserve(
                &self.token(visitor, event),
                &json!({"show_id": show, "seat_ids": seats}),
            )
            .await;
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, 201, "{visitor} holds {seats:?}: {body}");
        serde_json::from_str::<Value>(&body).unwrap()["reservation_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn reserve(&self, token: &str, body: &Value) -> Response {
        self.http
            .post(self.at("/v1/bookings/reserve"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `DELETE /v1/bookings/{id}`: release a hold.
    pub async fn release(&self, id: &str) -> Response {
        self.http
            .delete(self.at(&format!("/v1/bookings/{id}")))
            .send()
            .await
            .unwrap()
    }

    /// Every seat of `show` as the table has it: id, status, holder, in seat order.
    pub async fn seat_rows(&self, show: &str) -> Vec<(String, String, Option<String>)> {
        sqlx::query_as(
            "SELECT seat_id, status, booking_id FROM seats WHERE show_id = $1 ORDER BY row_index, number",
        )
        .bind(show)
        .fetch_all(&self.db)
        .await
        .unwrap()
    }

    /// Whether anything of `show` is still held: no seat off sale and no booking `held`.
    pub async fn nothing_held(&self, show: &str) -> bool {
        sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM seats WHERE show_id = $1 AND status <> 'available')
                AND NOT EXISTS (SELECT 1 FROM bookings WHERE show_id = $1 AND status = 'held')",
        )
        .bind(show)
        .fetch_one(&self.db)
        .await
        .unwrap()
    }

    /// Move a hold's window into the past (booking and seats), as if it had lapsed.
    pub async fn lapse(&self, reservation_id: &str) {
        sqlx::query(
            "WITH b AS (UPDATE bookings SET expires_at = now() - interval '1 second'
                        WHERE id = $1 RETURNING id)
             UPDATE seats SET held_until = now() - interval '1 second'
             WHERE booking_id IN (SELECT id FROM b)",
        )
        .bind(reservation_id)
        .execute(&self.db)
        .await
        .unwrap();
    }

    pub async fn seat_map(&self, show: &str) -> Value {
        self.http
            .get(self.at(&format!("/v1/shows/{show}/seats")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Row names A..Z, then AA, AB, …
pub fn row_name(r: usize) -> String {
    if r < 26 {
        ((b'A' + r as u8) as char).to_string()
    } else {
        format!("{}{}", row_name(r / 26 - 1), row_name(r % 26))
    }
}

pub fn seat_ids(body: &Value) -> Vec<String> {
    body["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}
