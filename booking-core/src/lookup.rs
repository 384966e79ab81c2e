//! Find my booking (`POST /v1/bookings/lookup {email}`): a fan who lost the page gets an email
//! with a link to each of their confirmed bookings' ticket pages. The answer is `202` at once,
//! before anything is looked up, so it takes the same time whether or not bookings exist and
//! says nothing about them; the lookup runs after, by the address's keyed hash
//! (`bookings.email_hash`), and announces a `BookingsLookup` through the outbox (the sealed
//! address and the booking ids) for the notifier to email. Each address gets `PER_HOUR`
//! requests an hour across every replica (a Redis counter keyed by the hash, never the
//! address), so the route cannot flood an inbox; the gateway limits each client address.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::state::AppState;

/// Lookups an address may ask for in an hour.
pub const PER_HOUR: i64 = 3;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    email: String,
}

pub async fn lookup(
    State(state): State<AppState>,
    Body(req): Body<LookupRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if !crate::payments::routes::valid_email(req.email.trim()) {
        return Err(ApiError::field("email", "must be an email address"));
    }
    let hash = state.pii.lookup_hash(&req.email);
    let key = marquee_waitroom::keys::lookups(&hash);
    let mut redis = state.redis.clone();
    let (count, ttl): (i64, i64) = redis::pipe()
        .atomic()
        .incr(&key, 1)
        .cmd("EXPIRE")
        .arg(&key)
        .arg(3600)
        .arg("NX")
        .ignore()
        .ttl(&key)
        .query_async(&mut redis)
        .await?;
    if count > PER_HOUR {
        return Err(ApiError::TooManyRequests {
            retry_after_s: ttl.max(1) as u64,
        });
    }
    let sealed = state.pii.seal(&req.email);
    let db = state.db.clone();
    // The email goes on in the request's trace, as the rest of a fan's request does.
    let trace = marquee_platform::trace::traceparent(&tracing::Span::current());
    tokio::spawn(async move {
        if let Err(e) = announce(&db, &hash, sealed, trace).await {
            tracing::warn!(error = %e, "a booking lookup could not be announced; the fan may ask again");
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "status": "accepted",
            "detail": "if this address has confirmed bookings, an email with a link to each is on its way",
        })),
    ))
}

/// The address's confirmed bookings, announced for the notifier if there are any.
async fn announce(
    db: &sqlx::PgPool,
    hash: &str,
    sealed: marquee_platform::pii::Sealed,
    trace: Option<String>,
) -> ApiResult<()> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM bookings WHERE email_hash = $1 AND status = 'confirmed'
         ORDER BY confirmed_at DESC LIMIT 50",
    )
    .bind(hash)
    .fetch_all(db)
    .await?;
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH m AS (SELECT gen_random_uuid() AS id)
         INSERT INTO outbox (message_id, topic_key, type, payload, traceparent)
         SELECT m.id, $1, 'BookingsLookup', jsonb_build_object(
            'message_id', m.id, 'type', 'BookingsLookup',
            'occurred_at', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
            'schema_version', 1, 'booking_ids', to_jsonb($2::text[]), 'email_enc', $3::jsonb), $4
         FROM m",
    )
    .bind(hash)
    .bind(&ids)
    .bind(serde_json::to_value(sealed).map_err(|e| ApiError::Unavailable(e.to_string()))?)
    .bind(trace)
    .execute(db)
    .await?;
    sqlx::query("SELECT pg_notify('marquee_outbox', '')")
        .execute(db)
        .await?;
    Ok(())
}
