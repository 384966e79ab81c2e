//! The operator's figures for the event, read once a second through the admin API: the
//! queue length, active sessions, admissions and seats over time, as the server counts them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::record::Recorder;
use super::stop::Stop;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Sample {
    /// Seconds since the run began.
    pub t: f64,
    pub waiting: u64,
    pub active: u64,
    pub admitted_total: u64,
    pub held_seats: u64,
    pub sold_seats: u64,
    pub sold_out: bool,
}

pub async fn sample(
    http: reqwest::Client,
    url: String,
    token: String,
    rec: Arc<Recorder>,
    seats_total: u64,
    stop: Stop,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    loop {
        let answer: Option<Value> = match http.get(&url).bearer_auth(&token).send().await {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        if let Some(v) = answer {
            let n = |k: &str| v[k].as_u64().unwrap_or(0);
            let s = Sample {
                t: rec.start.elapsed().as_secs_f64(),
                waiting: n("waiting"),
                active: n("active"),
                admitted_total: n("admitted_total"),
                held_seats: n("held_seats"),
                sold_seats: n("sold_seats"),
                sold_out: v["sold_out"] == true,
            };
            rec.live.seats_left.store(
                seats_total.saturating_sub(s.sold_seats) as i64,
                std::sync::atomic::Ordering::Relaxed,
            );
            samples.push(s);
        }
        if !stop.sleep(Duration::from_secs(1)).await {
            return samples;
        }
    }
}
