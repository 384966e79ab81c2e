//! `POST /v1/payments/stripe/webhook`: authenticated by `Stripe-Signature` alone. Each event
//! id is recorded in the database and handled once; duplicates and out-of-order deliveries
//! are normal. A failure answers non-2xx so Stripe retries.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use marquee_platform::Problem;
use serde_json::{Value, json};

use super::settle;
use super::stripe::Intent;
use tracing::Instrument;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const TOLERANCE_S: i64 = 300;

pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = marquee_parsers::stripe_signature::verify(
        header,
        &body,
        state.settings.stripe.webhook_secret.expose(),
        now,
        TOLERANCE_S,
    ) {
        return Problem::new(StatusCode::BAD_REQUEST, "bad-signature", e.to_string())
            .into_response();
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "the event is not JSON",
        )
        .into_response();
    };
    let (Some(id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-event",
            "the event has no id or type",
        )
        .into_response();
    };
    // The event joins the booking's trace: the request's own when the sender passed it on
    // (the simulator does), else the one the PaymentIntent's metadata names (Stripe's way).
    let span = tracing::info_span!("stripe webhook", event = %kind);
    if !headers.contains_key(marquee_platform::trace::TRACEPARENT) {
        let named =
            event["data"]["object"]["metadata"][marquee_platform::trace::TRACEPARENT].as_str();
        marquee_platform::trace::continue_from(&span, named);
    }
    match handle_once(&state, id, kind, &event["data"]["object"])
        .instrument(span)
        .await
    {
        Ok(duplicate) => (
            StatusCode::OK,
            axum::Json(json!({"received": true, "duplicate": duplicate})),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Record the event id, handle it, mark it done. `Ok(true)` for an event already handled.
async fn handle_once(state: &AppState, id: &str, kind: &str, object: &Value) -> ApiResult<bool> {
    let claimed = sqlx::query(
        "INSERT INTO webhook_events (event_id, type) VALUES ($1, $2)
         ON CONFLICT (event_id) DO UPDATE SET received_at = now()
           WHERE webhook_events.state = 'processing' AND webhook_events.received_at < now() - interval '60 seconds'",
    )
    .bind(id)
    .bind(kind)
    .execute(&state.db)
    .await?
    .rows_affected();
    if claimed == 0 {
        let done: Option<String> =
            sqlx::query_scalar("SELECT state FROM webhook_events WHERE event_id = $1")
                .bind(id)
                .fetch_optional(&state.db)
                .await?;
        return match done.as_deref() {
            Some("done") => Ok(true),
            // Another delivery of this event is being handled right now.
            _ => Err(ApiError::InFlight),
        };
    }
    match handle(state, kind, object).await {
        Ok(()) => {
            sqlx::query("UPDATE webhook_events SET state = 'done' WHERE event_id = $1")
                .bind(id)
                .execute(&state.db)
                .await?;
            Ok(false)
        }
        Err(e) => {
            // Forget it so Stripe's retry is handled afresh.
            let _ = sqlx::query("DELETE FROM webhook_events WHERE event_id = $1")
                .bind(id)
                .execute(&state.db)
                .await;
            Err(e)
        }
    }
}

fn intent_from_event(object: &Value) -> Intent {
    let metadata: HashMap<String, String> = object["metadata"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Intent {
        id: object["id"].as_str().unwrap_or_default().to_owned(),
        status: object["status"].as_str().unwrap_or_default().to_owned(),
        amount: object["amount"].as_i64().unwrap_or(0),
        currency: object["currency"].as_str().unwrap_or_default().to_owned(),
        client_secret: String::new(),
        metadata,
    }
}

async fn handle(state: &AppState, kind: &str, object: &Value) -> ApiResult<()> {
    match kind {
        "payment_intent.succeeded" => {
            let intent = intent_from_event(object);
            if !intent.metadata.contains_key("reservation_id") {
                return Ok(()); // not one of ours
            }
            match settle::payment_succeeded(state, &intent).await {
                Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        "payment_intent.payment_failed" => {
            let intent = intent_from_event(object);
            settle::attempt_closed(state, &intent.id, "declined", &intent.status).await
        }
        "payment_intent.canceled" => {
            let intent = intent_from_event(object);
            settle::attempt_closed(state, &intent.id, "canceled", "canceled").await
        }
        "charge.refunded" => {
            let Some(pi) = object["payment_intent"].as_str() else {
                return Ok(());
            };
            // Only a full refund ends the booking.
            if object["refunded"].as_bool() != Some(true) {
                return Ok(());
            }
            let booking: Option<String> = sqlx::query_scalar(
                "SELECT booking_id FROM payment_attempts WHERE payment_intent_id = $1",
            )
            .bind(pi)
            .fetch_optional(&state.db)
            .await?;
            let Some(booking) = booking else {
                return Ok(());
            };
            let mut tx = state.db.begin().await?;
            let row = settle::lock_booking(&mut tx, &booking).await?;
            if row.payment_intent_id.as_deref() == Some(pi)
                && settle::confirmed_booking_refunded(&mut tx, &row, "refunded in Stripe").await?
            {
                tx.commit().await?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
