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
    /// A wrong, expired, revoked or used-up access code (never says which, nor echoes it).
    #[error("access code refused")]
    AccessCode,
    #[error("rate limited")]
    TooManyRequests { retry_after_s: u64 },
    #[error("declared body over {limit} bytes")]
    TooLarge { limit: usize },
    /// Past `concurrency_limit` requests in flight.
    #[error("at capacity")]
    AtCapacity,
    /// No response within `request_timeout_ms`.
    #[error("timed out")]
    TimedOut,
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
            Self::AccessCode => Problem::new(
                StatusCode::FORBIDDEN,
                "access-code",
                "this access code is not valid: it may be mistyped, used up, expired or withdrawn",
            ),
            Self::TooManyRequests { retry_after_s } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "too many requests; slow down",
            )
            .retry_after(*retry_after_s),
            Self::TooLarge { limit } => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("request bodies are limited to {limit} bytes"),
            ),
            Self::AtCapacity => {
                Problem::unavailable("the gateway is at capacity; retry shortly", 1)
            }
            Self::TimedOut => Problem::unavailable("the request took too long; retry shortly", 1),
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
        // Shedding is the gateway working as meant, counted in the HTTP metrics; a log line
        // per shed request would add load exactly when there is too much.
        if problem.status >= 500 && !matches!(self, Self::AtCapacity) {
            tracing::error!(error = %self, "request failed");
        }
        problem.into_response()
    }
}
