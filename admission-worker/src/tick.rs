//! One pass over every listed event: lease, shuffle at opening, admit, and retire a closed
//! event once its last admitted fan's slot has lapsed ([`retired`]).

use std::collections::HashSet;

use chrono::Utc;
use marquee_waitroom::connect::Redis;
use marquee_waitroom::queue::{self, Admitted, Tick};
use marquee_waitroom::{EventState, LiveSettings, keys, lease};
use redis::AsyncCommands;

use crate::metrics::WorkerMetrics;

pub struct Ticker {
    pub worker_id: String,
    pub lease_ttl_ms: u64,
    /// The most elapsed time one tick may count, so an outage never banks a burst.
    pub max_elapsed_ms: u64,
    /// The set listing the events to admit for.
    pub events_key: String,
    /// How often a point of each event's history is recorded.
    pub history_interval_ms: u64,
}

/// What one tick did for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This replica holds the event's lease and ran its tick.
    Ticked(Admitted),
    /// Another replica holds the lease.
    NotLeader,
    /// The event was retired ([`retired`]): taken off the list, its lease given back, no
    /// longer ticked until its settings are published again (which lists it again).
    Delisted,
    /// Nothing done: its settings cannot be read, or it was reopened while being delisted.
    Skipped,
}

/// The lifecycle rule: a closed event is ticked until the last admitted fan's slot has lapsed
/// (the tick frees lapsed slots), then retired. Its waiting fans keep their places in Redis
/// for a reopening, which lists it again.
pub fn retired(settings: &LiveSettings, after_tick: &Admitted) -> bool {
    settings.state == EventState::Closed && after_tick.active == 0
}

impl Ticker {
    pub async fn run_all(&self, redis: &mut Redis, metrics: &WorkerMetrics) {
        let events: Vec<String> = match redis.smembers(&self.events_key).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list events");
                return;
            }
        };
        let mut listed = HashSet::with_capacity(events.len());
        for event in &events {
            match self.run_event(redis, event).await {
                Ok(Outcome::Ticked(a)) => metrics.ticked(event, &a),
                Ok(Outcome::NotLeader) => metrics.not_leader(event),
                Ok(Outcome::Delisted) => {
                    tracing::info!(event, "closed event retired: no admitted fan left");
                    continue;
                }
                Ok(Outcome::Skipped) => {}
                Err(e) => tracing::warn!(event, error = %e, "admission tick failed"),
            }
            listed.insert(event.as_str());
        }
        metrics.keep_only(&listed);
    }

    pub async fn run_event(&self, redis: &mut Redis, event: &str) -> redis::RedisResult<Outcome> {
        let raw: Option<String> = redis.get(keys::cfg(event)).await?;
        let Some(raw) = raw else {
            // Listed without settings (they were lost): publishing them lists it again.
            return Ok(if self.delist(redis, event, None).await? {
                Outcome::Delisted
            } else {
                Outcome::Skipped
            });
        };
        let cfg = match serde_json::from_str::<LiveSettings>(&raw) {
            Ok(cfg) => cfg,
            Err(e) => {
                tracing::warn!(event, error = %e, "unreadable event settings");
                return Ok(Outcome::Skipped);
            }
        };
        if !lease::take(redis, event, &self.worker_id, self.lease_ttl_ms).await? {
            return Ok(Outcome::NotLeader);
        }
        let now = Utc::now();
        let state = cfg.effective_state(now);
        let mut ready = true;
        if state == EventState::Open {
            let shuffled: bool = redis.hexists(keys::state(event), "shuffled").await?;
            if !shuffled {
                crate::shuffle::run(redis, event, cfg.abandon_after_s).await?;
            }
        } else {
            ready = false;
        }
        let admitting = ready && !cfg.sold_out;
        let tick = Tick {
            event,
            worker_id: &self.worker_id,
            now_ms: now.timestamp_millis(),
            rate_per_minute: cfg.rate_per_minute,
            max_active: cfg.max_active,
            session_ttl_ms: u64::from(cfg.session_ttl_s) * 1000,
            idle_ms: u64::from(cfg.idle_after_s) * 1000,
            max_elapsed_ms: self.max_elapsed_ms,
            abandon_after_s: cfg.abandon_after_s,
            admitting,
            history_interval_ms: self.history_interval_ms,
        };
        let admitted = queue::admit(redis, &tick).await?;
        if retired(&cfg, &admitted) && self.delist(redis, event, Some(cfg.revision)).await? {
            lease::give_back(redis, event, &self.worker_id).await?;
            return Ok(Outcome::Delisted);
        }
        Ok(Outcome::Ticked(admitted))
    }

    /// Take `event` off the list, decided on its settings at `revision` (`None`: it had
    /// none). Publishers write the settings first and list the event second, so reading the
    /// settings again after taking it off, and listing it back when they changed, loses no
    /// publish whatever the interleaving: either the read sees the new settings, or the
    /// publisher lists the event after it was taken off. `false` when it was listed back.
    pub async fn delist(
        &self,
        redis: &mut Redis,
        event: &str,
        revision: Option<i64>,
    ) -> redis::RedisResult<bool> {
        let _: () = redis.srem(&self.events_key, event).await?;
        let raw: Option<String> = match redis.get(keys::cfg(event)).await {
            Ok(raw) => raw,
            Err(e) => {
                // Undecided: back on the list (if Redis takes it), for the next tick.
                let _: redis::RedisResult<()> = redis.sadd(&self.events_key, event).await;
                return Err(e);
            }
        };
        let now = raw.map(|r| serde_json::from_str::<LiveSettings>(&r).map(|c| c.revision));
        let unchanged = match (now, revision) {
            (None, None) => true,
            (Some(Ok(now)), Some(decided)) => now == decided,
            _ => false,
        };
        if !unchanged {
            let _: () = redis.sadd(&self.events_key, event).await?;
        }
        Ok(unchanged)
    }
}
