//! Plumbing shared by every Marquee service: configuration, telemetry, RFC 9457 problem
//! responses, the common HTTP layers (request ids, tracing, metrics) and graceful shutdown.

pub mod cli;
pub mod config;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod problem;
pub mod secret;
pub mod shutdown;
pub mod telemetry;

pub use config::Settings;
pub use problem::{FieldError, Problem};
pub use secret::Secret;
