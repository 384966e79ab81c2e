//! A Stripe-compatible simulator for the calls Marquee makes: create, retrieve, confirm and
//! cancel PaymentIntents; create refunds. Stripe's form encoding, error shape, idempotency
//! keys and test payment methods (`pm_card_visa` succeeds, `pm_card_chargeDeclined` is
//! declined, `pm_card_authenticationRequired` needs action). Every state change is sent as a
//! webhook signed as Stripe signs (`Stripe-Signature: t=…,v1=…`), retried until accepted.
//! `POST /_sim/faults` makes the next requests fail or hang, for resilience tests.
//!
//! Map. This file holds the store and the PaymentIntent and refund routes (each through
//! `guard`: the key, injected faults, idempotent replays); `lists` the list calls; `signature`
//! Stripe's webhook signature; `webhooks` delivers each event, retrying until accepted.
//! Over 400 lines because the PaymentIntent's state machine and its routes are one thing: the
//! states each route may move between are read in one place.

mod lists;
pub mod signature;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use rand::Rng;
use serde_json::{Value, json};

pub struct Config {
    pub webhook_urls: Vec<String>,
    pub webhook_secret: String,
    /// Accepted secret keys; empty accepts any `sk_test_…`.
    pub secret_keys: Vec<String>,
}

/// Failures to inject into the next API requests.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Faults {
    /// How many of the next requests fail.
    #[serde(default)]
    pub fail_requests: u32,
    /// The status they fail with (default 500).
    #[serde(default)]
    pub status: Option<u16>,
    /// Hang this long before answering (a timeout, from the client's side).
    #[serde(default)]
    pub delay_ms: u64,
}

#[derive(Default)]
struct Store {
    intents: lists::Listed,
    refunds: lists::Listed,
    /// Idempotency key → (request fingerprint, status, response).
    idempotency: HashMap<String, (String, u16, Value)>,
    faults: Faults,
    /// Every event sent, newest last (for tests: `GET /_sim/events`).
    events: Vec<Value>,
}

#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    store: Mutex<Store>,
    outbox: tokio::sync::mpsc::UnboundedSender<Value>,
}

impl Simulator {
    pub fn new(config: Config) -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let sim = Self {
            inner: Arc::new(Inner {
                config,
                store: Mutex::new(Store::default()),
                outbox: tx,
            }),
        };
        tokio::spawn(webhooks::deliver(
            rx,
            sim.inner.config.webhook_urls.clone(),
            sim.inner.config.webhook_secret.clone(),
        ));
        sim
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/v1/payment_intents",
                post(create_intent).get(lists::payment_intents),
            )
            .route("/v1/payment_intents/{id}", get(retrieve_intent))
            .route("/v1/payment_intents/{id}/confirm", post(confirm_intent))
            .route("/v1/payment_intents/{id}/cancel", post(cancel_intent))
            .route("/v1/refunds", post(create_refund).get(lists::refunds))
            .route("/_sim/faults", post(set_faults))
            .route("/_sim/events", get(list_events))
            .route("/healthz", get(|| async { "ok" }))
            // Browsers confirm PaymentIntents straight from the page, as with Stripe's API.
            .layer(tower_http::cors::CorsLayer::permissive())
            .with_state(self.clone())
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.inner.store.lock().expect("simulator store")
    }

    fn emit(&self, kind: &str, object: Value) {
        let event = json!({
            "id": format!("evt_{}", random_id(24)),
            "object": "event",
            "api_version": "2025-06-30.basil",
            "created": chrono::Utc::now().timestamp(),
            "livemode": false,
            "pending_webhooks": 1,
            "type": kind,
            "data": { "object": object },
        });
        self.store().events.push(event.clone());
        let _ = self.inner.outbox.send(event);
    }
}

fn random_id(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Stripe's error shape.
fn error(
    status: StatusCode,
    kind: &str,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let mut e = json!({"type": kind, "message": message});
    if let Some(p) = param {
        e["param"] = p.into();
    }
    if let Some(c) = code {
        e["code"] = c.into();
    }
    (status, axum::Json(json!({ "error": e }))).into_response()
}

/// Authenticate, apply injected faults, and replay idempotent requests. `Ok(None)` means go on.
async fn guard(
    sim: &Simulator,
    headers: &HeaderMap,
    fingerprint: &str,
) -> Result<Option<Response>, Response> {
    let key = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let accepted = if sim.inner.config.secret_keys.is_empty() {
        key.starts_with("sk_test_")
    } else {
        sim.inner.config.secret_keys.contains(&key)
    };
    if !accepted {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Invalid API Key provided.",
            None,
            None,
        ));
    }
    let fault = {
        let mut store = sim.store();
        if store.faults.fail_requests > 0 {
            store.faults.fail_requests -= 1;
            Some(store.faults.clone())
        } else {
            None
        }
    };
    if let Some(f) = fault {
        if f.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
        }
        let status = StatusCode::from_u16(f.status.unwrap_or(500))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err(error(status, "api_error", "Simulated failure.", None, None));
    }
    if let Some(k) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        let store = sim.store();
        if let Some((fp, status, body)) = store.idempotency.get(k) {
            if fp != fingerprint {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                    None,
                    None,
                ));
            }
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
            let mut r = (status, axum::Json(body.clone())).into_response();
            r.headers_mut().insert(
                "idempotent-replayed",
                http::HeaderValue::from_static("true"),
            );
            return Ok(Some(r));
        }
    }
    Ok(None)
}

fn remember(
    sim: &Simulator,
    headers: &HeaderMap,
    fingerprint: String,
    status: StatusCode,
    body: &Value,
) {
    if let Some(k) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        sim.store()
            .idempotency
            .insert(k.to_owned(), (fingerprint, status.as_u16(), body.clone()));
    }
}

/// Stripe's form encoding: `metadata[reservation_id]=…` and plain `amount=…`.
fn form(body: &Bytes) -> (HashMap<String, String>, HashMap<String, String>) {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let mut plain = HashMap::new();
    let mut metadata = HashMap::new();
    for (k, v) in pairs {
        match k
            .strip_prefix("metadata[")
            .and_then(|r| r.strip_suffix(']'))
        {
            Some(mk) => {
                metadata.insert(mk.to_owned(), v);
            }
            None => {
                plain.insert(k, v);
            }
        }
    }
    (plain, metadata)
}

async fn create_intent(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let fingerprint = format!("create_intent:{}", String::from_utf8_lossy(&body));
    match guard(&sim, &headers, &fingerprint).await {
        Err(r) => return r,
        Ok(Some(r)) => return r,
        Ok(None) => {}
    }
    let (f, metadata) = form(&body);
    let amount = f.get("amount").and_then(|a| a.parse::<i64>().ok());
    let Some(amount) = amount.filter(|a| *a >= 1) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Missing required param: amount.",
            Some("amount"),
            Some("parameter_missing"),
        );
    };
    let Some(currency) = f
        .get("currency")
        .map(|c| c.to_lowercase())
        .filter(|c| c.len() == 3)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Missing required param: currency.",
            Some("currency"),
            Some("parameter_missing"),
        );
    };
    let id = format!("pi_{}", random_id(24));
    let intent = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "capture_method": "automatic",
        "confirmation_method": "automatic",
        "client_secret": format!("{id}_secret_{}", random_id(24)),
        "created": chrono::Utc::now().timestamp(),
        "currency": currency,
        "livemode": false,
        "metadata": metadata,
        "payment_method_types": ["card"],
        "status": "requires_payment_method",
        "receipt_email": f.get("receipt_email"),
        "description": f.get("description"),
        "last_payment_error": null,
        "next_action": null,
        "latest_charge": null,
    });
    sim.store().intents.insert(intent.clone());
    sim.emit("payment_intent.created", intent.clone());
    remember(&sim, &headers, fingerprint, StatusCode::OK, &intent);
    axum::Json(intent).into_response()
}

fn no_such_intent(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        &format!("No such payment_intent: '{id}'"),
        Some("intent"),
        Some("resource_missing"),
    )
}

async fn retrieve_intent(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = guard(
        &sim,
        &HeaderMap::from_iter(
            headers
                .get(http::header::AUTHORIZATION)
                .map(|v| (http::header::AUTHORIZATION, v.clone())),
        ),
        "",
    )
    .await
    {
        return r;
    }
    match sim.store().intents.get(&id) {
        Some(pi) => axum::Json(pi.clone()).into_response(),
        None => no_such_intent(&id),
    }
}

/// Confirm with one of Stripe's test payment methods. Also reachable with the publishable key,
/// as Stripe.js would call it from the page.
async fn confirm_intent(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let publishable = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer pk_test_"));
    if !publishable {
        let fingerprint = format!("confirm:{id}:{}", String::from_utf8_lossy(&body));
        match guard(&sim, &headers, &fingerprint).await {
            Err(r) => return r,
            Ok(Some(r)) => return r,
            Ok(None) => {}
        }
    }
    let (f, _) = form(&body);
    let method = f.get("payment_method").cloned().unwrap_or_default();
    let (updated, event) = {
        let mut store = sim.store();
        let Some(pi) = store.intents.get_mut(&id) else {
            return no_such_intent(&id);
        };
        let status = pi["status"].as_str().unwrap_or_default().to_owned();
        if !matches!(
            status.as_str(),
            "requires_payment_method" | "requires_confirmation" | "requires_action"
        ) {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("This PaymentIntent's status is {status}, so it cannot be confirmed."),
                None,
                Some("payment_intent_unexpected_state"),
            );
        }
        pi["payment_method"] = json!(format!("pm_{}", random_id(24)));
        let event = match method.as_str() {
            "pm_card_visa" | "pm_card_mastercard" | "pm_card_amex" => {
                let amount = pi["amount"].clone();
                pi["status"] = "succeeded".into();
                pi["amount_received"] = amount;
                pi["latest_charge"] = json!(format!("ch_{}", random_id(24)));
                pi["last_payment_error"] = Value::Null;
                pi["next_action"] = Value::Null;
                "payment_intent.succeeded"
            }
            "pm_card_chargeDeclined" | "pm_card_visa_chargeDeclined" => {
                pi["status"] = "requires_payment_method".into();
                pi["last_payment_error"] = json!({
                    "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                    "message": "Your card was declined.",
                });
                "payment_intent.payment_failed"
            }
            "pm_card_authenticationRequired" => {
                pi["status"] = "requires_action".into();
                pi["next_action"] = json!({"type": "use_stripe_sdk"});
                "payment_intent.requires_action"
            }
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("No such PaymentMethod: '{other}'"),
                    Some("payment_method"),
                    Some("resource_missing"),
                );
            }
        };
        (pi.clone(), event)
    };
    sim.emit(event, updated.clone());
    if event == "payment_intent.payment_failed" {
        let status = StatusCode::PAYMENT_REQUIRED;
        let mut e = updated["last_payment_error"].clone();
        e["payment_intent"] = updated.clone();
        return (status, axum::Json(json!({ "error": e }))).into_response();
    }
    axum::Json(updated).into_response()
}

async fn cancel_intent(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fingerprint = format!("cancel:{id}:{}", String::from_utf8_lossy(&body));
    match guard(&sim, &headers, &fingerprint).await {
        Err(r) => return r,
        Ok(Some(r)) => return r,
        Ok(None) => {}
    }
    let updated = {
        let mut store = sim.store();
        let Some(pi) = store.intents.get_mut(&id) else {
            return no_such_intent(&id);
        };
        let status = pi["status"].as_str().unwrap_or_default().to_owned();
        if matches!(status.as_str(), "succeeded" | "canceled") {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!(
                    "You cannot cancel this PaymentIntent because it has a status of {status}."
                ),
                None,
                Some("payment_intent_unexpected_state"),
            );
        }
        pi["status"] = "canceled".into();
        pi["canceled_at"] = chrono::Utc::now().timestamp().into();
        pi.clone()
    };
    sim.emit("payment_intent.canceled", updated.clone());
    remember(&sim, &headers, fingerprint, StatusCode::OK, &updated);
    axum::Json(updated).into_response()
}

async fn create_refund(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let fingerprint = format!("refund:{}", String::from_utf8_lossy(&body));
    match guard(&sim, &headers, &fingerprint).await {
        Err(r) => return r,
        Ok(Some(r)) => return r,
        Ok(None) => {}
    }
    let (f, metadata) = form(&body);
    let Some(pi_id) = f.get("payment_intent").cloned() else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Missing required param: payment_intent.",
            Some("payment_intent"),
            Some("parameter_missing"),
        );
    };
    let (refund, charge) = {
        let mut store = sim.store();
        let Some(pi) = store.intents.get_mut(&pi_id) else {
            return no_such_intent(&pi_id);
        };
        if pi["status"] != "succeeded" {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "This PaymentIntent does not have a successful charge to refund.",
                Some("payment_intent"),
                None,
            );
        }
        let received = pi["amount_received"].as_i64().unwrap_or(0);
        let amount = f
            .get("amount")
            .and_then(|a| a.parse::<i64>().ok())
            .unwrap_or(received);
        if amount > received || amount < 1 {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "Refund amount is greater than unrefunded amount on charge.",
                Some("amount"),
                Some("amount_too_large"),
            );
        }
        pi["amount_received"] = (received - amount).into();
        let refund = json!({
            "id": format!("re_{}", random_id(24)),
            "object": "refund",
            "amount": amount,
            "created": chrono::Utc::now().timestamp(),
            "currency": pi["currency"],
            "payment_intent": pi_id,
            "charge": pi["latest_charge"],
            "metadata": metadata,
            "status": "succeeded",
        });
        let charge = json!({
            "id": pi["latest_charge"], "object": "charge", "amount": pi["amount"],
            "amount_refunded": pi["amount"].as_i64().unwrap_or(0) - (received - amount),
            "currency": pi["currency"], "payment_intent": pi_id, "refunded": received - amount == 0,
            "metadata": pi["metadata"],
        });
        store.refunds.insert(refund.clone());
        (refund, charge)
    };
    sim.emit("charge.refunded", charge);
    remember(&sim, &headers, fingerprint, StatusCode::OK, &refund);
    axum::Json(refund).into_response()
}

async fn set_faults(
    State(sim): State<Simulator>,
    axum::Json(faults): axum::Json<Faults>,
) -> Response {
    sim.store().faults = faults;
    StatusCode::NO_CONTENT.into_response()
}

async fn list_events(State(sim): State<Simulator>) -> Response {
    axum::Json(json!({ "data": sim.store().events.clone() })).into_response()
}
