//! An event's live settings as booking-core publishes them to Redis for gateways and workers.

pub use marquee_parsers::event_settings::{
    EventState, LiveSettings, QueueMode, default_idle_after_s,
};

/// Set `wr:{event}:cfg` unless it already holds a newer revision (or whatever it holds, when
/// forced): `scripts/publish_settings.lua`, whose KEYS and ARGV it lists.
pub fn publish_script() -> redis::Script {
    redis::Script::new(include_str!("scripts/publish_settings.lua"))
}
