//! booking-core: Postgres is the source of truth for everything sold. Catalog, live seat maps,
//! seat holds that can never double-sell, the hold sweeper, and the operators' admin API.
//!
//! Map. A reserve comes in at `routes::bookings` (validated, the admission token checked by
//! `admission`), passes the gate and takes its seats in `holds` (`gate` → `shows` →
//! `reserve`, on connections kept by `lane`), and answers through `idempotency`; the seat map
//! (`seatmap`, cached and single-flight) shows it. Paying is `payments` (checkout, confirm,
//! webhooks; `settle` decides a payment's outcome under the seats' locks), which reads
//! bookings through `bookings`; confirmations reach Kafka through the outbox the `bookings`
//! trigger writes. `rules` holds the SQL conditions many statements share (a seat is free, a
//! hold is live); `model` the request and answer shapes and `BookingStatus`; `error` the one
//! mapping to problem responses. `sweeper` runs the background jobs, `live` keeps each event's
//! settings in Redis and `seat_figures` its seat counts (the waitlist, the charts), `admin`
//! serves operators: `operators` says who is calling and what their
//! role lets them do, and `audit` appends every change they make to the audit trail in the
//! change's own transaction. The catalog's searches (`catalog`) are answered from `listing`,
//! every upcoming show held in memory by city, when they name a city.

pub mod admin;
pub mod admission;
pub mod audit;
pub mod bookings;
pub mod cancellation;
/// Its SQL pieces (`show_tables!`, `catalog_order!`) are `listing`'s too.
#[macro_use]
pub mod catalog;
pub mod error;
pub mod expiring;
pub mod extract;
pub mod gzip;
pub mod holds;
pub mod idempotency;
pub mod lane;
pub mod listing;
pub mod live;
pub mod lookup;
pub mod model;
pub mod operators;
pub mod outage;
pub mod partitions;
pub mod payments;
pub mod pii_sweep;
pub mod routes;
pub mod rules;
pub mod seat_figures;
pub mod seatmap;
pub mod startup;
pub mod state;
pub mod statistics;
pub mod sweeper;
pub mod tickets;

pub use startup::Application;
