//! The reverse proxy to booking-core. Bodies stream both ways, so server-sent events pass
//! straight through; hop-by-hop headers are dropped and the client address is forwarded.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderName, HeaderValue, Uri, header};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use tracing::Instrument;

use crate::error::GatewayError;

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// How long an idle connection to booking-core is kept, how many are, and the most any one
/// buffers (responses stream through in pieces of at most this; headers must fit in it).
///
/// 64 KiB: each pooled connection keeps the buffer it grew to for as long as it lives, and
/// how many are pooled follows booking-core's latency, so the gateway's memory moves with it
/// (a heap profile of the soak: between bursts the live heap was 1.1-1.5 MiB, at a burst up
/// to 20 MiB, 5.7 of it these buffers at 64 KiB each; they go within `UPSTREAM_IDLE` of the
/// burst). At 16 KiB a search's answer (~94 KB at the design's scale) went through in six
/// pieces, each a read here, a write to the fan and a wake-up of the fan's side: 256
/// readers got 1,700-2,700 answers a second against 2,100-3,800 at 64 KiB (same runs;
/// `BENCHMARKS.md`), for ~17 MiB more at the peak of that load.
const UPSTREAM_IDLE: Duration = Duration::from_secs(10);
const UPSTREAM_MAX_IDLE: usize = 64;
const UPSTREAM_MAX_BUF: usize = 64 * 1024;

pub struct Upstream {
    client: Client<HttpConnector, Body>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// booking-core's response headers must come within this (`[gateway]
    /// upstream_timeout_ms`); a stream's body may then flow for as long as it lasts.
    timeout: Duration,
}

impl Upstream {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let uri: Uri = base.parse()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        // Each connection to booking-core keeps the read buffer it grew to (hyper's adaptive
        // buffer doubles while reads fill it: a 2,400-seat map grows it to a few hundred KiB),
        // so the pool is the gateway's memory: capped per connection, and what a burst opened
        // is closed soon after it rather than kept a minute.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(UPSTREAM_IDLE)
            .pool_max_idle_per_host(UPSTREAM_MAX_IDLE)
            .http1_max_buf_size(UPSTREAM_MAX_BUF)
            .build(connector);
        Ok(Self {
            client,
            scheme: uri.scheme().cloned().unwrap_or(http::uri::Scheme::HTTP),
            authority: uri
                .authority()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("booking_url has no host"))?,
            timeout,
        })
    }

    /// `req` sent, its response headers awaited for at most `timeout`.
    async fn send(&self, req: http::Request<Body>) -> Result<Response<Incoming>, GatewayError> {
        match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "booking-core unreachable");
                Err(GatewayError::Unavailable(format!("booking-core: {e}")))
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = self.timeout.as_millis() as u64,
                    "booking-core did not answer in time"
                );
                Err(GatewayError::Unavailable(
                    "booking-core did not answer in time".into(),
                ))
            }
        }
    }

    /// Send `req` to booking-core as it came, and hand back what it answers.
    pub async fn forward(
        &self,
        mut req: Request,
        client: IpAddr,
    ) -> Result<Response, GatewayError> {
        let path = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| GatewayError::Internal(e.into()))?;
        // The call is a span of the gateway's in the fan's trace; booking-core continues it.
        let span = tracing::info_span!(
            "proxy to booking-core",
            otel.kind = "client",
            path = %req.uri().path()
        );
        let headers = req.headers_mut();
        for h in &HOP_BY_HOP {
            headers.remove(h);
        }
        headers.remove(header::HOST);
        let forwarded = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prev) => format!("{prev}, {client}"),
            None => client.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&forwarded) {
            headers.insert("x-forwarded-for", v);
        }
        marquee_platform::trace::inject(&span, headers);
        let response = self.send(req).instrument(span).await?;
        let (mut parts, body) = response.into_parts();
        for h in &HOP_BY_HOP {
            parts.headers.remove(h);
        }
        Ok(Response::from_parts(parts, Body::new(body)))
    }

    /// GET a JSON document from booking-core (e.g. a show, to learn its event).
    pub async fn get_json(&self, path: &str) -> Result<Option<serde_json::Value>, GatewayError> {
        use http_body_util::BodyExt;
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| GatewayError::Internal(e.into()))?;
        let req = http::Request::get(uri)
            .body(Body::empty())
            .map_err(|e| GatewayError::Internal(e.into()))?;
        let response = self.send(req).await?;
        if response.status() == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(GatewayError::Unavailable(format!(
                "booking-core answered {}",
                response.status()
            )));
        }
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?
            .to_bytes();
        Ok(serde_json::from_slice(&bytes).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// An answer many times the connection's buffer comes through whole and in order.
    #[tokio::test]
    async fn an_answer_larger_than_the_buffer_streams_through_whole() {
        let big: Vec<u8> = (0..UPSTREAM_MAX_BUF * 40)
            .map(|i| (i % 251) as u8)
            .collect();
        let served = big.clone();
        let app = axum::Router::new().route(
            "/v1/shows/s/seats",
            axum::routing::get(move || {
                let body = served.clone();
                async move { body }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let upstream = Upstream::new(&format!("http://{addr}"), Duration::from_secs(5)).unwrap();
        for _ in 0..3 {
            let req = Request::get("/v1/shows/s/seats")
                .body(Body::empty())
                .unwrap();
            let response = upstream
                .forward(req, IpAddr::from([127, 0, 0, 1]))
                .await
                .unwrap();
            assert_eq!(response.status(), http::StatusCode::OK);
            let got = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(got.len(), big.len());
            assert!(got == big, "the answer arrived changed");
        }
    }
}
