//! `POST /admin/v1/shows`: a show of a movie in a theater's screen, with its seat layout.
//! Movies, theaters and screens are found by name or created on the way.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use marquee_parsers::form::Fields;
use marquee_parsers::layout::{self, Layout, SeatSpec};
use rand::Rng;
use serde_json::{Value, json};

use super::Operator;
use crate::audit::{self, Entry};
use crate::error::ApiResult;
use crate::extract::Body;
use crate::live;
use crate::model::valid_event_id;
use crate::operators::Act;
use crate::state::AppState;

pub async fn create(
    op: Operator,
    State(state): State<AppState>,
    Body(body): Body<Value>,
) -> ApiResult<Response> {
    let mut f = Fields::new(&body)?;
    f.only(&[
        "event_id",
        "movie",
        "theater",
        "screen",
        "starts_at",
        "price_cents",
        "currency",
        "layout",
    ]);
    let event_id = f.text("event_id", 64, true);
    if let Some(e) = &event_id {
        f.check
            .require(valid_event_id(e), "event_id", "must match [a-z0-9-]{1,64}");
    }
    let screen = f.text("screen", 100, true);
    let starts_at = f.time("starts_at", true);
    // Required unless the layout names categories with prices of their own (`Layout::read`).
    let price = layout::price(&mut f);
    let currency = f.text("currency", 3, true).map(|c| c.to_lowercase());
    if let Some(c) = &currency {
        f.check.require(
            c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()),
            "currency",
            "must be a three-letter ISO 4217 code",
        );
    }
    let (title, genres) = movie(&mut f);
    let (theater, city, zone) = theater(&mut f);
    let layout = Layout::read(&mut f, price);
    f.done()?;
    let (
        Some(event_id),
        Some(screen),
        Some(starts_at),
        Some(currency),
        Some(title),
        Some(theater),
        Some(city),
        Some(zone),
    ) = (
        event_id, screen, starts_at, currency, title, theater, city, zone,
    )
    else {
        unreachable!("required fields were checked");
    };

    op.may(Act::Manage(&event_id))?;
    let mut tx = state.db.begin().await?;
    let zone_known: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
            .bind(&zone)
            .fetch_one(&mut *tx)
            .await?;
    let event_known: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE id = $1)")
            .bind(&event_id)
            .fetch_one(&mut *tx)
            .await?;
    let mut check = crate::model::Check::default();
    check.require(
        zone_known,
        "theater.time_zone",
        "must be an IANA time zone, e.g. Europe/London",
    );
    check.require(event_known, "event_id", "no such event");
    check.done()?;

    let movie_id: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO movies (title, genres) VALUES ($1, $2)
         ON CONFLICT (title) DO UPDATE SET genres = EXCLUDED.genres RETURNING id",
    )
    .bind(&title)
    .bind(&genres)
    .fetch_one(&mut *tx)
    .await?;
    let theater_id: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO theaters (name, city, time_zone) VALUES ($1, $2, $3)
         ON CONFLICT (name, city) DO UPDATE SET time_zone = EXCLUDED.time_zone RETURNING id",
    )
    .bind(&theater)
    .bind(&city)
    .bind(&zone)
    .fetch_one(&mut *tx)
    .await?;
    let screen_id: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO screens (theater_id, name) VALUES ($1, $2)
         ON CONFLICT (theater_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
    )
    .bind(theater_id)
    .bind(&screen)
    .fetch_one(&mut *tx)
    .await?;

    let show_id = format!(
        "s_{}",
        URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 9]>())
    );
    let seats = layout.seats();
    sqlx::query(
        "INSERT INTO shows (id, event_id, movie_id, screen_id, starts_at, price_cents, currency, seat_count)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&show_id)
    .bind(&event_id)
    .bind(movie_id)
    .bind(screen_id)
    .bind(starts_at)
    .bind(layout.lowest_price())
    .bind(&currency)
    .bind(seats.len() as i32)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO seats (show_id, seat_id, row_name, row_index, number, category, price_cents, kind, gap_after)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::int[], $6::text[], $7::bigint[], $8::text[], $9::bool[])",
    )
    .bind(&show_id)
    .bind(column(&seats, |s| s.id.clone()))
    .bind(column(&seats, |s| s.row.clone()))
    .bind(column(&seats, |s| s.row_index))
    .bind(column(&seats, |s| s.number))
    .bind(column(&seats, |s| s.category.clone()))
    .bind(column(&seats, |s| s.price_cents))
    .bind(column(&seats, |s| s.kind.as_str()))
    .bind(column(&seats, |s| s.gap_after))
    .execute(&mut *tx)
    .await?;
    let summary = json!({
        "movie": title, "theater": theater, "city": city, "screen": screen,
        "starts_at": starts_at, "currency": currency, "seat_count": seats.len(),
        "categories": layout.categories.iter()
            .map(|c| json!({"name": c.name, "price_cents": c.price_cents}))
            .collect::<Vec<_>>(),
    });
    audit::record(
        &mut tx,
        &Entry::by(&op, "show.create", &show_id)
            .event(&event_id)
            .change(None, Some(summary)),
    )
    .await?;
    let settings = live::settings_for(&mut tx, &event_id).await?;
    let mut redis = state.redis.clone();
    live::publish(&mut redis, &state.settings.redis.events_key, &settings).await?;
    tx.commit().await?;
    state.searches.forget();
    tracing::info!(show = %show_id, event = %event_id, seats = seats.len(), "show created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "show_id": show_id, "event_id": event_id, "seat_count": seats.len() })),
    )
        .into_response())
}

fn object<'a>(f: &mut Fields<'a>, name: &str) -> Option<&'a serde_json::Map<String, Value>> {
    match f.map.get(name) {
        Some(Value::Object(m)) => Some(m),
        _ => {
            f.check.require(false, name, "must be an object");
            None
        }
    }
}

fn movie(f: &mut Fields<'_>) -> (Option<String>, Vec<String>) {
    let Some(m) = object(f, "movie") else {
        return (None, Vec::new());
    };
    let title = match m.get("title") {
        Some(Value::String(t)) => {
            f.check.text(t, "movie.title", 300);
            Some(t.clone())
        }
        _ => {
            f.check.require(false, "movie.title", "is required");
            None
        }
    };
    let mut genres = Vec::new();
    match m.get("genres") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) if list.len() <= 10 => {
            for (i, g) in list.iter().enumerate() {
                match g.as_str() {
                    Some(s) => {
                        f.check.text(s, &format!("movie.genres[{i}]"), 40);
                        genres.push(s.to_lowercase());
                    }
                    None => {
                        f.check
                            .require(false, &format!("movie.genres[{i}]"), "must be a string");
                    }
                }
            }
        }
        Some(_) => {
            f.check.require(
                false,
                "movie.genres",
                "must be a list of at most 10 strings",
            );
        }
    }
    (title, genres)
}

fn theater(f: &mut Fields<'_>) -> (Option<String>, Option<String>, Option<String>) {
    let Some(t) = object(f, "theater") else {
        return (None, None, None);
    };
    let mut get = |key: &str, max: usize| match t.get(key) {
        Some(Value::String(s)) => {
            f.check.text(s, &format!("theater.{key}"), max);
            Some(s.clone())
        }
        _ => {
            f.check
                .require(false, &format!("theater.{key}"), "is required");
            None
        }
    };
    (get("name", 200), get("city", 100), get("time_zone", 64))
}

/// One field of every seat, as a column for `unnest`.
fn column<T>(seats: &[SeatSpec], get: impl Fn(&SeatSpec) -> T) -> Vec<T> {
    seats.iter().map(get).collect()
}

/// `GET /admin/v1/shows/{show_id}`: the show's status, seat counts and, once cancelled, the
/// cancellation's progress.
pub async fn get(
    op: Operator,
    State(state): State<AppState>,
    axum::extract::Path(show_id): axum::extract::Path<String>,
) -> ApiResult<Json<Value>> {
    let show = crate::cancellation::status_of(&state.db, &show_id).await?;
    op.may(Act::Manage(show["event_id"].as_str().unwrap_or_default()))?;
    Ok(Json(show))
}

/// `POST /admin/v1/shows/{show_id}/cancel`: `202`, the refunds follow
/// (`crate::cancellation`).
pub async fn cancel(
    op: Operator,
    State(state): State<AppState>,
    axum::extract::Path(show_id): axum::extract::Path<String>,
) -> ApiResult<Response> {
    let show = crate::cancellation::request(&state.db, &op, &show_id).await?;
    state.shows.forget(&show_id);
    state.searches.forget();
    Ok((StatusCode::ACCEPTED, Json(show)).into_response())
}

/// `GET /admin/v1/shows`: the shows of the events this operator manages, soonest first (at
/// most 500), each with its status, seats sold and, once cancelled, the cancellation's
/// progress, for the console.
pub async fn list(op: Operator, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        event_id: String,
        title: String,
        theater: String,
        city: String,
        starts_at: chrono::DateTime<chrono::Utc>,
        time_zone: String,
        status: crate::model::ShowStatus,
        seat_count: i32,
        sold: i64,
        refunded: Option<i32>,
        total: Option<i32>,
        done: Option<bool>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT s.id, s.event_id, m.title, t.name AS theater, t.city, s.starts_at, t.time_zone,
                s.status, s.seat_count,
                (SELECT count(*) FROM sold_seats ss WHERE ss.show_id = s.id) AS sold,
                c.refunded, c.total, c.done_at IS NOT NULL AS done
         FROM shows s JOIN movies m ON m.id = s.movie_id
         JOIN screens sc ON sc.id = s.screen_id JOIN theaters t ON t.id = sc.theater_id
         LEFT JOIN show_cancellations c ON c.show_id = s.id
         ORDER BY s.starts_at, s.id LIMIT 500",
    )
    .fetch_all(&state.db)
    .await?;
    let shows: Vec<Value> = rows
        .into_iter()
        .filter(|r| op.sees(&r.event_id))
        .map(|r| {
            let mut v = json!({
                "show_id": r.id, "event_id": r.event_id, "title": r.title,
                "theater": r.theater, "city": r.city, "starts_at": r.starts_at,
                "time_zone": r.time_zone, "status": r.status, "seat_count": r.seat_count,
                "sold_seats": r.sold,
            });
            if let Some(done) = r.done {
                v["cancellation"] = json!({
                    "refunded": r.refunded.unwrap_or(0), "total": r.total, "done": done,
                });
            }
            v
        })
        .collect();
    Ok(Json(json!({ "shows": shows })))
}
