//! The catalog: movies with their upcoming shows, filtered by city, the theater's local date
//! and genre; and one show.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::model::{Check, plausible_id};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct MovieFilter {
    pub city: Option<String>,
    pub date: Option<String>,
    pub genre: Option<String>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct ShowSummary {
    pub id: String,
    pub theater: String,
    pub city: String,
    pub screen: String,
    pub starts_at: DateTime<Utc>,
    pub time_zone: String,
    pub price_cents: i64,
    pub currency: String,
    pub event_id: String,
}

#[derive(Debug, Serialize)]
pub struct Movie {
    pub id: String,
    pub title: String,
    pub genres: Vec<String>,
    pub shows: Vec<ShowSummary>,
}

/// `GET /v1/movies?city=&date=&genre=`
pub async fn movies(
    State(state): State<AppState>,
    Query(filter): Query<MovieFilter>,
) -> ApiResult<Json<serde_json::Value>> {
    let mut check = Check::default();
    if let Some(c) = &filter.city {
        check.text(c, "city", 100);
    }
    if let Some(g) = &filter.genre {
        check.text(g, "genre", 50);
    }
    let date = match filter.date.as_deref() {
        None | Some("") => None,
        Some(d) => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                check.require(false, "date", "must be a date as YYYY-MM-DD");
                None
            }
        },
    };
    check.done()?;

    #[derive(sqlx::FromRow)]
    struct Row {
        movie_id: uuid::Uuid,
        title: String,
        genres: Vec<String>,
        #[sqlx(flatten)]
        show: ShowSummary,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT m.id AS movie_id, m.title, m.genres,
                s.id, t.name AS theater, t.city, sc.name AS screen, s.starts_at, t.time_zone,
                s.price_cents, s.currency, s.event_id
         FROM shows s
         JOIN movies m ON m.id = s.movie_id
         JOIN screens sc ON sc.id = s.screen_id
         JOIN theaters t ON t.id = sc.theater_id
         WHERE s.starts_at > now() AND s.status = 'on_sale'
           AND ($1::text IS NULL OR lower(t.city) = lower($1))
           AND ($2::date IS NULL OR (s.starts_at AT TIME ZONE t.time_zone)::date = $2)
           AND ($3::text IS NULL OR lower($3) = ANY (SELECT lower(g) FROM unnest(m.genres) g))
         ORDER BY m.title, s.starts_at, t.city, t.name
         LIMIT 2000",
    )
    .bind(filter.city.as_deref().filter(|c| !c.is_empty()))
    .bind(date)
    .bind(filter.genre.as_deref().filter(|g| !g.is_empty()))
    .fetch_all(&state.read_db)
    .await?;

    let mut movies: Vec<Movie> = Vec::new();
    for row in rows {
        let id = row.movie_id.to_string();
        match movies.iter_mut().find(|m| m.id == id) {
            Some(m) => m.shows.push(row.show),
            None => movies.push(Movie {
                id,
                title: row.title,
                genres: row.genres,
                shows: vec![row.show],
            }),
        }
    }
    Ok(Json(serde_json::json!({ "movies": movies })))
}

/// `GET /v1/shows/{show_id}`
pub async fn show(
    State(state): State<AppState>,
    Path(show_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    if !plausible_id(&show_id) {
        return Err(ApiError::NotFound("show"));
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        title: String,
        genres: Vec<String>,
        seat_count: i32,
        #[sqlx(flatten)]
        show: ShowSummary,
    }
    let row: Row = sqlx::query_as(
        "SELECT m.title, m.genres, s.seat_count,
                s.id, t.name AS theater, t.city, sc.name AS screen, s.starts_at, t.time_zone,
                s.price_cents, s.currency, s.event_id
         FROM shows s
         JOIN movies m ON m.id = s.movie_id
         JOIN screens sc ON sc.id = s.screen_id
         JOIN theaters t ON t.id = sc.theater_id
         WHERE s.id = $1",
    )
    .bind(&show_id)
    .fetch_optional(&state.read_db)
    .await?
    .ok_or(ApiError::NotFound("show"))?;
    let mut body = serde_json::to_value(&row.show).map_err(anyhow::Error::from)?;
    body["movie"] = serde_json::json!({ "title": row.title, "genres": row.genres });
    body["seat_count"] = row.seat_count.into();
    Ok(Json(body))
}
