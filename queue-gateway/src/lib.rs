//! queue-gateway: Marquee's only public listener. Serves the waiting room (pages, queue API,
//! JWKS), holds the edge (rate limits, load shedding, timeouts), checks admission tokens
//! before a reserve, and proxies booking and admin calls to booking-core.
//!
//! Map. `startup` builds the state (`state`) and the stack: a status poll is answered in front
//! of the router by `poll_path` (behind the same `edge` guard); everything else goes through
//! `routes` behind that guard (`limits`: per-client rates). The queue API is `queue`: `join`
//! and `status` both answer through `queue::answer` (where a visitor stands, from its token
//! and `event_views`, this gateway's in-memory view of each event) and check `queue::credentials`;
//! `presence` batches who was seen polling into Redis once a second. Booking and admin calls
//! go through `routes::booking` (the admission check on reserve) and `proxy`; `pages` and
//! `assets` serve the fans' and operators' pages, `page_headers` the headers they defend
//! themselves with, `i18n` the fans' pages in their language; `error` maps every failure to a
//! problem.

pub mod allocator;
pub mod assets;
pub mod catalog_cache;
pub mod edge;
pub mod error;
pub mod event_views;
pub mod i18n;
pub mod limits;
pub mod openapi;
pub mod page_headers;
pub mod pages;
pub mod poll_path;
pub mod presence;
pub mod proxy;
pub mod queue;
pub mod routes;
pub mod startup;
pub mod state;

pub use startup::Application;
