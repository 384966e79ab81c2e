//! queue-gateway: Marquee's only public listener. Serves the waiting room (pages, queue API,
//! JWKS), holds the edge (rate limits, load shedding, timeouts), checks admission tokens
//! before a reserve, and proxies booking and admin calls to booking-core.

pub mod assets;
pub mod edge;
pub mod error;
pub mod events;
pub mod limits;
pub mod openapi;
pub mod pages;
pub mod poll_path;
pub mod presence;
pub mod proxy;
pub mod queue;
pub mod routes;
pub mod startup;
pub mod state;

pub use startup::Application;
