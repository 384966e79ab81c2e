//! `GET /v1/queue/{event_id}/status`: where a visitor stands (see `answer`), after the
//! credentials check and the cheap per-visitor poll limit.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::answer::{answer, respond};
use super::credentials::{Presented, presented_token};
use super::valid_event_id;
use crate::error::GatewayError;
use crate::state::AppState;

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
    Ok(respond(state, StatusCode::OK, answer))
}
