//! One reservation is one trace (DESIGN.md invariant 10, issue 15): spans exported over OTLP
//! to a receiver of the test's own cover the reserve through the gateway and booking-core, the
//! Stripe simulator's webhook delivery and booking-core's handling of it, the relay's publish
//! to Kafka and the notifier's email, each the child of a span in the same trace.
//!
//! A test binary of its own: the exporter is the process's global subscriber, so no other test
//! shares (or races to install) it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use marquee_platform::config::{LogFormat, LogSettings};
use marquee_platform::telemetry::{self, TelemetrySettings};
use marquee_testkit::otlp::{ReceivedSpan, Receiver};
use serde_json::json;

use marquee_e2e::stack;

/// The steps the trace must hold: (what, the module its span is made in, the span's name).
const STEPS: [(&str, &str, &str); 6] = [
    (
        "the gateway's call",
        "queue_gateway::proxy",
        "proxy to booking-core",
    ),
    ("the hold", "booking_core::holds::reserve", "hold seats"),
    (
        "the webhook's delivery",
        "stripe_sim::webhooks",
        "webhook delivery",
    ),
    (
        "the webhook's handling",
        "booking_core::payments::webhook",
        "stripe webhook",
    ),
    ("the relay's publish", "marquee_events::relay", "publish"),
    ("the notifier's email", "marquee_events::notifier", "notify"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reservation_is_one_trace_from_reserve_to_its_email() {
    let receiver = Receiver::start().await;
    let exporter = telemetry::init(
        &LogSettings {
            format: LogFormat::Pretty,
            filter: "warn".into(),
        },
        &TelemetrySettings {
            otlp_endpoint: receiver.endpoint.clone(),
            export_interval_ms: 100,
            ..Default::default()
        },
        "marquee-e2e",
    );
    assert!(exporter.exporting(), "the exporter is this process's own");

    let s = stack(1, |s| s).await;
    let event = s.event(json!({})).await;
    let show = s.show(&event, 1, 4).await;
    s.buy(&event, &show, "A-2").await;
    marquee_testkit::wait_for("the ticket email", Duration::from_secs(60), || async {
        (!s.emails().is_empty()).then_some(())
    })
    .await;

    // The hold's trace: every step in it, each span's parent in it, one root.
    let trace =
        marquee_testkit::wait_for("the whole trace exported", Duration::from_secs(30), || {
            exporter.flush();
            let spans = receiver.spans();
            async move { whole_trace(&spans) }
        })
        .await;
    let ids: HashSet<&str> = trace.iter().map(|s| s.span_id.as_str()).collect();
    let roots: Vec<&ReceivedSpan> = trace
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "one root: {roots:#?}");
    for span in &trace {
        assert!(
            span.parent_span_id.is_empty() || ids.contains(span.parent_span_id.as_str()),
            "{span:?}'s parent is in the trace"
        );
        assert_eq!(span.service, "marquee-e2e");
    }
    // The booking's span is where the rest hangs from: the webhook's delivery and the publish
    // are its descendants, not a separate trace linked after the fact.
    let by_id: HashMap<&str, &ReceivedSpan> =
        trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let hold = find(&trace, STEPS[1]).expect("the hold");
    for step in [STEPS[2], STEPS[4], STEPS[5]] {
        let span = find(&trace, step).unwrap();
        assert!(
            descends_from(span, &hold.span_id, &by_id),
            "{} descends from the hold",
            step.0
        );
    }
}

/// The trace holding a span of every step, if one has arrived whole.
fn whole_trace(spans: &[ReceivedSpan]) -> Option<Vec<ReceivedSpan>> {
    let hold = spans
        .iter()
        .find(|s| s.module == STEPS[1].1 && s.name == STEPS[1].2)?;
    let trace: Vec<ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == hold.trace_id)
        .cloned()
        .collect();
    STEPS
        .iter()
        .all(|step| find(&trace, *step).is_some())
        .then_some(trace)
}

fn find<'a>(
    trace: &'a [ReceivedSpan],
    (_, module, name): (&str, &str, &str),
) -> Option<&'a ReceivedSpan> {
    trace.iter().find(|s| s.module == module && s.name == name)
}

fn descends_from(
    span: &ReceivedSpan,
    ancestor: &str,
    by_id: &HashMap<&str, &ReceivedSpan>,
) -> bool {
    let mut at = span;
    while let Some(parent) = by_id.get(at.parent_span_id.as_str()) {
        if parent.span_id == ancestor {
            return true;
        }
        at = parent;
    }
    false
}
