//! The gateway's routes and its tower stack.

mod booking;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use marquee_platform::http::Envelope;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;

use crate::edge::Guard;
use crate::poll_path::PollPath;
use crate::state::AppState;

/// The gateway's service, the one place its layers are put together. From the outside in:
///
/// - the envelope (request id, span, panic guard) goes round everything, so a status poll and
///   every routed request get the same id rules and log lines and a panic anywhere is a 500;
/// - the status poll's own path (`crate::poll_path`) comes next: it answers the gateway's
///   busiest request without the router's machinery, through the same `Guard`;
/// - the router then matches the route; its metrics layer labels each series with the matched
///   route, so it sits inside the router (a route layer);
/// - `Guard` (body size, capacity, client rate, timeout) is in front of every route but the
///   metrics and health probes, which must answer even when the edge sheds load;
/// - the body limit is innermost, to catch a body that lies about its length as it is read.
pub fn service(state: AppState) -> Envelope<PollPath<Router>> {
    let guard = Guard::new(state.clone());
    Envelope::new(PollPath::new(
        state.clone(),
        guard.clone(),
        router(state, guard),
    ))
    // Status polls, nearly every request in a sale, with their span at DEBUG.
    .quiet(|req| crate::poll_path::polled_event(req.method(), req.uri().path()).is_some())
}

/// Every route, behind `guard` (but the metrics and health probes), without the envelope
/// (`service` puts it round the poll path and the router together).
pub fn router(state: AppState, guard: Guard) -> Router {
    let gw = &state.settings.gateway;
    let streams = Arc::new(Semaphore::new(gw.max_event_streams));
    let body_limit = gw.body_limit_bytes;

    let proxied = any(booking::pass).with_state((state.clone(), streams));
    let routes = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/readyz", get(readyz))
        .route("/v1/queue/{event_id}/join", post(crate::queue::join::join))
        .route(
            "/v1/queue/{event_id}/place",
            axum::routing::delete(crate::queue::leave::leave),
        )
        .route(
            "/v1/queue/{event_id}/challenge",
            get(crate::queue::pow::challenge),
        )
        .route(crate::poll_path::ROUTE, get(crate::queue::status::status))
        .route("/e/{event_id}", get(crate::pages::waiting_room))
        .route("/b/{event_id}", get(crate::pages::booking))
        .route("/t/{reservation_id}", get(crate::pages::ticket))
        .route("/ops", get(crate::pages::console))
        .route("/assets/{file}", get(crate::pages::asset))
        .route("/v1/bookings/reserve", post(booking::reserve))
        .route("/v1/bookings/lookup", post(booking::lookup))
        .route("/find", get(crate::pages::find))
        .route("/v1/movies", any(booking::movies))
        .route("/v1/shows/{*rest}", proxied.clone())
        .route("/v1/bookings/{*rest}", proxied.clone())
        .route("/v1/payments/{*rest}", proxied.clone())
        .route("/v1/tickets/{*rest}", proxied.clone())
        .route("/admin/{*rest}", proxied)
        // Every check of the edge, in one service (see `Guard` and `service`).
        .layer(
            ServiceBuilder::new()
                .layer(guard)
                .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit)),
        )
        .with_state(state.clone());
    marquee_platform::http::common_routes(routes, state.metrics.clone())
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
