//! Prometheus metrics: a registry per service and the HTTP request metrics every service
//! records, labelled by route template (never the raw path, which would explode cardinality).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

/// Request counts and latencies by method, route template and status.
#[derive(Clone)]
pub struct HttpMetrics {
    pub registry: Registry,
    /// `http_requests_total{method,route,status}`
    requests: IntCounterVec,
    /// `http_request_duration_seconds{method,route}`
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn new(service: &str) -> Self {
        let registry = Registry::new_custom(
            Some("marquee".into()),
            Some([("service".to_owned(), service.to_owned())].into()),
        )
        .expect("valid registry");
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "route"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("register");
        registry
            .register(Box::new(duration.clone()))
            .expect("register");
        Self {
            registry,
            requests,
            duration,
        }
    }

    /// One route's series, resolved once (`RouteMetrics`).
    pub fn route(&self, method: &'static str, route: &'static str) -> RouteMetrics {
        RouteMetrics {
            method,
            route,
            duration: self.duration.with_label_values(&[method, route]),
            ok: self.requests.with_label_values(&[method, route, "200"]),
            requests: self.requests.clone(),
        }
    }

    /// The registry's contents in Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// One route's metrics with their labels resolved once, for a busy route answered outside the
/// router (the gateway's status poll): the same series `Track` records, without a label lookup
/// (a hash and a lock) per request.
pub struct RouteMetrics {
    method: &'static str,
    route: &'static str,
    duration: Histogram,
    /// The count of `200` answers; other statuses are looked up as `Track` does.
    ok: IntCounter,
    requests: IntCounterVec,
}

impl RouteMetrics {
    pub fn record(&self, status: http::StatusCode, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
        if status == http::StatusCode::OK {
            self.ok.inc();
        } else {
            self.requests
                .with_label_values(&[self.method, self.route, status.as_str()])
                .inc();
        }
    }
}

/// Layer: time and count each request under its route template. A service of its own rather
/// than `from_fn` middleware, which costs every request a clone of the inner service and a
/// second boxed future.
#[derive(Clone)]
pub struct Track(pub Arc<HttpMetrics>);

impl<S> tower::Layer<S> for Track {
    type Service = Tracked<S>;
    fn layer(&self, inner: S) -> Tracked<S> {
        Tracked {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    metrics: Arc<HttpMetrics>,
}

impl<S> tower::Service<Request> for Tracked<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // Both are cheap to keep (a shared string and, for the usual methods, a constant).
        let route = req.extensions().get::<MatchedPath>().cloned();
        let method = req.method().clone();
        let start = Instant::now();
        let answer = self.inner.call(req);
        let m = self.metrics.clone();
        Box::pin(async move {
            let Ok(response) = answer.await;
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            m.duration
                .with_label_values(&[method.as_str(), route])
                .observe(start.elapsed().as_secs_f64());
            m.requests
                .with_label_values(&[method.as_str(), route, response.status().as_str()])
                .inc();
            Ok(response)
        })
    }
}

/// `GET /metrics`
pub async fn endpoint(State(m): State<Arc<HttpMetrics>>) -> impl IntoResponse {
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
}
