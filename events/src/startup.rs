//! Building and running the events service: brokers (or the embedded mock cluster), the relay,
//! the notifier, and a small server for health and metrics.

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
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::TcpListener;

use crate::kafka::{self, Brokers};
use crate::mail::Mailer;
use crate::metrics::EventMetrics;
use crate::notifier::Notifier;
use crate::relay::Relay;

pub struct Application {
    port: u16,
    listener: TcpListener,
    settings: Settings,
    db: PgPool,
    brokers: Brokers,
    shutdown: Shutdown,
    /// The first retry of a failed email waits this long (tests shorten it).
    pub mail_backoff: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Shutdown::new().on_signal()).await
    }

    pub async fn build_with(settings: Settings, shutdown: Shutdown) -> anyhow::Result<Self> {
        let db = PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_millis(settings.database.acquire_timeout_ms))
            .max_lifetime(settings.database.connection_lifetime())
            .connect_with(
                settings
                    .database
                    .url
                    .expose()
                    .parse::<PgConnectOptions>()?
                    .options(settings.database.session_parameters()),
            )
            .await
            .context("connecting to the database")?;
        let brokers = Brokers::from_settings(&settings).context("reaching Kafka")?;
        let listener = marquee_platform::http::listen(settings.events.listen)
            .await
            .with_context(|| format!("binding {}", settings.events.listen))?;
        Ok(Self {
            port: listener.local_addr()?.port(),
            listener,
            settings,
            db,
            brokers,
            shutdown,
            mail_backoff: Duration::from_millis(500),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn bootstrap(&self) -> &str {
        &self.brokers.bootstrap
    }

    /// Take the embedded brokers down or bring them back (failure tests).
    pub fn mock_kafka(&self) -> Option<kafka::MockKafka> {
        self.brokers.mock.clone()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let http = Arc::new(HttpMetrics::new("events"));
        let metrics = Arc::new(EventMetrics::new(&http.registry));
        let s = &self.settings;
        let relay = Relay {
            db: self.db.clone(),
            producer: kafka::producer(&self.brokers.bootstrap, s.kafka.message_timeout_ms)?,
            topic: s.kafka.topic.clone(),
            batch: s.events.batch,
            poll: Duration::from_millis(s.events.poll_interval_ms),
            metrics: metrics.clone(),
        };
        let notifier = Notifier {
            db: self.db.clone(),
            consumer: kafka::consumer(
                &self.brokers.bootstrap,
                &s.kafka.consumer_group,
                &s.kafka.topic,
            )?,
            producer: kafka::producer(&self.brokers.bootstrap, s.kafka.message_timeout_ms)?,
            dead_letter_topic: s.kafka.dead_letter_topic.clone(),
            mailer: Mailer::from_settings(s)?,
            letterhead: crate::mail::Letterhead {
                from: s.mail.from.clone(),
                ticket_base_url: s.mail.ticket_base_url.clone(),
                pii: Some(
                    marquee_platform::pii::Pii::from_settings(&s.pii)
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                ),
            },
            max_attempts: s.kafka.max_attempts.max(1),
            backoff: self.mail_backoff,
            metrics,
        };
        let relaying = tokio::spawn(relay.run(self.shutdown.clone()));
        let notifying = tokio::spawn(notifier.run(self.shutdown.clone()));
        let routes = Router::new()
            .route("/readyz", get(readyz))
            .with_state(self.db.clone());
        let router = marquee_platform::http::common_layers(routes, http);
        let drain = Duration::from_secs(s.shutdown.drain_timeout_s);
        marquee_platform::shutdown::serve(self.listener, router, self.shutdown.clone(), drain)
            .await?;
        self.shutdown.trigger();
        let _ = relaying.await;
        let _ = notifying.await;
        drop(self.brokers);
        tracing::info!("marquee-events stopped");
        Ok(())
    }
}

async fn readyz(State(db): State<PgPool>) -> Response {
    let err = sqlx::query("SELECT 1")
        .execute(&db)
        .await
        .err()
        .map(|e| e.to_string());
    marquee_platform::http::readiness(vec![("postgres", err)])
}
