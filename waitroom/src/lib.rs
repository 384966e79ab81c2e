//! The waiting room's shared parts, used by the gateway, the admission worker and
//! booking-core: Redis key names, each event's live settings, and the admission tokens that
//! let a fan from the queue into booking.

pub mod admission;
pub mod connect;
pub mod keys;
pub mod lease;
pub mod live;
pub mod queue;
pub mod queue_token;
pub mod session;

pub use admission::{AdmissionClaims, Keyring, TokenError};
pub use live::{EventState, LiveSettings};
