//! Building and running the gateway.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use marquee_platform::Settings;
use marquee_platform::http::IpRange;
use marquee_platform::metrics::HttpMetrics;
use marquee_platform::shutdown::Shutdown;
use marquee_waitroom::live_keys::LiveKeyring;
use tokio::net::TcpListener;

use crate::limits::ClientLimiter;
use crate::proxy::Upstream;
use crate::state::{App, AppState};

pub struct Application {
    port: u16,
    listener: TcpListener,
    state: AppState,
    shutdown: Shutdown,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Shutdown::new().on_signal()).await
    }

    pub async fn build_with(settings: Settings, shutdown: Shutdown) -> anyhow::Result<Self> {
        let keys = Arc::new(
            LiveKeyring::load(
                settings.admission.keys_dir.clone(),
                settings.admission.generate_if_missing,
            )
            .context("loading admission signing keys")?,
        );
        let redis = marquee_waitroom::connect::from_settings(&settings.redis)
            .await
            .context("connecting to Redis")?;
        let upstream = Upstream::new(
            &settings.gateway.booking_url,
            Duration::from_millis(settings.gateway.upstream_timeout_ms),
        )?;
        let metrics = HttpMetrics::new("queue_gateway");
        metrics.registry.register(Box::new(redis.up_gauge()))?;
        // With the system's allocator (a heap profile's build) jemalloc holds nothing to report.
        #[cfg(not(feature = "system-alloc"))]
        metrics
            .registry
            .register(Box::new(crate::allocator::AllocatorStats::new()?))?;
        let listener = marquee_platform::http::listen(settings.gateway.listen)
            .await
            .with_context(|| format!("binding {}", settings.gateway.listen))?;
        let port = listener.local_addr()?.port();
        let trusted = settings
            .gateway
            .trusted_proxies
            .iter()
            .filter_map(|p| IpRange::parse(p))
            .collect();
        let joins =
            crate::queue::joins::Joins::new(settings.gateway.join_batch_max, &metrics.registry);
        let catalog = crate::catalog_cache::CatalogCache::new(
            settings.gateway.catalog_cache_bytes,
            &metrics.registry,
        );
        let state = AppState(Arc::new(App {
            catalog,
            limiter: ClientLimiter::new(
                settings.gateway.per_ip_per_second,
                settings.gateway.per_ip_burst,
            ),
            // Five lookups a minute per client address: a fan retyping an address is fine, a
            // script probing addresses is not (booking-core also caps each address an hour).
            lookup_limiter: ClientLimiter::per_minute(5, 5),
            keys,
            redis: redis.clone(),
            upstream,
            trusted,
            metrics: Arc::new(metrics),
            show_events: Default::default(),
            events: crate::event_views::EventViews::new(redis.clone()),
            presence: Default::default(),
            joins,
            queue_signer: marquee_waitroom::queue_token::QueueSigner::rotating(
                settings.admission.queue_token_secret.expose(),
                settings.admission.queue_token_secret_previous.expose(),
            ),
            assets: {
                crate::i18n::check();
                crate::assets::Assets::load()
            },
            settings,
        }));
        Ok(Self {
            port,
            listener,
            state,
            shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let drain = Duration::from_secs(self.state.settings.shutdown.drain_timeout_s);
        let tidy = {
            let state = self.state.clone();
            let stop = self.shutdown.clone();
            tokio::spawn(async move {
                let mut refresh = tokio::time::interval(Duration::from_millis(
                    state.settings.gateway.view_refresh_ms,
                ));
                let mut flush = tokio::time::interval(Duration::from_secs(1));
                let mut tidy = tokio::time::interval(Duration::from_secs(60));
                for t in [&mut refresh, &mut flush, &mut tidy] {
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
                loop {
                    tokio::select! {
                        _ = refresh.tick() => state.events.refresh_all().await,
                        _ = flush.tick() => {
                            if let Err(e) = state.presence.flush(&state.redis).await {
                                tracing::warn!(error = %e, "presence flush failed; will retry");
                            }
                        }
                        _ = tidy.tick() => {
                            state.limiter.tidy();
                            state.lookup_limiter.tidy();
                            state.show_events.tidy(crate::state::ShowEvents::IDLE);
                        }
                        () = stop.wait() => {
                            let _ = state.presence.flush(&state.redis).await;
                            return;
                        }
                    }
                }
            })
        };
        // Keys added or retired in the folder are in force within `keys_reload_s`.
        let follow = tokio::spawn(self.state.keys.clone().follow(
            Duration::from_secs(self.state.settings.admission.keys_reload_s),
            {
                let stop = self.shutdown.clone();
                async move { stop.wait().await }
            },
        ));
        let service = crate::routes::service(self.state.clone());
        marquee_platform::shutdown::serve_with(
            self.listener,
            service,
            self.shutdown.clone(),
            drain,
            Duration::from_millis(self.state.settings.gateway.header_read_timeout_ms),
        )
        .await?;
        self.shutdown.trigger();
        let _ = tidy.await;
        let _ = follow.await;
        tracing::info!("queue-gateway stopped");
        Ok(())
    }
}
