//! The whole system in one process for end-to-end tests: booking-core, the gateway and any
//! number of admission-worker replicas, each on port 0, sharing one test database and Redis
//! namespace.

use std::time::Duration;

use marquee_platform::config::Source;
use marquee_platform::shutdown::Shutdown;
use marquee_testkit::{Api, TestEnv};
use redis::AsyncCommands;
use reqwest::Response;
use serde_json::{Value, json};

pub use marquee_testkit::OPERATOR;

/// The running system. It answers through `Api` (`Deref`) at the gateway's address, where
/// everything a client does goes.
pub struct Stack {
    pub api: Api,
    pub booking_url: String,
    /// The Stripe simulator booking-core pays through.
    pub stripe_url: String,
    pub env: TestEnv,
    /// Redis as the services reach it (one node, or the cluster with `redis.cluster`).
    pub redis: marquee_waitroom::connect::Redis,
    booking_stop: Shutdown,
    gateway_stop: Shutdown,
    /// One stop switch per worker replica.
    pub workers: Vec<Shutdown>,
    /// Each worker replica's health and metrics address.
    pub worker_urls: Vec<String>,
    /// Each worker replica's id, as it writes it into the leases it holds.
    pub worker_ids: Vec<String>,
    /// The events service's health and metrics address.
    pub events_url: String,
    /// Where the events service writes ticket emails (`.eml`).
    pub mail_dir: tempfile::TempDir,
    events_stop: Shutdown,
}

impl std::ops::Deref for Stack {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.gateway_stop.trigger();
        self.booking_stop.trigger();
        for w in &self.workers {
            w.trigger();
        }
        self.events_stop.trigger();
    }
}

/// Start everything with `workers` admission replicas; `tweak` adjusts the shared settings.
pub async fn stack(workers: usize, tweak: impl Fn(Source) -> Source) -> Stack {
    let env = TestEnv::new().await;
    // The Stripe simulator: bound first so booking-core can point at it; built once the
    // gateway (where its webhooks go) is up.
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stripe_url = format!(
        "http://127.0.0.1:{}",
        sim_listener.local_addr().unwrap().port()
    );
    let settings = |s: Source| {
        marquee_platform::Settings::load(&tweak(s.set("stripe.api_base", &stripe_url)))
            .expect("settings")
    };

    let booking_stop = Shutdown::new();
    let booking =
        booking_core::Application::build_with(settings(env.source()), booking_stop.clone())
            .await
            .expect("booking-core starts");
    let booking_url = format!("http://127.0.0.1:{}", booking.port());
    tokio::spawn(booking.run_until_stopped());

    let gateway_stop = Shutdown::new();
    let gateway = queue_gateway::Application::build_with(
        settings(env.source().set("gateway.booking_url", &booking_url)),
        gateway_stop.clone(),
    )
    .await
    .expect("gateway starts");
    let url = format!("http://127.0.0.1:{}", gateway.port());
    tokio::spawn(gateway.run_until_stopped());
    let sim = stripe_sim::Simulator::new(stripe_sim::Config {
        webhook_urls: vec![format!("{url}/v1/payments/stripe/webhook")],
        webhook_secret: "whsec_test".into(),
        secret_keys: vec![],
    });
    let router = sim.router();
    tokio::spawn(async move { axum::serve(sim_listener, router).await });

    let mut stops = Vec::new();
    let mut worker_urls = Vec::new();
    let mut worker_ids = Vec::new();
    for _ in 0..workers {
        let (stop, port, id) = start_worker(&env, &|s: Source| {
            tweak(s.set("stripe.api_base", &stripe_url))
        })
        .await;
        stops.push(stop);
        worker_urls.push(format!("http://127.0.0.1:{port}"));
        worker_ids.push(id);
    }
    let mail_dir = tempfile::tempdir().unwrap();
    let events_stop = Shutdown::new();
    let events = marquee_events::Application::build_with(
        settings(env.source().set("mail.dir", mail_dir.path().display()).set(
            "kafka.bootstrap_file",
            mail_dir.path().join("kafka-bootstrap").display(),
        )),
        events_stop.clone(),
    )
    .await
    .expect("events service starts");
    let events_url = format!("http://127.0.0.1:{}", events.port());
    tokio::spawn(events.run_until_stopped());
    let redis_settings = settings(env.source()).redis;
    let redis = marquee_waitroom::connect::from_settings(&redis_settings)
        .await
        .expect("Redis");
    Stack {
        api: Api::new(url),
        booking_url,
        stripe_url,
        env,
        redis,
        booking_stop,
        gateway_stop,
        workers: stops,
        worker_urls,
        worker_ids,
        events_url,
        mail_dir,
        events_stop,
    }
}

/// Start one more admission-worker replica; its stop switch, metrics port and worker id.
pub async fn start_worker(
    env: &TestEnv,
    tweak: &impl Fn(Source) -> Source,
) -> (Shutdown, u16, String) {
    let stop = Shutdown::new();
    let settings = marquee_platform::Settings::load(&tweak(env.source())).expect("settings");
    let worker = admission_worker::Application::build_with(settings, stop.clone())
        .await
        .expect("worker starts");
    let (port, id) = (worker.port(), worker.worker_id.clone());
    tokio::spawn(worker.run_until_stopped());
    (stop, port, id)
}

/// An admission-worker replica on a runtime of its own, so a test can kill it mid-flight:
/// `crash` drops every task it runs wherever each is (mid-tick included), as SIGKILL would,
/// with no clean stop and no lease handed back.
pub struct CrashableWorker {
    pub id: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl CrashableWorker {
    pub async fn start(env: &TestEnv, tweak: &impl Fn(Source) -> Source) -> Self {
        let settings = marquee_platform::Settings::load(&tweak(env.source())).expect("settings");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let worker = runtime
            .spawn(admission_worker::Application::build_with(
                settings,
                Shutdown::new(),
            ))
            .await
            .expect("build task")
            .expect("worker starts");
        let id = worker.worker_id.clone();
        runtime.spawn(worker.run_until_stopped());
        Self {
            id,
            runtime: Some(runtime),
        }
    }

    pub fn crash(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for CrashableWorker {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// One fan's client: its queue token and visitor id once joined.
#[derive(Debug, Clone)]
pub struct Fan {
    pub visitor_id: String,
    pub queue_token: String,
    pub csrf: String,
    pub key: Option<String>,
}

impl Fan {
    /// The fan a successful join answer describes; `key_secret` if it sent a visitor key.
    pub fn joined(answer: &Value, key_secret: Option<&str>) -> Self {
        Self {
            visitor_id: answer["visitor_id"].as_str().unwrap().to_owned(),
            queue_token: answer["queue_token"].as_str().unwrap().to_owned(),
            csrf: answer["csrf"].as_str().unwrap().to_owned(),
            key: key_secret.map(str::to_owned),
        }
    }
}

impl Stack {
    /// Start one more gateway replica on this stack's Redis, keys and booking-core, with the
    /// test defaults (not `stack`'s tweaks); its base URL. It stops with the stack.
    pub async fn another_gateway(&self) -> String {
        self.another_gateway_with(|s| s).await
    }

    /// `another_gateway` with `tweak` applied to its settings (a rotated secret, say).
    pub async fn another_gateway_with(&self, tweak: impl Fn(Source) -> Source) -> String {
        let settings = marquee_platform::Settings::load(&tweak(
            self.env
                .source()
                .set("gateway.booking_url", &self.booking_url),
        ))
        .expect("settings");
        let gateway = queue_gateway::Application::build_with(settings, self.gateway_stop.clone())
            .await
            .expect("another gateway starts");
        let url = format!("http://127.0.0.1:{}", gateway.port());
        tokio::spawn(gateway.run_until_stopped());
        url
    }

    /// Pay for a held reservation as the booking page does (`Api::pay`), at this stack's
    /// Stripe simulator.
    pub async fn pay(&self, reservation: &str, card: &str) -> (u16, Value) {
        self.api.pay(&self.stripe_url, reservation, card).await
    }

    /// A new fan of `event`, joined and admitted (within 20 s); it and its admission token.
    pub async fn admitted_fan(&self, event: &str) -> (Fan, String) {
        let (mut fan, _) = self.join(event, None).await;
        let token = self
            .wait_admitted(event, &mut fan, Duration::from_secs(20))
            .await;
        (fan, token)
    }

    /// A new fan of `event` holds `seat` of `show` and pays with Stripe's test Visa; the
    /// reservation id.
    pub async fn buy(&self, event: &str, show: &str, seat: &str) -> String {
        let (_, token) = self.admitted_fan(event).await;
        let res = self
            .reserve(&token, None, &json!({"show_id": show, "seat_ids": [seat]}))
            .await;
        assert_eq!(res.status(), 201);
        let held: Value = res.json().await.unwrap();
        let id = held["reservation_id"].as_str().unwrap().to_owned();
        assert_eq!(self.pay(&id, "pm_card_visa").await.0, 200);
        id
    }

    /// Every email the events service has written so far (`.eml` files, as sent).
    pub fn emails(&self) -> Vec<String> {
        std::fs::read_dir(self.mail_dir.path())
            .expect("the mail folder")
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }

    /// The body of a GET of `url` (a full URL: the services' `/metrics`, say).
    pub async fn text(&self, url: &str) -> String {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn patch_event(&self, id: &str, body: Value) {
        let res = self.patch_event_request(id, &body).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }

    /// An operator's `PATCH /admin/v1/events/{id}`; the answer whatever it is.
    pub async fn patch_event_request(&self, id: &str, body: &Value) -> Response {
        self.admin_patch(&format!("/admin/v1/events/{id}"), body)
            .await
    }

    /// A show of `rows` × `per_row` seats in `event` (`Api::show`); its id.
    pub async fn show(&self, event: &str, rows: usize, per_row: usize) -> String {
        self.api.show(event, rows, per_row, json!({})).await
    }

    pub async fn join(&self, event: &str, key_secret: Option<&str>) -> (Fan, Value) {
        let body = match key_secret {
            Some(s) => {
                json!({"visitor_key_hash": marquee_waitroom::admission::visitor_key_hash(s)})
            }
            None => json!({}),
        };
        let res = self.join_request(event, &body).await;
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        (Fan::joined(&v, key_secret), v)
    }

    /// `POST /v1/queue/{event}/join` with `body`; the answer whatever it is.
    pub async fn join_request(&self, event: &str, body: &Value) -> Response {
        self.http
            .post(self.at(&format!("/v1/queue/{event}/join")))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn status(&self, event: &str, fan: &Fan) -> Response {
        self.status_at(&self.base, event, fan).await
    }

    /// A status poll through the gateway at `base` (another replica, say).
    pub async fn status_at(&self, base: &str, event: &str, fan: &Fan) -> Response {
        self.http
            .get(format!("{base}/v1/queue/{event}/status"))
            .bearer_auth(&fan.queue_token)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap()
    }

    /// Joining again with the fan's queue token, through the gateway at `base`; the answer.
    pub async fn rejoin_at(&self, base: &str, event: &str, fan: &Fan) -> Value {
        self.http
            .post(format!("{base}/v1/queue/{event}/join"))
            .bearer_auth(&fan.queue_token)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Poll until admitted; the admission token.
    pub async fn wait_admitted(&self, event: &str, fan: &mut Fan, deadline: Duration) -> String {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let v: Value = self
                .status(event, fan)
                .await
                .json()
                .await
                .unwrap_or_default();
            if let Some(t) = v["queue_token"].as_str() {
                fan.queue_token = t.to_owned();
            }
            if let Some(t) = v["admission_token"].as_str() {
                return t.to_owned();
            }
            assert!(
                tokio::time::Instant::now() < end,
                "not admitted within {deadline:?}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn admitted_total(&mut self, event: &str) -> u64 {
        let key = marquee_waitroom::keys::state(event);
        let v: Option<u64> = self
            .redis_read(|mut redis| {
                let key = key.clone();
                async move { redis.hget(key, "admitted_total").await }
            })
            .await;
        v.unwrap_or(0)
    }

    pub async fn active_count(&mut self, event: &str) -> u64 {
        let key = marquee_waitroom::keys::active(event);
        self.redis_read(|mut redis| {
            let key = key.clone();
            async move { redis.zcard(key).await }
        })
        .await
    }

    /// A read of the test's own: the first command on a connection Redis dropped (a test that
    /// crashes Redis) fails while the connection comes back, so one that fails to reach Redis
    /// is tried again for up to 10 s; an error Redis answered fails at once.
    async fn redis_read<T, F, Fut>(&self, read: F) -> T
    where
        F: Fn(marquee_waitroom::connect::Redis) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let end = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match read(self.redis.clone()).await {
                Ok(v) => return v,
                Err(e)
                    if (e.is_io_error() || e.is_connection_dropped() || e.is_timeout())
                        && tokio::time::Instant::now() < end =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("reading Redis: {e}"),
            }
        }
    }
}
