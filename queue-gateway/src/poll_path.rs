//! The status poll's own way through the gateway. Every waiting fan's page polls for as long
//! as the fan waits, so in a sale nearly every request the gateway serves is a status poll.
//! It is answered here, in front of the router, with everything the router gives it: it sits
//! inside the same envelope (`marquee_platform::http::Envelope`: request id, span, panic
//! guard; see `crate::routes::service`), meets the same edge guard (`Guard::admit`, the
//! request timeout) and records the same HTTP metrics series. What it skips is the router's
//! machinery: route matching, the extension map entries for the matched path and its
//! parameters, and a service call and boxed future for each of its layers.
//! Measured with `perf` under `loadtest/status.lua`, that machinery was a fifth of the
//! gateway's time per poll (BENCHMARKS.md).
//!
//! Anything else, including a poll in a form this does not take (HEAD, an id that is not
//! already in its plain form), goes on to the router, whose `/v1/queue/{event_id}/status`
//! route answers it with the same `status::poll`.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, Either};
use http::Method;
use marquee_platform::metrics::RouteMetrics;

use crate::edge::Guard;
use crate::error::GatewayError;
use crate::queue::status;
use crate::queue::valid_event_id;
use crate::state::AppState;

/// The route template the router has for status polls, and the metrics label for them.
pub const ROUTE: &str = "/v1/queue/{event_id}/status";

const PREFIX: &str = "/v1/queue/";
const SUFFIX: &str = "/status";

/// The event a request polls the status of, if it is a status poll this path answers.
pub fn polled_event<'p>(method: &Method, path: &'p str) -> Option<&'p str> {
    if method != Method::GET {
        return None;
    }
    let event = path.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    valid_event_id(event).then_some(event)
}

/// `inner` (the router) behind the status poll's own path.
#[derive(Clone)]
pub struct PollPath<S> {
    inner: S,
    shared: Arc<Shared>,
}

struct Shared {
    state: AppState,
    guard: Guard,
    metrics: RouteMetrics,
}

impl<S> PollPath<S> {
    /// `guard` must be the one the router's routes are behind, so both count against the same
    /// capacity.
    pub fn new(state: AppState, guard: Guard, inner: S) -> Self {
        let metrics = state.metrics.route("GET", ROUTE);
        Self {
            inner,
            shared: Arc::new(Shared {
                state,
                guard,
                metrics,
            }),
        }
    }
}

impl<S> tower::Service<Request> for PollPath<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<BoxFuture<'static, Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let Some(event) = polled_event(req.method(), req.uri().path()) else {
            return Either::Right(self.inner.call(req));
        };
        let event = event.to_owned();
        let shared = self.shared.clone();
        Either::Left(Box::pin(async move {
            let start = Instant::now();
            let response = shared.answer(&event, req).await;
            // The same series the router's metrics layer records for this route.
            shared.metrics.record(response.status(), start.elapsed());
            Ok(response)
        }))
    }
}

impl Shared {
    /// The edge guard's checks and timeout, as `Guard`'s layer gives every routed request.
    async fn answer(&self, event: &str, req: Request) -> Response {
        let _permit = match self.guard.admit(&req) {
            Ok(permit) => permit,
            Err(refused) => return refused.into_response(),
        };
        let answer = status::poll(&self.state, event, req.headers());
        match tokio::time::timeout(self.guard.timeout(), answer).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => e.into_response(),
            Err(_) => GatewayError::TimedOut.into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_plain_get_polls_only() {
        let get = Method::GET;
        assert_eq!(
            polled_event(&get, "/v1/queue/opening-night/status"),
            Some("opening-night")
        );
        // Left to the router: other methods, other routes, ids in other spellings.
        assert_eq!(
            polled_event(&Method::HEAD, "/v1/queue/opening-night/status"),
            None
        );
        assert_eq!(polled_event(&get, "/v1/queue/opening-night/join"), None);
        assert_eq!(polled_event(&get, "/v1/queue/a/b/status"), None);
        assert_eq!(polled_event(&get, "/v1/queue/Opening%2Dnight/status"), None);
        assert_eq!(polled_event(&get, "/v1/queue//status"), None);
        assert_eq!(polled_event(&get, "/v1/queue/status"), None);
    }
}
