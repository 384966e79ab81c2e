//! The edge's protections: per-client rate limits (governor, keyed by the client address as
//! trusted proxies report it), and the load shedder that answers 503 instead of queueing.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use marquee_platform::Problem;
use tokio::sync::Semaphore;

use crate::error::GatewayError;
use crate::state::AppState;

pub struct ClientLimiter(DefaultKeyedRateLimiter<IpAddr>);

impl ClientLimiter {
    pub fn new(per_second: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).expect("nonzero");
        let burst = NonZeroU32::new(burst.max(1)).expect("nonzero");
        Self(RateLimiter::keyed(
            Quota::per_second(rate).allow_burst(burst),
        ))
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.0.check_key(&ip).map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }

    pub fn tidy(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }
}

/// The client's address for this request.
pub fn client_ip(state: &AppState, req: &Request) -> IpAddr {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    marquee_platform::http::client_ip(peer, req.headers(), &state.trusted)
}

/// Middleware, the edge's guard: at most N requests in flight (past that, 503 + Retry-After
/// at once rather than a queue that grows until everything times out), then the
/// per-client-address rate limit (so a shed request never spends the client's allowance).
/// One layer for both: each layer costs every request a service clone and a boxed future.
pub async fn guard(
    State((permits, state)): State<(Arc<Semaphore>, AppState)>,
    req: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = permits.try_acquire() else {
        return Problem::unavailable("the gateway is at capacity; retry shortly", 1)
            .into_response();
    };
    match state.limiter.check(client_ip(&state, &req)) {
        Ok(()) => next.run(req).await,
        Err(retry_after_s) => GatewayError::TooManyRequests { retry_after_s }.into_response(),
    }
}
