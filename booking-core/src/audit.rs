//! The audit trail (`audit_log`): who did what, when, to what, with the settings before and
//! after and the request's id. `record` appends an entry on the caller's connection, so a
//! change and its entry commit (or roll back) together; the table refuses every change after
//! that (migration 9). `GET /admin/v1/audit` reads it, newest first, a page at a time.
//! Entries never hold secrets, codes or emails: callers pass settings, ids and outcomes only.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::operators::{Act, Operator};
use crate::state::AppState;

/// What the command line records as its operator.
pub const CLI: &str = "cli";

/// One entry to append.
#[derive(Debug)]
pub struct Entry<'a> {
    pub operator: &'a str,
    /// `event.create`, `event.update`, `show.create`, `booking.refund`, `operator.add`, …
    pub action: &'a str,
    pub event_id: Option<&'a str>,
    pub target: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<&'a str>,
}

impl<'a> Entry<'a> {
    /// An entry for what `by` does to `target`, with the request's id.
    pub fn by(by: &'a Operator, action: &'a str, target: &'a str) -> Self {
        Self {
            operator: &by.name,
            action,
            event_id: None,
            target,
            before: None,
            after: None,
            request_id: by.request_id.as_deref(),
        }
    }

    pub fn event(mut self, event_id: &'a str) -> Self {
        self.event_id = Some(event_id);
        self
    }

    pub fn change(mut self, before: Option<Value>, after: Option<Value>) -> Self {
        self.before = before;
        self.after = after;
        self
    }
}

/// Append `entry` on `conn` (inside the caller's transaction); its id.
pub async fn record(conn: &mut sqlx::PgConnection, entry: &Entry<'_>) -> ApiResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO audit_log (operator, action, event_id, target, before, after, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(entry.operator)
    .bind(entry.action)
    .bind(entry.event_id)
    .bind(entry.target)
    .bind(&entry.before)
    .bind(&entry.after)
    .bind(entry.request_id)
    .fetch_one(conn)
    .await?)
}

/// The fields of two JSON objects that differ (the ones in `ignore` aside), as the objects
/// before and after: an entry says what changed, not everything that stayed.
pub fn changed(before: &Value, after: &Value, ignore: &[&str]) -> (Value, Value) {
    let empty = Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut was = Map::new();
    let mut now = Map::new();
    for key in b.keys().chain(a.keys()) {
        if ignore.contains(&key.as_str()) || was.contains_key(key) || now.contains_key(key) {
            continue;
        }
        let (old, new) = (b.get(key), a.get(key));
        if old != new {
            was.insert(key.clone(), old.cloned().unwrap_or(Value::Null));
            now.insert(key.clone(), new.cloned().unwrap_or(Value::Null));
        }
    }
    (Value::Object(was), Value::Object(now))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    event_id: Option<String>,
    operator: Option<String>,
    since: Option<chrono::DateTime<chrono::Utc>>,
    before: Option<chrono::DateTime<chrono::Utc>>,
    /// The `next` of the previous page.
    cursor: Option<i64>,
    limit: Option<i64>,
}

/// `GET /admin/v1/audit?event_id=&operator=&since=&before=&cursor=&limit=`: newest first;
/// `next` is the cursor of the following page (null on the last).
pub async fn list(
    op: Operator,
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> ApiResult<Json<Value>> {
    match &filter.event_id {
        Some(event) => op.may(Act::Manage(event))?,
        None => op.may(Act::AuditAll)?,
    }
    let limit = filter.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "must be from 1 to 500"));
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        at: chrono::DateTime<chrono::Utc>,
        operator: String,
        action: String,
        event_id: Option<String>,
        target: String,
        before: Option<Value>,
        after: Option<Value>,
        request_id: Option<String>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, at, operator, action, event_id, target, before, after, request_id
         FROM audit_log
         WHERE ($1::text IS NULL OR event_id = $1) AND ($2::text IS NULL OR operator = $2)
           AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
           AND ($5::bigint IS NULL OR id < $5)
         ORDER BY id DESC LIMIT $6",
    )
    .bind(&filter.event_id)
    .bind(&filter.operator)
    .bind(filter.since)
    .bind(filter.before)
    .bind(filter.cursor)
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let more = rows.len() as i64 > limit;
    let entries: Vec<Value> = rows
        .iter()
        .take(limit as usize)
        .map(|r| {
            json!({
                "id": r.id, "at": r.at, "operator": r.operator, "action": r.action,
                "event_id": r.event_id, "target": r.target, "before": r.before,
                "after": r.after, "request_id": r.request_id,
            })
        })
        .collect();
    let next = more.then(|| rows[limit as usize - 1].id);
    Ok(Json(json!({ "entries": entries, "next": next })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_keeps_only_what_changed() {
        let before =
            json!({"rate_per_minute": 600, "state": "paused", "updated_at": 1, "name": "x"});
        let after = json!({"rate_per_minute": 900, "state": "paused", "updated_at": 2, "name": "x", "pow_bits": 12});
        let (was, now) = changed(&before, &after, &["updated_at"]);
        assert_eq!(was, json!({"rate_per_minute": 600, "pow_bits": null}));
        assert_eq!(now, json!({"rate_per_minute": 900, "pow_bits": 12}));
    }
}
