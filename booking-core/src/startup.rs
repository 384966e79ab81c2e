//! Building and running booking-core: pools, migrations, background tasks, the router.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use marquee_platform::Settings;
use marquee_platform::metrics::HttpMetrics;
use marquee_platform::shutdown::Shutdown;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::TcpListener;

use crate::admission::Verifier;
use crate::holds::ReserveGate;
use crate::seatmap::SeatMaps;
use crate::state::{App, AppState};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

pub struct Application {
    port: u16,
    listener: TcpListener,
    state: AppState,
    shutdown: Shutdown,
}

impl Application {
    /// Connect, migrate (when configured), bind. The port is known before serving, so tests
    /// can bind port 0.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Shutdown::new().on_signal()).await
    }

    pub async fn build_with(settings: Settings, shutdown: Shutdown) -> anyhow::Result<Self> {
        let db = pool(
            &settings,
            settings.database.url.expose(),
            settings.database.max_connections,
        )
        .await
        .context("connecting to the database")?;
        if settings.database.migrate_on_start {
            MIGRATOR.run(&db).await.context("running migrations")?;
        }
        let read_db = if settings.database.read_url.is_empty() {
            db.clone()
        } else {
            pool(
                &settings,
                settings.database.read_url.expose(),
                settings.database.read_max_connections,
            )
            .await
            .context("connecting to the read replica")?
        };
        let seatmap_db = seatmap_pool(&settings)?;
        let redis = marquee_waitroom::connect::from_settings(&settings.redis)
            .await
            .context("connecting to Redis")?;
        let verifier = Verifier::from_settings(&settings).context("loading admission keys")?;
        let ticket_keys = marquee_waitroom::Keyring::load_dir(
            &settings.booking.ticket_keys_dir,
            settings.admission.generate_if_missing,
        )
        .context("loading ticket signing keys")?;
        let pii = marquee_platform::pii::Pii::from_settings(&settings.pii)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // Emails written in clear before they were sealed are sealed now (instant when none).
        crate::pii_sweep::run(&db, &pii, false)
            .await
            .context("sealing emails still in clear")?;
        let stripe = crate::payments::stripe::StripeGateway::from_settings(&settings)
            .context("configuring the Stripe client")?;
        let listener = marquee_platform::http::listen(settings.booking.listen)
            .await
            .with_context(|| format!("binding {}", settings.booking.listen))?;
        let port = listener.local_addr()?.port();
        let metrics = Arc::new(HttpMetrics::new("booking_core"));
        metrics.registry.register(Box::new(redis.up_gauge()))?;
        let seatmaps = Arc::new(SeatMaps::new(
            seatmap_db,
            Duration::from_millis(settings.booking.seatmap_cache_ttl_ms),
            &metrics.registry,
        ));
        let searches = crate::catalog::Searches::new(
            Duration::from_millis(settings.booking.catalog_cache_ttl_ms),
            Duration::from_millis(settings.booking.catalog_listing_ttl_ms),
            &metrics.registry,
        );
        let lane = Arc::new(crate::lane::Lane::new(db.clone()));
        let hold_batches = crate::holds::HoldBatches::new(
            lane.clone(),
            settings.booking.hold_batch_max,
            settings.booking.hold_batches_per_show,
            &metrics.registry,
        );
        let state = AppState(Arc::new(App {
            reserve_gate: ReserveGate::new(
                redis.clone(),
                settings.booking.reserve_attempts_per_minute,
            ),
            operator_tokens: settings.operator.token_list(),
            settings,
            lane,
            hold_batches,
            db,
            read_db,
            redis,
            seatmaps,
            searches,
            verifier,
            ticket_keys,
            pii,
            metrics,
            stripe,
            shows: Default::default(),
            recent_holds: Default::default(),
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
        let background = crate::sweeper::spawn(self.state.clone(), self.shutdown.clone());
        let router = crate::routes::router(self.state.clone());
        marquee_platform::shutdown::serve(self.listener, router, self.shutdown.clone(), drain)
            .await?;
        self.shutdown.trigger();
        let _ = tokio::time::timeout(drain, background).await;
        tracing::info!("booking-core stopped");
        Ok(())
    }
}

/// How long a pooled connection may sit idle before it is checked on its next use.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

async fn pool(settings: &Settings, url: &str, max: u32) -> Result<PgPool, sqlx::Error> {
    pool_options(settings, max)
        .connect_with(
            url.parse::<PgConnectOptions>()?
                .options(settings.database.session_parameters()),
        )
        .await
}

/// The seat maps' connections: to the replica when there is one, each planning its statements
/// once (`DatabaseSettings::generic_plan_parameters`), opened as maps are read (the first
/// checks the URL, which is one the other pools have connected to).
fn seatmap_pool(settings: &Settings) -> Result<PgPool, sqlx::Error> {
    let db = &settings.database;
    let url = if db.read_url.is_empty() {
        &db.url
    } else {
        &db.read_url
    };
    Ok(
        pool_options(settings, db.seatmap_max_connections).connect_lazy_with(
            url.expose()
                .parse::<PgConnectOptions>()?
                .options(db.generic_plan_parameters()),
        ),
    )
}

fn pool_options(settings: &Settings, max: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_millis(settings.database.acquire_timeout_ms))
        .max_lifetime(settings.database.connection_lifetime())
        // A connection in steady use is not pinged before each use (by default every acquire
        // costs a round trip, as many as the statement itself); one idle for a while is, and
        // every one for a few seconds after a connection failed (`crate::outage`).
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING || crate::outage::suspect() {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seat map's statement, on the seat maps' connections, is planned once and prunes the
    /// partitions as it runs (`Subplans Removed`): not planned again on every execution.
    #[tokio::test]
    async fn seat_maps_are_planned_once_and_pruned_as_they_run() {
        let env = marquee_testkit::TestEnv::new().await;
        let settings = env.settings();
        MIGRATOR
            .run(
                &pool(&settings, settings.database.url.expose(), 1)
                    .await
                    .unwrap(),
            )
            .await
            .unwrap();
        let mut conn = seatmap_pool(&settings).unwrap().acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(mode, "force_generic_plan");
        sqlx::raw_sql("PREPARE map(text) AS SELECT seat_id FROM seats WHERE show_id = $1")
            .execute(&mut *conn)
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query_scalar("EXPLAIN EXECUTE map('s_1')")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        assert!(
            plan.iter()
                .any(|line| line.contains("Subplans Removed: 15")),
            "{plan:#?}"
        );
    }
}
