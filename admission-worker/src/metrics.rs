//! The worker's own metrics, beside the HTTP ones.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

pub struct WorkerMetrics {
    /// `admitted_total{event}`: visitors admitted by this replica.
    pub admitted: IntCounterVec,
    /// `dropped_total{event}`: visitors dropped for not polling.
    pub dropped: IntCounterVec,
    /// `queue_waiting{event}` and `queue_active{event}` as of this replica's last tick.
    pub waiting: IntGaugeVec,
    pub active: IntGaugeVec,
    /// `lease_held{event}`: 1 while this replica admits for the event.
    pub lease: IntGaugeVec,
}

impl WorkerMetrics {
    pub fn new(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &["event"]).expect("metric");
            registry.register(Box::new(c.clone())).expect("register");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGaugeVec::new(Opts::new(name, help), &["event"]).expect("metric");
            registry.register(Box::new(g.clone())).expect("register");
            g
        };
        Self {
            admitted: counter("admitted_total", "Visitors admitted"),
            dropped: counter("dropped_total", "Visitors dropped for not polling"),
            waiting: gauge("queue_waiting", "Visitors waiting"),
            active: gauge("queue_active", "Visitors admitted and in session"),
            lease: gauge("lease_held", "1 while this replica admits for the event"),
        }
    }
}
