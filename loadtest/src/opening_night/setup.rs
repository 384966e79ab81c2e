//! The evening's event and shows, made through the admin API as an operator would.

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::Options;

/// The event's id and its shows' ids.
pub struct Sale {
    pub event: String,
    pub shows: Vec<String>,
    pub opens_at: chrono::DateTime<chrono::Utc>,
}

async fn admin(
    http: &reqwest::Client,
    o: &Options,
    path: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let res = http
        .post(format!("{}{path}", o.gateway))
        .bearer_auth(&o.operator_token)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = res.status();
    let answer: Value = res.json().await.unwrap_or_default();
    if status.as_u16() != 201 {
        bail!("POST {path} answered {status}: {answer}");
    }
    Ok(answer)
}

/// Create the event (pre-queue when fans arrive before opening, else open) and its shows.
pub async fn create(http: &reqwest::Client, o: &Options) -> anyhow::Result<Sale> {
    let event = format!(
        "opening-night-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let prequeue = o.arrival == super::Arrival::Prequeue;
    let opens_at = chrono::Utc::now()
        + chrono::Duration::seconds(if prequeue { i64::from(o.prequeue_s) } else { 0 });
    // Paused while the shows are made, so nobody is admitted to an event with no seats.
    admin(
        http,
        o,
        "/admin/v1/events",
        &json!({
            "id": event, "name": "Opening night (load test)", "opens_at": opens_at.to_rfc3339(),
            "state": "paused", "rate_per_minute": o.rate_per_minute, "max_active": o.max_active,
            "session_ttl_s": o.session_ttl_s, "hold_ttl_s": o.hold_ttl_s,
            "idle_after_s": o.idle_after_s, "min_poll_interval_ms": o.min_poll_ms,
            "abandon_after_s": o.abandon_after_s, "pow_bits": o.pow_bits,
        }),
    )
    .await?;
    let mut shows = Vec::new();
    for i in 0..o.shows {
        let rows: Vec<Value> = (0..o.rows)
            .map(|r| json!({"name": row_name(r), "seats": o.seats_per_row}))
            .collect();
        let show = admin(
            http,
            o,
            "/admin/v1/shows",
            &json!({
                "event_id": event,
                "movie": {"title": "The Premiere", "genres": ["drama"]},
                "theater": {"name": format!("Load Cinema {i}"), "city": "Loadtown", "time_zone": "UTC"},
                "screen": "1",
                "starts_at": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
                "price_cents": 1200, "currency": "usd", "layout": {"rows": rows},
            }),
        )
        .await?;
        shows.push(show["show_id"].as_str().context("a show id")?.to_owned());
    }
    let res = http
        .patch(format!("{}/admin/v1/events/{event}", o.gateway))
        .bearer_auth(&o.operator_token)
        .json(&json!({"state": if prequeue { "prequeue" } else { "open" }}))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("opening the sale answered {}", res.status());
    }
    Ok(Sale {
        event,
        shows,
        opens_at,
    })
}

/// Close the sale at the end: the worker retires the event once its last admitted fan's slot
/// lapses (off its list, its metric series dropped), as an operator closing a sale would.
pub async fn close(http: &reqwest::Client, o: &Options, event: &str) {
    let _ = http
        .patch(format!("{}/admin/v1/events/{event}", o.gateway))
        .bearer_auth(&o.operator_token)
        .json(&json!({"state": "closed"}))
        .send()
        .await;
}

/// Row names A…Z, then AA, AB, …
fn row_name(i: u32) -> String {
    let letter = |n: u32| char::from(b'A' + (n % 26) as u8);
    if i < 26 {
        letter(i).to_string()
    } else {
        format!("{}{}", letter(i / 26 - 1), letter(i))
    }
}
