//! End-to-end: fans through the gateway, admitted by real workers, booking in booking-core.

mod access_codes;
mod admission;
mod browser;
mod cancellation;
mod cluster;
mod edge;
mod fan_pages;
mod key_rotation;
mod languages;
mod links;
mod live_message;
mod lookup;
mod observability;
mod opening_night;
mod page_headers;
mod queue_api;
mod redis_crash;
mod redis_tls;
mod replicas;
mod safety_net;
mod schema;
mod slots;
mod tokens;
mod waitlist;
