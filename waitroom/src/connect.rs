//! The Redis connection every service uses: reconnecting, with bounded connect and response
//! times so an outage turns into quick errors (503s), not hung requests. One Redis node, or a
//! Redis Cluster (`[redis] cluster = true`): every key of an event carries the event's hash
//! tag (`wr:{event}:…`), so each script and each pipeline the services send stays on one
//! slot and runs unchanged on either.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use marquee_platform::config::RedisSettings;
use prometheus::IntGauge;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, TlsCertificates, Value,
};

/// How long connecting, and each command, may take before they fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            response: Duration::from_secs(2),
        }
    }
}

impl Timeouts {
    /// `[redis] connect_timeout_ms` and `response_timeout_ms`.
    pub fn from_settings(settings: &RedisSettings) -> Self {
        Self {
            connect: Duration::from_millis(settings.connect_timeout_ms),
            response: Duration::from_millis(settings.response_timeout_ms),
        }
    }
}
const RETRIES: u32 = 2;
/// How often an idle connection is checked. A dropped connection is only replaced when a
/// command fails on it, so without this the first request after Redis comes back would be
/// the one to fail; with it, at most those in the first quarter second do. A connection that
/// answered a command within this long is not idle and is not checked: its own commands
/// would have found it dead.
const KEEPALIVE: Duration = Duration::from_millis(250);

/// A connection to one Redis node or to a Redis Cluster; cheap to clone (both multiplex one
/// connection per node). A background PING keeps it fresh while any clone is alive.
#[derive(Clone)]
pub struct Redis {
    conn: Conn,
    up: IntGauge,
    /// When a command last had an answer (any answer, an error reply included: Redis was
    /// there to give it), in ms since `EPOCH`; shared by every clone.
    answered: Arc<AtomicU64>,
    /// Stops the keepalive when the last clone goes; `None` in the keepalive's own copy, so
    /// that copy does not keep itself alive.
    _keepalive: Option<Arc<KeepAlive>>,
}

impl Redis {
    /// `redis_up`: 1 while Redis answers, 0 from the first keepalive PING it does not answer
    /// (a connection whose commands go unanswered is idle, so it is PINGed within a quarter
    /// second); for the service's metrics registry.
    pub fn up_gauge(&self) -> IntGauge {
        self.up.clone()
    }
}

#[derive(Clone)]
enum Conn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

struct KeepAlive(tokio::task::JoinHandle<()>);

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Connects as `[redis]` says: `url`, `cluster`, `ca_file` (see `redis`).
pub async fn from_settings(settings: &RedisSettings) -> RedisResult<Redis> {
    redis_with(
        settings.url.expose(),
        settings.cluster,
        settings.ca_file(),
        Timeouts::from_settings(settings),
    )
    .await
}

/// Connects to the node at `url`, or, with `cluster`, to the cluster that the comma-separated
/// seed nodes in `url` belong to (the others are discovered). `rediss://` URLs speak TLS,
/// verified against the web's roots, or against the PEM certificates in `ca_file` alone.
pub async fn redis(url: &str, cluster: bool, ca_file: Option<&Path>) -> RedisResult<Redis> {
    redis_with(url, cluster, ca_file, Timeouts::default()).await
}

/// `redis` with its own `timeouts`.
pub async fn redis_with(
    url: &str,
    cluster: bool,
    ca_file: Option<&Path>,
    timeouts: Timeouts,
) -> RedisResult<Redis> {
    let certs = match ca_file {
        Some(path) => Some(TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(path).map_err(|e| {
                RedisError::from((
                    ErrorKind::InvalidClientConfig,
                    "reading [redis] ca_file",
                    format!("{}: {e}", path.display()),
                ))
            })?),
        }),
        None => None,
    };
    let conn = if cluster {
        let seeds: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut builder = redis::cluster::ClusterClient::builder(seeds)
            .connection_timeout(timeouts.connect)
            .response_timeout(timeouts.response)
            .retries(RETRIES);
        if let Some(certs) = certs {
            builder = builder.certs(certs);
        }
        Conn::Cluster(builder.build()?.get_async_connection().await?)
    } else {
        let client = match certs {
            Some(certs) => redis::Client::build_with_tls(url, certs)?,
            None => redis::Client::open(url)?,
        };
        Conn::Node(
            ConnectionManager::new_with_config(
                client,
                redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeouts.connect))
                    .set_response_timeout(Some(timeouts.response))
                    .set_number_of_retries(RETRIES as usize),
            )
            .await?,
        )
    };
    let up = IntGauge::new(
        "redis_up",
        "1 while Redis answers this service (its commands, or the keepalive PING of a \
         connection idle for 250 ms), else 0",
    )
    .expect("valid metric");
    up.set(1);
    let answered = Arc::new(AtomicU64::new(since_epoch_ms()));
    let pinger = Redis {
        conn: conn.clone(),
        up: up.clone(),
        answered: answered.clone(),
        _keepalive: None,
    };
    let keepalive = KeepAlive(tokio::spawn(keep_alive(pinger)));
    Ok(Redis {
        conn,
        up,
        answered,
        _keepalive: Some(Arc::new(keepalive)),
    })
}

/// The clock `Redis::answered` counts on.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn since_epoch_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

/// Whether the keepalive PINGs now: always while Redis is down (its answer brings `redis_up`
/// back), else only when no command was answered for a `KEEPALIVE`.
fn needs_ping(up: bool, answered_ms: u64, now_ms: u64) -> bool {
    !up || now_ms.saturating_sub(answered_ms) >= KEEPALIVE.as_millis() as u64
}

/// PINGs every `KEEPALIVE`: a failure makes the connection reconnect in the background, and
/// the first PING after Redis is back brings it up before the next request needs it. Logs
/// each change between reachable and not, once.
async fn keep_alive(mut redis: Redis) {
    let mut every = tokio::time::interval(KEEPALIVE);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let up = redis.up.get() == 1;
        if !needs_ping(up, redis.answered.load(Ordering::Relaxed), since_epoch_ms()) {
            continue;
        }
        let answered = redis::cmd("PING").query_async::<()>(&mut redis).await;
        match (redis.up.get() == 1, answered) {
            (true, Err(e)) => {
                tracing::warn!(error = %e, "Redis unreachable; reconnecting");
                redis.up.set(0);
            }
            (false, Ok(())) => {
                tracing::info!("Redis reachable again");
                redis.up.set(1);
            }
            _ => {}
        }
    }
}

/// `answer`, noting when it came if Redis gave it (a reply, or an error reply; not a broken
/// connection, a timeout or a refused connect).
fn noting_answers<'a, T: Send + 'a>(
    answered: &'a AtomicU64,
    answer: RedisFuture<'a, T>,
) -> RedisFuture<'a, T> {
    Box::pin(async move {
        let answer = answer.await;
        let from_redis = match &answer {
            Ok(_) => true,
            Err(e) => !(e.is_io_error() || e.is_timeout() || e.is_connection_dropped()),
        };
        if from_redis {
            answered.store(since_epoch_ms(), Ordering::Relaxed);
        }
        answer
    })
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let answer = match &mut self.conn {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        };
        noting_answers(&self.answered, answer)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let answer = match &mut self.conn {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        };
        noting_answers(&self.answered, answer)
    }

    fn get_db(&self) -> i64 {
        match &self.conn {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_idle_or_down_connection_is_pinged() {
        let k = KEEPALIVE.as_millis() as u64;
        assert!(
            !needs_ping(true, 10_000, 10_000 + k - 1),
            "answered just now"
        );
        assert!(needs_ping(true, 10_000, 10_000 + k), "idle for a keepalive");
        assert!(needs_ping(false, 10_000, 10_000), "down: always");
        // A clock read before a command's answer was noted is not "idle".
        assert!(!needs_ping(true, 10_001, 10_000));
    }
}
