//! booking-core's errors and the one place they become problem responses.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use marquee_platform::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("admission token is for another event")]
    Forbidden,
    #[error("operator may not: {0}")]
    NotPermitted(String),
    #[error("the visitor's turn has ended")]
    SessionEnded,
    #[error("seats unavailable: {0:?}")]
    SeatsUnavailable(Vec<String>),
    #[error("visitor already holds {0}")]
    AlreadyHolding(String),
    #[error("not enough seats: asked {asked}, free {free}")]
    NotEnoughSeats { asked: u32, free: i64 },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("idempotent request still running")]
    InFlight,
    #[error("too many requests")]
    TooManyRequests { retry_after_s: u64 },
    #[error("dependency unavailable: {0}")]
    Unavailable(String),
    /// No response within `[booking] request_timeout_ms`.
    #[error("request timed out")]
    TimedOut,
    #[error("payment not completed: {0}")]
    PaymentRequired(String),
    /// The hold lapsed before any payment (checkout): nothing to refund.
    #[error("hold expired before payment")]
    HoldExpired,
    /// The hold was lost with a payment made for it, which is refunded.
    #[error("hold lost: {0}")]
    HoldLost(String),
    #[error("payments unavailable: {reason}")]
    PaymentsUnavailable { reason: String, retry_after_s: u64 },
    #[error(transparent)]
    Database(sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<marquee_parsers::form::Invalid> for ApiError {
    fn from(invalid: marquee_parsers::form::Invalid) -> Self {
        Self::Validation(invalid.0)
    }
}

impl ApiError {
    /// One failure that many requests waited on together (the catalog's listing, read once
    /// for all of them), as each one's own error: an outage stays a `503`.
    pub fn shared(&self) -> Self {
        match self {
            Self::Database(e) if is_outage(e) => Self::Unavailable(format!("database: {e}")),
            other => Self::Internal(anyhow::anyhow!("{other}")),
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }
}

/// Every database error a request meets passes here, so a failed connection makes the others
/// suspect at once (`crate::outage`).
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        crate::outage::observe(&e);
        Self::Database(e)
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        Self::Unavailable(format!("redis: {e}"))
    }
}

/// Is this database error an outage or a transient conflict (503 + Retry-After: the same
/// request may well succeed in a moment) rather than a bug (500)? Pool and connection
/// failures, admin shutdown (57P), connection exceptions (08), too many connections (53300),
/// deadlock (40P01) and serialization failure (40001).
fn is_outage(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
    ) || matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| {
        c.starts_with("57P") || c.starts_with("08") || c == "53300" || c == "40P01" || c == "40001"
    }))
}

impl ApiError {
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
            Self::NotPermitted(what) => Problem::new(
                StatusCode::FORBIDDEN,
                "not-permitted",
                format!("your operator role may not {what}"),
            ),
            Self::SessionEnded => Problem::new(
                StatusCode::UNAUTHORIZED,
                "session-ended",
                "your turn to book has ended (a booking was confirmed, or nothing was booked for \
                 a while), and your place went to the next fan; join the queue again to book more",
            ),
            Self::SeatsUnavailable(seats) => Problem::new(
                StatusCode::CONFLICT,
                "seats-unavailable",
                "some requested seats are held, booked or being taken; nothing was held",
            )
            .with("unavailable", seats),
            Self::AlreadyHolding(id) => Problem::new(
                StatusCode::CONFLICT,
                "already-holding",
                "this visitor already holds seats for this show",
            )
            .with("reservation_id", id),
            Self::NotEnoughSeats { asked, free } => Problem::new(
                StatusCode::CONFLICT,
                "not-enough-seats",
                format!("asked for {asked} seats, {free} free"),
            )
            .with("unavailable", Vec::<String>::new()),
            Self::Conflict(detail) => Problem::new(StatusCode::CONFLICT, "conflict", detail),
            Self::InFlight => Problem::new(
                StatusCode::CONFLICT,
                "in-flight",
                "a request with this idempotency key is still running",
            )
            .retry_after(1),
            Self::TooManyRequests { retry_after_s } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "too many reserve attempts; slow down",
            )
            .retry_after(*retry_after_s),
            Self::Unavailable(_) => {
                Problem::unavailable("a dependency is unavailable; retry shortly", 2)
            }
            Self::TimedOut => Problem::unavailable("the request took too long; retry shortly", 1),
            Self::PaymentRequired(status) => Problem::new(
                StatusCode::PAYMENT_REQUIRED,
                "payment-required",
                format!("the payment has not succeeded ({status})"),
            )
            .with("payment_status", status),
            Self::HoldExpired => Problem::new(
                StatusCode::GONE,
                "hold-expired",
                "the seats are no longer held: the hold expired before any payment, so nothing was charged; reserve again",
            )
            .with("status", "expired"),
            Self::HoldLost(reason) => Problem::new(
                StatusCode::GONE,
                "hold-lost",
                format!("the seats are no longer held for this booking: {reason}; any payment is refunded"),
            )
            .with("status", "refunded"),
            Self::PaymentsUnavailable { retry_after_s, .. } => {
                Problem::unavailable("payments are unavailable right now; retry shortly", *retry_after_s)
            }
            Self::Database(e) if is_outage(e) => {
                Problem::unavailable("the database is unavailable; retry shortly", 2)
            }
            Self::Database(_) | Self::Internal(_) => Problem::internal(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.to_problem();
        if problem.status >= 500 {
            tracing::error!(error = %self, "request failed");
        }
        problem.into_response()
    }
}
