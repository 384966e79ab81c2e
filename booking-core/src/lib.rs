//! booking-core: Postgres is the source of truth for everything sold. Catalog, live seat maps,
//! seat holds that can never double-sell, the hold sweeper, and the operators' admin API.

pub mod admin;
pub mod admission;
pub mod bookings;
pub mod catalog;
pub mod error;
pub mod expiring;
pub mod extract;
pub mod holds;
pub mod idempotency;
pub mod lane;
pub mod live;
pub mod model;
pub mod outage;
pub mod partitions;
pub mod payments;
pub mod routes;
pub mod rules;
pub mod seatmap;
pub mod startup;
pub mod state;
pub mod sweeper;
pub mod tickets;

pub use startup::Application;
