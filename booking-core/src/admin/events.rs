//! `/admin/v1/events`: create, list, read with live figures, change settings and state. Each
//! change is written to Postgres and published to Redis in the same request; if Redis cannot
//! take it, the change is rolled back and the operator gets a 503 to retry.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use marquee_parsers::form::Fields;
use marquee_parsers::presentation;
use marquee_waitroom::{EventState, QueueMode, keys};
use rand::Rng;
use serde_json::{Value, json};

use super::Operator;
use crate::audit::{self, Entry};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::live::{self, EventRow};
use crate::model::valid_event_id;
use crate::operators::Act;
use crate::state::AppState;

const DAY_S: i64 = 86_400;

pub async fn create(
    op: Operator,
    State(state): State<AppState>,
    Body(body): Body<Value>,
) -> ApiResult<Response> {
    let mut f = Fields::new(&body)?;
    f.only(&[
        "id",
        "name",
        "opens_at",
        "rate_per_minute",
        "max_active",
        "session_ttl_s",
        "hold_ttl_s",
        "min_poll_interval_ms",
        "abandon_after_s",
        "idle_after_s",
        "pow_bits",
        "hold_extend_s",
        "max_hold_s",
        "state",
        "queue_mode",
        "message",
        "display_name",
        "accent_color",
        "logo_url",
    ]);
    let id = f.text("id", 64, false);
    if let Some(id) = &id {
        f.check
            .require(valid_event_id(id), "id", "must match [a-z0-9-]{1,64}");
    }
    let name = f.text("name", 200, true);
    let opens_at = f.time("opens_at", true);
    let rate = f.int("rate_per_minute", 1, 1_000_000, true);
    let max_active = f.int("max_active", 1, 10_000_000, true);
    let session_ttl = f.int("session_ttl_s", 30, DAY_S, true);
    let hold_ttl = f.int("hold_ttl_s", 1, 3600, true);
    let min_poll = f
        .int("min_poll_interval_ms", 0, 600_000, false)
        .unwrap_or(2000);
    let abandon = f.int("abandon_after_s", 5, DAY_S, false).unwrap_or(60);
    let idle = f
        .int("idle_after_s", 1, DAY_S, false)
        .unwrap_or(i64::from(marquee_waitroom::live::default_idle_after_s()));
    let pow_bits = f.int("pow_bits", 0, 24, false).unwrap_or(0);
    let hold_extend = f.int("hold_extend_s", 0, 3600, false).unwrap_or(300);
    let max_hold = f.int("max_hold_s", 1, 7200, false);
    if let (Some(max), Some(ttl)) = (max_hold, hold_ttl) {
        f.check.require(
            max >= ttl,
            "max_hold_s",
            "must be at least hold_ttl_s (a hold's whole life, its extension included)",
        );
    }
    let st = state_field(&mut f);
    let mode = mode_field(&mut f);
    let shown = presentation::read(&mut f);
    f.done()?;
    op.may(Act::CreateEvent)?;
    let (
        Some(name),
        Some(opens_at),
        Some(rate),
        Some(max_active),
        Some(session_ttl),
        Some(hold_ttl),
    ) = (name, opens_at, rate, max_active, session_ttl, hold_ttl)
    else {
        unreachable!("required fields were checked");
    };
    let id = id.unwrap_or_else(|| slug(&name));

    let mut tx = state.db.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO events (id, name, state, opens_at, rate_per_minute, max_active, session_ttl_s,
                             hold_ttl_s, min_poll_interval_ms, abandon_after_s, pow_bits, idle_after_s,
                             hold_extend_s, max_hold_s, message, display_name, accent_color, logo_url,
                             queue_mode)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&id)
    .bind(&name)
    .bind(st.unwrap_or(EventState::Prequeue).as_str())
    .bind(opens_at)
    .bind(rate as i32)
    .bind(max_active as i32)
    .bind(session_ttl as i32)
    .bind(hold_ttl as i32)
    .bind(min_poll as i32)
    .bind(abandon as i32)
    .bind(pow_bits as i16)
    .bind(idle as i32)
    .bind(hold_extend as i32)
    .bind(max_hold.map(|n| n as i32))
    .bind(shown.message.write().1)
    .bind(shown.display_name.write().1)
    .bind(shown.accent_color.write().1)
    .bind(shown.logo_url.write().1)
    .bind(mode.unwrap_or_default().as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(ApiError::Conflict(format!("event `{id}` already exists")));
    }
    let after = settings_json(&mut tx, &id).await?;
    audit::record(
        &mut tx,
        &Entry::by(&op, "event.create", &id)
            .event(&id)
            .change(None, after),
    )
    .await?;
    let settings = live::settings_for(&mut tx, &id).await?;
    let mut redis = state.redis.clone();
    live::publish(&mut redis, &state.settings.redis.events_key, &settings).await?;
    tx.commit().await?;
    tracing::info!(event = %id, "event created");
    let row = load(&state, &id).await?;
    Ok((StatusCode::CREATED, Json(view(&row, &settings, None))).into_response())
}

pub async fn list(op: Operator, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let rows: Vec<EventRow> = sqlx::query_as(concat!(
        "SELECT ",
        crate::event_columns!(),
        " FROM events ORDER BY opens_at DESC, id LIMIT 500"
    ))
    .fetch_all(&state.db)
    .await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows.into_iter().filter(|r| op.sees(&r.id)) {
        let figures = figures(&state, &row.id).await;
        let mut conn = state.db.acquire().await?;
        let live = live::settings_for(&mut conn, &row.id).await?;
        events.push(view(&row, &live, Some(figures)));
    }
    Ok(Json(json!({ "events": events })))
}

pub async fn get(
    op: Operator,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Value>> {
    super::managed(&op, &event_id)?;
    let row = load(&state, &event_id).await?;
    let mut conn = state.db.acquire().await?;
    let live = live::settings_for(&mut conn, &event_id).await?;
    let figures = figures(&state, &event_id).await;
    Ok(Json(view(&row, &live, Some(figures))))
}

pub async fn update(
    op: Operator,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    Body(body): Body<Value>,
) -> ApiResult<Json<Value>> {
    super::managed(&op, &event_id)?;
    let mut f = Fields::new(&body)?;
    f.only(&[
        "name",
        "opens_at",
        "rate_per_minute",
        "max_active",
        "session_ttl_s",
        "hold_ttl_s",
        "min_poll_interval_ms",
        "abandon_after_s",
        "idle_after_s",
        "pow_bits",
        "hold_extend_s",
        "max_hold_s",
        "state",
        "queue_mode",
        "message",
        "display_name",
        "accent_color",
        "logo_url",
    ]);
    let name = f.text("name", 200, false);
    let opens_at = f.time("opens_at", false);
    let rate = f.int("rate_per_minute", 1, 1_000_000, false);
    let max_active = f.int("max_active", 1, 10_000_000, false);
    let session_ttl = f.int("session_ttl_s", 30, DAY_S, false);
    let hold_ttl = f.int("hold_ttl_s", 1, 3600, false);
    let min_poll = f.int("min_poll_interval_ms", 0, 600_000, false);
    let abandon = f.int("abandon_after_s", 5, DAY_S, false);
    let idle = f.int("idle_after_s", 1, DAY_S, false);
    let pow_bits = f.int("pow_bits", 0, 24, false);
    let hold_extend = f.int("hold_extend_s", 0, 3600, false);
    let max_hold = f.int("max_hold_s", 1, 7200, false);
    let st = state_field(&mut f);
    let mode = mode_field(&mut f);
    let shown = presentation::read(&mut f);
    f.done()?;

    let to_i32 = |v: Option<i64>| v.map(|n| n as i32);
    let mut tx = state.db.begin().await?;
    // Locked, so the entry's "before" is what this change replaced.
    let before: Option<Value> =
        sqlx::query_scalar("SELECT to_jsonb(e) FROM events e WHERE id = $1 FOR UPDATE")
            .bind(&event_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(before) = before else {
        return Err(ApiError::NotFound("event"));
    };
    let updated = sqlx::query(
        "UPDATE events SET
            name = coalesce($2, name), opens_at = coalesce($3, opens_at),
            rate_per_minute = coalesce($4, rate_per_minute), max_active = coalesce($5, max_active),
            session_ttl_s = coalesce($6, session_ttl_s), hold_ttl_s = coalesce($7, hold_ttl_s),
            min_poll_interval_ms = coalesce($8, min_poll_interval_ms),
            abandon_after_s = coalesce($9, abandon_after_s), state = coalesce($10, state),
            pow_bits = coalesce($11, pow_bits), idle_after_s = coalesce($12, idle_after_s),
            hold_extend_s = coalesce($13, hold_extend_s), max_hold_s = coalesce($14, max_hold_s),
            message = CASE WHEN $15 THEN $16 ELSE message END,
            display_name = CASE WHEN $17 THEN $18 ELSE display_name END,
            accent_color = CASE WHEN $19 THEN $20 ELSE accent_color END,
            logo_url = CASE WHEN $21 THEN $22 ELSE logo_url END,
            queue_mode = coalesce($23, queue_mode),
            updated_at = now()
         WHERE id = $1",
    )
    .bind(&event_id)
    .bind(name)
    .bind(opens_at)
    .bind(to_i32(rate))
    .bind(to_i32(max_active))
    .bind(to_i32(session_ttl))
    .bind(to_i32(hold_ttl))
    .bind(to_i32(min_poll))
    .bind(to_i32(abandon))
    .bind(st.map(EventState::as_str))
    .bind(pow_bits.map(|n| n as i16))
    .bind(to_i32(idle))
    .bind(to_i32(hold_extend))
    .bind(to_i32(max_hold))
    .bind(shown.message.write().0)
    .bind(shown.message.write().1)
    .bind(shown.display_name.write().0)
    .bind(shown.display_name.write().1)
    .bind(shown.accent_color.write().0)
    .bind(shown.accent_color.write().1)
    .bind(shown.logo_url.write().0)
    .bind(shown.logo_url.write().1)
    .bind(mode.map(QueueMode::as_str))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(ApiError::NotFound("event"));
    }
    let after = settings_json(&mut tx, &event_id).await?.unwrap_or_default();
    let (was, now) = audit::changed(&before, &after, &["updated_at", "created_at"]);
    let action = if was.get("state").is_some() {
        "event.state"
    } else {
        "event.update"
    };
    audit::record(
        &mut tx,
        &Entry::by(&op, action, &event_id)
            .event(&event_id)
            .change(Some(was), Some(now)),
    )
    .await?;
    let live = live::settings_for(&mut tx, &event_id).await?;
    let mut redis = state.redis.clone();
    live::publish(&mut redis, &state.settings.redis.events_key, &live).await?;
    tx.commit().await?;
    tracing::info!(event = %event_id, state = live.state.as_str(), "event updated");
    let row = load(&state, &event_id).await?;
    let figures = figures(&state, &event_id).await;
    Ok(Json(view(&row, &live, Some(figures))))
}

/// The event's row as JSON, as the audit trail records settings.
async fn settings_json(conn: &mut sqlx::PgConnection, id: &str) -> ApiResult<Option<Value>> {
    Ok(sqlx::query_scalar(
        "SELECT to_jsonb(e) - 'created_at' - 'updated_at' FROM events e WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

fn state_field(f: &mut Fields<'_>) -> Option<EventState> {
    let raw = f.text("state", 16, false)?;
    let parsed = EventState::parse(&raw);
    f.check.require(
        parsed.is_some(),
        "state",
        "must be one of prequeue, open, paused, closed",
    );
    parsed
}

fn mode_field(f: &mut Fields<'_>) -> Option<QueueMode> {
    let raw = f.text("queue_mode", 16, false)?;
    let parsed = QueueMode::parse(&raw);
    f.check.require(
        parsed.is_some(),
        "queue_mode",
        "must be always or safety_net",
    );
    parsed
}

async fn load(state: &AppState, id: &str) -> ApiResult<EventRow> {
    sqlx::query_as(concat!(
        "SELECT ",
        crate::event_columns!(),
        " FROM events WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&state.db)
    .await?
    .ok_or(ApiError::NotFound("event"))
}

/// The event as the admin API answers it. `state` is the effective one, as every gateway and
/// worker acts on it (a pre-queue event whose `opens_at` has passed is `open`), and
/// `stored_state` what was last set.
fn view(row: &EventRow, live: &marquee_waitroom::LiveSettings, figures: Option<Value>) -> Value {
    let mut v = serde_json::to_value(row).unwrap_or_default();
    v["stored_state"] = row.state.clone().into();
    v["state"] = live.effective_state(chrono::Utc::now()).as_str().into();
    v["sold_out"] = live.sold_out.into();
    if let Some(fig) = figures
        && let (Some(obj), Some(fig)) = (v.as_object_mut(), fig.as_object())
    {
        obj.extend(fig.clone());
    }
    v
}

/// Live figures: the queue's from Redis, the seats' from Postgres. A Redis outage leaves the
/// queue figures `null` rather than failing the whole answer.
async fn figures(state: &AppState, event_id: &str) -> Value {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut redis = state.redis.clone();
    let queue: Result<(u64, u64, Option<u64>, Vec<String>), _> = redis::pipe()
        .zcard(keys::waiting(event_id))
        .zcount(keys::active(event_id), now_ms, "+inf")
        .hget(keys::state(event_id), keys::field::ADMITTED_TOTAL)
        .zrangebyscore(keys::admits(event_id), now_ms - 60_000, "+inf")
        .query_async(&mut redis)
        .await;
    let seats: Result<(i64, i64), _> = sqlx::query_as(concat!(
        "SELECT
           (SELECT count(*) FROM seats s JOIN shows sh ON sh.id = s.show_id
             WHERE sh.event_id = $1 AND ",
        crate::seat_held_live!("s"),
        "),
           (SELECT count(*) FROM sold_seats ss JOIN shows sh ON sh.id = ss.show_id
             WHERE sh.event_id = $1)"
    ))
    .bind(event_id)
    .fetch_one(&state.db)
    .await;
    let mut out = json!({});
    match queue {
        Ok((waiting, active, total, recent)) => {
            let last_minute = marquee_waitroom::queue::Pace::of(&recent);
            out["waiting"] = waiting.into();
            out["active"] = active.into();
            out["admitted_total"] = total.unwrap_or(0).into();
            out["admitted_last_minute"] = last_minute.admitted.into();
            out["dropped_last_minute"] = (last_minute.passed - last_minute.admitted).into();
        }
        Err(e) => {
            tracing::warn!(error = %e, "queue figures unavailable");
            for k in [
                "waiting",
                "active",
                "admitted_total",
                "admitted_last_minute",
                "dropped_last_minute",
            ] {
                out[k] = Value::Null;
            }
        }
    }
    match seats {
        Ok((held, sold)) => {
            out["held_seats"] = held.into();
            out["sold_seats"] = sold.into();
        }
        Err(e) => tracing::warn!(error = %e, "seat figures unavailable"),
    }
    out
}

/// An id from a name: lower-case words joined by `-`, plus a short random suffix.
fn slug(name: &str) -> String {
    let base: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let base: Vec<&str> = base.split('-').filter(|s| !s.is_empty()).collect();
    let mut base = base.join("-");
    base.truncate(50);
    let suffix: u32 = rand::rng().random_range(0..0xff_ffff);
    format!("{}-{suffix:06x}", base.trim_end_matches('-'))
        .trim_start_matches('-')
        .to_owned()
}
