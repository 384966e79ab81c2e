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
    pub show_events: ShowEvents,
    /// Each event's settings and watermark, kept in memory.
    pub events: EventViews,
    /// Visitors seen polling, flushed to Redis once a second.
    pub presence: Presence,
    /// New visitors' joins, coalesced per event.
    pub joins: crate::queue::joins::Joins,
    pub queue_signer: QueueSigner,
    /// The pages' static files, by content-hashed name.
    pub assets: Assets,
    /// Catalog searches kept for their lifetime (`[gateway] catalog_cache_bytes`).
    pub catalog: crate::catalog_cache::CatalogCache,
}

/// Which event each show belongs to (it never changes), as booking-core said, remembered with
/// when it was last asked for: shows not asked about for `IDLE` are forgotten by `tidy` (every
/// minute), so the map holds the shows on sale now, not every show ever reserved.
#[derive(Default)]
pub struct ShowEvents {
    map: std::sync::Mutex<std::collections::HashMap<String, (String, std::time::Instant)>>,
}

impl ShowEvents {
    pub const IDLE: std::time::Duration = std::time::Duration::from_secs(600);

    pub fn get(&self, show: &str) -> Option<String> {
        let mut map = self.map.lock().expect("show cache");
        let (event, used) = map.get_mut(show)?;
        *used = std::time::Instant::now();
        Some(event.clone())
    }

    pub fn insert(&self, show: &str, event: &str) {
        self.map.lock().expect("show cache").insert(
            show.to_owned(),
            (event.to_owned(), std::time::Instant::now()),
        );
    }

    /// Forget shows idle for `idle`; how many are left.
    pub fn tidy(&self, idle: std::time::Duration) -> usize {
        let mut map = self.map.lock().expect("show cache");
        map.retain(|_, (_, used)| used.elapsed() < idle);
        map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_asked_about_stay_and_idle_ones_go() {
        let cache = ShowEvents::default();
        cache.insert("s_one", "ev-a");
        cache.insert("s_two", "ev-b");
        assert_eq!(cache.get("s_one").as_deref(), Some("ev-a"));
        assert_eq!(cache.tidy(std::time::Duration::from_secs(60)), 2);
        assert_eq!(
            cache.tidy(std::time::Duration::ZERO),
            0,
            "everything idle goes"
        );
        assert_eq!(cache.get("s_one"), None);
    }
}
