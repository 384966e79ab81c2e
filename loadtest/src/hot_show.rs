//! Hot show: many admitted fans holding a few seats of one 10,000-seat show and releasing
//! them, as fast as booking-core allows. Counts holds per second, latency, and any seat granted
//! to a second hold while the first client still held it and had not yet asked to release it
//! (must stay 0; the race tests check the database itself).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, StatusCode};
use marquee_waitroom::Keyring;
use rand::Rng;
use serde_json::{Value, json};

use crate::connection::{Connection, Target};

/// A reserve's body.
#[derive(serde::Serialize)]
struct Reserve<'a> {
    show_id: &'a str,
    seat_ids: &'a [String],
}

/// What a granted reserve answers that the client needs: the hold to release.
#[derive(serde::Deserialize)]
struct Reserved<'a> {
    reservation_id: &'a str,
}

#[derive(clap::Args)]
pub struct SetupOptions {
    /// booking-core (or the gateway).
    #[arg(long, default_value = "http://127.0.0.1:18081")]
    pub url: String,
    #[arg(long, default_value = "demo-operator-token")]
    pub operator_token: String,
    #[arg(long, default_value_t = 100)]
    pub rows: usize,
    #[arg(long, default_value_t = 100)]
    pub per_row: usize,
}

#[derive(clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub setup: SetupOptions,
    /// The admission keys folder the services use (to mint tokens as the gateway would).
    #[arg(long)]
    pub keys_dir: PathBuf,
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// The Redis the services use: the visitors are admitted there (a reserve needs a slot).
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    pub redis_url: String,
    /// Distinct admitted visitors to rotate through (each may reserve 10 times a minute).
    #[arg(long, default_value_t = 20_000)]
    pub visitors: usize,
}

async fn create(http: &reqwest::Client, o: &SetupOptions) -> anyhow::Result<(String, String)> {
    let event = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let auth = format!("Bearer {}", o.operator_token);
    let res = http
        .post(format!("{}/admin/v1/events", o.url))
        .header("authorization", &auth)
        .json(&json!({"id": event, "name": "Benchmark", "opens_at": "2026-01-01T00:00:00Z", "state": "open",
            "rate_per_minute": 1, "max_active": 1, "session_ttl_s": 3600, "hold_ttl_s": 600, "min_poll_interval_ms": 0}))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 201, "create event: {}", res.text().await?);
    let rows: Vec<Value> = (0..o.rows)
        .map(|r| json!({"name": format!("R{r}"), "seats": o.per_row}))
        .collect();
    let res = http
        .post(format!("{}/admin/v1/shows", o.url))
        .header("authorization", &auth)
        .json(&json!({"event_id": event, "movie": {"title": "Benchmark Film"},
            "theater": {"name": "Bench Hall", "city": "Benchville", "time_zone": "UTC"},
            "screen": "1", "starts_at": "2031-01-01T20:00:00Z", "price_cents": 1000, "currency": "usd",
            "layout": {"rows": rows}}))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 201, "create show: {}", res.text().await?);
    let show = res.json::<Value>().await?["show_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((event, show))
}

/// Close the benchmark's event once it is measured: booking-core counts every seat of every
/// event not closed each second (the seat figures), so a run's show left open would weigh on
/// every later run against the same database.
async fn close(http: &reqwest::Client, o: &SetupOptions, event: &str) -> anyhow::Result<()> {
    let res = http
        .patch(format!("{}/admin/v1/events/{event}", o.url))
        .header("authorization", format!("Bearer {}", o.operator_token))
        .json(&json!({"state": "closed"}))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 200, "close event: {}", res.text().await?);
    Ok(())
}

pub async fn setup_seatmap(o: SetupOptions) -> anyhow::Result<()> {
    let (event, show) = create(&reqwest::Client::new(), &o).await?;
    println!(
        "{}",
        json!({"event": event, "show": show, "path": format!("/v1/shows/{show}/seats")})
    );
    Ok(())
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let (event, show) = create(&http, &o.setup).await?;
    let keys = Keyring::load_dir(&o.keys_dir, false)?;
    // Each visitor's `Authorization` value, made once: the clients only clone it.
    let visitors: Vec<String> = (0..o.visitors)
        .map(|i| format!("bench-visitor-{i}"))
        .collect();
    let bearers: Arc<Vec<HeaderValue>> = Arc::new(
        visitors
            .iter()
            .map(|v| {
                let t = keys
                    .sign(&marquee_testkit::claims(v, &event, 3600))
                    .expect("sign");
                HeaderValue::from_str(&format!("Bearer {t}")).expect("a token is header-safe")
            })
            .collect(),
    );
    let names: Vec<&str> = visitors.iter().map(String::as_str).collect();
    marquee_testkit::admit_all(&o.redis_url, &event, &names, 3600).await?;
    let target = Target::parse(&o.setup.url)?;
    let next = Arc::new(AtomicUsize::new(0));
    let held: Arc<Mutex<HashSet<String>>> = Arc::default();
    let (rows, per_row) = (o.setup.rows, o.setup.per_row);
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.clients {
        let (bearers, next, held) = (bearers.clone(), next.clone(), held.clone());
        let mut connection = Connection::new(target.clone());
        let show = show.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut holds, mut conflicts, mut errors, mut doubles) = (0u64, 0u64, 0u64, 0u64);
            while Instant::now() < deadline {
                let bearer = &bearers[next.fetch_add(1, Ordering::Relaxed) % bearers.len()];
                let (n, row, start) = {
                    let mut rng = rand::rng();
                    let n = rng.random_range(2..=4);
                    (
                        n,
                        rng.random_range(0..rows),
                        rng.random_range(1..=per_row - n + 1),
                    )
                };
                let seats: Vec<String> =
                    (start..start + n).map(|k| format!("R{row}-{k}")).collect();
                let body = serde_json::to_vec(&Reserve {
                    show_id: &show,
                    seat_ids: &seats,
                })
                .expect("a reserve serializes");
                let t0 = Instant::now();
                let res = connection
                    .send(
                        Method::POST,
                        "/v1/bookings/reserve",
                        Some(bearer),
                        Some(bytes::Bytes::from(body)),
                    )
                    .await;
                let Ok((status, body)) = res else {
                    errors += 1;
                    continue;
                };
                lat.push(t0.elapsed());
                match status.as_u16() {
                    201 => {
                        holds += 1;
                        {
                            let mut h = held.lock().expect("held");
                            for s in &seats {
                                if !h.insert(s.clone()) {
                                    doubles += 1;
                                }
                            }
                        }
                        // Forget the seats before asking to release them: a later 201 for one
                        // of them while it is still in the set is a real double hold.
                        {
                            let mut h = held.lock().expect("held");
                            for s in &seats {
                                h.remove(s);
                            }
                        }
                        let released = match serde_json::from_slice::<Reserved>(&body) {
                            Ok(r) => {
                                let path = format!("/v1/bookings/{}", r.reservation_id);
                                connection.send(Method::DELETE, &path, None, None).await
                            }
                            Err(e) => Err(e.into()),
                        };
                        if !released.is_ok_and(|(status, _)| status == StatusCode::OK) {
                            errors += 1;
                        }
                    }
                    409 => conflicts += 1,
                    _ => errors += 1,
                }
            }
            (lat, holds, conflicts, errors, doubles)
        }));
    }
    let mut lat = Vec::new();
    let (mut holds, mut conflicts, mut errors, mut doubles) = (0, 0, 0, 0);
    for t in tasks {
        let (l, h, c, e, d) = t.await?;
        lat.extend(l);
        holds += h;
        conflicts += c;
        errors += e;
        doubles += d;
    }
    let secs = started.elapsed().as_secs_f64();
    close(&http, &o.setup, &event).await?;
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{}",
        json!({
            "benchmark": "hot_show", "seats": rows * per_row, "clients": o.clients, "seconds": secs,
            "holds": holds, "holds_per_s": holds as f64 / secs, "booking_txns_per_s": (2 * holds + conflicts) as f64 / secs,
            "conflicts": conflicts, "errors": errors, "double_holds": doubles,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99),
        })
    );
    Ok(())
}
