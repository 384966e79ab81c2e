//! Building and running the worker: the tick loop plus a small server for health and metrics.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use marquee_platform::Settings;
use marquee_platform::metrics::HttpMetrics;
use marquee_platform::shutdown::Shutdown;
use tokio::net::TcpListener;

use crate::metrics::WorkerMetrics;
use crate::tick::Ticker;

pub struct Application {
    port: u16,
    listener: TcpListener,
    settings: Settings,
    redis: marquee_waitroom::connect::Redis,
    shutdown: Shutdown,
    pub worker_id: String,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Shutdown::new().on_signal()).await
    }

    pub async fn build_with(settings: Settings, shutdown: Shutdown) -> anyhow::Result<Self> {
        let redis = marquee_waitroom::connect::from_settings(&settings.redis)
            .await
            .context("connecting to Redis")?;
        let listener = marquee_platform::http::listen(settings.worker.listen)
            .await
            .with_context(|| format!("binding {}", settings.worker.listen))?;
        Ok(Self {
            port: listener.local_addr()?.port(),
            listener,
            worker_id: worker_id(&settings.worker.id),
            settings,
            redis,
            shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let http = Arc::new(HttpMetrics::new("admission_worker"));
        http.registry.register(Box::new(self.redis.up_gauge()))?;
        let metrics = WorkerMetrics::new(&http.registry);
        let ticker = Ticker {
            worker_id: self.worker_id.clone(),
            lease_ttl_ms: self.settings.worker.lease_ttl_ms,
            max_elapsed_ms: marquee_waitroom::queue::max_elapsed_ms(self.settings.worker.tick_ms),
            history_interval_ms: self.settings.worker.history_interval_ms,
            events_key: self.settings.redis.events_key.clone(),
        };
        let mut redis = self.redis.clone();
        let stop = self.shutdown.clone();
        let every = Duration::from_millis(self.settings.worker.tick_ms);
        let worker_id = self.worker_id.clone();
        let events_key = self.settings.redis.events_key.clone();
        let ticking = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => ticker.run_all(&mut redis, &metrics).await,
                    () = stop.wait() => break,
                }
            }
            release_leases(&mut redis, &events_key, &worker_id).await;
        });
        let routes = Router::new()
            .route("/readyz", get(readyz))
            .with_state(self.redis.clone());
        let router = marquee_platform::http::common_layers(routes, http);
        let drain = Duration::from_secs(self.settings.shutdown.drain_timeout_s);
        marquee_platform::shutdown::serve(self.listener, router, self.shutdown.clone(), drain)
            .await?;
        self.shutdown.trigger();
        let _ = ticking.await;
        tracing::info!("admission-worker stopped");
        Ok(())
    }
}

/// Hand leases back on a clean stop so another replica takes over at once.
async fn release_leases(
    redis: &mut marquee_waitroom::connect::Redis,
    events_key: &str,
    worker_id: &str,
) {
    use redis::AsyncCommands;
    let events: Vec<String> = redis.smembers(events_key).await.unwrap_or_default();
    for event in events {
        let _ = marquee_waitroom::lease::give_back(redis, &event, worker_id).await;
    }
}

async fn readyz(State(redis): State<marquee_waitroom::connect::Redis>) -> Response {
    let mut redis = redis;
    let err = redis::cmd("PING")
        .query_async::<String>(&mut redis)
        .await
        .err()
        .map(|e| e.to_string());
    marquee_platform::http::readiness(vec![("redis", err)])
}

/// This replica's name in its leases: `[worker] id` with a random suffix, or a random name.
fn worker_id(name: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    if name.is_empty() {
        random
    } else {
        format!("{name}-{}", &random[..8])
    }
}
