//! `POST /v1/queue/{event_id}/join`: a place in line, idempotently.

use axum::extract::{Path, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::Utc;
use http::{HeaderMap, StatusCode};
use marquee_waitroom::EventState;
use marquee_waitroom::queue_token::QueueClaims;
use marquee_waitroom::{access_codes, queue};
use rand::Rng;
use serde::Deserialize;

use super::answer::{answer, respond};
use super::credentials::{Presented, presented_token, require_csrf};
use super::valid_event_id;
use crate::edge::ClientIp;
use crate::error::GatewayError;
use crate::event_views::EventView;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    /// base64url(SHA-256(secret)) for possession binding.
    visitor_key_hash: Option<String>,
    /// The solved challenge, when the event asks new visitors for proof of work.
    pow: Option<super::pow::Solution>,
    /// A presale or partner code (never logged, never in a URL).
    access_code: Option<String>,
}

pub async fn join(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    ClientIp(client): ClientIp,
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
    let code = match &body.access_code {
        Some(typed) => Some(code_hash(&state, &view, typed)?),
        None => None,
    };

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
        // A code brought by a fan already in line moves it to the lane; a fan already in the
        // lane (or admitted by a code) uses no further use by joining again.
        let claims = match (&code, claims.l) {
            (Some(code), false) => redeem(&state, &view, claims, code, client).await?,
            _ => claims,
        };
        let (visitor, token) = (claims.v.clone(), state.queue_signer.sign(&claims));
        let answer = answer(&state, &view, claims, Some(token)).await?;
        return Ok(joined(&state, visitor, answer));
    }

    super::pow::accept(&state, &event_id, view.cfg.pow_bits, body.pow.as_ref()).await?;
    let visitor = new_visitor_id();
    if let Some(code) = &code {
        let claims = QueueClaims {
            v: visitor.clone(),
            e: event_id.clone(),
            p: None,
            k: body.visitor_key_hash,
            t: Utc::now().timestamp(),
            l: false,
        };
        let claims = redeem(&state, &view, claims, code, client).await?;
        let token = state.queue_signer.sign(&claims);
        let answer = answer(&state, &view, claims, Some(token)).await?;
        return Ok(joined(&state, visitor, answer));
    }
    let before_opening = view.state() == EventState::Prequeue;
    let pass_through = view.cfg.passes_through(Utc::now()).then(|| queue::Budget {
        rate_per_minute: view.cfg.rate_per_minute,
        max_active: view.cfg.max_active,
        session_ttl_ms: u64::from(view.cfg.session_ttl_s) * 1000,
        idle_ms: u64::from(view.cfg.idle_after_s) * 1000,
        max_elapsed_ms: queue::max_elapsed_ms(state.settings.worker.tick_ms),
    });
    let outcome = match pass_through {
        // Joins that cannot pass through go together with the event's others at the moment.
        None => {
            let (redis, abandon) = (&state.redis, view.cfg.abandon_after_s);
            let visitor = visitor.clone();
            (state.joins)
                .join(redis, &event_id, visitor, before_opening, abandon)
                .await?
        }
        Some(budget) => {
            let join = queue::Join {
                event: &event_id,
                visitor: &visitor,
                before_opening,
                now_ms: Utc::now().timestamp_millis(),
                abandon_after_s: view.cfg.abandon_after_s,
                pass_through: Some(budget),
                fresh: true,
            };
            queue::join(&mut state.redis.clone(), &join).await?
        }
    };
    let (place, passed) = match outcome {
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
        l: false,
    };
    let token = state.queue_signer.sign(&claims);
    // Passed straight through: admitted now, whatever this gateway's view of the watermark.
    let answer = if passed {
        super::answer::admitted_now(&state, &view, claims, token).await?
    } else {
        answer(&state, &view, claims, Some(token)).await?
    };
    Ok(joined(&state, visitor, answer))
}

/// Every join's answer, first or again: `201` naming the visitor whose place it is.
fn joined(state: &AppState, visitor: String, mut answer: super::answer::Answer) -> Response {
    answer.view.visitor_id = Some(visitor);
    respond(state, StatusCode::CREATED, answer)
}

/// The typed code's keyed hash; a code is refused unless the event is open or in its
/// pre-queue, and one that cannot be a code at all is as wrong as an unknown one (and counted
/// as one by the redeem script's limits, since its hash is looked up like any other).
fn code_hash(state: &AppState, view: &EventView, typed: &str) -> Result<String, GatewayError> {
    if !matches!(view.state(), EventState::Open | EventState::Prequeue) {
        return Err(GatewayError::Conflict(
            "access codes work while the event is open or in its pre-queue".into(),
        ));
    }
    let key = state.settings.admission.access_code_key.expose().as_bytes();
    // Not a code's shape: hashed as typed (bounded), so it simply matches nothing.
    let plain = access_codes::normalise(typed)
        .unwrap_or_else(|| typed.chars().take(64).collect::<String>());
    Ok(access_codes::hash(key, &plain))
}

/// Redeem the code for the visitor in `claims`; the claims it goes on with (in the lane, or
/// admitted: either way no place in the line).
async fn redeem(
    state: &AppState,
    view: &EventView,
    claims: QueueClaims,
    code_hash: &str,
    client: std::net::IpAddr,
) -> Result<QueueClaims, GatewayError> {
    let a = &state.settings.admission;
    let client = client.to_string();
    let outcome = access_codes::redeem(
        &mut state.redis.clone(),
        &access_codes::Redeem {
            event: &claims.e,
            visitor: &claims.v,
            code_hash,
            client: &client,
            now_ms: Utc::now().timestamp_millis(),
            fails_per_client: a.access_code_fails_per_client,
            fails_per_event: a.access_code_fails_per_event,
            max_active: view.cfg.max_active,
            session_ttl_ms: u64::from(view.cfg.session_ttl_s) * 1000,
            idle_ms: u64::from(view.cfg.idle_after_s) * 1000,
            open: view.state() == EventState::Open && !view.cfg.sold_out,
        },
    )
    .await?;
    match outcome {
        access_codes::Redeemed::Limited { retry_after_ms } => Err(GatewayError::TooManyRequests {
            retry_after_s: retry_after_ms.div_ceil(1000).max(1),
        }),
        access_codes::Redeemed::Wrong(_) => Err(GatewayError::AccessCode),
        access_codes::Redeemed::Admitted | access_codes::Redeemed::Lane => Ok(QueueClaims {
            p: None,
            l: true,
            ..claims
        }),
    }
}

/// 12 random bytes: unguessable enough for an id that is never a credential, short enough to
/// keep a million waiting visitors small in Redis.
fn new_visitor_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 12]>())
}
