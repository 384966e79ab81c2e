//! Carrying a trace between services as W3C `traceparent` (DESIGN.md invariant 10): into HTTP
//! calls, a PaymentIntent's metadata (so Stripe's webhook joins the reservation's trace), an
//! outbox row, and a Kafka message's headers; out of each on the far side.
//!
//! Every function here is cheap when spans are not exported: without the exporter a span has
//! no trace context, `traceparent` answers `None` and nothing is written; and a parent is only
//! looked for when a `traceparent` came.

use std::collections::HashMap;

use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header, the metadata key and the Kafka header that carry a trace.
pub const TRACEPARENT: &str = "traceparent";

/// Make `span` a child of the span `traceparent` names (from another service); nothing when
/// there is none or it does not parse. Call before the span is first entered.
pub fn continue_from(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(value) = traceparent.filter(|v| !v.is_empty()) else {
        return;
    };
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), value.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// `continue_from` with the `traceparent` header of `headers`, if any.
pub fn continue_from_headers(span: &tracing::Span, headers: &HeaderMap) {
    if let Some(v) = headers.get(TRACEPARENT) {
        continue_from(span, v.to_str().ok());
    }
}

/// `span`'s place in its trace as a `traceparent` value, for the next service; `None` when
/// spans are not exported (or this one was not sampled in).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Set (or replace) the `traceparent` header of an outgoing call to name `span`; a call made
/// with spans off keeps whatever header it had.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    if let Some(v) = traceparent(span).and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(TRACEPARENT, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_span_continues_the_trace_it_was_given_and_passes_it_on() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("child");
            let mut headers = HeaderMap::new();
            headers.insert(TRACEPARENT, HeaderValue::from_static(PARENT));
            continue_from_headers(&span, &headers);
            let next = traceparent(&span).expect("a context");
            assert!(
                next.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "same trace: {next}"
            );
            assert!(
                !next.contains("00f067aa0ba902b7"),
                "a span of its own: {next}"
            );

            let mut out = HeaderMap::new();
            inject(&span, &mut out);
            assert_eq!(out[TRACEPARENT], next.as_str());

            let orphan = tracing::info_span!("orphan");
            continue_from(&orphan, Some("not a traceparent"));
            let own = traceparent(&orphan).expect("a context");
            assert!(!own.contains("4bf92f3577b34da6a3ce929d0e0e4736"), "{own}");
        });
    }

    #[test]
    fn without_the_exporter_nothing_is_carried() {
        let span = tracing::info_span!("plain");
        assert_eq!(traceparent(&span), None);
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static(PARENT));
        inject(&span, &mut headers);
        assert_eq!(headers[TRACEPARENT], PARENT, "left as it came");
    }
}
