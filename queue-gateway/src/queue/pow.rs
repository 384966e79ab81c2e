//! Proof of work at join: bot friction an operator turns on per event (`pow_bits`). A new
//! visitor asks for a challenge, finds a nonce such that SHA-256(`{challenge}:{nonce}`) starts
//! with `pow_bits` zero bits (the page does it in the browser), and joins with both.
//! Challenges are stateless (event, expiry and randomness, tagged with the gateway's queue
//! key), so any replica checks any; each is accepted once (its tag kept in Redis, in a set per
//! minute of expiry, until it expires).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use marquee_waitroom::keys;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::valid_event_id;
use crate::error::GatewayError;
use crate::state::AppState;

/// How long a challenge may be solved and used.
pub const CHALLENGE_TTL_S: i64 = 120;
const DOMAIN: &[u8] = b"pow:";

#[derive(Debug, Serialize)]
pub struct Challenge {
    pub challenge: String,
    /// Leading zero bits asked for; 0 when the event asks for no proof of work.
    pub bits: u8,
    pub expires_at: DateTime<Utc>,
}

/// `GET /v1/queue/{event_id}/challenge`
pub async fn challenge(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Response, GatewayError> {
    if !valid_event_id(&event_id) {
        return Err(GatewayError::NotFound("event"));
    }
    let view = state
        .events
        .get(&event_id)
        .await?
        .ok_or(GatewayError::NotFound("event"))?;
    let expires_at = Utc::now() + chrono::Duration::seconds(CHALLENGE_TTL_S);
    let random = URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 12]>());
    let body = format!("{event_id}.{}.{random}", expires_at.timestamp());
    let tag = state.queue_signer.tag(DOMAIN, &body);
    let answer = Challenge {
        challenge: format!("{body}.{tag}"),
        bits: view.cfg.pow_bits,
        expires_at,
    };
    Ok(([(http::header::CACHE_CONTROL, "no-store")], Json(answer)).into_response())
}

/// What a join carries when the event asks for proof of work.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Solution {
    pub challenge: String,
    pub nonce: String,
}

pub use marquee_waitroom::pow::leading_zero_bits;

/// Accept `solution` for a join to `event_id` needing `bits` (nothing to check at 0), once.
pub async fn accept(
    state: &AppState,
    event_id: &str,
    bits: u8,
    solution: Option<&Solution>,
) -> Result<(), GatewayError> {
    let refuse = |why: &str| Err(GatewayError::field("pow", why));
    // A solution's shape is checked whenever one is sent, needed or not.
    if let Some(s) = solution
        && (s.nonce.is_empty() || s.nonce.len() > 64)
    {
        return refuse("the nonce must be 1 to 64 characters");
    }
    if bits == 0 {
        return Ok(());
    }
    let Some(solution) = solution else {
        return refuse(&format!(
            "this event asks new visitors for proof of work: solve GET /v1/queue/{event_id}/challenge and send {{challenge, nonce}}"
        ));
    };
    let Some((body, tag)) = solution.challenge.rsplit_once('.') else {
        return refuse("not a challenge from this gateway");
    };
    if !state.queue_signer.tag_matches(DOMAIN, body, tag) {
        return refuse("not a challenge from this gateway");
    }
    let mut parts = body.splitn(3, '.');
    let (for_event, expires) = (
        parts.next(),
        parts.next().and_then(|e| e.parse::<i64>().ok()),
    );
    if for_event != Some(event_id) {
        return refuse("the challenge is for another event");
    }
    let expires = expires.unwrap_or(0);
    if expires <= Utc::now().timestamp() {
        return refuse("the challenge has expired; ask for a new one");
    }
    if !marquee_waitroom::pow::solves(&solution.challenge, &solution.nonce, bits) {
        return refuse(&format!(
            "SHA-256 of `challenge:nonce` must start with {bits} zero bits"
        ));
    }
    let minute = expires.div_euclid(60);
    let used = keys::pow_used(event_id, minute);
    let (added, _): (i64, bool) = redis::pipe()
        .atomic()
        .sadd(&used, tag)
        .expire_at(&used, (minute + 1) * 60)
        .query_async(&mut state.redis.clone())
        .await?;
    if added == 0 {
        return refuse("the challenge was used already; ask for a new one");
    }
    Ok(())
}
