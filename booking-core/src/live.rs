//! Each event's live settings in Redis (`wr:{event}:cfg`), written from Postgres, the source
//! of truth: by the admin request that changes them, and by the monitor when an event sells
//! out or seats come back.

use chrono::{DateTime, Utc};
use marquee_waitroom::{EventState, LiveSettings, keys};
use redis::AsyncCommands;
use sqlx::PgConnection;

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct EventRow {
    pub id: String,
    pub name: String,
    pub state: String,
    pub opens_at: DateTime<Utc>,
    pub rate_per_minute: i32,
    pub max_active: i32,
    pub session_ttl_s: i32,
    pub hold_ttl_s: i32,
    pub min_poll_interval_ms: i32,
    pub abandon_after_s: i32,
    pub idle_after_s: i32,
    pub pow_bits: i16,
    pub hold_extend_s: i32,
    pub max_hold_s: Option<i32>,
    pub message: Option<String>,
    pub display_name: Option<String>,
    pub accent_color: Option<String>,
    pub logo_url: Option<String>,
    pub queue_mode: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns of [`EventRow`], for `concat!` into static SQL.
#[macro_export]
macro_rules! event_columns {
    () => {
        "id, name, state, opens_at, rate_per_minute, max_active, session_ttl_s, hold_ttl_s, \
         min_poll_interval_ms, abandon_after_s, idle_after_s, pow_bits, hold_extend_s, max_hold_s, \
         message, display_name, accent_color, logo_url, queue_mode, created_at, updated_at"
    };
}

/// Whether the event is sold out: it has shows, and none of them has a seat that could be
/// held now (a cancelled show's seats never count). An event with no shows yet is not.
pub async fn sold_out(conn: &mut PgConnection, event_id: &str) -> ApiResult<bool> {
    // Asked of every live event every second. Each show's seats are looked up by its key
    // (`LATERAL … LIMIT 1`): as a join, the prepared statement's generic plan scanned the
    // seats of every show for a free one (at the design's 350,000 shows, 20 ms an event, one
    // core kept busy by 200 events); and whether the event has shows at all, not how many.
    let (shows, free): (bool, bool) = sqlx::query_as(concat!(
        "SELECT EXISTS (SELECT 1 FROM shows WHERE event_id = $1),
                EXISTS (SELECT 1 FROM shows sh
                        CROSS JOIN LATERAL (SELECT 1 FROM seats s
                            WHERE s.show_id = sh.id AND ",
        crate::seat_free!("s"),
        " LIMIT 1) free
                        WHERE sh.event_id = $1 AND sh.status = 'on_sale')"
    ))
    .bind(event_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(shows && !free)
}

pub async fn settings_for(conn: &mut PgConnection, event_id: &str) -> ApiResult<LiveSettings> {
    let row: EventRow = sqlx::query_as(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE id = $1"
    ))
    .bind(event_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ApiError::NotFound("event"))?;
    let sold_out = sold_out(conn, event_id).await?;
    Ok(to_live(&row, sold_out))
}

pub fn to_live(row: &EventRow, sold_out: bool) -> LiveSettings {
    LiveSettings {
        id: row.id.clone(),
        name: row.name.clone(),
        state: EventState::parse(&row.state).unwrap_or(EventState::Closed),
        opens_at: row.opens_at,
        rate_per_minute: row.rate_per_minute as u32,
        max_active: row.max_active as u32,
        session_ttl_s: row.session_ttl_s as u32,
        hold_ttl_s: row.hold_ttl_s as u32,
        min_poll_interval_ms: row.min_poll_interval_ms as u32,
        abandon_after_s: row.abandon_after_s as u32,
        idle_after_s: row.idle_after_s as u32,
        pow_bits: row.pow_bits as u8,
        sold_out,
        queue_mode: marquee_waitroom::QueueMode::parse(&row.queue_mode).unwrap_or_default(),
        message: row.message.clone(),
        display_name: row.display_name.clone(),
        accent_color: row.accent_color.clone(),
        logo_url: row.logo_url.clone(),
        revision: row.updated_at.timestamp_micros(),
    }
}

/// Write an event's settings to Redis (never over a newer revision) and list the event.
/// `false` when Redis already held a newer revision.
pub async fn publish(
    redis: &mut marquee_waitroom::connect::Redis,
    events_key: &str,
    live: &LiveSettings,
) -> ApiResult<bool> {
    write(redis, events_key, live, false).await
}

/// Write an event's settings to Redis whatever revision it holds. Only while holding the
/// event's row lock: no change to the event can commit (and publish) meanwhile.
pub async fn force_publish(
    redis: &mut marquee_waitroom::connect::Redis,
    events_key: &str,
    live: &LiveSettings,
) -> ApiResult<()> {
    write(redis, events_key, live, true).await.map(drop)
}

async fn write(
    redis: &mut marquee_waitroom::connect::Redis,
    events_key: &str,
    live: &LiveSettings,
    force: bool,
) -> ApiResult<bool> {
    let script = marquee_waitroom::live::publish_script();
    let mut publish = script.prepare_invoke();
    publish
        .key(keys::cfg(&live.id))
        .arg(live.to_json())
        .arg(live.revision);
    if force {
        publish.arg("force");
    }
    let written: i64 = publish.invoke_async(redis).await?;
    let _: () = redis.sadd(events_key, &live.id).await?;
    Ok(written == 1)
}

/// What Redis holds for an event now, if anything.
pub async fn published(
    redis: &mut marquee_waitroom::connect::Redis,
    event_id: &str,
) -> ApiResult<Option<LiveSettings>> {
    let raw: Option<String> = redis.get(keys::cfg(event_id)).await?;
    Ok(raw.and_then(|s| serde_json::from_str(&s).ok()))
}
