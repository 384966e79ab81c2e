//! `GET /admin/v1/events/{event_id}/history`: the last hour of an event for the console's
//! charts, from the points the admitting worker records (`marquee_waitroom::keys::history`):
//! queue length, admitted and dropped per minute, active sessions against the cap, seats held
//! and sold, and the estimated time to drain the queue at the pace of the moment.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::Operator;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// One recorded point, as the worker writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    at_ms: i64,
    waiting: u64,
    active: u64,
    cap: u64,
    admitted_total: u64,
    dropped_total: u64,
    held: u64,
    sold: u64,
    rate: u64,
}

fn parse(member: &str) -> Option<Point> {
    let f: Vec<&str> = member.split('|').collect();
    let n = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as u64)
    };
    Some(Point {
        at_ms: f.first()?.parse().ok()?,
        waiting: n(1)?,
        active: n(2)?,
        cap: n(3)?,
        admitted_total: n(4)?,
        dropped_total: n(5)?,
        held: n(6)?,
        sold: n(7)?,
        rate: n(8)?,
    })
}

/// The points as the console draws them: per-minute paces from the totals' differences.
fn series(points: &[Point]) -> Vec<Value> {
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (admitted, dropped) = match i.checked_sub(1).map(|j| points[j]) {
                Some(prev) if p.at_ms > prev.at_ms => {
                    let per_min = 60_000.0 / (p.at_ms - prev.at_ms) as f64;
                    (
                        p.admitted_total.saturating_sub(prev.admitted_total) as f64 * per_min,
                        p.dropped_total.saturating_sub(prev.dropped_total) as f64 * per_min,
                    )
                }
                _ => (0.0, 0.0),
            };
            // At the pace of the moment, else at the operator's rate.
            let pace = if admitted > 0.0 {
                admitted
            } else {
                p.rate as f64
            };
            let drain_s = (p.waiting > 0 && pace > 0.0)
                .then(|| (p.waiting as f64 / pace * 60.0).round() as u64);
            json!({
                "at": chrono::DateTime::from_timestamp_millis(p.at_ms),
                "waiting": p.waiting, "active": p.active, "cap": p.cap, "rate": p.rate,
                "admitted_per_min": admitted.round(), "dropped_per_min": dropped.round(),
                "held": p.held, "sold": p.sold, "drain_s": drain_s,
            })
        })
        .collect()
}

pub async fn history(
    op: Operator,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Value>> {
    super::managed(&op, &event_id)?;
    let since = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let members: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(marquee_waitroom::keys::history(&event_id))
        .arg(since)
        .arg("+inf")
        .query_async(&mut state.redis.clone())
        .await
        .map_err(|e| ApiError::Unavailable(format!("redis: {e}")))?;
    let points: Vec<Point> = members.iter().filter_map(|m| parse(m)).collect();
    Ok(Json(
        json!({ "event_id": event_id, "points": series(&points) }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_come_from_the_totals_differences() {
        let a = parse("60000|100|10|50|0|0|5|0|600").unwrap();
        let b = parse("70000|80|20|50|20|1|9|3|600").unwrap();
        let s = series(&[a, b]);
        assert_eq!(s[0]["admitted_per_min"], 0.0);
        assert_eq!(s[1]["admitted_per_min"], 120.0, "20 in 10 s");
        assert_eq!(s[1]["dropped_per_min"], 6.0);
        assert_eq!(s[1]["drain_s"], 40, "80 waiting at 120 a minute");
        assert_eq!(
            s[0]["drain_s"], 10,
            "100 waiting at the rate of 600 a minute"
        );
        assert!(parse("garbage").is_none());
    }
}
