//! The worker's own metrics, beside the HTTP ones. Each series is labelled by event, and an
//! event's series last only while it is listed: [`WorkerMetrics::keep_only`] drops those of
//! events no longer ticked, so a worker that has seen a season of events exports the live ones.

use std::collections::HashSet;
use std::sync::Mutex;

use marquee_waitroom::queue::Admitted;
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
    /// The events this replica has series for.
    labelled: Mutex<HashSet<String>>,
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
            labelled: Mutex::default(),
        }
    }

    /// A tick this replica ran for `event`, holding its lease.
    pub fn ticked(&self, event: &str, a: &Admitted) {
        self.label(event);
        self.lease.with_label_values(&[event]).set(1);
        self.admitted.with_label_values(&[event]).inc_by(a.admitted);
        self.dropped.with_label_values(&[event]).inc_by(a.dropped);
        self.waiting
            .with_label_values(&[event])
            .set(a.waiting as i64);
        self.active.with_label_values(&[event]).set(a.active as i64);
    }

    /// Another replica holds `event`'s lease.
    pub fn not_leader(&self, event: &str) {
        self.label(event);
        self.lease.with_label_values(&[event]).set(0);
    }

    /// Drop the series of every event not in `listed`.
    pub fn keep_only(&self, listed: &HashSet<&str>) {
        let mut labelled = self.labelled.lock().expect("metrics labels");
        labelled.retain(|event| {
            if listed.contains(event.as_str()) {
                return true;
            }
            let labels = [event.as_str()];
            // A series never set (a replica that never led has no `admitted_total`) is
            // simply not there to remove.
            let _ = self.admitted.remove_label_values(&labels);
            let _ = self.dropped.remove_label_values(&labels);
            let _ = self.waiting.remove_label_values(&labels);
            let _ = self.active.remove_label_values(&labels);
            let _ = self.lease.remove_label_values(&labels);
            false
        });
    }

    fn label(&self, event: &str) {
        let mut labelled = self.labelled.lock().expect("metrics labels");
        if !labelled.contains(event) {
            labelled.insert(event.to_owned());
        }
    }
}
