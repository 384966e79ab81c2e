//! The gateway's errors and the one place they become problem responses.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use marquee_platform::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("token for another event")]
    Forbidden,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("rate limited")]
    TooManyRequests { retry_after_s: u64 },
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<redis::RedisError> for GatewayError {
    fn from(e: redis::RedisError) -> Self {
        Self::Unavailable(format!("redis: {e}"))
    }
}

impl GatewayError {
    pub fn field(field: &str, message: &str) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn to_problem(&self) -> Problem {
        match self {
            Self::Validation(errors) => Problem::validation(errors.clone()),
            Self::NotFound(what) => Problem::not_found(what),
            Self::Unauthorized(why) => Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!("authorization failed: {why}"),
            ),
            Self::Forbidden => Problem::new(
                StatusCode::FORBIDDEN,
                "wrong-event",
                "the admission token is for another event",
            ),
            Self::Conflict(d) => Problem::new(StatusCode::CONFLICT, "conflict", d.clone()),
            Self::TooManyRequests { retry_after_s } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "too many requests; slow down",
            )
            .retry_after(*retry_after_s),
            Self::Unavailable(_) => {
                Problem::unavailable("a dependency is unavailable; retry shortly", 2)
            }
            Self::Internal(_) => Problem::internal(),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let problem = self.to_problem();
        if problem.status >= 500 {
            tracing::error!(error = %self, "request failed");
        }
        problem.into_response()
    }
}
