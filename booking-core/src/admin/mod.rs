//! The operators' admin API: events (the on-sale unit with its queue settings) and shows.
//! Every route needs `Authorization: Bearer <operator token>`.

mod events;
mod fields;
mod layout;
mod shows;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/events", get(events::list).post(events::create))
        .route(
            "/admin/v1/events/{event_id}",
            get(events::get).patch(events::update),
        )
        .route("/admin/v1/shows", post(shows::create))
}

/// Proof that the request carries a valid operator token.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| ApiError::Unauthorized("operator token missing".into()))?;
        if state
            .operator_tokens
            .iter()
            .any(|t| bool::from(t.as_bytes().ct_eq(presented.as_bytes())))
        {
            Ok(Operator)
        } else {
            Err(ApiError::Unauthorized(
                "operator token not recognised".into(),
            ))
        }
    }
}
