//! `DELETE /v1/queue/{event_id}/place`: a fan leaves the queue (API.md). The place is given up
//! at once (the worker passes over it, as it does a fan who stopped polling), and a slot under
//! the cap, if the fan held one, goes to the next fan; the queue cookies are cleared.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};

use super::credentials::{Presented, cookie, presented_token, require_csrf, set_cookie};
use super::{ADMISSION_COOKIE, QUEUE_COOKIE, valid_event_id};
use crate::error::GatewayError;
use crate::state::AppState;

pub async fn leave(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    if !valid_event_id(&event_id) {
        return Err(GatewayError::NotFound("event"));
    }
    let Some(Presented {
        claims,
        from_cookie,
    }) = presented_token(&state, &headers).filter(|p| p.claims.e == event_id)
    else {
        return Err(GatewayError::Unauthorized(
            "a queue token for this event is needed to leave its queue".into(),
        ));
    };
    if from_cookie {
        require_csrf(&state, &headers, &claims.v)?;
    }
    marquee_waitroom::queue::leave(&mut state.redis.clone(), &event_id, &claims.v).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    for name in [QUEUE_COOKIE, ADMISSION_COOKIE] {
        set_cookie(response.headers_mut(), cookie(&state, name, "", 0));
    }
    Ok(response)
}
