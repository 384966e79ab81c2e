//! `GET /v1/queue/{event_id}/status`: where a visitor stands. Answered from the signed token
//! and this gateway's in-memory view of the event; Redis is read only at the moment of
//! admission and when a pre-queue visitor first learns its shuffled place.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use chrono::{TimeZone, Utc};
use http::{HeaderMap, StatusCode};
use marquee_waitroom::admission::{AUDIENCE, AdmissionClaims, Confirmation};
use marquee_waitroom::queue::position;
use marquee_waitroom::queue_token::QueueClaims;
use marquee_waitroom::{EventState, keys, session};
use redis::AsyncCommands;

use super::{QUEUE_COOKIE, QueueState, QueueView, poll_after_ms, valid_event_id};
use crate::error::GatewayError;
use crate::events::EventView;
use crate::state::AppState;

pub struct Answer {
    pub view: QueueView,
    /// The visitor's place, once known (for presence).
    pub place: Option<u64>,
    /// A token to (re)set as the queue cookie.
    pub cookie_token: Option<String>,
}

/// A queue token presented with a request, verified.
pub struct Presented {
    pub claims: QueueClaims,
    pub from_cookie: bool,
}

/// The queue token from `Authorization: Bearer` or the cookie, if it verifies.
pub fn presented_token(state: &AppState, headers: &HeaderMap) -> Option<Presented> {
    let from_header = headers.contains_key(http::header::AUTHORIZATION);
    let token = marquee_platform::http::bearer_or_cookie(headers, QUEUE_COOKIE)?;
    let claims = state.queue_signer.verify(&token)?;
    Some(Presented {
        claims,
        from_cookie: !from_header,
    })
}

/// State-changing requests made with cookie credentials must echo the CSRF value.
pub fn require_csrf(
    state: &AppState,
    headers: &HeaderMap,
    visitor: &str,
) -> Result<(), GatewayError> {
    let presented = headers
        .get("x-marquee-csrf")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if state.queue_signer.csrf_matches(visitor, presented) {
        Ok(())
    } else {
        Err(GatewayError::Unauthorized(
            "requests made with cookies need the X-Marquee-CSRF header from join or status".into(),
        ))
    }
}

/// The route's handler. Most polls never get here: `crate::poll_path` answers them in front
/// of the router through `poll`; this answers the rest (HEAD, ids in other spellings).
pub async fn status(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    request: Request,
) -> Result<Response, GatewayError> {
    poll(&state, &event_id, request.headers()).await
}

/// A status poll for `event_id`, from its headers (the queue token in `Authorization` or the
/// cookie).
pub async fn poll(
    state: &AppState,
    event_id: &str,
    headers: &HeaderMap,
) -> Result<Response, GatewayError> {
    if !valid_event_id(event_id) {
        return Err(GatewayError::NotFound("event"));
    }
    let Presented { claims, .. } = presented_token(state, headers)
        .ok_or_else(|| GatewayError::Unauthorized("a valid queue token is required".into()))?;
    if claims.e != event_id {
        return Err(GatewayError::Forbidden);
    }
    let view = state
        .events
        .get(event_id)
        .await?
        .ok_or(GatewayError::NotFound("event"))?;
    if let Some(limiter) = &view.poll_limiter
        && limiter.check_key(&claims.v).is_err()
    {
        return Err(GatewayError::TooManyRequests {
            retry_after_s: u64::from(view.cfg.min_poll_interval_ms).div_ceil(1000),
        });
    }
    // The token (body and cookie) only goes back when it changed: the pre-queue visitor's
    // new place. Every other poll is answered without it.
    let answer = answer(state, &view, claims, None).await?;
    if let Some(place) = answer.place {
        state
            .presence
            .saw(event_id, view.cfg.abandon_after_s, place);
    }
    Ok(super::join::respond(state, StatusCode::OK, answer))
}

/// Where this visitor stands. `token` is a queue token to hand back (body and cookie) in any
/// case; a token signed anew for a changed place is handed back instead of it.
pub async fn answer(
    state: &AppState,
    view: &EventView,
    mut claims: QueueClaims,
    token: Option<String>,
) -> Result<Answer, GatewayError> {
    let cfg = &view.cfg;
    let mut out = QueueView {
        state: QueueState::Waiting,
        csrf: state.queue_signer.csrf(&claims.v),
        opens_at: view.opens_at_text.clone(),
        event_name: view.name.clone(),
        shuffle_seed: view.shuffle_seed.clone().filter(|_| view.shuffled),
        queue_token: token.clone(),
        ..QueueView::default()
    };
    let mut cookie_token = token;
    let event_state = view.state();

    // A pre-queue token learns its place once the shuffle is done.
    if claims.p.is_none() && view.shuffled {
        let mut redis = state.redis.clone();
        let place: Option<u64> = redis.zscore(keys::waiting(&claims.e), &claims.v).await?;
        match place {
            Some(p) => {
                claims.p = Some(p);
                let fresh = state.queue_signer.sign(&claims);
                out.queue_token = Some(fresh.clone());
                cookie_token = Some(fresh);
            }
            None => return admitted_or_expired(state, view, &claims, out, cookie_token).await,
        }
    }

    match (event_state, claims.p) {
        (EventState::Closed, _) => {
            out.state = QueueState::Closed;
            out.poll_after_ms = 60_000;
        }
        (_, None) => {
            out.state = QueueState::Prequeue;
            let until_open = (cfg.opens_at - Utc::now()).num_seconds().max(0) as u64;
            out.estimated_wait_s = Some(until_open);
            out.poll_after_ms = poll_after_ms(
                cfg.min_poll_interval_ms,
                Some(until_open * 5),
                cfg.abandon_after_s,
            )
            .min(until_open.max(1) * 1000);
        }
        (_, Some(p)) if p <= view.watermark => {
            return admitted_or_expired(state, view, &claims, out, cookie_token).await;
        }
        (s, Some(p)) => {
            let ahead = position(p, view.watermark, view.prequeue_total);
            out.position = Some(ahead);
            let wait = (ahead as f64 / view.places_per_s().max(0.001)).ceil() as u64;
            out.state = if cfg.sold_out {
                QueueState::SoldOut
            } else if s == EventState::Paused {
                QueueState::Paused
            } else {
                QueueState::Waiting
            };
            out.estimated_wait_s = (out.state == QueueState::Waiting).then_some(wait);
            out.poll_after_ms =
                poll_after_ms(cfg.min_poll_interval_ms, Some(wait), cfg.abandon_after_s);
        }
    }
    Ok(Answer {
        view: out,
        place: claims.p,
        cookie_token,
    })
}

/// The moment of admission: the worker has passed this visitor's place. Either it holds a
/// slot (admitted: sign its admission token, valid until the session's end), or it was
/// dropped, or its turn is over (session ended, bought, or idle: see
/// `marquee_waitroom::session`).
async fn admitted_or_expired(
    state: &AppState,
    view: &EventView,
    claims: &QueueClaims,
    mut out: QueueView,
    cookie_token: Option<String>,
) -> Result<Answer, GatewayError> {
    let mut redis = state.redis.clone();
    let standing = session::standing(&mut redis, &claims.e, &claims.v).await?;
    let now = Utc::now();
    let session_ms = i64::from(view.cfg.session_ttl_s) * 1000;
    let admitted_at = standing
        .admitted_at_ms
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
    let until_ms = standing
        .admitted_at_ms
        .map(|at| at + session_ms)
        .filter(|_| standing.shopping(now.timestamp_millis()));
    match until_ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single()) {
        Some(until) if until > now => {
            let admission = AdmissionClaims {
                iss: state.settings.admission.issuer.clone(),
                aud: AUDIENCE.into(),
                sub: claims.v.clone(),
                evt: claims.e.clone(),
                iat: now.timestamp(),
                nbf: now.timestamp(),
                exp: until.timestamp(),
                jti: uuid::Uuid::new_v4().to_string(),
                cnf: claims.k.clone().map(|vkh| Confirmation { vkh }),
            };
            out.state = QueueState::Admitted;
            out.position = Some(0);
            out.estimated_wait_s = Some(0);
            out.admission_token = Some(
                state
                    .keys
                    .sign(&admission)
                    .map_err(|e| GatewayError::Internal(anyhow::anyhow!(e)))?,
            );
            out.admitted_until = Some(until);
            out.admitted_at = admitted_at;
            out.poll_after_ms = 30_000;
        }
        _ => {
            out.state = if view.cfg.sold_out {
                QueueState::SoldOut
            } else {
                QueueState::Expired
            };
            out.poll_after_ms = 60_000;
        }
    }
    Ok(Answer {
        view: out,
        place: claims.p,
        cookie_token,
    })
}
