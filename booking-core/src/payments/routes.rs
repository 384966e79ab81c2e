//! `POST /v1/bookings/{id}/checkout`, `POST /v1/bookings/confirm` and the operators'
//! `POST /admin/v1/bookings/{id}/refund`.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::settle::{self, Settled};
use super::stripe::StripeFailure;
use crate::admin::Operator;
use crate::audit::{self, Entry};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, idempotency_key};
use crate::idempotency;
use crate::model::{BookingStatus, Check, plausible_id};
use crate::state::AppState;

impl From<StripeFailure> for ApiError {
    fn from(f: StripeFailure) -> Self {
        match f {
            StripeFailure::Unavailable {
                reason,
                retry_after_s,
            } => ApiError::PaymentsUnavailable {
                reason,
                retry_after_s,
            },
            StripeFailure::Refused(why) => ApiError::Internal(anyhow::anyhow!(why)),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    email: String,
}

/// Whether `e` looks like an email address (the one rule, for checkout and lookups).
pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub async fn checkout(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(req): Body<CheckoutRequest>,
) -> Response {
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    // The request's fingerprint holds the email's keyed hash, never the email.
    let canonical = json!({"email_hash": state.pii.lookup_hash(&req.email)});
    let key = key.as_deref().map(|k| idempotency::Key {
        scope: &id,
        route: "checkout",
        key: k,
        request_hash: idempotency::hash_request(&canonical),
    });
    idempotency::run(
        &state.db,
        key,
        state.settings.booking.idempotency_ttl_s,
        async {
            Ok((
                StatusCode::OK,
                checkout_inner(&state, &id, &req.email).await?,
            ))
        },
    )
    .await
}

async fn checkout_inner(state: &AppState, id: &str, email: &str) -> ApiResult<Value> {
    if !plausible_id(id) {
        return Err(ApiError::NotFound("booking"));
    }
    let mut check = Check::default();
    check.require(valid_email(email), "email", "must be an email address");
    check.done()?;
    let booking = crate::bookings::get(&state.db, id).await?;
    match booking.status {
        BookingStatus::Held => {}
        BookingStatus::Expired => {
            return Err(ApiError::HoldExpired);
        }
        other => return Err(ApiError::Conflict(format!("the booking is {other}"))),
    }
    #[derive(sqlx::FromRow)]
    struct Attempt {
        payment_intent_id: String,
        client_secret: String,
        amount_cents: i64,
        currency: String,
    }
    let open: Option<Attempt> = sqlx::query_as(
        "SELECT payment_intent_id, client_secret, amount_cents, currency FROM payment_attempts
         WHERE booking_id = $1 AND state = 'open'",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    let attempt = match open {
        Some(a) => a,
        None => {
            // The attempt's number, and the trace the booking began (its webhooks join it).
            let (n, trace): (i32, Option<String>) = sqlx::query_as(
                "SELECT coalesce(max(attempt), 0) + 1,
                        (SELECT traceparent FROM bookings WHERE show_id = $2 AND id = $1)
                 FROM payment_attempts WHERE booking_id = $1",
            )
            .bind(id)
            .bind(&booking.show_id)
            .fetch_one(&state.db)
            .await?;
            let mut metadata = HashMap::from([
                ("reservation_id".to_owned(), id.to_owned()),
                ("show_id".to_owned(), booking.show_id.clone()),
                ("event_id".to_owned(), booking.event_id.clone()),
                ("attempt".to_owned(), n.to_string()),
            ]);
            if let Some(trace) = trace {
                metadata.insert(marquee_platform::trace::TRACEPARENT.to_owned(), trace);
            }
            let intent = state
                .stripe
                .create_intent(
                    id,
                    n,
                    booking.total_cents,
                    &booking.currency,
                    email,
                    metadata,
                )
                .await?;
            sqlx::query(
                "INSERT INTO payment_attempts (payment_intent_id, booking_id, show_id, attempt, stripe_status,
                                               amount_cents, currency, client_secret, email_enc, email_hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            )
            .bind(&intent.id)
            .bind(id)
            .bind(&booking.show_id)
            .bind(n)
            .bind(&intent.status)
            .bind(intent.amount)
            .bind(&booking.currency)
            .bind(&intent.client_secret)
            .bind(sqlx::types::Json(state.pii.seal(email)))
            .bind(state.pii.lookup_hash(email))
            .execute(&state.db)
            .await?;
            // A concurrent checkout may have opened the attempt first: answer with that one.
            sqlx::query_as(
                "SELECT payment_intent_id, client_secret, amount_cents, currency FROM payment_attempts
                 WHERE booking_id = $1 AND state = 'open'",
            )
            .bind(id)
            .fetch_optional(&state.db)
            .await?
            .ok_or_else(|| ApiError::Conflict("the payment attempt closed meanwhile; try again".into()))?
        }
    };
    let mut answer = json!({
        "payment_intent_id": attempt.payment_intent_id,
        "client_secret": attempt.client_secret,
        "amount_cents": attempt.amount_cents,
        "currency": attempt.currency,
        "publishable_key": state.settings.stripe.publishable_key,
    });
    // Against the simulator, the page confirms with a test card there instead of Stripe.js.
    if !state.settings.stripe.api_base.contains("api.stripe.com") {
        answer["simulator"] = state.settings.stripe.api_base.trim_end_matches('/').into();
    }
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    reservation_id: String,
    payment_intent_id: String,
}

pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(req): Body<ConfirmRequest>,
) -> Response {
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    let canonical =
        json!({"reservation_id": req.reservation_id, "payment_intent_id": req.payment_intent_id});
    let key = key.as_deref().map(|k| idempotency::Key {
        scope: &req.reservation_id,
        route: "confirm",
        key: k,
        request_hash: idempotency::hash_request(&canonical),
    });
    idempotency::run(
        &state.db,
        key,
        state.settings.booking.idempotency_ttl_s,
        async { Ok((StatusCode::OK, confirm_inner(&state, &req).await?)) },
    )
    .await
}

async fn confirm_inner(state: &AppState, req: &ConfirmRequest) -> ApiResult<Value> {
    let mut check = Check::default();
    check.require(
        plausible_id(&req.reservation_id),
        "reservation_id",
        "must be a reservation id",
    );
    check.require(
        plausible_id(&req.payment_intent_id),
        "payment_intent_id",
        "must be a PaymentIntent id",
    );
    check.done()?;
    let known: Option<String> = sqlx::query_scalar(
        "SELECT state FROM payment_attempts WHERE payment_intent_id = $1 AND booking_id = $2",
    )
    .bind(&req.payment_intent_id)
    .bind(&req.reservation_id)
    .fetch_optional(&state.db)
    .await?;
    if known.is_none() {
        return Err(ApiError::NotFound("payment for this booking"));
    }
    // Already settled: answer from the database, no call to Stripe.
    let booking = crate::bookings::get(&state.db, &req.reservation_id).await?;
    let paid_with_this = {
        let pi: Option<Option<String>> = sqlx::query_scalar(
            "SELECT b.payment_intent_id FROM booking_index i JOIN bookings b ON b.show_id = i.show_id AND b.id = i.id WHERE i.id = $1",
        )
        .bind(&req.reservation_id)
        .fetch_optional(&state.db)
        .await?;
        pi.flatten().as_deref() == Some(req.payment_intent_id.as_str())
    };
    if paid_with_this && booking.status == BookingStatus::Confirmed {
        return confirmed_answer(state, &req.reservation_id).await;
    }
    if paid_with_this && booking.status == BookingStatus::Refunded {
        return Err(ApiError::HoldLost(
            booking.status_reason.unwrap_or_else(|| "refunded".into()),
        ));
    }
    let intent = state.stripe.retrieve(&req.payment_intent_id).await?;
    if intent.metadata.get("reservation_id") != Some(&req.reservation_id) {
        return Err(ApiError::NotFound("payment for this booking"));
    }
    match intent.status.as_str() {
        "succeeded" => match settle::payment_succeeded(state, &intent).await? {
            Settled::Confirmed { .. } => confirmed_answer(state, &req.reservation_id).await,
            Settled::Refunded { reason } => Err(ApiError::HoldLost(reason)),
        },
        status => {
            if status == "requires_payment_method" || status == "canceled" {
                let closed = if status == "canceled" {
                    "canceled"
                } else {
                    "declined"
                };
                settle::attempt_closed(state, &intent.id, closed, status).await?;
            }
            Err(ApiError::PaymentRequired(status.to_owned()))
        }
    }
}

async fn confirmed_answer(state: &AppState, id: &str) -> ApiResult<Value> {
    let view = crate::payments::routes::view_with_payment(state, id).await?;
    Ok(
        json!({"status": BookingStatus::Confirmed, "reservation_id": id, "ticket": view.ticket, "seats": view.seats}),
    )
}

/// A booking as `GET /v1/bookings/{id}` shows it: with its payment state and, once confirmed,
/// its ticket.
pub async fn view_with_payment(state: &AppState, id: &str) -> ApiResult<crate::model::BookingView> {
    let mut view = crate::bookings::get(&state.db, id).await?;
    #[derive(sqlx::FromRow)]
    struct Payment {
        payment_intent_id: String,
        state: String,
        stripe_status: String,
        attempt: i32,
    }
    let latest: Option<Payment> = sqlx::query_as(
        "SELECT payment_intent_id, state, stripe_status, attempt FROM payment_attempts
         WHERE booking_id = $1 ORDER BY attempt DESC LIMIT 1",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    view.payment = latest.map(|p| {
        json!({"payment_intent_id": p.payment_intent_id, "state": p.state, "stripe_status": p.stripe_status, "attempt": p.attempt})
    });
    if view.status == BookingStatus::Confirmed {
        let mut conn = state.db.acquire().await?;
        if let Some((code, payload)) = settle::ticket_of(&mut conn, id).await? {
            view.ticket = Some(crate::tickets::ticket(code, payload));
        }
    }
    Ok(view)
}

/// `POST /admin/v1/bookings/{id}/refund`: refund a confirmed booking; its seats go back on sale.
pub async fn admin_refund(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<crate::model::BookingView>> {
    if !plausible_id(&id) {
        return Err(ApiError::NotFound("booking"));
    }
    let booking = crate::bookings::get(&state.db, &id).await?;
    op.may(crate::operators::Act::Manage(&booking.event_id))?;
    if booking.status == BookingStatus::Refunded {
        return Ok(axum::Json(view_with_payment(&state, &id).await?));
    }
    if booking.status != BookingStatus::Confirmed {
        return Err(ApiError::Conflict(format!(
            "only a confirmed booking can be refunded; this one is {}",
            booking.status
        )));
    }
    let pi: Option<String> = sqlx::query_scalar(
        "SELECT b.payment_intent_id FROM booking_index i JOIN bookings b ON b.show_id = i.show_id AND b.id = i.id WHERE i.id = $1",
    )
    .bind(&id)
    .fetch_one(&state.db)
    .await?;
    let pi =
        pi.ok_or_else(|| ApiError::Conflict("this booking has no payment to refund".into()))?;
    // The intent is on the record before Stripe is asked; the outcome after (API.md: an action
    // with an outside effect writes its intent, acts, then records the outcome).
    let entry = |action| {
        Entry::by(&op, action, &id).event(&booking.event_id).change(
            None,
            Some(json!({"total_cents": booking.total_cents, "currency": booking.currency})),
        )
    };
    let mut conn = state.db.acquire().await?;
    audit::record(&mut conn, &entry("booking.refund.requested")).await?;
    drop(conn);
    // Stripe first (idempotent per PaymentIntent): if it fails, nothing has changed here.
    if let Err(e) = state.stripe.refund(&pi, "refunded by an operator").await {
        let mut conn = state.db.acquire().await?;
        let failed =
            entry("booking.refund.failed").change(None, Some(json!({"error": e.to_string()})));
        audit::record(&mut conn, &failed).await?;
        return Err(e.into());
    }
    let mut tx = state.db.begin().await?;
    let row = settle::lock_booking(&mut tx, &id).await?;
    settle::confirmed_booking_refunded(&mut tx, &row, "refunded by an operator").await?;
    audit::record(&mut tx, &entry("booking.refund.done")).await?;
    tx.commit().await?;
    tracing::info!(booking = %id, "refunded by an operator");
    Ok(axum::Json(view_with_payment(&state, &id).await?))
}
