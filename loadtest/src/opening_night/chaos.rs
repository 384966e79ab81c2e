//! `--chaos`: the evening on a stack of its own, with things killed during the sale. It starts
//! a Redis of its own with the append-only file on (`appendfsync always`; never the machine's
//! shared Redis), a fresh database on the Postgres server `--database-url` names, and every
//! service from the release binaries beside this one on ports of their own; during the run it
//! SIGKILLs and restarts the admission worker and that Redis in turn, and makes the Stripe
//! simulator fail requests. The audit must still be all zeros.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rand::Rng;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use super::Options;
use super::record::Recorder;
use super::stop::Stop;

/// What one process of the stack is and how to start it.
struct Spec {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    ready: Ready,
}

/// How to tell a process is ready.
enum Ready {
    /// This URL answers 2xx.
    Http(String),
    /// This port accepts connections.
    Port(u16),
}

/// Something the chaos did, and when (seconds since the run began).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub t: f64,
    pub action: String,
}

pub struct Stack {
    dir: PathBuf,
    specs: BTreeMap<&'static str, Spec>,
    children: BTreeMap<&'static str, Child>,
    /// The maintenance database to drop the run's database from.
    admin_url: String,
    database: String,
    sim_url: String,
}

/// The ports the stack listens on, from `base`.
struct Ports {
    gateway: u16,
    booking: u16,
    worker: u16,
    events: u16,
    sim: u16,
    redis: u16,
}

impl Stack {
    /// Start everything and point `o` (gateway, audit sources, Redis) at it.
    pub async fn start(o: &mut Options) -> anyhow::Result<Self> {
        let base = o.chaos_port_base;
        let p = Ports {
            gateway: base + 80,
            booking: base + 81,
            worker: base + 82,
            events: base + 83,
            sim: base + 84,
            redis: base + 85,
        };
        let suffix: u32 = rand::rng().random_range(0..0xff_ffff);
        let dir = std::env::temp_dir().join(format!("marquee-chaos-{suffix:06x}"));
        std::fs::create_dir_all(dir.join("logs"))?;
        let bins = std::env::current_exe()?
            .parent()
            .context("the directory of this binary")?
            .to_owned();
        for bin in [
            "booking-core",
            "queue-gateway",
            "admission-worker",
            "marquee-events",
            "stripe-sim",
        ] {
            if !bins.join(bin).exists() {
                bail!(
                    "{} is missing: build the services beside this binary first (cargo build --release --bins -p booking-core -p queue-gateway -p admission-worker -p marquee-events -p stripe-sim)",
                    bins.join(bin).display()
                );
            }
        }
        let database = format!("marquee_chaos_{suffix:06x}");
        let (server, _) = o
            .audit
            .database_url
            .rsplit_once('/')
            .context("--database-url ends in a database name")?;
        let admin_url = format!("{server}/postgres");
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .with_context(|| format!("connecting to {admin_url}"))?;
        // The name is ours (hex digits), not input.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&admin)
            .await?;
        admin.close().await;
        let database_url = format!("{server}/{database}");

        let url = |port: u16| format!("http://127.0.0.1:{port}");
        let config_dir = std::fs::canonicalize(&o.chaos_config_dir).with_context(|| {
            format!("the configuration folder {}", o.chaos_config_dir.display())
        })?;
        let marquee_env: Vec<(String, String)> = [
            ("MARQUEE_ENV", "local".to_owned()),
            ("MARQUEE_CONFIG_DIR", config_dir.display().to_string()),
            ("MARQUEE_DATABASE__URL", database_url.clone()),
            (
                "MARQUEE_REDIS__URL",
                format!("redis://127.0.0.1:{}/", p.redis),
            ),
            (
                "MARQUEE_GATEWAY__LISTEN",
                format!("127.0.0.1:{}", p.gateway),
            ),
            ("MARQUEE_GATEWAY__BOOKING_URL", url(p.booking)),
            (
                "MARQUEE_BOOKING__LISTEN",
                format!("127.0.0.1:{}", p.booking),
            ),
            (
                "MARQUEE_BOOKING__JWKS_URL",
                format!("{}/.well-known/jwks.json", url(p.gateway)),
            ),
            ("MARQUEE_WORKER__LISTEN", format!("127.0.0.1:{}", p.worker)),
            ("MARQUEE_EVENTS__LISTEN", format!("127.0.0.1:{}", p.events)),
            (
                "MARQUEE_ADMISSION__KEYS_DIR",
                dir.join("keys").display().to_string(),
            ),
            (
                "MARQUEE_KAFKA__BOOTSTRAP_FILE",
                dir.join("kafka-bootstrap").display().to_string(),
            ),
            ("MARQUEE_MAIL__DIR", dir.join("mail").display().to_string()),
            ("MARQUEE_STRIPE__API_BASE", format!("{}/", url(p.sim))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let service = |name: &str, ready: String| Spec {
            program: bins.join(name),
            args: Vec::new(),
            env: marquee_env.clone(),
            ready: Ready::Http(ready),
        };
        let mut specs = BTreeMap::new();
        specs.insert(
            "redis",
            Spec {
                program: PathBuf::from("redis-server"),
                args: [
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &p.redis.to_string(),
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                    "--dir",
                    &dir.display().to_string(),
                ]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
                env: Vec::new(),
                ready: Ready::Port(p.redis),
            },
        );
        specs.insert(
            "stripe-sim",
            Spec {
                program: bins.join("stripe-sim"),
                args: Vec::new(),
                env: vec![
                    ("STRIPE_SIM_LISTEN".into(), format!("127.0.0.1:{}", p.sim)),
                    (
                        "STRIPE_SIM_WEBHOOK_URL".into(),
                        format!("{}/v1/payments/stripe/webhook", url(p.gateway)),
                    ),
                ],
                ready: Ready::Http(format!("{}/healthz", url(p.sim))),
            },
        );
        specs.insert(
            "booking-core",
            service("booking-core", format!("{}/readyz", url(p.booking))),
        );
        specs.insert(
            "queue-gateway",
            service("queue-gateway", format!("{}/healthz", url(p.gateway))),
        );
        specs.insert(
            "admission-worker",
            service("admission-worker", format!("{}/readyz", url(p.worker))),
        );
        specs.insert(
            "marquee-events",
            service("marquee-events", format!("{}/readyz", url(p.events))),
        );

        let mut stack = Self {
            dir: dir.clone(),
            specs,
            children: BTreeMap::new(),
            admin_url,
            database,
            sim_url: url(p.sim),
        };
        for name in [
            "redis",
            "stripe-sim",
            "booking-core",
            "queue-gateway",
            "admission-worker",
            "marquee-events",
        ] {
            stack.spawn(name).await?;
        }
        o.gateway = url(p.gateway);
        o.redis_url = format!("redis://127.0.0.1:{}/", p.redis);
        o.audit.database_url = database_url;
        o.audit.stripe_url = url(p.sim);
        o.audit.mail_dir = dir.join("mail");
        o.audit.kafka_bootstrap_file = dir.join("kafka-bootstrap");
        o.audit.kafka_brokers = None;
        eprintln!("[opening-night] chaos stack up in {}", dir.display());
        Ok(stack)
    }

    async fn spawn(&mut self, name: &'static str) -> anyhow::Result<()> {
        let spec = &self.specs[name];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("logs").join(format!("{name}.log")))?;
        let child = Command::new(&spec.program)
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.children.insert(name, child);
        wait_ready(name, &spec.ready, &self.dir).await
    }

    /// SIGKILL `name` (no clean stop) and start it again.
    pub async fn kill_and_restart(&mut self, name: &'static str) -> anyhow::Result<()> {
        if let Some(mut child) = self.children.remove(name) {
            child.start_kill()?;
            child.wait().await?;
        }
        self.spawn(name).await
    }

    /// The next `n` Stripe requests fail with a 500.
    pub async fn stripe_faults(&self, n: u32) -> anyhow::Result<()> {
        reqwest::Client::new()
            .post(format!("{}/_sim/faults", self.sim_url))
            .json(&serde_json::json!({"fail_requests": n, "status": 500}))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Stop everything and drop the run's database; the folder (logs) stays when `keep`.
    pub async fn stop(mut self, keep: bool) {
        for (_, mut child) in std::mem::take(&mut self.children).into_iter().rev() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        if let Ok(admin) = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.admin_url)
            .await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            )))
            .execute(&admin)
            .await;
        }
        if keep {
            eprintln!(
                "[opening-night] chaos stack's logs kept in {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Wait up to 60 s for `name` to be ready as `ready` says.
async fn wait_ready(name: &str, ready: &Ready, dir: &Path) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for _ in 0..600 {
        let up = match ready {
            Ready::Http(url) => http
                .get(url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()),
            Ready::Port(port) => tokio::net::TcpStream::connect(("127.0.0.1", *port))
                .await
                .is_ok(),
        };
        if up {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "{name} was not ready within 60 s; see {}",
        dir.join("logs").join(format!("{name}.log")).display()
    )
}

/// Every `every`, the next fault in turn: the worker killed, Redis killed, Stripe failing.
pub async fn unleash(
    stack: Arc<Mutex<Stack>>,
    every: Duration,
    rec: Arc<Recorder>,
    stop: Stop,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut turn = 0usize;
    while stop.sleep(every).await {
        let mut stack = stack.lock().await;
        // A Stripe fault lasts until the next turn, not until five requests happened to come
        // (at the end of a sale, with few fans paying, that would be an outage without end).
        if turn.is_multiple_of(3)
            && turn > 0
            && let Err(e) = stack.stripe_faults(0).await
        {
            eprintln!("[opening-night] chaos: could not clear Stripe's faults: {e:#}");
        }
        let (action, result) = match turn % 3 {
            0 => (
                "SIGKILL admission-worker, restart",
                stack.kill_and_restart("admission-worker").await,
            ),
            1 => (
                "SIGKILL redis (AOF on), restart",
                stack.kill_and_restart("redis").await,
            ),
            _ => (
                "Stripe fails the next 5 requests",
                stack.stripe_faults(5).await,
            ),
        };
        let action = match result {
            Ok(()) => action.to_owned(),
            Err(e) => format!("{action}: FAILED: {e:#}"),
        };
        eprintln!("[opening-night] chaos: {action}");
        events.push(Event {
            t: rec.start.elapsed().as_secs_f64(),
            action,
        });
        turn += 1;
    }
    // The sale is over: the audit reads Stripe without injected failures.
    if let Err(e) = stack.lock().await.stripe_faults(0).await {
        eprintln!("[opening-night] chaos: could not clear Stripe's faults: {e:#}");
    }
    events
}
