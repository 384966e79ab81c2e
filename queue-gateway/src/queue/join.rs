//! `POST /v1/queue/{event_id}/join`: a place in line, idempotently.

use axum::extract::{Path, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::Utc;
use http::{HeaderMap, StatusCode};
use marquee_waitroom::EventState;
use marquee_waitroom::queue;
use marquee_waitroom::queue_token::QueueClaims;
use rand::Rng;
use serde::Deserialize;

use super::answer::{answer, respond};
use super::credentials::{Presented, presented_token, require_csrf};
use super::valid_event_id;
use crate::error::GatewayError;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    /// base64url(SHA-256(secret)) for possession binding.
    visitor_key_hash: Option<String>,
    /// The solved challenge, when the event asks new visitors for proof of work.
    pow: Option<super::pow::Solution>,
}

pub async fn join(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    if !valid_event_id(&event_id) {
        return Err(GatewayError::NotFound("event"));
    }
    let body: JoinBody = if body.iter().all(u8::is_ascii_whitespace) {
        JoinBody::default()
    } else {
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&body)).map_err(
            |e| {
                let path = e.path().to_string();
                let field = if path == "." { "body".to_owned() } else { path };
                GatewayError::field(&field, &e.inner().to_string())
            },
        )?
    };
    if let Some(h) = &body.visitor_key_hash {
        let ok = URL_SAFE_NO_PAD.decode(h).is_ok_and(|b| b.len() == 32);
        if !ok {
            return Err(GatewayError::field(
                "visitor_key_hash",
                "must be base64url(SHA-256(secret)), 43 characters",
            ));
        }
    }
    let view = state
        .events
        .get(&event_id)
        .await?
        .ok_or(GatewayError::NotFound("event"))?;
    if view.state() == EventState::Closed {
        return Err(GatewayError::Conflict(
            "the queue for this event is closed".into(),
        ));
    }

    // Joining again with the same token keeps the same place.
    if let Some(Presented {
        claims,
        from_cookie,
        ..
    }) = presented_token(&state, &headers)
        && claims.e == event_id
    {
        if from_cookie {
            require_csrf(&state, &headers, &claims.v)?;
        }
        let token = state.queue_signer.sign(&claims);
        let answer = answer(&state, &view, claims, Some(token)).await?;
        return Ok(respond(&state, StatusCode::CREATED, answer));
    }

    super::pow::accept(&state, &event_id, view.cfg.pow_bits, body.pow.as_ref()).await?;
    let visitor = new_visitor_id();
    let joined = queue::join(
        &mut state.redis.clone(),
        &queue::Join {
            event: &event_id,
            visitor: &visitor,
            before_opening: view.state() == EventState::Prequeue,
            now_ms: Utc::now().timestamp_millis(),
            abandon_after_s: view.cfg.abandon_after_s,
            pass_through: view.cfg.passes_through(Utc::now()).then(|| queue::Budget {
                rate_per_minute: view.cfg.rate_per_minute,
                max_active: view.cfg.max_active,
                session_ttl_ms: u64::from(view.cfg.session_ttl_s) * 1000,
                idle_ms: u64::from(view.cfg.idle_after_s) * 1000,
                max_elapsed_ms: queue::max_elapsed_ms(state.settings.worker.tick_ms),
            }),
        },
    )
    .await?;
    let (place, passed) = match joined {
        queue::Joined::Waiting(place) => (Some(place), false),
        queue::Joined::PassedThrough(place) => (Some(place), true),
        queue::Joined::Prequeue | queue::Joined::Admitted => (None, false),
    };
    let claims = QueueClaims {
        v: visitor.clone(),
        e: event_id.clone(),
        p: place,
        k: body.visitor_key_hash,
        t: Utc::now().timestamp(),
    };
    let token = state.queue_signer.sign(&claims);
    // Passed straight through: admitted now, whatever this gateway's view of the watermark.
    let mut answer = if passed {
        super::answer::admitted_now(&state, &view, claims, token).await?
    } else {
        answer(&state, &view, claims, Some(token)).await?
    };
    answer.view.visitor_id = Some(visitor);
    Ok(respond(&state, StatusCode::CREATED, answer))
}

/// 12 random bytes: unguessable enough for an id that is never a credential, short enough to
/// keep a million waiting visitors small in Redis.
fn new_visitor_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 12]>())
}
