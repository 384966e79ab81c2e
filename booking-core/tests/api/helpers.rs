//! Starting booking-core for one test and talking to it.

use marquee_platform::shutdown::Shutdown;
use marquee_testkit::fault_proxy::FaultProxy;
use marquee_testkit::{Api, TestEnv};
use reqwest::Response;
use serde_json::{Value, json};
use sqlx::PgPool;

pub use marquee_testkit::OPERATOR;
pub use marquee_testkit::api::row_name;

/// A booking-core of the test's own; it answers through `Api` (`Deref`), with shorthands for
/// what its tests do most.
pub struct TestApp {
    pub api: Api,
    /// The Stripe simulator this booking-core talks to.
    pub stripe: String,
    pub db: PgPool,
    pub env: TestEnv,
    pub shutdown: Shutdown,
    /// booking-core's links to Postgres and Stripe, when it was started behind fault proxies
    /// (`spawn_behind_proxies`).
    pub links: Option<Links>,
}

/// The fault proxies on booking-core's links (`marquee_testkit::fault_proxy`).
pub struct Links {
    pub postgres: FaultProxy,
    pub stripe: FaultProxy,
}

impl std::ops::Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
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
    start(tweak, webhooks, false).await
}

/// Start booking-core with its Postgres and Stripe links each through a fault proxy (the
/// test's own database and simulator behind them), settings adjusted by `tweak`.
pub async fn spawn_behind_proxies(
    tweak: impl FnOnce(marquee_platform::config::Source) -> marquee_platform::config::Source,
) -> TestApp {
    start(tweak, true, true).await
}

async fn start(
    tweak: impl FnOnce(marquee_platform::config::Source) -> marquee_platform::config::Source,
    webhooks: bool,
    proxied: bool,
) -> TestApp {
    let env = TestEnv::new().await;
    // The Stripe simulator's port is needed before booking-core starts, and booking-core's
    // webhook address before the simulator is built.
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stripe = format!(
        "http://127.0.0.1:{}",
        sim_listener.local_addr().unwrap().port()
    );
    let links = if proxied {
        Some(Links {
            postgres: FaultProxy::to_url(&env.database_url).await,
            stripe: FaultProxy::to_url(&stripe).await,
        })
    } else {
        None
    };
    let source = match &links {
        Some(l) => env
            .source()
            .set("stripe.api_base", l.stripe.url(&stripe))
            .set("database.url", l.postgres.url(&env.database_url)),
        None => env.source().set("stripe.api_base", &stripe),
    };
    let source = tweak(source);
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
        api: Api::new(url),
        stripe,
        db,
        env,
        shutdown,
        links,
    }
}

impl TestApp {
    /// A fresh open event with `hold_ttl_s` (`Api::event`); its id.
    pub async fn event(&self, hold_ttl_s: u32) -> String {
        self.api
            .event(json!({"rate_per_minute": 600, "hold_ttl_s": hold_ttl_s}))
            .await
    }

    /// A show of `rows` rows × `per_row` seats in `event` (`Api::show`); its id.
    pub async fn show(&self, event: &str, rows: usize, per_row: usize) -> String {
        self.api.show(event, rows, per_row, json!({})).await
    }

    /// A show in `city` (time zone `zone`) starting at `starts_at`; its id.
    pub async fn show_in(
        &self,
        event: &str,
        rows: usize,
        per_row: usize,
        city: &str,
        zone: &str,
        starts_at: &str,
    ) -> String {
        let place = json!({
            "movie": {"title": format!("Film {city}"), "genres": ["drama"]},
            "theater": {"name": format!("Cinema {city}"), "city": city, "time_zone": zone},
            "starts_at": starts_at,
        });
        self.api.show(event, rows, per_row, place).await
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

    /// `Api::reserve` with a token that needs no visitor key.
    pub async fn reserve(&self, token: &str, body: &Value) -> Response {
        self.api.reserve(token, None, body).await
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

    /// A counter from booking-core's `/metrics` (its name without the `marquee_` prefix).
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self
            .http
            .get(self.at("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        marquee_testkit::metric(&text, name).unwrap_or_else(|| panic!("{name} exported"))
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
}

pub fn seat_ids(body: &Value) -> Vec<String> {
    body["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Seats and holds agree: every held seat is held by a live hold naming it, and every seat a
/// live hold names is held by it (the seats table's constraints see to the rest). The number
/// of disagreements.
pub async fn disagreements(db: &PgPool, show: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM seats s
                 LEFT JOIN bookings b ON b.show_id = s.show_id AND b.id = s.booking_id
                 WHERE s.show_id = $1 AND s.status = 'held'
                   AND (b.id IS NULL OR b.status <> 'held' OR NOT s.seat_id = ANY(b.seat_ids)))
              + (SELECT count(*) FROM bookings b
                 CROSS JOIN LATERAL unnest(b.seat_ids) AS named(seat_id)
                 LEFT JOIN seats s ON s.show_id = b.show_id AND s.seat_id = named.seat_id
                 WHERE b.show_id = $1 AND b.status = 'held'
                   AND (s.booking_id IS DISTINCT FROM b.id OR s.status <> 'held'))",
    )
    .bind(show)
    .fetch_one(db)
    .await
    .unwrap()
}
