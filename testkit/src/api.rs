//! One typed HTTP client for the tests that talk to Marquee's public and admin API, whether to
//! booking-core directly (its own tests) or through the gateway (the end-to-end tests): the
//! operator's calls, a test catalogue's events and shows, holds, seat maps and paying as the
//! booking page does. Each call answers what a test checks next: a created thing's id (and the
//! call fails the test, with the answer's body, if it was not created), or the raw `Response`
//! where the test judges the answer itself.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::unique;

/// The operator token the tests' configuration (`config/test.toml`) accepts.
pub const OPERATOR: &str = "Bearer test-operator-token";

/// A client of one Marquee base URL (booking-core's or a gateway's).
#[derive(Clone, Debug)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    /// A client of `base`, with room for as many connections as a race test opens.
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(512)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An operator's `POST` of `body` to `path`; the answer whatever it is.
    pub async fn admin_post(&self, path: &str, body: &Value) -> Response {
        self.http
            .post(self.at(path))
            .header("authorization", OPERATOR)
            .json(body)
            .send()
            .await
            .expect("POST sent")
    }

    /// An operator's `PATCH` of `body` to `path`; the answer whatever it is.
    pub async fn admin_patch(&self, path: &str, body: &Value) -> Response {
        self.http
            .patch(self.at(path))
            .header("authorization", OPERATOR)
            .json(body)
            .send()
            .await
            .expect("PATCH sent")
    }

    /// An operator's `GET` of `path`; its JSON.
    pub async fn admin_get(&self, path: &str) -> Value {
        self.http
            .get(self.at(path))
            .header("authorization", OPERATOR)
            .send()
            .await
            .expect("GET sent")
            .json()
            .await
            .expect("a JSON answer")
    }

    /// A new open event (`POST /admin/v1/events`): admitting quickly, a 10-minute session and
    /// hold, polls as often as a test likes; `extra`'s fields override those. Its id.
    pub async fn event(&self, extra: Value) -> String {
        let mut body = json!({
            "id": unique("ev"), "name": "Test on-sale", "opens_at": "2026-01-01T00:00:00Z",
            "state": "open", "rate_per_minute": 6000, "max_active": 1000, "session_ttl_s": 600,
            "hold_ttl_s": 600, "min_poll_interval_ms": 0, "abandon_after_s": 60,
        });
        merge(&mut body, extra);
        let res = self.admin_post("/admin/v1/events", &body).await;
        created(res).await;
        body["id"].as_str().expect("an event id").to_owned()
    }

    /// A new show of `event` (`POST /admin/v1/shows`) with `rows` rows of `per_row` seats
    /// named A, B, … (`row_name`), at £10 a seat; `extra`'s fields override the rest (the
    /// theater, the start, the layout). Its id.
    pub async fn show(&self, event: &str, rows: usize, per_row: usize, extra: Value) -> String {
        let layout: Vec<Value> = (0..rows)
            .map(|r| json!({"name": row_name(r), "seats": per_row}))
            .collect();
        let mut body = json!({
            "event_id": event, "movie": {"title": "Test Film", "genres": ["drama"]},
            "theater": {"name": "Test Cinema", "city": "Testville", "time_zone": "Europe/London"},
            "screen": "1", "starts_at": "2030-06-01T19:30:00+01:00", "price_cents": 1000,
            "currency": "GBP", "layout": {"rows": layout},
        });
        merge(&mut body, extra);
        let res = self.admin_post("/admin/v1/shows", &body).await;
        created(res).await["show_id"]
            .as_str()
            .expect("a show id")
            .to_owned()
    }

    /// `POST /v1/bookings/reserve` with an admission token (and the visitor key a bound token
    /// needs); the answer whatever it is.
    pub async fn reserve(&self, token: &str, visitor_key: Option<&str>, body: &Value) -> Response {
        let mut req = self
            .http
            .post(self.at("/v1/bookings/reserve"))
            .bearer_auth(token)
            .json(body);
        if let Some(key) = visitor_key {
            req = req.header("x-visitor-key", key);
        }
        req.send().await.expect("reserve sent")
    }

    /// `DELETE /v1/bookings/{id}`: release a hold; the answer whatever it is.
    pub async fn release(&self, id: &str) -> Response {
        self.http
            .delete(self.at(&format!("/v1/bookings/{id}")))
            .send()
            .await
            .expect("release sent")
    }

    /// A public `GET` of `path`; its JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.at(path))
            .send()
            .await
            .expect("GET sent")
            .json()
            .await
            .expect("a JSON answer")
    }

    /// `GET /v1/bookings/{id}`: the booking as the fan (and the ticket page) reads it.
    pub async fn booking(&self, id: &str) -> Value {
        self.get_json(&format!("/v1/bookings/{id}")).await
    }

    /// `GET /v1/shows/{show}/seats`: the seat map.
    pub async fn seat_map(&self, show: &str) -> Value {
        self.get_json(&format!("/v1/shows/{show}/seats")).await
    }

    /// `POST /v1/bookings/{id}/checkout` for `email`: the answer, whatever it is.
    pub async fn checkout_response(&self, reservation: &str, email: &str) -> Response {
        self.http
            .post(self.at(&format!("/v1/bookings/{reservation}/checkout")))
            .json(&json!({"email": email}))
            .send()
            .await
            .expect("checkout sent")
    }

    /// `POST /v1/bookings/{id}/checkout` for `email` (must answer 200): the PaymentIntent it
    /// made or kept.
    pub async fn checkout(&self, reservation: &str, email: &str) -> Value {
        let res = self.checkout_response(reservation, email).await;
        let status = res.status();
        let body = res.text().await.expect("a body");
        assert_eq!(status, StatusCode::OK, "checkout: {body}");
        serde_json::from_str(&body).expect("a JSON body")
    }

    /// Checkout as a fan: the PaymentIntent's id.
    pub async fn payment_intent(&self, reservation: &str) -> String {
        self.checkout(reservation, "fan@example.com").await["payment_intent_id"]
            .as_str()
            .expect("a PaymentIntent id")
            .to_owned()
    }

    /// `POST /v1/bookings/confirm`: its status and body.
    pub async fn confirm(&self, reservation: &str, payment_intent: &str) -> (u16, Value) {
        let res = self
            .http
            .post(self.at("/v1/bookings/confirm"))
            .json(&json!({"reservation_id": reservation, "payment_intent_id": payment_intent}))
            .send()
            .await
            .expect("confirm sent");
        (res.status().as_u16(), res.json().await.unwrap_or_default())
    }

    /// Pay for a held reservation as the booking page does: check out, confirm the
    /// PaymentIntent at the Stripe simulator `stripe` with `card` (a Stripe test payment
    /// method), then ask for the booking to be confirmed. The last answer's status and body.
    pub async fn pay(&self, stripe: &str, reservation: &str, card: &str) -> (u16, Value) {
        let pi = self.payment_intent(reservation).await;
        stripe_confirm(&self.http, stripe, &pi, card).await;
        self.confirm(reservation, &pi).await
    }
}

/// What the page does with Stripe.js: confirm `payment_intent` at the simulator `stripe` with
/// `method`; the simulator's status.
pub async fn stripe_confirm(
    http: &reqwest::Client,
    stripe: &str,
    payment_intent: &str,
    method: &str,
) -> StatusCode {
    http.post(format!(
        "{stripe}/v1/payment_intents/{payment_intent}/confirm"
    ))
    .header("authorization", "Bearer pk_test_demo")
    .form(&[("payment_method", method)])
    .send()
    .await
    .expect("confirm sent to the simulator")
    .status()
}

/// The answer's JSON, failing the test with its body unless it is `201 Created`.
pub async fn created(res: Response) -> Value {
    let status = res.status();
    let body = res.text().await.expect("a body");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    serde_json::from_str(&body).expect("a JSON body")
}

/// Row names A..Z, then AA, AB, …
pub fn row_name(r: usize) -> String {
    if r < 26 {
        char::from(b'A' + r as u8).to_string()
    } else {
        format!("{}{}", row_name(r / 26 - 1), row_name(r % 26))
    }
}

/// `extra`'s fields over `body`'s.
fn merge(body: &mut Value, extra: Value) {
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            body[k] = v;
        }
    }
}
