//! What join and status answer: where a visitor stands, computed from its signed token and this
//! gateway's in-memory view of the event (Redis is read only at the moment of admission and
//! when a pre-queue visitor first learns its shuffled place), and the answer as a response with
//! the cookies it carries.

use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};
use http::StatusCode;
use marquee_waitroom::admission::{AUDIENCE, AdmissionClaims, Confirmation};
use marquee_waitroom::queue::position;
use marquee_waitroom::queue_token::QueueClaims;
use marquee_waitroom::{EventState, keys, session};
use redis::AsyncCommands;

use super::credentials::{cookie, set_cookie};
use super::{ADMISSION_COOKIE, QUEUE_COOKIE, QueueState, QueueView, poll_after_ms};
use crate::error::GatewayError;
use crate::event_views::EventView;
use crate::state::AppState;

pub struct Answer {
    pub view: QueueView,
    /// The visitor's place, once known (for presence).
    pub place: Option<u64>,
    /// A token to (re)set as the queue cookie.
    pub cookie_token: Option<String>,
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
    let mut out = base_view(state, view, &claims, token.clone());
    let mut cookie_token = token;
    let event_state = view.state();
    if claims.l {
        return lane(state, view, &claims, out, cookie_token).await;
    }

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

/// A visitor in the priority lane (an access code): admitted once the worker (or its skip
/// code) gave it a slot; else where it stands in the lane, read from Redis (the lane is small:
/// one entry per code use).
async fn lane(
    state: &AppState,
    view: &EventView,
    claims: &QueueClaims,
    mut out: QueueView,
    cookie_token: Option<String>,
) -> Result<Answer, GatewayError> {
    let mut redis = state.redis.clone();
    let key = keys::priority(&claims.e);
    let score: Option<f64> = redis.zscore(&key, &claims.v).await?;
    let Some(score) = score else {
        return admitted_or_expired(state, view, claims, out, cookie_token).await;
    };
    let ahead: u64 = redis.zcount(&key, "-inf", format!("({score}")).await?;
    let cfg = &view.cfg;
    let wait = ((ahead + 1) as f64 / view.places_per_s().max(0.001)).ceil() as u64;
    out.position = Some(ahead + 1);
    out.state = match view.state() {
        EventState::Prequeue => QueueState::Prequeue,
        EventState::Paused => QueueState::Paused,
        _ if cfg.sold_out => QueueState::SoldOut,
        _ => QueueState::Waiting,
    };
    out.estimated_wait_s = (out.state == QueueState::Waiting).then_some(wait);
    out.poll_after_ms = poll_after_ms(cfg.min_poll_interval_ms, Some(wait), cfg.abandon_after_s);
    Ok(Answer {
        view: out,
        place: None,
        cookie_token,
    })
}

/// A visitor the join script just admitted (safety-net mode): its admission, answered as the
/// moment of admission is, without waiting for this gateway's view to catch up.
pub async fn admitted_now(
    state: &AppState,
    view: &EventView,
    claims: QueueClaims,
    token: String,
) -> Result<Answer, GatewayError> {
    let out = base_view(state, view, &claims, Some(token.clone()));
    admitted_or_expired(state, view, &claims, out, Some(token)).await
}

/// What every answer about this event says, before where the visitor stands.
fn base_view(
    state: &AppState,
    view: &EventView,
    claims: &QueueClaims,
    token: Option<String>,
) -> QueueView {
    QueueView {
        state: QueueState::Waiting,
        csrf: state.queue_signer.csrf(&claims.v),
        about: view.about.clone(),
        queue_token: token,
        ..QueueView::default()
    }
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
        .session_end_ms(session_ms)
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

/// The answer's JSON: the visitor's members, then the event's, rendered once per refresh
/// (`EventView::about`), written in before the closing brace (the visitor's object always has
/// members of its own, so a comma separates them).
fn body(view: &QueueView) -> serde_json::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(384);
    serde_json::to_writer(&mut body, view)?;
    if !view.about.is_empty() {
        body.pop();
        body.push(b',');
        body.extend_from_slice(view.about.as_bytes());
        body.push(b'}');
    }
    Ok(body)
}

/// A status answer as a response, with the cookies it carries.
pub fn respond(state: &AppState, status: StatusCode, answer: Answer) -> Response {
    // Serialised here rather than through `Json`, whose 128-byte start grows (a copy) on
    // every answer; a status answer is about 250 bytes.
    let body = match body(&answer.view) {
        Ok(body) => body,
        Err(e) => return GatewayError::Internal(anyhow::anyhow!(e)).into_response(),
    };
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Some(token) = &answer.cookie_token {
        set_cookie(headers, cookie(state, QUEUE_COOKIE, token, 86_400));
    }
    if let (Some(token), Some(until)) = (&answer.view.admission_token, answer.view.admitted_until) {
        let max_age = (until - Utc::now()).num_seconds().max(1);
        set_cookie(headers, cookie(state, ADMISSION_COOKIE, token, max_age));
    }
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_views::About;
    use serde_json::{Value, json};
    use std::sync::Arc;

    #[test]
    fn the_answer_is_one_object_with_the_visitors_members_and_the_events() {
        let opens_at = Utc.timestamp_millis_opt(1_800_000_000_123).unwrap();
        let about = About {
            opens_at,
            shuffle_seed: Some("seed-1"),
            event_name: "Opening \"Night\" — ünïcode",
            message: Some("Doors at 8\nbring ID"),
            display_name: None,
            accent_color: Some("#ff0066"),
            logo_url: None,
        };
        let view = QueueView {
            state: QueueState::Waiting,
            position: Some(42),
            estimated_wait_s: Some(7),
            poll_after_ms: 2000,
            csrf: "c".into(),
            about: about.render(),
            ..QueueView::default()
        };
        let answer: Value = serde_json::from_slice(&body(&view).unwrap()).unwrap();
        assert_eq!(
            answer,
            json!({
                "state": "waiting", "position": 42, "estimated_wait_s": 7, "poll_after_ms": 2000,
                "csrf": "c", "opens_at": opens_at, "shuffle_seed": "seed-1",
                "event_name": "Opening \"Night\" — ünïcode", "message": "Doors at 8\nbring ID",
                "accent_color": "#ff0066",
            })
        );
        // Without the event's part (never in practice: every event has a name), still one
        // object.
        let bare = QueueView {
            about: Arc::from(""),
            ..view
        };
        let answer: Value = serde_json::from_slice(&body(&bare).unwrap()).unwrap();
        assert_eq!(answer["position"], 42);
        assert!(answer.get("event_name").is_none());
    }
}
