//! Plumbing shared by every Marquee service: configuration, telemetry, RFC 9457 problem
//! responses, the common HTTP layers (request ids, tracing, metrics) and graceful shutdown.
//!
//! Map. `config` (files + `MARQUEE_…` overrides, every problem reported at once; `secret`
//! keeps secrets out of prints) and `cli` start every binary; `telemetry` sets up logs and trace export, `trace` carries a trace between services;
//! `http` is the outer layer stack and its helpers (request ids, client addresses, readiness);
//! `problem` the RFC 9457 answers; `metrics` the HTTP metrics; `ids` the id rules; `memory` how a service's process takes memory;
//! `shutdown` the SIGTERM switch and graceful drain.

pub mod cli;
pub mod coalesce;
pub mod config;
pub mod http;
pub mod ids;
pub mod memory;
pub mod metrics;
pub mod pii;
pub mod problem;
pub mod secret;
pub mod shutdown;
pub mod telemetry;
pub mod trace;

pub use config::Settings;
pub use problem::{FieldError, Problem};
pub use secret::Secret;
