//! An event's live settings as booking-core publishes them to Redis (`wr:{event}:cfg`) for
//! gateways and workers: its state, queue mode, rates and presentation. Gateways read this
//! JSON back on every settings change, so it is parsed here with the other outside input.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    Prequeue,
    Open,
    Paused,
    Closed,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prequeue => "prequeue",
            Self::Open => "open",
            Self::Paused => "paused",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "prequeue" => Self::Prequeue,
            "open" => Self::Open,
            "paused" => Self::Paused,
            "closed" => Self::Closed,
            _ => return None,
        })
    }
}

/// How an event queues its fans.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueMode {
    /// Every fan queues, and is admitted at the operator's rate.
    #[default]
    Always,
    /// A fan passes straight through while nobody is waiting and the rate and cap allow; the
    /// queue forms only when they do not.
    SafetyNet,
}

impl QueueMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::SafetyNet => "safety_net",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "always" => Self::Always,
            "safety_net" => Self::SafetyNet,
            _ => return None,
        })
    }
}

/// What `wr:{event}:cfg` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveSettings {
    pub id: String,
    pub name: String,
    pub state: EventState,
    pub opens_at: DateTime<Utc>,
    pub rate_per_minute: u32,
    pub max_active: u32,
    pub session_ttl_s: u32,
    pub hold_ttl_s: u32,
    pub min_poll_interval_ms: u32,
    pub abandon_after_s: u32,
    /// An admitted fan with no booking activity for this long gives its slot under the cap to
    /// the next fan (`marquee_waitroom::session`).
    #[serde(default = "default_idle_after_s")]
    pub idle_after_s: u32,
    /// Proof-of-work difficulty at join, in leading zero bits of SHA-256 (0: none).
    #[serde(default)]
    pub pow_bits: u8,
    /// No show of the event has a seat left (set and cleared by booking-core).
    pub sold_out: bool,
    #[serde(default)]
    pub queue_mode: QueueMode,
    /// The operator's live message to the crowd (plain text, shown as text), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How the waiting page presents the event: a display name, an accent colour (`#rrggbb`)
    /// and a logo (an https address), each if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// When the settings last changed (µs since the epoch): a writer holding an older
    /// revision never overwrites a newer one.
    pub revision: i64,
}

/// Settings written before `idle_after_s` existed read as the default.
pub const fn default_idle_after_s() -> u32 {
    180
}

impl LiveSettings {
    /// The state fans and workers act on: a pre-queue event opens by itself at `opens_at`.
    pub fn effective_state(&self, now: DateTime<Utc>) -> EventState {
        match self.state {
            EventState::Prequeue if now >= self.opens_at => EventState::Open,
            s => s,
        }
    }

    /// Whether a fan joining now may pass straight through (the join script still checks the
    /// queue, the budget and the cap).
    pub fn passes_through(&self, now: DateTime<Utc>) -> bool {
        self.queue_mode == QueueMode::SafetyNet
            && self.effective_state(now) == EventState::Open
            && !self.sold_out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("settings serialize")
    }
}
