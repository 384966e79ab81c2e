//! What Marquee reads from strangers, parsed and checked in one small crate: the fuzz targets
//! under `fuzz/` instrument it (and only it) in seconds, and every service uses these same
//! functions, so what the fuzzers try is what production runs.
//!
//! Map:
//! * `queue_token`, `admission` — the signed tokens a fan carries (HMAC queue tokens, EdDSA
//!   admission JWTs and the keyring that verifies them); `marquee-waitroom` re-exports both;
//! * `stripe_signature` — the `Stripe-Signature` header of a webhook (booking-core);
//! * `client_address` — `trusted_proxies` ranges and the client's address behind them
//!   (`X-Forwarded-For`), for the gateway's limits;
//! * `form` — reading an admin request body field by field (every bad field in one 422);
//!   `layout` — a show's seat layout; `presentation` — what an event shows its crowd;
//! * `event_settings` — an event's live settings as booking-core publishes them to Redis
//!   (gateways and workers read them back).

pub mod admission;
pub mod client_address;
pub mod event_settings;
pub mod form;
pub mod layout;
pub mod presentation;
pub mod queue_token;
pub mod stripe_signature;
