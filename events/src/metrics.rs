//! The events service's metrics.

use prometheus::{IntCounter, IntGauge, Registry};

pub struct EventMetrics {
    /// `outbox_backlog`: rows written but not yet acknowledged by Kafka.
    pub backlog: IntGauge,
    /// `outbox_oldest_age_seconds`: how long the oldest unpublished row has waited.
    pub oldest_age: IntGauge,
    /// `outbox_published_total`
    pub published: IntCounter,
    /// `outbox_unacknowledged_total`: sends Kafka did not acknowledge in time (each row is
    /// sent again on a later pass).
    pub unacknowledged: IntCounter,
    /// `notifications_sent_total`, `notifications_dead_lettered_total`
    pub sent: IntCounter,
    pub dead_lettered: IntCounter,
}

impl EventMetrics {
    pub fn new(registry: &Registry) -> Self {
        let gauge = |n: &str, h: &str| {
            let g = IntGauge::new(n, h).expect("metric");
            registry.register(Box::new(g.clone())).expect("register");
            g
        };
        let counter = |n: &str, h: &str| {
            let c = IntCounter::new(n, h).expect("metric");
            registry.register(Box::new(c.clone())).expect("register");
            c
        };
        Self {
            backlog: gauge("outbox_backlog", "Outbox rows not yet published"),
            oldest_age: gauge(
                "outbox_oldest_age_seconds",
                "Age of the oldest unpublished outbox row",
            ),
            published: counter("outbox_published_total", "Outbox rows published to Kafka"),
            unacknowledged: counter(
                "outbox_unacknowledged_total",
                "Outbox sends Kafka did not acknowledge in time (sent again later)",
            ),
            sent: counter("notifications_sent_total", "Ticket emails sent"),
            dead_lettered: counter(
                "notifications_dead_lettered_total",
                "Notifications given up and dead-lettered",
            ),
        }
    }
}
