//! The edge's protections, in one guard: the declared body size, the load shedder that answers
//! 503 instead of queueing, per-client rate limits (governor, keyed by the client address as
//! trusted proxies report it) and the request timeout.

use std::convert::Infallible;
use std::future::ready;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::GatewayError;
use crate::state::AppState;

/// The client's address for this request.
pub fn client_ip(state: &AppState, req: &Request) -> IpAddr {
    peer_ip(req.extensions(), req.headers(), state)
}

fn peer_ip(extensions: &http::Extensions, headers: &http::HeaderMap, state: &AppState) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    marquee_platform::http::client_ip(peer, headers, &state.trusted)
}

/// The client's address, as a handler's extractor (`client_ip` of the request).
pub struct ClientIp(pub IpAddr);

impl axum::extract::FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(peer_ip(&parts.extensions, &parts.headers, state)))
    }
}

/// The edge's guard, in front of every route but the metrics and health probes. A request
/// meets its checks in this order: a declared body over the limit is refused (413) before
/// anything reads it; past `concurrency_limit` requests in flight the gateway answers 503 +
/// Retry-After at once rather than queue until everything times out; only then is the
/// per-client-address rate limit applied (so a shed request never spends the client's
/// allowance); and the request gets `request_timeout_ms` to produce its response headers
/// (503 after that), so streams (server-sent events) live on under their own connection cap.
///
/// One service rather than a layer per check: every layer costs every request a service
/// clone and a boxed future. The status poll, the gateway's busiest request, goes round the
/// router altogether (`crate::poll_path`) and meets the same checks through `admit` and
/// `timeout`.
#[derive(Clone)]
pub struct Guard {
    shared: Arc<GuardShared>,
}

struct GuardShared {
    state: AppState,
    permits: Arc<Semaphore>,
    timeout: Duration,
    body_limit: usize,
}

impl Guard {
    pub fn new(state: AppState) -> Self {
        let gw = &state.settings.gateway;
        let shared = GuardShared {
            permits: Arc::new(Semaphore::new(gw.concurrency_limit)),
            timeout: Duration::from_millis(gw.request_timeout_ms),
            body_limit: gw.body_limit_bytes,
            state,
        };
        Self {
            shared: Arc::new(shared),
        }
    }
}

impl Guard {
    /// The checks a request meets before it runs, in the order above: its declared size, the
    /// gateway's capacity, the client's rate. The permit is to be held until the answer is
    /// ready.
    pub fn admit(&self, req: &Request) -> Result<OwnedSemaphorePermit, GatewayError> {
        let g = &*self.shared;
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > g.body_limit) {
            return Err(GatewayError::TooLarge {
                limit: g.body_limit,
            });
        }
        let permit = g
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| GatewayError::AtCapacity)?;
        g.state
            .limiter
            .check(client_ip(&g.state, req))
            .map_err(|retry_after_s| GatewayError::TooManyRequests { retry_after_s })?;
        Ok(permit)
    }

    /// How long a request has to produce its response headers.
    pub fn timeout(&self) -> Duration {
        self.shared.timeout
    }
}

impl<S> tower::Layer<S> for Guard {
    type Service = Guarded<S>;
    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            inner,
            guard: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    guard: Guard,
}

impl<S> tower::Service<Request> for Guarded<S>
where
    S: tower::Service<Request, Error = Infallible>,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let permit = match self.guard.admit(&req) {
            Ok(permit) => permit,
            Err(refused) => return Box::pin(ready(Ok(refused.into_response()))),
        };
        let answer = tokio::time::timeout(self.guard.timeout(), self.inner.call(req));
        Box::pin(async move {
            let answer = answer.await;
            drop(permit);
            Ok(match answer {
                Ok(Ok(response)) => response.into_response(),
                Ok(Err(never)) => match never {},
                Err(_) => GatewayError::TimedOut.into_response(),
            })
        })
    }
}
