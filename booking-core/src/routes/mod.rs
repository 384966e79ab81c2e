//! booking-core's routes. Public booking and catalog routes are reached through the gateway;
//! `/admin/v1` needs an operator token.

mod bookings;
mod seats;

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    let routes = Router::new()
        .route("/v1/movies", get(crate::catalog::movies))
        .route("/v1/shows/{show_id}", get(crate::catalog::show))
        .route("/v1/shows/{show_id}/seats", get(seats::seat_map))
        .route("/v1/shows/{show_id}/seats/events", get(seats::seat_events))
        .route("/v1/bookings/reserve", post(bookings::reserve))
        .route("/v1/bookings/lookup", post(crate::lookup::lookup))
        .route(
            "/v1/bookings/confirm",
            post(crate::payments::routes::confirm),
        )
        .route(
            "/v1/bookings/{reservation_id}/checkout",
            post(crate::payments::routes::checkout),
        )
        .route(
            "/v1/bookings/{reservation_id}/extend",
            post(bookings::extend),
        )
        .route(
            "/v1/payments/stripe/webhook",
            post(crate::payments::webhook::receive),
        )
        .route("/v1/tickets/validate", post(crate::tickets::validate))
        .route("/v1/tickets/keys", get(crate::tickets::keys))
        .route(
            "/admin/v1/bookings/{reservation_id}/refund",
            post(crate::payments::routes::admin_refund),
        )
        .route(
            "/v1/bookings/{reservation_id}",
            get(bookings::get).delete(bookings::release),
        )
        .route("/readyz", get(readyz))
        .merge(crate::admin::router());
    let timeout = Duration::from_millis(state.settings.booking.request_timeout_ms);
    let routes = routes.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            within(timeout, next.run(req)).await
        },
    ));
    marquee_platform::http::common_layers(routes.with_state(state), metrics)
}

/// A request's response (its headers: a stream's body flows on), or `503` with `Retry-After`
/// once `timeout` has passed: a hung database link or a slow statement never holds a caller
/// past it. What the request had begun is dropped, its transaction rolled back.
async fn within(
    timeout: Duration,
    answer: impl std::future::Future<Output = Response>,
) -> Response {
    match tokio::time::timeout(timeout, answer).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout_ms = timeout.as_millis() as u64, "request timed out");
            crate::error::ApiError::TimedOut.into_response()
        }
    }
}

/// Ready when Postgres and Redis both answer.
async fn readyz(State(state): State<AppState>) -> Response {
    let db = sqlx::query("SELECT 1")
        .execute(&state.db)
        .await
        .err()
        .map(|e| e.to_string());
    let mut redis = state.redis.clone();
    let redis_err = redis::cmd("PING")
        .query_async::<String>(&mut redis)
        .await
        .err()
        .map(|e| e.to_string());
    marquee_platform::http::readiness(vec![("postgres", db), ("redis", redis_err)])
}
