//! Delivering events to the configured endpoints, signed, with Stripe-like retries: an event
//! that is not answered 2xx is retried with exponential backoff.

use std::time::Duration;

use serde_json::Value;
use tracing::Instrument;

const MAX_ATTEMPTS: u32 = 8;

pub async fn deliver(
    mut events: tokio::sync::mpsc::UnboundedReceiver<Value>,
    urls: Vec<String>,
    secret: String,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    while let Some(event) = events.recv().await {
        for url in &urls {
            let (http, url, secret, event) =
                (http.clone(), url.clone(), secret.clone(), event.clone());
            // Each delivery on its own task: a slow endpoint does not hold up later events,
            // so endpoints see events out of order now and then, as with Stripe.
            // The delivery is a span of the PaymentIntent's trace (its metadata names it, as
            // booking-core sets it), passed on to the endpoint in `traceparent`.
            let span = tracing::info_span!("webhook delivery", otel.kind = "producer", event = %event["type"]);
            marquee_platform::trace::continue_from(
                &span,
                event["data"]["object"]["metadata"][marquee_platform::trace::TRACEPARENT].as_str(),
            );
            let trace = marquee_platform::trace::traceparent(&span);
            let delivery = async move {
                let body = serde_json::to_vec(&event).expect("event serializes");
                let mut delay = Duration::from_millis(250);
                for attempt in 1..=MAX_ATTEMPTS {
                    let header =
                        crate::signature::sign(&secret, chrono::Utc::now().timestamp(), &body);
                    let mut request = http
                        .post(&url)
                        .header("content-type", "application/json; charset=utf-8")
                        .header("stripe-signature", header);
                    if let Some(t) = &trace {
                        request = request.header(marquee_platform::trace::TRACEPARENT, t);
                    }
                    let sent = request.body(body.clone()).send().await;
                    match sent {
                        Ok(r) if r.status().is_success() => return,
                        Ok(r) => {
                            tracing::info!(%url, attempt, status = %r.status(), "webhook refused; will retry")
                        }
                        Err(e) => {
                            tracing::info!(%url, attempt, error = %e, "webhook not delivered; will retry")
                        }
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                tracing::warn!(%url, id = %event["id"], "webhook given up after {MAX_ATTEMPTS} attempts");
            };
            tokio::spawn(delivery.instrument(span));
        }
    }
}
