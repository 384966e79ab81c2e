//! Logging and traces through tracing: log lines human-readable at a terminal, JSON lines in
//! production; spans exported over OTLP (HTTP, protobuf) when `[telemetry] otlp_endpoint` is
//! set, so one reservation can be followed across every service (DESIGN.md invariant 10;
//! `trace` carries the context between them).
//!
//! The log filter (`[log] filter`, `RUST_LOG`) chooses log lines only: spans go to the exporter
//! at `[telemetry] level` from Marquee's own crates whatever the log filter says, so a quiet log
//! does not leave holes in a trace. With no endpoint there is no exporter layer at all, and a
//! request pays nothing for tracing beyond its log span.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig as _};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::{Deserialize, Serialize};
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::{LogFormat, LogSettings};

/// The crates whose spans are exported (each service's, the simulator's, the shared ones).
const OWN_CRATES: [&str; 7] = [
    "marquee_platform",
    "marquee_waitroom",
    "queue_gateway",
    "booking_core",
    "admission_worker",
    "marquee_events",
    "stripe_sim",
];

/// `[telemetry]`: where spans go, if anywhere.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TelemetrySettings {
    /// The OTLP/HTTP collector's base address (`http://collector:4318`; spans are posted to
    /// its `/v1/traces`). Empty: no export (the default).
    #[serde(default)]
    pub otlp_endpoint: String,
    /// The share of new traces kept (0 to 1). A trace begun elsewhere follows its caller's
    /// choice, so a trace is whole or absent, never in pieces.
    #[serde(default = "one")]
    pub sample_ratio: f64,
    /// The least important span exported: `info` (each request, each step named in a trace)
    /// or `debug`.
    #[serde(default = "info")]
    pub level: String,
    /// Milliseconds between exports of finished spans.
    #[serde(default = "export_ms")]
    pub export_interval_ms: u64,
}

fn one() -> f64 {
    1.0
}
fn info() -> String {
    "info".into()
}
fn export_ms() -> u64 {
    2_000
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            sample_ratio: one(),
            level: info(),
            export_interval_ms: export_ms(),
        }
    }
}

impl TelemetrySettings {
    /// What is wrong with these settings, each as a sentence for the start-up report.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let endpoint = self.otlp_endpoint.trim();
        let off_or_http = endpoint.is_empty()
            || endpoint.starts_with("http://")
            || endpoint.starts_with("https://");
        if !off_or_http {
            out.push("[telemetry] otlp_endpoint must be an http:// or https:// address".into());
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            out.push("[telemetry] sample_ratio must be between 0 and 1".into());
        }
        if self.level.parse::<LevelFilter>().is_err() {
            out.push("[telemetry] level must be a level (info, debug, …)".into());
        }
        if self.export_interval_ms == 0 {
            out.push("[telemetry] export_interval_ms must be above 0".into());
        }
        out
    }
}

/// The exporter, while the process runs: `flush` sends what has finished; dropping it sends
/// the rest and stops the export.
#[must_use = "dropping the guard stops the export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Export every finished span now (tests, and before a process exits).
    pub fn flush(&self) {
        if let Some(p) = &self.provider
            && let Err(e) = p.force_flush()
        {
            tracing::warn!(error = %e, "trace export flush failed");
        }
    }

    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Install the global subscriber once for `service` (the `service.name` on exported spans);
/// later calls (tests) change nothing and export nothing.
pub fn init(log: &LogSettings, telemetry: &TelemetrySettings, service: &str) -> Telemetry {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(log.filter.clone()));
    let otel = match exporter(telemetry, service) {
        Ok(found) => found,
        Err(e) => {
            // Traces are an aid, never a reason not to serve: say so and run without them.
            eprintln!("trace export off: {e}");
            None
        }
    };
    let Some((otel, provider)) = otel else {
        // No export: one global filter in front of the log layer, as before traces existed,
        // so a span the log filter turns off costs nothing at all (the busiest requests'
        // spans are off at the production filter).
        let builder = tracing_subscriber::fmt().with_env_filter(filter);
        let _ = match log.format {
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .try_init(),
            LogFormat::Pretty => builder.compact().try_init(),
        };
        return Telemetry { provider: None };
    };
    // With export: each layer its own filter, so the log's level does not thin the traces.
    let fmt = tracing_subscriber::fmt::layer();
    let fmt: BoxedLayer = match log.format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => fmt.compact().with_filter(filter).boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(vec![fmt, otel])
        .try_init()
        .is_ok();
    if installed {
        Telemetry {
            provider: Some(provider),
        }
    } else {
        let _ = provider.shutdown();
        Telemetry { provider: None }
    }
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn exporter(
    s: &TelemetrySettings,
    service: &str,
) -> anyhow::Result<Option<(BoxedLayer, SdkTracerProvider)>> {
    let endpoint = s.otlp_endpoint.trim().trim_end_matches('/');
    if endpoint.is_empty() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .with_timeout(std::time::Duration::from_secs(5))
        .with_headers(Default::default())
        .build()?;
    let processor = opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            opentelemetry_sdk::trace::BatchConfigBuilder::default()
                .with_scheduled_delay(std::time::Duration::from_millis(s.export_interval_ms))
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            s.sample_ratio,
        ))))
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .build();
    let tracer = provider.tracer("marquee");
    let level: LevelFilter = s.level.parse()?;
    let targets = OWN_CRATES
        .iter()
        .fold(Targets::new(), |t, c| t.with_target(*c, level));
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(targets)
        .boxed();
    Ok(Some((layer, provider)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        assert!(TelemetrySettings::default().problems().is_empty());
        let bad = TelemetrySettings {
            otlp_endpoint: "collector:4318".into(),
            sample_ratio: 2.0,
            level: "loud".into(),
            export_interval_ms: 0,
        };
        assert_eq!(bad.problems().len(), 4, "{:?}", bad.problems());
    }
}
