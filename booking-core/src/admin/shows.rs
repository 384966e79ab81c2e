//! `POST /admin/v1/shows`: a show of a movie in a theater's screen, with its seat layout.
//! Movies, theaters and screens are found by name or created on the way.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use rand::Rng;
use serde_json::{Value, json};

use super::Operator;
use super::fields::Fields;
use crate::error::ApiResult;
use crate::extract::Body;
use crate::live;
use crate::model::valid_event_id;
use crate::state::AppState;

const MAX_ROWS: usize = 200;
const MAX_SEATS_PER_ROW: i64 = 500;
const MAX_SEATS: usize = 20_000;

pub async fn create(
    _: Operator,
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
    let price = f.int("price_cents", 0, 100_000_000, true);
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
    let rows = layout(&mut f);
    f.done()?;
    let (
        Some(event_id),
        Some(screen),
        Some(starts_at),
        Some(price),
        Some(currency),
        Some(title),
        Some(theater),
        Some(city),
        Some(zone),
    ) = (
        event_id, screen, starts_at, price, currency, title, theater, city, zone,
    )
    else {
        unreachable!("required fields were checked");
    };

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
    let mut seat_ids = Vec::new();
    let mut row_names = Vec::new();
    let mut row_indexes = Vec::new();
    let mut numbers = Vec::new();
    for (index, (name, count)) in rows.iter().enumerate() {
        for n in 1..=*count {
            seat_ids.push(format!("{name}-{n}"));
            row_names.push(name.clone());
            row_indexes.push(index as i32);
            numbers.push(n as i32);
        }
    }
    sqlx::query(
        "INSERT INTO shows (id, event_id, movie_id, screen_id, starts_at, price_cents, currency, seat_count)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&show_id)
    .bind(&event_id)
    .bind(movie_id)
    .bind(screen_id)
    .bind(starts_at)
    .bind(price)
    .bind(&currency)
    .bind(seat_ids.len() as i32)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO seats (show_id, seat_id, row_name, row_index, number)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::int[])",
    )
    .bind(&show_id)
    .bind(&seat_ids)
    .bind(&row_names)
    .bind(&row_indexes)
    .bind(&numbers)
    .execute(&mut *tx)
    .await?;
    let settings = live::settings_for(&mut tx, &event_id).await?;
    let mut redis = state.redis.clone();
    live::publish(&mut redis, &state.settings.redis.events_key, &settings).await?;
    tx.commit().await?;
    tracing::info!(show = %show_id, event = %event_id, seats = seat_ids.len(), "show created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "show_id": show_id, "event_id": event_id, "seat_count": seat_ids.len() })),
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

fn layout(f: &mut Fields<'_>) -> Vec<(String, i64)> {
    let Some(l) = object(f, "layout") else {
        return Vec::new();
    };
    let Some(Value::Array(rows)) = l.get("rows") else {
        f.check
            .require(false, "layout.rows", "must be a list of rows");
        return Vec::new();
    };
    f.check.require(
        !rows.is_empty() && rows.len() <= MAX_ROWS,
        "layout.rows",
        &format!("must have 1 to {MAX_ROWS} rows"),
    );
    let mut out: Vec<(String, i64)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let name = row.get("name").and_then(Value::as_str);
        let seats = row.get("seats").and_then(Value::as_i64);
        let name_ok = name.is_some_and(|n| {
            !n.is_empty() && n.len() <= 8 && n.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        f.check.require(
            name_ok,
            &format!("layout.rows[{i}].name"),
            "must be 1 to 8 letters or digits",
        );
        f.check.require(
            seats.is_some_and(|s| (1..=MAX_SEATS_PER_ROW).contains(&s)),
            &format!("layout.rows[{i}].seats"),
            &format!("must be a count from 1 to {MAX_SEATS_PER_ROW}"),
        );
        if let (Some(n), Some(s)) = (name, seats) {
            f.check.require(
                !out.iter().any(|(o, _)| o == n),
                &format!("layout.rows[{i}].name"),
                "names a row twice",
            );
            out.push((n.to_owned(), s));
        }
    }
    let total: i64 = out.iter().map(|(_, s)| *s).sum();
    f.check.require(
        total as usize <= MAX_SEATS,
        "layout.rows",
        &format!("at most {MAX_SEATS} seats in one show"),
    );
    out
}
