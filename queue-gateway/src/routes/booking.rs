//! Booking and admin calls go to booking-core. A reserve is checked here first: it needs a
//! valid admission token for the show's event, so requests from outside the queue never
//! reach the database.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http_body_util::BodyExt;
use marquee_platform::Problem;
use marquee_waitroom::admission;
use tokio::sync::Semaphore;

use crate::catalog_cache::CatalogCache;
use crate::error::GatewayError;
use crate::state::AppState;

/// Forward as-is. Server-sent-event streams take one of their own permits for their lifetime.
pub async fn pass(
    State((state, streams)): State<(AppState, Arc<Semaphore>)>,
    req: Request,
) -> Response {
    let client = crate::edge::client_ip(&state, &req);
    let is_stream = req.uri().path().ends_with("/seats/events");
    let permit = if is_stream {
        match streams.try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                return Problem::unavailable("too many live streams open; retry shortly", 5)
                    .into_response();
            }
        }
    } else {
        None
    };
    let changes_catalog = req.uri().path().starts_with("/admin/")
        && !matches!(*req.method(), http::Method::GET | http::Method::HEAD);
    match state.upstream.forward(req, client).await {
        Ok(response) => match permit {
            // An operator's change may be one the kept searches do not have yet.
            None if changes_catalog && response.status().is_success() => {
                state.catalog.clear();
                response
            }
            None => response,
            Some(permit) => {
                let (parts, body) = response.into_parts();
                let guarded = body.into_data_stream().map(move |chunk| {
                    let _held = &permit;
                    chunk
                });
                Response::from_parts(parts, Body::from_stream(guarded))
            }
        },
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/movies`: from what this gateway kept, while it counts (`crate::catalog_cache`);
/// else from booking-core, kept if it says how long it may be.
pub async fn movies(State(state): State<AppState>, req: Request) -> Response {
    let client = crate::edge::client_ip(&state, &req);
    let key = (req.method() == http::Method::GET).then(|| CatalogCache::key(&req));
    if let Some(kept) = key.as_deref().and_then(|k| state.catalog.get(k)) {
        return kept;
    }
    let asked = state.catalog.generation();
    let response = match state.upstream.forward(req, client).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let (Some(key), Some(lifetime)) = (key, state.catalog.lifetime(&response)) else {
        return response;
    };
    let (parts, body) = response.into_parts();
    // Of a known length, at most `KEPT_MAX` (`lifetime`).
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return GatewayError::Unavailable("booking-core's answer broke off".into()).into_response();
    };
    state
        .catalog
        .keep(key, asked, lifetime, &parts.headers, &body);
    Response::from_parts(parts, Body::from(body))
}

/// `POST /v1/bookings/lookup` (find my booking): limited per client address here, then
/// booking-core (which limits each email address) answers.
pub async fn lookup(State(state): State<AppState>, req: Request) -> Response {
    let client = crate::edge::client_ip(&state, &req);
    if let Err(retry_after_s) = state.lookup_limiter.check(client) {
        return GatewayError::TooManyRequests { retry_after_s }.into_response();
    }
    match state.upstream.forward(req, client).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// `POST /v1/bookings/reserve`: refuse without a valid admission token for the show's event.
pub async fn reserve(State(state): State<AppState>, req: Request) -> Response {
    match check_reserve(&state, req).await {
        Ok((req, client)) => match state.upstream.forward(req, client).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

async fn check_reserve(state: &AppState, req: Request) -> Result<(Request, IpAddr), GatewayError> {
    let client = crate::edge::client_ip(state, &req);
    let token =
        marquee_platform::http::bearer_or_cookie(req.headers(), crate::queue::ADMISSION_COOKIE)
            .ok_or_else(|| GatewayError::Unauthorized("admission token missing".into()))?;
    let visitor_key = req
        .headers()
        .get("x-visitor-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The credential first: a bad token is 401 whatever the body or the show.
    let claims = state
        .keys
        .authenticate(
            &token,
            &state.settings.admission.issuer,
            visitor_key.as_deref(),
        )
        .map_err(|e| GatewayError::Unauthorized(e.to_string()))?;
    // Cookie credentials ride along on cross-site requests; the CSRF header does not.
    if !req.headers().contains_key(http::header::AUTHORIZATION) {
        crate::queue::credentials::require_csrf(state, req.headers(), &claims.sub)?;
    }
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|_| {
            GatewayError::Validation(vec![marquee_platform::FieldError::new(
                "body",
                "could not be read (too large?)",
            )])
        })?
        .to_bytes();
    let show_id = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("show_id").and_then(|s| s.as_str()).map(str::to_owned));
    // A body without a show id goes on; booking-core names what is wrong with it.
    if let Some(show_id) = show_id
        && let Some(event) = event_of_show(state, &show_id).await?
    {
        admission::check_event(&claims, &event).map_err(|_| GatewayError::Forbidden)?;
    }
    Ok((Request::from_parts(parts, Body::from(bytes)), client))
}

/// The event a show belongs to (never changes, so remembered).
async fn event_of_show(state: &AppState, show_id: &str) -> Result<Option<String>, GatewayError> {
    if !marquee_platform::ids::plausible_id(show_id) {
        return Ok(None);
    }
    if let Some(e) = state.show_events.get(show_id) {
        return Ok(Some(e));
    }
    let Some(show) = state
        .upstream
        .get_json(&format!("/v1/shows/{show_id}"))
        .await?
    else {
        return Ok(None);
    };
    let Some(event) = show["event_id"].as_str().map(str::to_owned) else {
        return Ok(None);
    };
    state.show_events.insert(show_id, &event);
    Ok(Some(event))
}
