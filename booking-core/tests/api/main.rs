//! booking-core's black-box tests: real Postgres and Redis, one database per test.

mod admin;
mod bad_input;
mod cancellation;
mod catalog;
mod categories;
mod expiry;
mod extend;
mod helpers;
mod hold_batches;
mod idempotency;
mod integrity;
mod kills;
mod lane;
mod lapse_race;
mod links;
mod operators;
mod payments;
mod pii;
mod presentation;
mod quantity_race;
mod reserve;
mod seat_figures;
mod seat_race;
mod tickets;
