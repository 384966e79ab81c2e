//! Configuration: `config/base.toml`, then `config/{environment}.toml`, then `MARQUEE_…`
//! environment variables (`[kafka] brokers` → `MARQUEE_KAFKA__BROKERS`). Every section is
//! read and checked before any service binds a port, and every problem found is reported at
//! once rather than one per restart.
//!
//! Over 400 lines with its tests (about 520 without): every section's settings and their
//! checks, so every configurable value and its default is found in one file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Secret;

/// Everything a Marquee process can be configured with. Each binary reads the whole file set
/// so one `config/` folder and one set of variables serve the three services.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Which `config/{environment}.toml` was layered over the base (`local`, `test`, `production`).
    pub environment: String,
    pub log: LogSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub gateway: GatewaySettings,
    pub booking: BookingSettings,
    pub worker: WorkerSettings,
    pub admission: AdmissionSettings,
    pub operator: OperatorSettings,
    pub kafka: KafkaSettings,
    pub events: EventsSettings,
    pub mail: MailSettings,
    pub stripe: StripeSettings,
    pub shutdown: ShutdownSettings,
    pub memory: crate::memory::MemorySettings,
    pub pii: crate::pii::PiiSettings,
    pub telemetry: crate::telemetry::TelemetrySettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogSettings {
    /// `pretty` for people at a terminal, `json` for log shippers.
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive; `RUST_LOG` wins when set.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseSettings {
    /// The primary: every write and every read that must see the latest write.
    pub url: Secret,
    /// A replica for catalog and seat-map reads; empty means the primary.
    #[serde(default)]
    pub read_url: Secret,
    pub max_connections: u32,
    pub read_max_connections: u32,
    /// Connections for loading seat maps (from `read_url`, else the primary), opened as
    /// needed. Each plans its statements once, generically
    /// ([`DatabaseSettings::generic_plan_parameters`]).
    pub seatmap_max_connections: u32,
    /// How long a request waits for a pooled connection (a new one's connect included)
    /// before answering 503.
    pub acquire_timeout_ms: u64,
    /// Postgres's `statement_timeout` on every connection: a statement running longer is
    /// cancelled by the server. A link that hangs is cut sooner, by the request timeout of
    /// the service (`[booking] request_timeout_ms`).
    pub statement_timeout_ms: u64,
    /// How long a pooled connection serves before it is closed on its next return and
    /// replaced (0: for as long as it works). See [`DatabaseSettings::connection_lifetime`].
    pub connection_lifetime_s: u64,
    /// Apply pending migrations at start-up (demo and tests; production runs them as a job).
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisSettings {
    /// One node (`redis://host:6379/`, `rediss://` for TLS), or with `cluster` one or more
    /// comma-separated seed nodes of a Redis Cluster (the rest are discovered).
    pub url: Secret,
    /// Connect to a Redis Cluster rather than one node.
    #[serde(default)]
    pub cluster: bool,
    /// PEM certificates to trust for Redis over TLS instead of the web's roots (a private CA);
    /// empty for none.
    #[serde(default)]
    pub ca_file: PathBuf,
    /// The set listing every event with a waiting room. Tests give each run its own.
    pub events_key: String,
    /// Connecting (and reconnecting) gives up after this long.
    pub connect_timeout_ms: u64,
    /// A command without an answer after this long fails (`503` where a request needed it).
    pub response_timeout_ms: u64,
}

impl DatabaseSettings {
    /// Run-time parameters every connection sets as it starts (Postgres's `options`): the
    /// statement timeout, and no JIT compilation. Postgres JIT-compiles any statement whose
    /// estimated cost passes `jit_above_cost` (100,000 by default), and the estimate of a
    /// statement over a show's seats passes it once there are a few thousand seats: the seat
    /// figures published every second then spent 0.6–2 s compiling (measured with `EXPLAIN
    /// ANALYZE` after the soak's hour: "JIT … Total 599.587 ms" for a 683 ms statement that
    /// reads a few thousand rows). Nothing here runs long enough to win back a compile.
    pub fn session_parameters(&self) -> Vec<(&'static str, String)> {
        vec![
            ("statement_timeout", self.statement_timeout_ms.to_string()),
            ("jit", "off".to_owned()),
        ]
    }

    /// A pooled connection's lifetime, for the pool's `max_lifetime`. A connection keeps what
    /// it has met: a prepared statement per distinct statement, up to sqlx's cache of 100
    /// (1.8 KiB each plus its text, measured with a counting allocator: 2.9 KiB for a
    /// 1,200-character statement, so up to ~250 KiB a connection), and booking-core's hot
    /// statements come in a variant per partition, met as new shows land in new partitions:
    /// over a connection's life (sqlx's default, 30 minutes) that climbs. It is the suspect
    /// in booking-core's heap rising through the soak (BENCHMARKS.md: +1.3 % per 10 minutes
    /// in the fifth hour, +0.3 % in the sixth, with this lifetime). Replaced every few
    /// minutes, one at a time as their ages differ, what the pool keeps settles within one
    /// lifetime, as does what each Postgres backend caches. The cost is a connect and the
    /// statements prepared again, once every `lifetime / max_connections` on average.
    pub fn connection_lifetime(&self) -> Option<Duration> {
        (self.connection_lifetime_s > 0).then(|| Duration::from_secs(self.connection_lifetime_s))
    }

    /// The parameters of [`DatabaseSettings::session_parameters`], and every statement planned
    /// once, generically, its partitions pruned as it starts rather than by the planner
    /// (`plan_cache_mode = force_generic_plan`). For the seat maps' connections: a map reads one
    /// show's seats through the partitioned parent, `seats`, whose plans Postgres otherwise makes
    /// afresh on every execution (a custom plan prunes the partitions it will not read; a generic
    /// one looks sixteen times dearer to the planner, which never picks it). On the catalog at
    /// the design's scale planning was 0.27–0.44 ms of a map nobody had opened, the statement's
    /// run 0.18 ms (`EXPLAIN ANALYZE`); with a generic plan pgbench reads 35–50 % more maps a
    /// second (BENCHMARKS.md, "Seat maps planned once").
    pub fn generic_plan_parameters(&self) -> Vec<(&'static str, String)> {
        let mut parameters = self.session_parameters();
        parameters.push(("plan_cache_mode", "force_generic_plan".to_owned()));
        parameters
    }
}

impl RedisSettings {
    /// `ca_file`, when one is set.
    pub fn ca_file(&self) -> Option<&Path> {
        Some(self.ca_file.as_path()).filter(|p| !p.as_os_str().is_empty())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewaySettings {
    pub listen: SocketAddr,
    /// Where booking-core listens; the gateway proxies booking and admin routes there.
    pub booking_url: String,
    /// Peers whose `X-Forwarded-For` is believed (CIDRs or addresses).
    pub trusted_proxies: Vec<String>,
    /// In-flight requests before load shedding answers 503.
    pub concurrency_limit: usize,
    /// A request without response headers after this long is answered `503` with
    /// `Retry-After` (server-sent-event streams count only until their headers).
    pub request_timeout_ms: u64,
    /// A client must send a request's headers within this long, else its connection is closed
    /// (a slowloris client holds a connection no longer; it never holds a request's place).
    pub header_read_timeout_ms: u64,
    /// booking-core must send its response headers within this long, else `503`; shorter
    /// than `request_timeout_ms`, longer than booking-core's own `request_timeout_ms`.
    pub upstream_timeout_ms: u64,
    pub body_limit_bytes: usize,
    /// Sustained requests per second per client address, and the burst above it.
    pub per_ip_per_second: u32,
    pub per_ip_burst: u32,
    /// Open server-sent-event streams at once; they are exempt from the request timeout.
    pub max_event_streams: usize,
    /// Mark cookies `Secure` (production, behind TLS).
    pub secure_cookies: bool,
    /// How often each event's settings and admission watermark are re-read from Redis.
    pub view_refresh_ms: u64,
    /// New visitors' joins of one event that arrive while its last ones are at Redis go in
    /// one call of the join script, at most this many (1: each alone). Nothing waits for a
    /// batch to fill.
    #[serde(default = "default_join_batch_max")]
    pub join_batch_max: usize,
    /// Catalog searches' answers kept at the gateway for what is left of booking-core's own
    /// lifetime for them, up to this many bytes in all (0: none kept).
    #[serde(default = "default_catalog_cache_bytes")]
    pub catalog_cache_bytes: usize,
}

fn default_join_batch_max() -> usize {
    128
}

fn default_catalog_cache_bytes() -> usize {
    64 * 1024 * 1024
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookingSettings {
    pub listen: SocketAddr,
    /// A request without response headers after this long is answered `503` with
    /// `Retry-After` (its transaction, if any, rolled back): a hung database link or a slow
    /// statement never holds a fan past it.
    pub request_timeout_ms: u64,
    /// How long a seat-map snapshot is served before the database is asked again.
    pub seatmap_cache_ttl_ms: u64,
    /// How long a catalog search's answer is served before the database is asked again (a
    /// show created or cancelled through this replica clears them at once).
    pub catalog_cache_ttl_ms: u64,
    /// How long the listing of every upcoming show (what searches naming a city are answered
    /// from) is used before the catalog's revision is checked, and the listing read again if
    /// it moved, in the background: a show created or cancelled through another replica is in
    /// this replica's answers within this (through this replica, at once).
    pub catalog_listing_ttl_ms: u64,
    /// How often the sweeper looks for lapsed holds.
    pub sweep_interval_ms: u64,
    /// A partition of `seats` or `bookings` changed by at least this many rows (and a fifth of
    /// its size) since Postgres last analyzed it is analyzed again, checked every 2 s
    /// (booking-core's `statistics`); 0 leaves it all to autovacuum.
    pub analyze_after_changes: i64,
    pub sweep_batch: i64,
    pub max_seats_per_booking: u32,
    /// Named-seat holds of one show that arrive while its last batch is at the database go
    /// in one transaction, at most this many (1: each alone). Nothing waits for a batch to
    /// fill.
    #[serde(default = "default_hold_batch_max")]
    pub hold_batch_max: usize,
    /// A show's batches of holds (and of releases) at the database at once. One does best on
    /// two cores (`loadtest/hold-cost.sh`: more at once cost Postgres more per hold).
    #[serde(default = "default_hold_batches_per_show")]
    pub hold_batches_per_show: usize,
    /// The most of its time one Postgres connection spends counting the live events' seat
    /// figures (`seat_figures`): each pass is published every second while it takes at most
    /// this share of the second, and less often once it takes longer (a pass counts only the
    /// events whose seats may have moved, but the first counts all: at 350,000 shows 9–12 s,
    /// which back to back kept one of two cores busy for good).
    #[serde(default = "default_seat_figures_max_share")]
    pub seat_figures_max_share: f64,
    /// Reserve attempts a visitor may make a minute, counted across every booking-core
    /// replica (in Redis; each replica's own count if Redis does not answer).
    pub reserve_attempts_per_minute: u32,
    /// How long idempotency keys are kept.
    pub idempotency_ttl_s: u64,
    /// Where booking-core fetches the admission keys when it has no key files of its own.
    #[serde(default)]
    pub jwks_url: String,
    /// The ticket signing keys (`{kid}.pem`, Ed25519; the newest signs, all verify): a key of
    /// their own, not an admission key, since tickets outlive a sale's key rotations. Made
    /// when missing under the same rule as the admission keys (`generate_if_missing`).
    pub ticket_keys_dir: PathBuf,
}

fn default_hold_batch_max() -> usize {
    64
}

fn default_hold_batches_per_show() -> usize {
    1
}

fn default_seat_figures_max_share() -> f64 {
    0.2
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSettings {
    /// Where the admission worker serves `/healthz`, `/readyz` and `/metrics`.
    pub listen: SocketAddr,
    pub tick_ms: u64,
    /// How long a worker's per-event lease lasts without renewal.
    pub lease_ttl_ms: u64,
    /// This replica's name in the leases it holds (the pod's name, say), followed by a random
    /// suffix so two replicas never share one; empty: a random name.
    #[serde(default)]
    pub id: String,
    /// How often the admitting worker records a point of each event's history (the console's
    /// charts; an hour is kept).
    #[serde(default = "history_interval_ms")]
    pub history_interval_ms: u64,
}

fn keys_reload_s() -> u64 {
    5
}

fn history_interval_ms() -> u64 {
    10_000
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdmissionSettings {
    /// A folder of PEM private keys named `{kid}.pem`; the newest signs, all verify.
    pub keys_dir: PathBuf,
    /// Generate a key into `keys_dir` when it holds none (demo and tests only).
    pub generate_if_missing: bool,
    pub issuer: String,
    /// Secret that signs queue tokens (HMAC); shared by every gateway.
    pub queue_token_secret: Secret,
    /// The secret before the last rotation: tokens it signed still verify (empty: none). To
    /// rotate: move the current secret here and set a new one on every gateway; clear this no
    /// sooner than the longest wait plus `session_ttl_s` later.
    #[serde(default)]
    pub queue_token_secret_previous: Secret,
    /// Every process re-reads `keys_dir` this often (seconds), so an added or retired key is
    /// in force everywhere within it without a restart; a token naming a kid not yet known
    /// makes a process read the folder at once.
    #[serde(default = "keys_reload_s")]
    pub keys_reload_s: u64,
    /// Key of the access codes' keyed hashes (HMAC-SHA-256): booking-core stores a batch's
    /// codes only as these, the gateways redeem by them; at least 32 characters.
    pub access_code_key: Secret,
    /// Wrong access codes allowed a minute from one client address, and on one event from
    /// everyone together; past either, code joins are refused with `429` until the minute
    /// is out (a guesser gains nothing by making more visitors).
    pub access_code_fails_per_client: u32,
    pub access_code_fails_per_event: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperatorSettings {
    /// Comma-separated bearer tokens accepted on the admin API as admins named `config-1`,
    /// `config-2`, … (besides the named operators in Postgres); may be empty.
    pub tokens: Secret,
}

impl OperatorSettings {
    pub fn token_list(&self) -> Vec<String> {
        self.tokens
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KafkaSettings {
    /// Bootstrap servers; empty means the embedded mock cluster.
    #[serde(default)]
    pub brokers: String,
    pub topic: String,
    /// Where the process owning the embedded mock cluster writes its bootstrap address.
    pub bootstrap_file: PathBuf,
    /// Notifications that failed every attempt go here.
    pub dead_letter_topic: String,
    pub consumer_group: String,
    /// Attempts at sending one email before it is dead-lettered.
    pub max_attempts: u32,
    /// A published message not acknowledged by the brokers within this long fails, and the
    /// relay sends it again on its next pass (`message.timeout.ms`).
    pub message_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventsSettings {
    /// Where the events service serves `/healthz`, `/readyz` and `/metrics`.
    pub listen: SocketAddr,
    /// How often the relay looks at the outbox when no notification wakes it.
    pub poll_interval_ms: u64,
    pub batch: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailSettings {
    /// `file` (writes .eml files to `dir`) or `smtp` (sends through `smtp_url`).
    pub transport: String,
    pub dir: PathBuf,
    /// `smtps://user:pass@host` (TLS), `smtp://user:pass@host:587?tls=required` (STARTTLS)
    /// or `smtp://host:25` (no TLS: a local relay only); credentials percent-encoded. A
    /// secret, never printed.
    pub smtp_url: Secret,
    /// PEM certificates to trust for the SMTP server besides the web's roots (a relay with a
    /// private CA); empty for none.
    #[serde(default)]
    pub smtp_ca_file: PathBuf,
    pub from: String,
    /// The gateway's public address: ticket emails link to its `/t/{reservation_id}` page.
    pub ticket_base_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StripeSettings {
    pub secret_key: Secret,
    pub webhook_secret: Secret,
    pub publishable_key: String,
    /// Stripe's API, or the simulator's address in the demo.
    pub api_base: String,
    /// Each call to Stripe gives up after this long.
    pub request_timeout_ms: u64,
    /// Consecutive failures that open the circuit breaker, and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_open_s: u64,
    /// A payment started before a hold lapsed may still finish this long after it.
    pub payment_grace_s: i64,
    /// Open payment attempts older than this are re-read from Stripe by reconciliation.
    pub reconcile_after_s: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShutdownSettings {
    /// After SIGTERM, how long in-flight requests may finish before the process exits.
    pub drain_timeout_s: u64,
}

/// The sections whose rules are checked, each present when it parsed.
struct Partial {
    database: Option<DatabaseSettings>,
    redis: Option<RedisSettings>,
    gateway: Option<GatewaySettings>,
    booking: Option<BookingSettings>,
    worker: Option<WorkerSettings>,
    admission: Option<AdmissionSettings>,
    operator: Option<OperatorSettings>,
    kafka: Option<KafkaSettings>,
}

impl Partial {
    /// Rules that span fields or that serde cannot express, on every section that parsed.
    fn check(&self, environment: &str, errors: &mut Vec<String>) {
        let mut need = |ok: bool, msg: &str| {
            if !ok {
                errors.push(msg.to_owned());
            }
        };
        let production = environment == "production";
        if let Some(db) = &self.database {
            need(
                db.url.expose().starts_with("postgres"),
                "[database] url must be a postgres:// URL",
            );
            need(
                db.read_url.is_empty() || db.read_url.expose().starts_with("postgres"),
                "[database] read_url must be empty or a postgres:// URL",
            );
            need(
                db.max_connections > 0,
                "[database] max_connections must be at least 1",
            );
            need(
                db.read_max_connections > 0 && db.seatmap_max_connections > 0,
                "[database] read_max_connections and seatmap_max_connections must be at least 1",
            );
        }
        if let Some(redis) = &self.redis {
            need(
                redis
                    .url
                    .expose()
                    .split(',')
                    .all(|u| u.trim().starts_with("redis://") || u.trim().starts_with("rediss://")),
                "[redis] url must be a redis:// or rediss:// (TLS) URL (several, comma-separated, for a cluster)",
            );
            need(
                redis.ca_file.as_os_str().is_empty()
                    || redis
                        .url
                        .expose()
                        .split(',')
                        .all(|u| u.trim().starts_with("rediss://")),
                "[redis] ca_file is set but url is not rediss:// (TLS)",
            );
        }
        if let Some(gw) = &self.gateway {
            need(
                gw.booking_url.starts_with("http://") || gw.booking_url.starts_with("https://"),
                "[gateway] booking_url must be an http(s) URL",
            );
            need(
                gw.concurrency_limit > 0,
                "[gateway] concurrency_limit must be at least 1",
            );
            need(
                (1..=1024).contains(&gw.join_batch_max),
                "[gateway] join_batch_max must be between 1 and 1024",
            );
            need(
                gw.per_ip_per_second > 0 && gw.per_ip_burst > 0,
                "[gateway] per_ip_per_second and per_ip_burst must be at least 1",
            );
            for p in &gw.trusted_proxies {
                need(
                    crate::http::IpRange::parse(p).is_some(),
                    &format!("[gateway] trusted_proxies: `{p}` is not an address or CIDR"),
                );
            }
            need(
                !production || gw.secure_cookies,
                "[gateway] secure_cookies must be true in production",
            );
            need(
                gw.upstream_timeout_ms > 0 && gw.upstream_timeout_ms < gw.request_timeout_ms,
                "[gateway] upstream_timeout_ms must be shorter than request_timeout_ms",
            );
            if let Some(b) = &self.booking {
                need(
                    b.request_timeout_ms > 0 && b.request_timeout_ms < gw.upstream_timeout_ms,
                    "[booking] request_timeout_ms must be shorter than [gateway] upstream_timeout_ms (the fan hears booking-core's answer, not the gateway giving up)",
                );
            }
        }
        if let Some(b) = &self.booking {
            need(
                (1..=10).contains(&b.max_seats_per_booking),
                "[booking] max_seats_per_booking must be between 1 and 10",
            );
            need(
                (1..=256).contains(&b.hold_batch_max),
                "[booking] hold_batch_max must be between 1 and 256",
            );
            need(
                (1..=16).contains(&b.hold_batches_per_show),
                "[booking] hold_batches_per_show must be between 1 and 16",
            );
            need(
                b.seat_figures_max_share > 0.0 && b.seat_figures_max_share <= 1.0,
                "[booking] seat_figures_max_share must be above 0 and at most 1",
            );
            need(
                b.seatmap_cache_ttl_ms <= 1000,
                "[booking] seatmap_cache_ttl_ms must be at most 1000 (seat maps are fresh within 1 s)",
            );
            need(
                b.sweep_batch > 0,
                "[booking] sweep_batch must be at least 1",
            );
            need(
                b.analyze_after_changes >= 0,
                "[booking] analyze_after_changes must be 0 (off) or more",
            );
        }
        if let Some(w) = &self.worker {
            need(
                w.tick_ms > 0 && w.lease_ttl_ms > w.tick_ms,
                "[worker] lease_ttl_ms must be longer than tick_ms",
            );
        }
        if let Some(a) = &self.admission {
            need(
                a.queue_token_secret.expose().len() >= 32,
                "[admission] queue_token_secret must be at least 32 characters",
            );
            let previous = a.queue_token_secret_previous.expose();
            need(
                previous.is_empty() || previous.len() >= 32,
                "[admission] queue_token_secret_previous must be empty or at least 32 characters",
            );
            need(
                (1..=3600).contains(&a.keys_reload_s),
                "[admission] keys_reload_s must be from 1 to 3600",
            );
            need(
                !production || !a.generate_if_missing,
                "[admission] generate_if_missing must be false in production",
            );
            need(
                a.access_code_key.expose().len() >= 32
                    && !(production && a.access_code_key.expose().starts_with("demo")),
                "[admission] access_code_key must be at least 32 characters (and not the demo key in production)",
            );
            need(
                a.access_code_fails_per_client > 0 && a.access_code_fails_per_event > 0,
                "[admission] access_code_fails_per_client and _per_event must be above 0",
            );
        }
        if let Some(op) = &self.operator {
            // Empty is allowed: operators can all be named ones (`booking-core operators add`).
            let tokens = op.token_list();
            need(
                !production || !tokens.iter().any(|t| t.starts_with("demo-")),
                "[operator] tokens must not use the demo token in production",
            );
        }
        if let Some(k) = &self.kafka {
            need(!k.topic.is_empty(), "[kafka] topic must not be empty");
        }
    }
}

/// Every configuration problem found, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigErrors(pub Vec<String>);

/// Where the files are and which environment to layer.
#[derive(Debug, Clone)]
pub struct Source {
    pub dir: PathBuf,
    pub environment: String,
    /// Extra `(key, value)` overrides applied last, e.g. a test's port 0.
    pub overrides: Vec<(String, String)>,
    /// Read `MARQUEE_…` variables from the process environment.
    pub use_env: bool,
}

impl Source {
    /// The folder from `MARQUEE_CONFIG_DIR` (default `config`), the environment from
    /// `MARQUEE_ENV` (default `local`).
    pub fn from_env() -> Self {
        Self {
            dir: std::env::var_os("MARQUEE_CONFIG_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("config")),
            environment: std::env::var("MARQUEE_ENV").unwrap_or_else(|_| "local".into()),
            overrides: Vec::new(),
            use_env: true,
        }
    }

    /// The repository's own `config/` with `config/test.toml`, no process environment:
    /// what tests start from.
    pub fn for_tests(workspace_config_dir: impl AsRef<Path>) -> Self {
        Self {
            dir: workspace_config_dir.as_ref().to_path_buf(),
            environment: "test".into(),
            overrides: Vec::new(),
            use_env: false,
        }
    }

    pub fn set(mut self, key: &str, value: impl ToString) -> Self {
        self.overrides.push((key.to_owned(), value.to_string()));
        self
    }
}

impl Settings {
    pub fn load(source: &Source) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let base = source.dir.join("base.toml");
        if !base.exists() {
            return Err(ConfigErrors(vec![format!(
                "{} not found (set MARQUEE_CONFIG_DIR to the folder holding base.toml)",
                base.display()
            )]));
        }
        let env_file = source.dir.join(format!("{}.toml", source.environment));
        if !env_file.exists() {
            errors.push(format!(
                "environment `{}` has no {}",
                source.environment,
                env_file.display()
            ));
        }
        let mut builder = config::Config::builder()
            .add_source(config::File::from(base))
            .add_source(config::File::from(env_file).required(false));
        if source.use_env {
            builder = builder.add_source(
                config::Environment::with_prefix("MARQUEE")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("gateway.trusted_proxies"),
            );
        }
        for (key, value) in &source.overrides {
            builder = builder
                .set_override(key.as_str(), value.as_str())
                .map_err(|e| ConfigErrors(vec![e.to_string()]))?;
        }
        let raw = builder
            .build()
            .map_err(|e| ConfigErrors(vec![e.to_string()]))?;

        fn section<T: DeserializeOwned>(
            raw: &config::Config,
            name: &str,
            errors: &mut Vec<String>,
        ) -> Option<T> {
            raw.get::<T>(name)
                .map_err(|e| errors.push(format!("[{name}] {e}")))
                .ok()
        }
        let partial = Partial {
            database: section(&raw, "database", &mut errors),
            redis: section(&raw, "redis", &mut errors),
            gateway: section(&raw, "gateway", &mut errors),
            booking: section(&raw, "booking", &mut errors),
            worker: section(&raw, "worker", &mut errors),
            admission: section(&raw, "admission", &mut errors),
            operator: section(&raw, "operator", &mut errors),
            kafka: section(&raw, "kafka", &mut errors),
        };
        let log = section(&raw, "log", &mut errors);
        let stripe = section(&raw, "stripe", &mut errors);
        let shutdown = section(&raw, "shutdown", &mut errors);
        let memory = section(&raw, "memory", &mut errors);
        let events = section(&raw, "events", &mut errors);
        let mail: Option<MailSettings> = section(&raw, "mail", &mut errors);
        let pii: Option<crate::pii::PiiSettings> = section(&raw, "pii", &mut errors);
        let telemetry: crate::telemetry::TelemetrySettings = raw
            .get("telemetry")
            .or_else(|e| match e {
                config::ConfigError::NotFound(_) => Ok(Default::default()),
                e => Err(e),
            })
            .unwrap_or_else(|e| {
                errors.push(format!("[telemetry] {e}"));
                Default::default()
            });
        errors.extend(telemetry.problems());
        if let Some(p) = &pii {
            if let Err(e) = crate::pii::Pii::from_settings(p) {
                errors.push(e.to_string());
            } else if source.environment == "production"
                && (p
                    .keys
                    .expose()
                    .split(',')
                    .any(|k| k.trim().starts_with("demo"))
                    || p.lookup_key.expose().trim() == crate::pii::DEMO_LOOKUP_KEY)
            {
                errors.push("[pii] keys must not be the demo keys in production".into());
            }
        }
        if let Some(m) = &mail
            && m.transport != "file"
            && m.transport != "smtp"
        {
            errors.push("[mail] transport must be `file` or `smtp`".into());
        }
        partial.check(&source.environment, &mut errors);
        let Partial {
            database: Some(database),
            redis: Some(redis),
            gateway: Some(gateway),
            booking: Some(booking),
            worker: Some(worker),
            admission: Some(admission),
            operator: Some(operator),
            kafka: Some(kafka),
        } = partial
        else {
            return Err(ConfigErrors(errors));
        };
        match (log, stripe, shutdown, memory, events, mail, pii) {
            (
                Some(log),
                Some(stripe),
                Some(shutdown),
                Some(memory),
                Some(events),
                Some(mail),
                Some(pii),
            ) if errors.is_empty() => Ok(Settings {
                environment: source.environment.clone(),
                log,
                database,
                redis,
                gateway,
                booking,
                worker,
                admission,
                operator,
                kafka,
                events,
                mail,
                stripe,
                shutdown,
                memory,
                pii,
                telemetry,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// The settings as TOML with every secret replaced by `[redacted]`.
    pub fn redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_config() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
    }

    #[test]
    fn every_shipped_environment_loads() {
        for env in ["local", "test"] {
            let mut source = Source::for_tests(repo_config());
            source.environment = env.into();
            Settings::load(&source).unwrap_or_else(|e| panic!("{env}: {e}"));
        }
    }

    #[test]
    fn the_production_example_is_complete_once_secrets_are_given() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            repo_config().join("base.toml"),
            dir.path().join("base.toml"),
        )
        .unwrap();
        std::fs::copy(
            repo_config().join("production.example.toml"),
            dir.path().join("production.toml"),
        )
        .unwrap();
        let mut source = Source::for_tests(dir.path());
        source.environment = "production".into();
        let source = source
            .set("operator.tokens", "op-abc")
            .set("admission.queue_token_secret", "x".repeat(40))
            .set("admission.access_code_key", "k".repeat(40))
            .set("pii.keys", format!("p1={}", crate::pii::new_key()))
            .set("pii.lookup_key", crate::pii::new_key());
        Settings::load(&source).unwrap();
    }

    #[test]
    fn pooled_connections_are_replaced_after_their_lifetime_unless_it_is_zero() {
        let settings = Settings::load(&Source::for_tests(repo_config())).unwrap();
        assert_eq!(
            settings.database.connection_lifetime(),
            Some(Duration::from_secs(300)),
            "config/base.toml's lifetime"
        );
        let source = Source::for_tests(repo_config()).set("database.connection_lifetime_s", 0);
        let settings = Settings::load(&source).unwrap();
        assert_eq!(settings.database.connection_lifetime(), None);
    }

    #[test]
    fn reports_every_problem_at_once() {
        let source = Source::for_tests(repo_config())
            .set("database.url", "mysql://nope")
            .set("redis.url", "http://nope")
            .set("gateway.listen", "not-an-address")
            .set("booking.max_seats_per_booking", 40);
        let err = Settings::load(&source).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("[gateway]"), "{text}");
        assert!(text.contains("[database] url"), "{text}");
        assert!(text.contains("[redis] url"), "{text}");
        assert!(text.contains("max_seats_per_booking"), "{text}");
    }

    #[test]
    fn batches_of_joins_are_of_one_to_1024() {
        let load = |n: usize| {
            Settings::load(&Source::for_tests(repo_config()).set("gateway.join_batch_max", n))
        };
        assert_eq!(load(1).unwrap().gateway.join_batch_max, 1);
        for n in [0, 1025] {
            let err = load(n).unwrap_err();
            assert!(err.to_string().contains("join_batch_max"), "{err}");
        }
    }

    #[test]
    fn redis_urls_and_their_ca_file_are_checked() {
        let load = |url: &str, ca: &str| {
            Settings::load(
                &Source::for_tests(repo_config())
                    .set("redis.url", url)
                    .set("redis.ca_file", ca),
            )
        };
        assert!(load("rediss://cache.example:6380/", "/etc/ca.pem").is_ok());
        assert!(load("redis://a:7000/,redis://b:7000/", "").is_ok());
        let err = load("redis://cache.example:6379/", "/etc/ca.pem").unwrap_err();
        assert!(err.to_string().contains("[redis] ca_file"), "{err}");
        let err = load("redis://a:7000/,http://b", "").unwrap_err();
        assert!(err.to_string().contains("[redis] url"), "{err}");
    }

    #[test]
    fn printed_config_hides_secrets() {
        let source = Source::for_tests(repo_config()).set("stripe.secret_key", "sk_live_zzz");
        let text = Settings::load(&source).unwrap().redacted_toml();
        assert!(!text.contains("sk_live_zzz"));
        assert!(text.contains("[redacted]"));
    }
}
