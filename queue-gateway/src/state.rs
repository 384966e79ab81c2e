//! The gateway's shared state.

use std::sync::Arc;

use marquee_platform::Settings;
use marquee_platform::http::IpRange;
use marquee_platform::metrics::HttpMetrics;
use marquee_waitroom::live_keys::LiveKeyring;

use crate::assets::Assets;
use crate::event_views::EventViews;
use crate::limits::ClientLimiter;
use crate::presence::Presence;
use crate::proxy::Upstream;
use marquee_waitroom::queue_token::QueueSigner;

#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

pub struct App {
    pub settings: Settings,
    /// The admission keys, following their folder (`LiveKeyring`).
    pub keys: Arc<LiveKeyring>,
    pub redis: marquee_waitroom::connect::Redis,
    pub upstream: Upstream,
    pub limiter: ClientLimiter,
    /// Find-my-booking requests a client address may make (`routes::booking::lookup`).
    pub lookup_limiter: ClientLimiter,
    pub trusted: Vec<IpRange>,
    pub metrics: Arc<HttpMetrics>,
    /// Show id → event id, learnt from booking-core (a show never changes event).
    pub show_events: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Each event's settings and watermark, kept in memory.
    pub events: EventViews,
    /// Visitors seen polling, flushed to Redis once a second.
    pub presence: Presence,
    pub queue_signer: QueueSigner,
    /// The pages' static files, by content-hashed name.
    pub assets: Assets,
}
