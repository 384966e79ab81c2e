//! HTTP plumbing every service shares: the request's envelope (request id, span, panic guard),
//! metrics and health routes, and the client address behind trusted proxies.

use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::Problem;
use crate::metrics::{self, HttpMetrics};

mod envelope;

pub use envelope::{Envelope, EnvelopeLayer};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wrap a service's routes in what every Marquee service has: its metrics and health routes,
/// the HTTP metrics of every matched route, a problem answer for an unknown route, and the
/// request's envelope (`Envelope`: request id, span, panic guard) around all of it.
pub fn common_layers(router: Router, metrics: Arc<HttpMetrics>) -> Router {
    common_routes(router, metrics).layer(EnvelopeLayer)
}

/// `common_layers` without the envelope, for a service that puts the envelope further out
/// (the gateway, whose status poll is answered in front of the router but inside the same
/// envelope). The metrics layer is a route layer: it labels each series with the matched
/// route's template, which only exists once the router has matched.
pub fn common_routes(router: Router, metrics: Arc<HttpMetrics>) -> Router {
    router
        .route_layer(metrics::Track(metrics.clone()))
        .route(
            "/metrics",
            axum::routing::get(metrics::endpoint).with_state(metrics),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .fallback(|| async { Problem::not_found("route") })
}

/// A listening socket for a service, with a deep accept queue: a crowd connecting at once
/// (an opening night's first second, a test's two thousand racing fans) waits in the queue
/// instead of overflowing Tokio's default of 1,024, where the kernel drops the handshake's
/// last step and the client's first bytes are answered with a reset. The kernel caps it at
/// `net.core.somaxconn`.
pub async fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(8192)
}

/// The span a request's log lines sit in.
pub fn request_span(method: &Method, path: &str, id: Option<&HeaderValue>) -> tracing::Span {
    let id = id.and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!("http", method = %method, path = %path, request_id = %id)
}

/// The same span at DEBUG, for a request too frequent and too plain to pay for one at INFO
/// (`Envelope::quiet`).
pub fn quiet_request_span(method: &Method, path: &str, id: Option<&HeaderValue>) -> tracing::Span {
    let id = id.and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::debug_span!("http", method = %method, path = %path, request_id = %id)
}

/// The request's id: the one it came with (a proxy's, say), else a new one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .cloned()
        .unwrap_or_else(new_request_id)
}

/// A new request id: a random (v4) UUID from the thread's userspace generator, which the OS
/// seeds, rather than a `getrandom` system call per request as tower-http's `MakeRequestUuid`
/// makes.
pub fn new_request_id() -> HeaderValue {
    use rand::Rng;
    let id = uuid::Builder::from_random_bytes(rand::rng().random()).into_uuid();
    let mut buf = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf))
        .expect("a UUID is a valid header value")
}

/// `/readyz` answer from a list of dependency checks (name, error if failing).
pub fn readiness(checks: Vec<(&'static str, Option<String>)>) -> axum::response::Response {
    let failing: Vec<_> = checks
        .iter()
        .filter_map(|(n, e)| e.as_ref().map(|e| format!("{n}: {e}")))
        .collect();
    if failing.is_empty() {
        (StatusCode::OK, "ready").into_response()
    } else {
        Problem::unavailable(failing.join("; "), 2).into_response()
    }
}

pub use marquee_parsers::client_address::{IpRange, client_ip};

/// The bearer token from `Authorization`, or else the named cookie.
pub fn bearer_or_cookie(headers: &HeaderMap, cookie: &str) -> Option<String> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    self::cookie(headers, cookie)
}

/// The named cookie's value, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_v4_uuids() {
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|_| {
                let text = new_request_id().to_str().unwrap().to_owned();
                let parsed = uuid::Uuid::parse_str(&text).unwrap();
                assert_eq!(parsed.get_version_num(), 4, "{text}");
                text
            })
            .collect();
        assert_eq!(ids.len(), 1000);
    }
}
