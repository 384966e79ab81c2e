//! The catalog at the design's scale: a loader for thousands of theaters and hundreds of
//! thousands of shows (written straight into a database booking-core has migrated), and a
//! reader searching it the way fans do, many at once, over a mix of cities, dates and genres.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;

/// The genres the loader gives its films (each film two different ones).
pub const GENRES: [&str; 10] = [
    "action",
    "comedy",
    "drama",
    "horror",
    "family",
    "sci-fi",
    "thriller",
    "romance",
    "animation",
    "documentary",
];

/// Time zones the loader's cities are in (city `c` in `ZONES[c % ZONES.len()]`), so a
/// search's date is a local date in zones hours apart.
const ZONES: [&str; 8] = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Australia/Sydney",
];

/// A city's name: the loader writes it and the reader asks for it.
pub fn city(c: usize) -> String {
    format!("Scale City {c:03}")
}

#[derive(clap::Args)]
pub struct LoadOptions {
    /// A database booking-core has migrated (its own: the loader adds 350,000 shows).
    #[arg(long)]
    pub database_url: String,
    #[arg(long, default_value_t = 5_000)]
    pub theaters: usize,
    #[arg(long, default_value_t = 200)]
    pub cities: usize,
    /// Screens per theater.
    #[arg(long, default_value_t = 5)]
    pub screens: usize,
    #[arg(long, default_value_t = 120)]
    pub films: usize,
    #[arg(long, default_value_t = 50_000)]
    pub shows_per_day: usize,
    /// Days of shows, from tomorrow (local dates).
    #[arg(long, default_value_t = 7)]
    pub days: usize,
    /// Rows of seats in every show (15 seats each, created in bulk with the show).
    #[arg(long, default_value_t = 10)]
    pub rows: usize,
    /// Only the first this many days get seats (searches never read seats; the cold seat-map
    /// reads pick from these days). Every day by default.
    #[arg(long)]
    pub seat_days: Option<usize>,
}

/// Writes the catalog in one statement per table (per day for shows and seats, with the
/// time each took), idempotently: a second run adds nothing. Prints one JSON line at the end.
pub async fn load(o: LoadOptions) -> anyhow::Result<()> {
    anyhow::ensure!(o.cities > 0 && o.theaters >= o.cities && o.screens > 0 && o.films > 0);
    let screens = o.theaters * o.screens;
    anyhow::ensure!(
        o.shows_per_day.is_multiple_of(screens),
        "shows per day ({}) must be a multiple of the screens ({screens})",
        o.shows_per_day
    );
    let db = PgPoolOptions::new()
        .max_connections(1)
        .connect(&o.database_url)
        .await?;
    let started = Instant::now();
    let step = |what: &str, t: Instant, rows: u64| {
        eprintln!(
            "[catalog-load] {what}: {rows} rows in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    };
    sqlx::query("SET synchronous_commit = off")
        .execute(&db)
        .await?;

    let t = Instant::now();
    let n = sqlx::query(
        "INSERT INTO events (id, name, state, opens_at, rate_per_minute, max_active, session_ttl_s,
                             hold_ttl_s, min_poll_interval_ms, abandon_after_s)
         SELECT format('scale-c%s', lpad(c::text, 3, '0')), format('Scale city %s', c), 'open',
                now(), 600, 500, 900, 600, 2000, 60
         FROM generate_series(0, $1 - 1) c
         ON CONFLICT DO NOTHING",
    )
    .bind(o.cities as i32)
    .execute(&db)
    .await?
    .rows_affected();
    step("events (one per city)", t, n);

    let t = Instant::now();
    let n = sqlx::query(
        "INSERT INTO theaters (name, city, time_zone)
         SELECT format('Scale Theater %s', lpad(t::text, 4, '0')),
                format('Scale City %s', lpad((t % $2)::text, 3, '0')),
                ($3::text[])[(t % $2) % cardinality($3::text[]) + 1]
         FROM generate_series(0, $1 - 1) t
         ON CONFLICT DO NOTHING",
    )
    .bind(o.theaters as i32)
    .bind(o.cities as i32)
    .bind(ZONES.map(String::from).to_vec())
    .execute(&db)
    .await?
    .rows_affected();
    step("theaters", t, n);

    let t = Instant::now();
    let n = sqlx::query(
        "INSERT INTO screens (theater_id, name)
         SELECT t.id, s::text FROM theaters t, generate_series(1, $1) s
         WHERE t.name LIKE 'Scale Theater %'
         ON CONFLICT DO NOTHING",
    )
    .bind(o.screens as i32)
    .execute(&db)
    .await?
    .rows_affected();
    step("screens", t, n);

    let t = Instant::now();
    let n = sqlx::query(
        "INSERT INTO movies (title, genres)
         SELECT format('Scale Film %s', lpad(m::text, 3, '0')),
                ARRAY[($2::text[])[m % 10 + 1], ($2::text[])[(m + 1 + (m / 10) % 9) % 10 + 1]]
         FROM generate_series(0, $1 - 1) m
         ON CONFLICT DO NOTHING",
    )
    .bind(o.films as i32)
    .bind(GENRES.map(String::from).to_vec())
    .execute(&db)
    .await?
    .rows_affected();
    step("films", t, n);

    let per_screen = (o.shows_per_day / screens) as i32;
    let seat_days = o.seat_days.unwrap_or(o.days).min(o.days);
    let (mut shows, mut seats) = (0u64, 0u64);
    for day in 0..o.days {
        // Every screen's shows of one local day, from 13:00 three hours apart; the films
        // rotate across screens and days.
        let t = Instant::now();
        let n = sqlx::query(
            "WITH sc AS (
                 SELECT sc.id, t.time_zone, e.id AS event_id,
                        row_number() OVER (ORDER BY t.name, sc.name) - 1 AS k
                 FROM screens sc JOIN theaters t ON t.id = sc.theater_id
                 JOIN events e ON e.id = format('scale-c%s', lpad(split_part(t.city, ' ', 3), 3, '0'))
                 WHERE t.name LIKE 'Scale Theater %'),
             films AS (SELECT id, row_number() OVER (ORDER BY title) - 1 AS f
                       FROM movies WHERE title LIKE 'Scale Film %')
             INSERT INTO shows (id, event_id, movie_id, screen_id, starts_at, price_cents,
                                currency, seat_count)
             SELECT format('s_scale_%s_%s_%s', to_char(current_date + 1 + $1, 'YYYYMMDD'), sc.k, slot),
                    sc.event_id, films.id, sc.id,
                    ((current_date + 1 + $1)::timestamp + make_interval(hours => 13 + 3 * slot))
                        AT TIME ZONE sc.time_zone,
                    1200, 'usd', $3
             FROM sc CROSS JOIN generate_series(0, $2 - 1) slot
             JOIN films ON films.f = (sc.k * 7 + slot * 3 + $1) % $4
             ON CONFLICT DO NOTHING",
        )
        .bind(day as i32)
        .bind(per_screen)
        .bind((o.rows * 15) as i32)
        .bind(o.films as i64)
        .execute(&db)
        .await?
        .rows_affected();
        shows += n;
        step(&format!("day {} shows", day + 1), t, n);
        // One statement makes a day's seats, so the day has them all if any one show has.
        let seated: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM seats
                            WHERE show_id = format('s_scale_%s_0_0', to_char(current_date + 1 + $1, 'YYYYMMDD')))",
        )
        .bind(day as i32)
        .fetch_one(&db)
        .await?;
        if day < seat_days && !seated {
            let t = Instant::now();
            let n = sqlx::query(
                "INSERT INTO seats (show_id, seat_id, row_name, row_index, number, price_cents)
                 SELECT s.id, chr(65 + r) || '-' || n, chr(65 + r), r, n, 1200
                 FROM shows s, generate_series(0, $2 - 1) r, generate_series(1, 15) n
                 WHERE s.id LIKE format('s\\_scale\\_%s\\_%%', to_char(current_date + 1 + $1, 'YYYYMMDD'))",
            )
            .bind(day as i32)
            .bind(o.rows as i32)
            .execute(&db)
            .await?
            .rows_affected();
            seats += n;
            step(&format!("day {} seats", day + 1), t, n);
        }
    }
    let t = Instant::now();
    sqlx::query("ANALYZE").execute(&db).await?;
    step("analyze", t, 0);
    println!(
        "{}",
        json!({"shows_added": shows, "seats_added": seats,
               "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0})
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct ReadOptions {
    /// The gateway (or booking-core, or the bare server: any URL answering these paths).
    #[arg(long, default_value = "http://127.0.0.1:18080")]
    pub url: String,
    #[arg(long, default_value_t = 256)]
    pub readers: usize,
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// The loader's cities (searches ask for `Scale City 000`…).
    #[arg(long, default_value_t = 200)]
    pub cities: usize,
    #[arg(long, default_value_t = 7)]
    pub days: usize,
    /// Instead of searches, the readers open seat maps of tomorrow's shows nobody has opened
    /// yet (the loader's `s_scale_{date}_{screen}_{slot}`, each asked for once), this many
    /// shows from a random screen on.
    #[arg(long)]
    pub cold_seat_maps: Option<usize>,
    /// The loader's screens (for the cold seat maps' random start).
    #[arg(long, default_value_t = 25_000)]
    pub screens: usize,
}

/// One search as a fan makes it: a city always (weighted towards the big ones), a date
/// four times in five (tomorrow most often), a genre one time in three.
fn search(rng: &mut impl Rng, cities: usize, days: usize) -> String {
    // Squaring a uniform draw favours the low-numbered cities: a few big cities, a long tail.
    let c = ((rng.random::<f64>().powi(2)) * cities as f64) as usize;
    let mut q = format!("/v1/movies?city={}", city(c).replace(' ', "+"));
    if rng.random_ratio(4, 5) {
        let d = ((rng.random::<f64>().powi(2)) * days as f64) as i64;
        let date = chrono::Utc::now().date_naive() + chrono::Days::new(1 + d as u64);
        q.push_str(&format!("&date={date}"));
    }
    if rng.random_ratio(1, 3) {
        q.push_str(&format!(
            "&genre={}",
            GENRES[rng.random_range(0..GENRES.len())]
        ));
    }
    q
}

/// Readers asking as fast as answers come, for a while; prints one JSON line: answers per
/// second, latency percentiles (ms), distinct paths asked, mean bytes (as they came: gzipped
/// or not), answers that came gzipped, failures.
pub async fn read(o: ReadOptions) -> anyhow::Result<()> {
    // As a fan's browser asks: any answer may come gzipped, and is counted as it came (its
    // bytes on the wire; the bare server answers as many).
    let browser = reqwest::header::HeaderMap::from_iter([(
        reqwest::header::ACCEPT_ENCODING,
        reqwest::header::HeaderValue::from_static("gzip, deflate, br, zstd"),
    )]);
    let http = reqwest::Client::builder()
        .default_headers(browser)
        .pool_max_idle_per_host(o.readers)
        .timeout(Duration::from_secs(10))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1)).format("%Y%m%d");
    let first_cold = rand::rng().random_range(0..o.screens * 2);
    let next_cold = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.readers {
        let (http, url, next_cold) = (http.clone(), o.url.clone(), next_cold.clone());
        let (cities, days, cold, shows) = (o.cities, o.days, o.cold_seat_maps, o.screens * 2);
        let tomorrow = tomorrow.to_string();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let (mut bytes, mut failures, mut gzipped) = (0u64, 0u64, 0u64);
            let mut paths = std::collections::HashSet::new();
            while Instant::now() < deadline {
                let path = match cold {
                    Some(n) => {
                        let i = next_cold.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let show = (first_cold + i) % shows;
                        format!(
                            "/v1/shows/s_scale_{tomorrow}_{}_{}/seats",
                            show / 2,
                            show % 2
                        )
                    }
                    None => search(&mut rand::rng(), cities, days),
                };
                let t = Instant::now();
                match http.get(format!("{url}{path}")).send().await {
                    Ok(res) if res.status().is_success() => {
                        let gzip = res.headers().get(reqwest::header::CONTENT_ENCODING)
                            == Some(&reqwest::header::HeaderValue::from_static("gzip"));
                        gzipped += u64::from(gzip);
                        match res.bytes().await {
                            Ok(b) => {
                                bytes += b.len() as u64;
                                hist.record(t.elapsed().as_micros() as u64).ok();
                            }
                            Err(_) => failures += 1,
                        }
                    }
                    _ => failures += 1,
                }
                paths.insert(path);
            }
            (hist, bytes, failures, gzipped, paths)
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    let (mut bytes, mut failures, mut gzipped) = (0u64, 0u64, 0u64);
    let mut paths = std::collections::HashSet::new();
    for t in tasks {
        let (h, b, f, g, p) = t.await?;
        hist.add(h)?;
        bytes += b;
        failures += f;
        gzipped += g;
        paths.extend(p);
    }
    let secs = started.elapsed().as_secs_f64();
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        json!({"answers_per_s": (hist.len() as f64 / secs).round(), "answers": hist.len(),
               "p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": hist.max() as f64 / 1000.0,
               "distinct_paths": paths.len(), "mean_bytes": bytes.checked_div(hist.len()).unwrap_or(0),
               "gzipped": gzipped, "failures": failures})
    );
    Ok(())
}
