//! booking-core's routes. Public booking and catalog routes are reached through the gateway;
//! `/admin/v1` needs an operator token.

mod bookings;
mod seats;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
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
    marquee_platform::http::common_layers(routes.with_state(state), metrics)
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
