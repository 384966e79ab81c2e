//! Events out of Marquee. The relay publishes the outbox (written by booking-core in the same
//! transaction as each booking change) to Kafka with the idempotent producer, marking rows
//! published only once the broker acknowledged them; the notifier consumes
//! `BookingConfirmed` and emails the ticket, once per message, with retries and a dead-letter
//! topic. With no brokers configured, this process owns librdkafka's mock cluster.
//!
//! Map. `startup` connects (`kafka`: the producer, the consumer, the embedded mock cluster and
//! its bootstrap file) and runs both loops: `relay` (outbox rows → Kafka, woken by LISTEN/NOTIFY
//! with a polling fallback) and `notifier` (Kafka → `mail`, which writes each email whole or
//! not at all); `metrics` exports their counts.

pub mod kafka;
pub mod mail;
pub mod metrics;
pub mod notifier;
pub mod relay;
pub mod startup;

pub use startup::Application;
