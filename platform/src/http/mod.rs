//! HTTP plumbing every service shares: the request's envelope (request id, span, panic guard),
//! metrics and health routes, and the client address behind trusted proxies.

use std::net::IpAddr;
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

/// An address or CIDR block, for `trusted_proxies`.
#[derive(Debug, Clone, Copy)]
pub struct IpRange {
    net: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { net: addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The client's address: the right-most `X-Forwarded-For` entry that is not itself a trusted
/// proxy, when the direct peer is trusted; otherwise the peer.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpRange]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Right to left: the last header's last entry first (read in place; this runs on every
    // request the edge guards).
    headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.rsplit(','))
        .filter_map(|s| s.trim().parse().ok())
        .find(|ip| !is_trusted(*ip))
        .unwrap_or(peer)
}

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
    fn right_most_untrusted_forwarded_entry_wins() {
        let trusted = vec![
            IpRange::parse("127.0.0.0/8").unwrap(),
            IpRange::parse("10.0.0.0/8").unwrap(),
        ];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.1.1.1".parse().unwrap(),
        );
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(peer, &h, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        // Several headers read as one list, in order; entries that are not addresses are
        // skipped; all trusted means the peer.
        let mut several = HeaderMap::new();
        several.append("x-forwarded-for", "6.6.6.6, 5.5.5.5".parse().unwrap());
        several.append("x-forwarded-for", "junk, 10.2.2.2".parse().unwrap());
        assert_eq!(
            client_ip(peer, &several, &trusted),
            "5.5.5.5".parse::<IpAddr>().unwrap()
        );
        let mut inside = HeaderMap::new();
        inside.insert("x-forwarded-for", "10.3.3.3".parse().unwrap());
        assert_eq!(client_ip(peer, &inside, &trusted), peer);
        let stranger: IpAddr = "8.8.8.8".parse().unwrap();
        assert_eq!(client_ip(stranger, &h, &trusted), stranger);
    }

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

    #[test]
    fn parses_ranges() {
        assert!(
            IpRange::parse("::1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            !IpRange::parse("10.0.0.0/8")
                .unwrap()
                .contains("11.0.0.1".parse().unwrap())
        );
        assert!(IpRange::parse("10.0.0.0/33").is_none());
        assert!(IpRange::parse("nope").is_none());
    }
}
