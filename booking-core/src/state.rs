//! The shared application state every handler reaches.

use std::sync::Arc;

use marquee_platform::Settings;
use marquee_platform::metrics::HttpMetrics;
use sqlx::PgPool;

use crate::admission::Verifier;
use crate::holds::ReserveGate;
use crate::seatmap::SeatMaps;

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
    /// The primary: every write and every read that must see it.
    pub db: PgPool,
    /// Connections of `db` kept between holds and releases (see `lane`).
    pub lane: Arc<crate::lane::Lane>,
    /// Named-seat holds, batched per show (`holds::batch`), on `lane`.
    pub hold_batches: crate::holds::HoldBatches,
    /// Catalog and seat-map reads (a replica when configured, else the primary).
    pub read_db: PgPool,
    pub redis: marquee_waitroom::connect::Redis,
    pub seatmaps: Arc<SeatMaps>,
    /// Catalog searches answered lately (`crate::catalog::Searches`).
    pub searches: crate::catalog::Searches,
    pub verifier: Verifier,
    /// Seals fans' emails and hashes them for lookups (`marquee_platform::pii`).
    pub pii: marquee_platform::pii::Pii,
    /// The keys that sign tickets' QR codes (`crate::tickets`).
    pub ticket_keys: marquee_waitroom::Keyring,
    /// Before every hold: the visitor's slot under the cap and its allowance of attempts.
    pub reserve_gate: ReserveGate,
    pub metrics: Arc<HttpMetrics>,
    pub operator_tokens: Vec<String>,
    pub stripe: crate::payments::stripe::StripeGateway,
    pub shows: crate::holds::ShowInfos,
    pub recent_holds: crate::holds::RecentHolds,
}
