//! Each event as this gateway sees it: live settings plus the queue's admission watermark,
//! held in memory and refreshed from Redis a few times a second for every event being polled,
//! so a status poll normally answers without touching Redis.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use marquee_waitroom::connect::Redis;
use marquee_waitroom::{EventState, LiveSettings, keys, queue};
use serde::Serialize;

/// The state of one event's queue at the last refresh.
pub struct EventView {
    pub cfg: LiveSettings,
    /// Highest place admitted so far.
    pub watermark: u64,
    /// How many pre-queue visitors the shuffle placed.
    pub prequeue_total: u64,
    /// The pre-queue has been given its places (admission may start).
    pub shuffled: bool,
    /// Places the queue moved per second over the last minute (admitted, and dropped for
    /// having left), once there is enough of it to measure.
    pub measured_pace: Option<f64>,
    /// Polls sooner than `min_poll_interval_ms` per visitor are refused.
    pub poll_limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    /// What every answer says about the event, rendered once per refresh rather than on
    /// every poll (see [`About`]).
    pub about: Arc<str>,
}

/// What every join and status answer says about the event, beyond where the visitor stands:
/// when it opens, its name, the shuffle's seed once the pre-queue order is fixed (so anyone can
/// replay it), and the operator's live message and the event's presentation when set
/// (booking-core checked each; the page renders them as text and attributes, never as HTML).
/// Absent fields are left out of the answer.
#[derive(Serialize)]
pub struct About<'a> {
    /// RFC 3339, as serde renders the timestamp.
    pub opens_at: chrono::DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shuffle_seed: Option<&'a str>,
    pub event_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<&'a str>,
}

impl About<'_> {
    /// The event's part of an answer: these members as JSON, without the object's braces
    /// (`crate::queue::answer::respond` writes them into the visitor's object).
    pub fn render(&self) -> Arc<str> {
        let json = serde_json::to_string(self).expect("plain fields serialize");
        Arc::from(&json[1..json.len() - 1])
    }
}

impl EventView {
    /// The state fans see, before anything visitor-specific: a pre-queue event opens by
    /// itself at `opens_at`.
    pub fn state(&self) -> EventState {
        self.cfg.effective_state(Utc::now())
    }

    /// Places per second to estimate waits with: what the queue moved over the last minute,
    /// else the operator's rate. Places, not admissions: a position counts everyone ahead,
    /// including those who left and will be dropped at their turn, which move the queue too.
    pub fn places_per_s(&self) -> f64 {
        self.measured_pace
            .unwrap_or_else(|| f64::from(self.cfg.rate_per_minute) / 60.0)
    }
}

/// The shortest stretch of recorded ticks a measured pace is believed from.
const MIN_PACE_SPAN_MS: i64 = 5_000;

/// Unknown events are remembered briefly so a flood of bad ids does not become a flood of
/// Redis reads.
const NEGATIVE_TTL: Duration = Duration::from_secs(1);

enum Entry {
    Known(Arc<EventView>),
    Unknown(Instant),
}

pub struct EventViews {
    redis: Redis,
    entries: RwLock<HashMap<String, Entry>>,
    /// Events not asked about for this long stop being refreshed.
    idle_after: Duration,
    /// When each event was last asked about, in ms since `epoch`: a poll stores into an
    /// atomic under a shared lock, with no allocation once the event is known.
    last_asked: RwLock<HashMap<String, AtomicU64>>,
    epoch: Instant,
}

impl EventViews {
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            entries: RwLock::new(HashMap::new()),
            idle_after: Duration::from_secs(300),
            last_asked: RwLock::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    /// The event's view: from memory, or one Redis read the first time.
    pub async fn get(&self, event: &str) -> redis::RedisResult<Option<Arc<EventView>>> {
        let cached = match self.entries.read().expect("events lock").get(event) {
            Some(Entry::Known(v)) => Some(Some(v.clone())),
            Some(Entry::Unknown(at)) if at.elapsed() < NEGATIVE_TTL => Some(None),
            _ => None,
        };
        let view = match cached {
            Some(v) => v,
            None => self.refresh(event).await?,
        };
        // Only events that exist are kept fresh, so made-up ids cannot grow the list.
        if view.is_some() {
            self.touch(event);
        }
        Ok(view)
    }

    /// Note that `event` was asked about now.
    fn touch(&self, event: &str) {
        let now = self.epoch.elapsed().as_millis() as u64;
        if let Some(at) = self.last_asked.read().expect("last_asked lock").get(event) {
            at.store(now, Ordering::Relaxed);
            return;
        }
        self.last_asked
            .write()
            .expect("last_asked lock")
            .insert(event.to_owned(), AtomicU64::new(now));
    }

    /// Read one event from Redis and store the result.
    pub async fn refresh(&self, event: &str) -> redis::RedisResult<Option<Arc<EventView>>> {
        let now_ms = Utc::now().timestamp_millis();
        let mut redis = self.redis.clone();
        type StateFields = (Option<u64>, Option<u64>, Option<String>, Option<String>);
        let (cfg, state, recent): (Option<String>, StateFields, Vec<String>) = redis::pipe()
            .get(keys::cfg(event))
            .cmd("HMGET")
            .arg(keys::state(event))
            .arg(&["watermark", "prequeue_total", "shuffled", "shuffle_seed"])
            .zrangebyscore(keys::admits(event), now_ms - 60_000, "+inf")
            .query_async(&mut redis)
            .await?;
        let Some(cfg) = cfg.and_then(|c| serde_json::from_str::<LiveSettings>(&c).ok()) else {
            self.entries
                .write()
                .expect("events lock")
                .insert(event.to_owned(), Entry::Unknown(Instant::now()));
            return Ok(None);
        };
        let previous = match self.entries.read().expect("events lock").get(event) {
            Some(Entry::Known(v)) => Some(v.clone()),
            _ => None,
        };
        // Keep the poll limiter (and what it remembers) while the interval is unchanged.
        let poll_limiter = match &previous {
            Some(p) if p.cfg.min_poll_interval_ms == cfg.min_poll_interval_ms => {
                p.poll_limiter.clone()
            }
            _ => poll_limiter(cfg.min_poll_interval_ms),
        };
        let measured_pace = queue::Pace::of(&recent).places_per_s(now_ms, MIN_PACE_SPAN_MS);
        let shuffled = state.2.is_some();
        let about = About {
            opens_at: cfg.opens_at,
            shuffle_seed: state.3.as_deref().filter(|_| shuffled),
            event_name: &cfg.name,
            message: cfg.message.as_deref(),
            display_name: cfg.display_name.as_deref(),
            accent_color: cfg.accent_color.as_deref(),
            logo_url: cfg.logo_url.as_deref(),
        }
        .render();
        let view = Arc::new(EventView {
            about,
            cfg,
            watermark: state.0.unwrap_or(0),
            prequeue_total: state.1.unwrap_or(0),
            shuffled,
            measured_pace,
            poll_limiter,
        });
        self.entries
            .write()
            .expect("events lock")
            .insert(event.to_owned(), Entry::Known(view.clone()));
        Ok(Some(view))
    }

    /// Refresh every event asked about recently; forget the rest.
    pub async fn refresh_all(&self) {
        let active: Vec<String> = {
            let now = self.epoch.elapsed().as_millis() as u64;
            let idle_ms = self.idle_after.as_millis() as u64;
            let mut asked = self.last_asked.write().expect("last_asked lock");
            asked.retain(|_, at| now.saturating_sub(at.load(Ordering::Relaxed)) < idle_ms);
            asked.keys().cloned().collect()
        };
        {
            let mut entries = self.entries.write().expect("events lock");
            entries.retain(|k, _| active.contains(k));
        }
        for event in active {
            if let Err(e) = self.refresh(&event).await {
                tracing::warn!(event, error = %e, "event refresh failed; serving the last view");
            }
        }
        for entry in self.entries.read().expect("events lock").values() {
            if let Entry::Known(v) = entry
                && let Some(l) = &v.poll_limiter
            {
                l.retain_recent();
            }
        }
    }
}

fn poll_limiter(min_interval_ms: u32) -> Option<Arc<DefaultKeyedRateLimiter<String>>> {
    if min_interval_ms == 0 {
        return None;
    }
    // A little slack so a client polling exactly at the interval is never refused for
    // timer jitter.
    let period = Duration::from_millis(u64::from(min_interval_ms) * 9 / 10);
    let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::MIN);
    Some(Arc::new(RateLimiter::keyed(quota)))
}
