//! Loads the demo's data through the admin API, as an operator would: one open event with
//! shows of several movies in four cities over three days, and one event still in pre-queue.
//! Running it again changes nothing.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{Duration as Days, NaiveTime, Utc};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "Load Marquee's demo data through the admin API")]
struct Args {
    /// Where the admin API is (the gateway, or booking-core directly).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Operator token.
    #[arg(
        long,
        env = "MARQUEE_DEMO_OPERATOR_TOKEN",
        default_value = "demo-operator-token"
    )]
    token: String,
}

const MOVIES: [(&str, &[&str]); 4] = [
    ("Starfall: Opening Night", &["sci-fi", "action"]),
    ("The Long Monsoon", &["drama", "romance"]),
    ("Midnight Heist", &["thriller", "action"]),
    ("Paper Lanterns", &["animation", "family"]),
];

const THEATERS: [(&str, &str, &str); 4] = [
    ("Regal Palace", "Mumbai", "Asia/Kolkata"),
    ("Odeon Leicester", "London", "Europe/London"),
    ("Majestic 12", "New York", "America/New_York"),
    ("Sunset Cinema", "Los Angeles", "America/Los_Angeles"),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let admin = |path: &str| format!("{}/admin/v1{path}", args.url.trim_end_matches('/'));
    let auth = format!("Bearer {}", args.token);

    let existing = http
        .get(admin("/events/opening-night"))
        .header("authorization", &auth)
        .send()
        .await
        .context("reaching the admin API")?;
    if existing.status().is_success() {
        println!("demo data already loaded (event opening-night exists)");
        return Ok(());
    }

    let now = Utc::now();
    for (id, name, opens_at, state) in [
        (
            "opening-night",
            "Starfall: Opening Night on-sale",
            now - Days::minutes(1),
            "open",
        ),
        (
            "midnight-premiere",
            "Midnight Heist premiere on-sale",
            now + Days::minutes(10),
            "prequeue",
        ),
    ] {
        let body = json!({
            "id": id, "name": name, "opens_at": opens_at.to_rfc3339(), "state": state,
            "rate_per_minute": 120, "max_active": 200, "session_ttl_s": 900, "hold_ttl_s": 600,
            "min_poll_interval_ms": 2000, "abandon_after_s": 60,
        });
        post(&http, &admin("/events"), &auth, &body).await?;
        println!("event {id} created ({state})");
    }

    let mut shows = 0;
    for day in 1..=3 {
        for (t, (theater, city, zone)) in THEATERS.iter().enumerate() {
            for (m, (title, genres)) in MOVIES.iter().enumerate() {
                let event = if m == 2 {
                    "midnight-premiere"
                } else {
                    "opening-night"
                };
                let local_hour = 14 + 2 * ((m + t) % 4) as u32;
                let date = (now + Days::days(day)).date_naive();
                let starts = date
                    .and_time(NaiveTime::from_hms_opt(local_hour, 0, 0).expect("valid time"))
                    .and_utc();
                let body = json!({
                    "event_id": event,
                    "movie": { "title": title, "genres": genres },
                    "theater": { "name": theater, "city": city, "time_zone": zone },
                    "screen": format!("Screen {}", 1 + m % 2),
                    "starts_at": starts.to_rfc3339(),
                    "currency": if *city == "Mumbai" { "inr" } else if *city == "London" { "gbp" } else { "usd" },
                    "layout": layout(1200 + 100 * m as i64),
                });
                post(&http, &admin("/shows"), &auth, &body).await?;
                shows += 1;
            }
        }
    }
    println!("{shows} shows created in {} cities", THEATERS.len());
    Ok(())
}

/// A cinema's house: Classic at the front (rows A-E), Prime in the middle (F-J) and Recliners
/// at the back (K-L), rows widening towards the back with aisles after the fourth seat and
/// before the last four, and two wheelchair spaces with companion seats in row A.
fn layout(base_cents: i64) -> Value {
    let rows: Vec<Value> = (0..12)
        .map(|r| {
            let seats = 16 + 2 * (r / 3);
            let category = match r {
                0..=4 => "Classic",
                5..=9 => "Prime",
                _ => "Recliner",
            };
            json!({
                "name": ((b'A' + r as u8) as char).to_string(),
                "seats": seats,
                "category": category,
                "gaps_after": [4, seats - 4],
            })
        })
        .collect();
    json!({
        "categories": [
            {"name": "Classic", "price_cents": base_cents},
            {"name": "Prime", "price_cents": base_cents + 300},
            {"name": "Recliner", "price_cents": base_cents + 900},
        ],
        "rows": rows,
        "wheelchair": [{"row": "A", "number": 1}, {"row": "A", "number": 16}],
        "companion": [{"row": "A", "number": 2}, {"row": "A", "number": 15}],
    })
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    auth: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let res = http
        .post(url)
        .header("authorization", auth)
        .json(body)
        .send()
        .await?;
    let status = res.status();
    let text = res.text().await?;
    if !status.is_success() {
        bail!("{url} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}
