//! Invariant 4 against librdkafka's mock cluster and real Postgres: every confirmed booking
//! yields one `BookingConfirmed` (at least once on the wire, once in effect), Kafka being down
//! loses nothing, and the notifier emails once per booking or dead-letters.

mod delivery;
mod helpers;
mod kills;
mod mail_files;
mod mail_tls;
mod notifications;
