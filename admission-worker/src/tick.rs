//! One pass over every event: lease, shuffle at opening, admit.

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

impl Ticker {
    pub async fn run_all(&self, redis: &mut Redis, metrics: &WorkerMetrics) {
        let events: Vec<String> = match redis.smembers(&self.events_key).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list events");
                return;
            }
        };
        for event in events {
            match self.run_event(redis, &event).await {
                Ok(Some(a)) => {
                    metrics.lease.with_label_values(&[event.as_str()]).set(1);
                    metrics
                        .admitted
                        .with_label_values(&[event.as_str()])
                        .inc_by(a.admitted);
                    metrics
                        .dropped
                        .with_label_values(&[event.as_str()])
                        .inc_by(a.dropped);
                    metrics
                        .waiting
                        .with_label_values(&[event.as_str()])
                        .set(a.waiting as i64);
                    metrics
                        .active
                        .with_label_values(&[event.as_str()])
                        .set(a.active as i64);
                }
                Ok(None) => metrics.lease.with_label_values(&[event.as_str()]).set(0),
                Err(e) => tracing::warn!(event, error = %e, "admission tick failed"),
            }
        }
    }

    /// `None` when another replica holds the event's lease (or it is closed).
    pub async fn run_event(
        &self,
        redis: &mut Redis,
        event: &str,
    ) -> redis::RedisResult<Option<Admitted>> {
        let raw: Option<String> = redis.get(keys::cfg(event)).await?;
        let Some(cfg) = raw.and_then(|r| serde_json::from_str::<LiveSettings>(&r).ok()) else {
            return Ok(None);
        };
        if !lease::take(redis, event, &self.worker_id, self.lease_ttl_ms).await? {
            return Ok(None);
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
        queue::admit(redis, &tick).await.map(Some)
    }
}
