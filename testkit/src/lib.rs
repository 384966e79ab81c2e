//! Test support shared by every crate's tests: each test gets its own database (cloned from a
//! migrated template), its own Redis namespace and admission keys, and waits on conditions
//! with deadlines instead of sleeping.
//!
//! - `database` / `TestEnv`: a test's own database, Redis prefix, admission keys and settings
//!   (`TestEnv::source`, the test configuration with those filled in).
//! - `admit` / `admit_all` / `claims`: an admitted visitor as the admission worker leaves one
//!   (its slot and session in Redis, its signed token), for tests that start past the queue.
//! - `api::Api`: the typed HTTP client every test talks to the services through.
//! - `wait_for`: a condition awaited with a deadline (no fixed sleeps).
//! - `RedisServer`: a Redis of a test's own, to kill and restart.
//! - `otlp::Receiver`: an OTLP trace receiver of a test's own, to find the spans exported.
//! - `fault_proxy::FaultProxy`: a TCP proxy between a service and a dependency whose link a
//!   test slows, throttles, refuses, freezes or cuts while everything runs.
//! - `process::ServiceProcess`: a service as a real process, to SIGKILL and start again.
//! - `postgres::PostgresServer`: a PostgreSQL of a test's own, to SIGKILL and crash-recover.

pub mod api;
pub mod fault_proxy;
pub mod otlp;
pub mod postgres;
pub mod process;

pub use api::{Api, OPERATOR};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use marquee_platform::Settings;
use marquee_platform::config::Source;
use marquee_waitroom::Keyring;
use marquee_waitroom::admission::{AUDIENCE, AdmissionClaims};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The server tests create databases on (`DATABASE_URL`, default the local one).
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// Seed nodes of the tests' Redis Cluster, comma-separated (`MARQUEE_TEST_REDIS_CLUSTER`, or the
/// three masters on 127.0.0.1:7101-7103 that `scripts/redis-cluster.sh` starts).
pub fn redis_cluster_url() -> String {
    std::env::var("MARQUEE_TEST_REDIS_CLUSTER")
        .unwrap_or_else(|_| "redis://127.0.0.1:7101/,redis://127.0.0.1:7102/".into())
}

fn with_db(url: &str, db: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => format!("{url}/{db}"),
    }
}

/// A fresh, migrated database for one test; its URL.
pub async fn database() -> String {
    let server = server_url();
    let mut admin = PgConnection::connect(&server)
        .await
        .expect("connect to Postgres");
    let digest = MIGRATOR
        .iter()
        .fold(Sha256::new(), |h, m| h.chain_update(&*m.checksum));
    let digest: String = digest
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let template = format!("mq_template_{digest}");
    admin
        .execute("SELECT pg_advisory_lock(770077)")
        .await
        .expect("lock");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut admin)
            .await
            .expect("query");
    if !exists {
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE \"{template}\""
            )))
            .await
            .expect("create template");
        let mut conn = PgConnection::connect(&with_db(&server, &template))
            .await
            .expect("connect template");
        MIGRATOR.run(&mut conn).await.expect("migrate template");
        conn.close().await.ok();
    }
    let name = format!("mqt_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
        )))
        .await
        .expect("create test database");
    admin
        .execute("SELECT pg_advisory_unlock(770077)")
        .await
        .expect("unlock");
    admin.close().await.ok();
    with_db(&server, &name)
}

/// Test-only TLS material (`testkit/tls/`): `ca.pem`, a CA nothing outside the tests trusts,
/// and `server.pem`/`server.key`, the certificate it signed for 127.0.0.1.
pub fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tls")
}

/// The repository's `config/` folder.
pub fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

/// A short unique suffix for event ids and Redis namespaces.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Everything one test's services share: database, Redis namespace, admission keys.
pub struct TestEnv {
    pub database_url: String,
    pub events_key: String,
    pub keys_dir: tempfile::TempDir,
    pub keys: Keyring,
    /// This test's own lookup-hash key, so keys derived from emails (the find-my-booking
    /// limit in Redis, say) never meet another test's or another run's.
    pub lookup_key: String,
}

impl TestEnv {
    pub async fn new() -> Self {
        let keys_dir = tempfile::tempdir().expect("tempdir");
        let keys = Keyring::load_dir(keys_dir.path(), true).expect("admission key");
        Self {
            database_url: database().await,
            events_key: unique("wr:test-events"),
            keys_dir,
            keys,
            lookup_key: marquee_platform::pii::new_key(),
        }
    }

    /// Test settings for this environment; add overrides with `Source::set`.
    pub fn source(&self) -> Source {
        Source::for_tests(config_dir())
            .set("database.url", &self.database_url)
            .set("redis.url", redis_url())
            .set("redis.events_key", &self.events_key)
            .set("admission.keys_dir", self.keys_dir.path().display())
            .set(
                "booking.ticket_keys_dir",
                self.keys_dir.path().join("tickets").display(),
            )
            .set("pii.lookup_key", &self.lookup_key)
    }

    pub fn settings(&self) -> Settings {
        Settings::load(&self.source()).expect("test settings")
    }

    /// An admission token as the gateway would issue it.
    pub fn admission_token(&self, visitor: &str, event: &str, ttl_s: i64) -> String {
        self.keys
            .sign(&claims(visitor, event, ttl_s))
            .expect("sign")
    }
}

/// What the admission worker writes when it admits `visitors` to `event`: a slot under the
/// active cap and a session each, for `ttl_s`. A reserve needs the slot.
fn admission_pipeline(event: &str, visitors: &[&str], ttl_s: i64) -> redis::Pipeline {
    use marquee_waitroom::keys;
    let now = chrono::Utc::now().timestamp_millis();
    let mut pipe = redis::pipe();
    for v in visitors {
        pipe.zadd(keys::active(event), *v, now + ttl_s * 1000)
            .ignore()
            .zadd(keys::sessions(event), *v, now)
            .ignore();
    }
    pipe
}

/// Admit `visitor` to `event` as the admission worker would, for `ttl_s`. Blocking: a test's
/// set-up.
pub fn admit(visitor: &str, event: &str, ttl_s: i64) {
    let mut conn = redis::Client::open(redis_url())
        .and_then(|c| c.get_connection())
        .expect("Redis");
    let () = admission_pipeline(event, &[visitor], ttl_s)
        .query(&mut conn)
        .expect("admit in Redis");
}

/// Admit many `visitors` to `event` at once through the Redis at `url` (a benchmark's set-up).
pub async fn admit_all(
    url: &str,
    event: &str,
    visitors: &[&str],
    ttl_s: i64,
) -> anyhow::Result<()> {
    let mut conn = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    for chunk in visitors.chunks(1000) {
        let () = admission_pipeline(event, chunk, ttl_s)
            .query_async(&mut conn)
            .await?;
    }
    Ok(())
}

pub fn claims(visitor: &str, event: &str, ttl_s: i64) -> AdmissionClaims {
    let now = chrono::Utc::now().timestamp();
    AdmissionClaims {
        iss: "marquee".into(),
        aud: AUDIENCE.into(),
        sub: visitor.into(),
        evt: event.into(),
        iat: now,
        nbf: now,
        exp: now + ttl_s,
        jti: uuid::Uuid::new_v4().to_string(),
        cnf: None,
    }
}

/// A metric's value in a service's `/metrics` text: `name` without the `marquee_` prefix,
/// the first series of it (`marquee_{name}{labels} value`); `None` if it is not there.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .filter(|l| {
            l.strip_prefix("marquee_")
                .and_then(|l| l.strip_prefix(name))
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Poll `check` until it yields `Some`, or panic after `deadline` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Redis server of one test's own, on a free port, that the test can crash and start again.
/// Every write is on disk before it is acknowledged (`appendfsync always`), as a production
/// Redis behind a waiting room is configured, so a restart keeps the queue.
pub struct RedisServer {
    pub port: u16,
    /// Speaks only TLS, with the certificate `tls_dir()` holds for 127.0.0.1.
    tls: bool,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl RedisServer {
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// A server that speaks only TLS (`rediss://`), its certificate signed by the test CA
    /// (`tls_dir()/ca.pem`), which nothing else trusts.
    pub async fn start_tls() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(tls: bool) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            port,
            tls,
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// Start the server (again), on the same port and data, and wait until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let port = self.port.to_string();
        let mut command = std::process::Command::new("redis-server");
        command.args(["--bind", "127.0.0.1"]);
        if self.tls {
            let tls = tls_dir();
            command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(tls.join("server.pem"))
                .arg("--tls-key-file")
                .arg(tls.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(tls.join("ca.pem"));
        } else {
            command.args(["--port", &port]);
        }
        let child = command
            .args(["--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--dir"])
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (bash scripts/services.sh installs it)");
        self.child = Some(child);
        let (addr, tls) = (format!("127.0.0.1:{}", self.port), self.tls);
        wait_for(
            "the test's Redis to answer",
            Duration::from_secs(10),
            || {
                let addr = addr.clone();
                async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut conn = tokio::net::TcpStream::connect(&addr).await.ok()?;
                    if tls {
                        // Listening is all a plain client can see of a TLS server.
                        return Some(());
                    }
                    conn.write_all(b"PING\r\n").await.ok()?;
                    let mut buf = [0u8; 7];
                    conn.read_exact(&mut buf).await.ok()?;
                    (&buf == b"+PONG\r\n").then_some(())
                }
            },
        )
        .await;
    }

    /// Kill the server at once (SIGKILL: no shutdown, nothing flushed beyond what was
    /// acknowledged) and wait until it is gone.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill redis-server");
            child.wait().expect("redis-server ends");
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.crash();
    }
}
