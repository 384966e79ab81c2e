//! The waiting room's shared parts, used by the gateway, the admission worker and
//! booking-core: Redis key names, each event's live settings, and the admission tokens that
//! let a fan from the queue into booking.
//!
//! Map. Every Redis script is a `.lua` file under `scripts/` behind one typed function here,
//! so its KEYS and ARGV order lives in one place:
//! * `keys` — every key name (all of one event's share the hash tag `{event}`);
//! * `queue` — the line: `join` (the gateway), `admit` one tick (the worker),
//!   `freeze_prequeue` and the fair shuffle order, positions and the measured pace;
//! * `session` — an admitted fan's slot under the cap: `gate_reserve` (booking-core, before a
//!   hold), `finish` (a confirmed booking), `idle` (a released hold), `standing` (status);
//! * `lease` — which worker replica admits for an event;
//! * `access_codes` — presale and partner codes: made, kept as keyed hashes, redeemed at join;
//! * `live` — an event's live settings as booking-core publishes them, its effective state;
//! * `queue_token`, `admission` — the signed tokens a fan carries, and their cookie names
//!   (parsed in `marquee-parsers`, re-exported here);
//!   `live_keys` — admission keys that follow their folder (rotation without a restart);
//! * `connect` — the Redis connection every service uses (node or cluster, TLS, keepalive).
//!
//! A fan's way: the gateway `join`s it (a queue token with its place), answers polls from the
//! token and the watermark, the worker `admit`s it into a slot, the gateway signs its admission
//! token, booking-core `gate_reserve`s each hold and `finish`es the slot when it buys.

pub mod access_codes;
pub mod connect;
pub mod keys;
pub mod lease;
pub mod live;
pub mod live_keys;
pub mod pow;
pub mod queue;
pub mod session;

pub use marquee_parsers::{admission, queue_token};

pub use admission::{AdmissionClaims, Keyring, TokenError};
pub use live::{EventState, LiveSettings, QueueMode};
