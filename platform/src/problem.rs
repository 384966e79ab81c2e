//! RFC 9457 problem responses: the one shape every Marquee error takes on the wire.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One invalid input field and what is wrong with it (`marquee-parsers` reads forms into it).
pub use marquee_parsers::form::FieldError;

/// An `application/problem+json` body plus the headers that go with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<FieldError>,
    /// Extension members, e.g. `unavailable` on a seat conflict.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// Seconds for `Retry-After` (429 and 503 always carry one).
    #[serde(skip)]
    pub retry_after_s: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("https://marquee.dev/problems/{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            extra: Map::new(),
            retry_after_s: None,
        }
    }

    /// 422 naming each bad field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            errors,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", detail)
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{what} not found"),
        )
    }

    pub fn unavailable(detail: impl Into<String>, retry_after_s: u64) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail).retry_after(retry_after_s)
    }

    /// 500: says nothing of the cause, which the caller logs.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an unexpected error occurred; it has been logged",
        )
    }

    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.extra.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds.max(1));
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = self.retry_after_s.or(match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        });
        let mut response = (status, Json(&self)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = retry {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

/// Turns axum's own extractor rejections (bad JSON, wrong content type, bad path) into
/// problems, so no input ever gets a plain-text error.
pub fn from_json_rejection(rejection: axum::extract::rejection::JsonRejection) -> Problem {
    use axum::extract::rejection::JsonRejection as J;
    match rejection {
        J::JsonDataError(e) => {
            let text = e.body_text();
            let field = field_from_serde_message(&text);
            Problem::validation(vec![FieldError::new(field, text)])
        }
        J::JsonSyntaxError(e) => Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            format!("the body is not valid JSON: {}", e.body_text()),
        ),
        J::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type",
            "send the body as application/json",
        ),
        other => Problem::new(StatusCode::BAD_REQUEST, "bad-request", other.body_text()),
    }
}

/// serde's messages name the path first (`seat_ids[3]: invalid type …` via serde_path_to_error
/// in axum); fall back to `body`.
fn field_from_serde_message(text: &str) -> String {
    // axum: "Failed to deserialize the JSON body into the target type: seat_ids[0]: invalid type…"
    let tail = text.rsplit_once("target type: ").map_or(text, |(_, t)| t);
    if let Some(rest) = tail.strip_prefix("missing field `") {
        return rest.split('`').next().unwrap_or("body").to_owned();
    }
    match tail.split_once(": ") {
        Some((path, _)) if !path.contains(' ') && !path.is_empty() => path.to_owned(),
        _ => {
            if let Some(idx) = tail.find("missing field `") {
                let rest = &tail[idx + "missing field `".len()..];
                return rest.split('`').next().unwrap_or("body").to_owned();
            }
            if let Some(idx) = tail.find("unknown field `") {
                let rest = &tail[idx + "unknown field `".len()..];
                return rest.split('`').next().unwrap_or("body").to_owned();
            }
            "body".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_field_in_serde_messages() {
        assert_eq!(
            field_from_serde_message(
                "Failed to deserialize the JSON body into the target type: seat_ids[0]: invalid type: integer `3`, expected a string at line 1 column 20"
            ),
            "seat_ids[0]"
        );
        assert_eq!(
            field_from_serde_message(
                "Failed to deserialize the JSON body into the target type: missing field `show_id` at line 1 column 2"
            ),
            "show_id"
        );
    }

    #[test]
    fn unavailable_carries_retry_after() {
        let r = Problem::unavailable("db down", 3).into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "3");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
}
