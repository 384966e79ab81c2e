//! The envelope's quiet requests (`Envelope::quiet`), in a test binary of its own: the span
//! levels it checks are cached per call site for the whole process, and other tests running
//! at once without a subscriber would race it.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use http::StatusCode;
use marquee_platform::http::{Envelope, REQUEST_ID};
use tower::ServiceExt;

fn request(path: &str, id: &str) -> Request {
    let b = http::Request::builder().uri(path).header(REQUEST_ID, id);
    b.body(Body::empty()).unwrap()
}

/// Log lines at INFO and above, as a service writes them, into a buffer.
#[derive(Clone, Default)]
struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_quiet_request_has_no_span_at_info_and_its_failure_names_it() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let failing = tower::service_fn(|_: Request| async {
        tracing::warn!("inside");
        Ok::<_, Infallible>(StatusCode::SERVICE_UNAVAILABLE)
    });
    let quiet = |req: &Request| req.uri().path() == "/quiet";
    for (path, id) in [("/x", "fan-8"), ("/quiet", "fan-9")] {
        let res = Envelope::new(failing)
            .quiet(quiet)
            .oneshot(request(path, id))
            .await;
        assert_eq!(res.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let of = |id: &str| -> Vec<String> {
        let lines = text.lines().filter(|l| l.contains(id));
        lines.map(str::to_owned).collect()
    };
    // A plain request: both lines inside its span.
    let plain = of("fan-8");
    assert_eq!(plain.len(), 2, "{text}");
    assert!(plain.iter().all(|l| l.contains("http{")), "{text}");
    // A quiet one: no span; its failure names its path and id itself.
    assert!(!text.contains("path=/quiet request_id=fan-9}"), "{text}");
    let quiet = of("fan-9");
    assert_eq!(quiet.len(), 1, "{text}");
    assert!(
        quiet[0].contains("response failed") && quiet[0].contains("path=/quiet"),
        "{text}"
    );
}
