//! Extractors that turn every malformed request into a problem response, never axum's
//! plain-text rejections.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use marquee_platform::Problem;
use marquee_platform::problem::from_json_rejection;
use serde::de::DeserializeOwned;

/// `Json<T>` whose rejections are problem+json naming the field.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(from_json_rejection(rejection)),
        }
    }
}

/// Query strings, with bad values named.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A NUL can be sent (`%00`) but never stored or compared in Postgres text: no query
        // value may hold one.
        if parts
            .uri
            .query()
            .is_some_and(|q| q.as_bytes().windows(3).any(|w| w == b"%00"))
        {
            return Err(Problem::validation(vec![
                marquee_platform::FieldError::new("query", "must not contain NUL characters"),
            ]));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => Err(Problem::validation(vec![
                marquee_platform::FieldError::new("query", e.body_text()),
            ])),
        }
    }
}

pub use marquee_platform::http::bearer_or_cookie;

/// The `Idempotency-Key` header, if any.
pub fn idempotency_key(
    headers: &http::HeaderMap,
) -> Result<Option<String>, crate::error::ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let key = v.to_str().unwrap_or_default().trim();
            if key.is_empty() || key.len() > 255 || !key.is_ascii() {
                Err(crate::error::ApiError::field(
                    "Idempotency-Key",
                    "must be 1 to 255 printable ASCII characters",
                ))
            } else {
                Ok(Some(key.to_owned()))
            }
        }
    }
}
