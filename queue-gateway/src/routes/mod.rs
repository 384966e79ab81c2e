//! The gateway's routes and its tower stack.

mod booking;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use marquee_platform::Problem;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let gw = &state.settings.gateway;
    let shed = Arc::new(Semaphore::new(gw.concurrency_limit));
    let streams = Arc::new(Semaphore::new(gw.max_event_streams));
    let timeout = Duration::from_millis(gw.request_timeout_ms);
    let body_limit = gw.body_limit_bytes;

    let proxied = any(booking::pass).with_state((state.clone(), streams));
    let routes = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/readyz", get(readyz))
        .route("/v1/queue/{event_id}/join", post(crate::queue::join::join))
        .route(
            "/v1/queue/{event_id}/status",
            get(crate::queue::status::status),
        )
        .route("/e/{event_id}", get(crate::pages::waiting_room))
        .route("/b/{event_id}", get(crate::pages::booking))
        .route("/ops", get(crate::pages::console))
        .route("/assets/{file}", get(crate::pages::asset))
        .route("/v1/bookings/reserve", post(booking::reserve))
        .route("/v1/movies", proxied.clone())
        .route("/v1/shows/{*rest}", proxied.clone())
        .route("/v1/bookings/{*rest}", proxied.clone())
        .route("/v1/payments/{*rest}", proxied.clone())
        .route("/v1/tickets/{*rest}", proxied.clone())
        .route("/admin/{*rest}", proxied)
        // A request meets these in order: a declared body over the limit is refused; the
        // timeout bounds the wait for response headers only, so streams (server-sent events)
        // live on under their own connection cap; the guard answers 503 at once when the
        // gateway is full and only then applies the per-client rate limit, so a shed request
        // never spends a client's allowance; the body limit catches bodies that lie about
        // their length.
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(move |req, next| {
                    reject_large_bodies(body_limit, req, next)
                }))
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    Problem::unavailable("the request took too long; retry shortly", 1)
                }))
                .timeout(timeout)
                .layer(axum::middleware::from_fn_with_state(
                    (shed, state.clone()),
                    crate::edge::guard,
                ))
                .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit)),
        )
        .with_state(state.clone());
    marquee_platform::http::common_layers(routes, state.metrics.clone())
}

/// A declared body over the limit is refused as a problem before anything reads it (the
/// `RequestBodyLimitLayer` inside catches bodies that lie about their length).
async fn reject_large_bodies(
    limit: usize,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Problem::new(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("request bodies are limited to {limit} bytes"),
        )
        .into_response();
    }
    next.run(req).await
}

async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(http::header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(state.keys.jwks()),
    )
}

/// Ready when Redis and booking-core both answer.
async fn readyz(State(state): State<AppState>) -> Response {
    let mut redis = state.redis.clone();
    let redis_err = redis::cmd("PING")
        .query_async::<String>(&mut redis)
        .await
        .err()
        .map(|e| e.to_string());
    let upstream = state
        .upstream
        .get_json("/healthz")
        .await
        .err()
        .map(|e| e.to_string());
    marquee_platform::http::readiness(vec![("redis", redis_err), ("booking-core", upstream)])
}
