//! The catalog: movies with their upcoming shows, filtered by city, the theater's local date
//! and genre; and one show.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use prometheus::{IntCounter, Registry};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::error::{ApiError, ApiResult};
use crate::expiring::Expiring;
use crate::extract::Query;
use crate::gzip::{self, Gzip, Piece};
use crate::listing::Listings;
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

/// Distinct searches remembered at most. An answer is a few kilobytes to a few hundred (a
/// city's day at the design's scale is 80–90 KB, its week 430 KB), and only a lifetime's
/// searches are kept: this bounds what a burst of distinct searches holds (about 25 MB at the
/// design's answers), not the everyday. Few: since answers are joined from parts written
/// once (`answer`), making one again costs about what keeping it saves (at the design's
/// scale, 0.32 of a bare server's rate with no answer kept against 0.31 with 1,024 kept, and
/// 60 MB less held; BENCHMARKS.md). What it still does is answer a search many fans ask at
/// once with one answer.
const SEARCHES_KEPT: usize = 256;

/// Searches answered in the last `[booking] catalog_cache_ttl_ms`, by what was asked: each
/// distinct search is answered once per lifetime however many fans ask at once (the others
/// wait for that one answer), from the listing when it names a city (`crate::listing`, one
/// for every search, read again only when the catalog's revision moved, which is checked once
/// per `catalog_listing_ttl_ms`), from the database when it does not. A show this replica
/// creates or cancels clears both; another replica's change is seen within the listing's
/// lifetime.
pub struct Searches {
    answers: Expiring<Arc<OnceCell<Bytes>>>,
    /// What searches naming a city are answered from.
    listings: Listings,
    /// `catalog_queries_total`: reads of the database for searches (a search without a city,
    /// or a read of the listing).
    queries: IntCounter,
}

impl Searches {
    /// Answers kept for `ttl`, the listing for `listing_ttl`.
    pub fn new(ttl: Duration, listing_ttl: Duration, registry: &Registry) -> Self {
        let queries = IntCounter::new(
            "catalog_queries_total",
            "Reads of the database for catalog searches (a search without a city, or a read of the listing of every upcoming show)",
        )
        .expect("valid metric");
        let _ = registry.register(Box::new(queries.clone()));
        Self {
            answers: Expiring::new(ttl, SEARCHES_KEPT),
            listings: Listings::new(listing_ttl),
            queries,
        }
    }

    /// Every remembered answer forgotten, and the listing: the catalog changed.
    pub fn forget(&self) {
        self.listings.forget();
        self.answers.clear();
    }
}

/// `GET /v1/movies?city=&date=&genre=`
pub async fn movies(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(filter): Query<MovieFilter>,
) -> ApiResult<Response> {
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
    let city = filter
        .city
        .filter(|c| !c.is_empty())
        .map(|c| c.to_lowercase());
    let genre = filter
        .genre
        .filter(|g| !g.is_empty())
        .map(|g| g.to_lowercase());
    // gzip for a client that takes it, when the answer comes from the listing (a search
    // naming a city: every search of a fan's page), which holds its pieces deflated.
    let gzip = city.is_some() && gzip::accepted(&headers);
    let key = format!(
        "{}\n{}\n{}\n{}",
        city.as_deref().unwrap_or(""),
        date.map(|d| d.to_string()).unwrap_or_default(),
        genre.as_deref().unwrap_or(""),
        if gzip { "gzip" } else { "" }
    );
    let (cached, until) = state
        .searches
        .answers
        .get_or_insert_with_until(&key, Default::default);
    let body = cached
        .get_or_try_init(|| async {
            match city.as_deref() {
                Some(city) => {
                    let listing = (state.searches.listings)
                        .get(&state.read_db, &state.searches.queries)
                        .await?;
                    Ok(listing.answer(city, date, genre.as_deref(), Utc::now(), gzip))
                }
                None => {
                    state.searches.queries.inc();
                    search(&state.read_db, None, date, genre.as_deref()).await
                }
            }
        })
        .await?
        .clone();
    // Anyone may keep the answer while this replica would still give it (whole seconds left,
    // rounded down): the gateway does (`queue-gateway`'s `catalog_cache`), and browsers.
    let left = until.saturating_duration_since(std::time::Instant::now());
    let control = HeaderValue::from_str(&format!("public, max-age={}", left.as_secs()))
        .expect("a header value");
    let mut answer = (
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (VARY, HeaderValue::from_static("accept-encoding")),
            (CACHE_CONTROL, control),
        ],
        body,
    )
        .into_response();
    if gzip {
        (answer.headers_mut()).insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(answer)
}

/// The tables a show's summary comes from (`shows s`, `movies m`, `screens sc`,
/// `theaters t`): the catalog's statements go on from here with their conditions.
macro_rules! show_tables {
    () => {
        " FROM shows s
         JOIN movies m ON m.id = s.movie_id
         JOIN screens sc ON sc.id = s.screen_id
         JOIN theaters t ON t.id = sc.theater_id"
    };
}

/// A show's film (`title`, `genres`) and its `ShowSummary` columns, from `show_tables!`.
macro_rules! show_summary_from {
    () => {
        concat!(
            "m.title, m.genres,
                s.id, t.name AS theater, t.city, sc.name AS screen, s.starts_at, t.time_zone,
                s.price_cents, s.currency, s.event_id",
            show_tables!()
        )
    };
}

/// The order a search lists its shows in (the listing of `crate::listing` is read in it too).
macro_rules! catalog_order {
    () => {
        " ORDER BY m.title, s.starts_at, t.city, t.name"
    };
}

/// Shows a search lists at most.
pub const SEARCH_LIMIT: usize = 2000;

/// The search's statement for each shape of filter (the sum of the filters given, below),
/// holding only the conditions asked for, their parameters numbered in the order city, date,
/// genre. One statement for every shape (`$1 IS NULL OR …`) is planned once, generically, and
/// such a plan can use no index for any condition: it read every screen and theater of the
/// catalog for each search. Each shape's own can: a city's theaters by `theaters_city`, their
/// screens by their key, each screen's upcoming shows by `shows_screen_starts` (the day is a
/// filter on those: where it begins depends on each theater's time zone). A city and date
/// search at the design's scale: 3.8–4.5 ms of executor time against 7.6–11.5 (BENCHMARKS.md).
static SEARCH_STATEMENTS: LazyLock<[String; 8]> = LazyLock::new(|| {
    std::array::from_fn(|shape| {
        search_statement(shape & CITY != 0, shape & DATE != 0, shape & GENRE != 0)
    })
});
const CITY: usize = 1;
const DATE: usize = 2;
const GENRE: usize = 4;

fn search_statement(city: bool, date: bool, genre: bool) -> String {
    let mut params = (1..).map(|n| format!("${n}"));
    let mut next = move || params.next().expect("endless");
    let mut sql = String::from(concat!(
        "SELECT m.id AS movie_id, ",
        show_summary_from!(),
        " WHERE s.starts_at > now() AND s.status = 'on_sale'"
    ));
    if city {
        sql += &format!(" AND lower(t.city) = {}::text", next());
    }
    if date {
        // The theater's local date; and the same as a range of instants, which a plan may
        // read `shows_screen_starts` by.
        let d = next();
        sql += &format!(
            " AND (s.starts_at AT TIME ZONE t.time_zone)::date = {d}::date
              AND s.starts_at >= {d}::date::timestamp AT TIME ZONE t.time_zone
              AND s.starts_at < ({d}::date + 1)::timestamp AT TIME ZONE t.time_zone"
        );
    }
    if genre {
        sql += &format!(
            " AND {}::text = ANY (SELECT lower(g) FROM unnest(m.genres) g)",
            next()
        );
    }
    sql + catalog_order!() + &format!(" LIMIT {SEARCH_LIMIT}")
}

/// The search itself, asked of the database: `{"movies": […]}` as the answer's bytes. `city`
/// and `genre` lower case. A search naming a city is answered from the listing instead
/// (`crate::listing`); this answers the others, and is what the listing must agree with.
pub async fn search(
    db: &sqlx::PgPool,
    city: Option<&str>,
    date: Option<NaiveDate>,
    genre: Option<&str>,
) -> ApiResult<Bytes> {
    #[derive(sqlx::FromRow)]
    struct Row {
        movie_id: uuid::Uuid,
        title: String,
        genres: Vec<String>,
        #[sqlx(flatten)]
        show: ShowSummary,
    }
    let given = |filter: bool, bit: usize| if filter { bit } else { 0 };
    let shape =
        given(city.is_some(), CITY) + given(date.is_some(), DATE) + given(genre.is_some(), GENRE);
    let mut query = sqlx::query_as::<_, Row>(SEARCH_STATEMENTS[shape].as_str());
    if let Some(city) = city {
        query = query.bind(city);
    }
    if let Some(date) = date {
        query = query.bind(date);
    }
    if let Some(genre) = genre {
        query = query.bind(genre);
    }
    let rows: Vec<Row> = query.fetch_all(db).await?;
    let parts: Vec<(uuid::Uuid, String, String)> = rows
        .into_iter()
        .map(|r| {
            let head = film_head(&r.movie_id.to_string(), &r.title, &r.genres);
            (r.movie_id, head, show_part(&r.show))
        })
        .collect();
    Ok(answer(parts.iter().map(|(film, head, show)| {
        (*film, head.as_str(), show.as_str())
    })))
}

/// A film's part of a search's answer before its shows: `{"id":…,"title":…,"genres":[…],"shows":[`
/// (`answer` writes its shows and closes it). The listing keeps it, written once per film.
pub fn film_head(id: &str, title: &str, genres: &[String]) -> String {
    #[derive(Serialize)]
    struct Film<'a> {
        id: &'a str,
        title: &'a str,
        genres: &'a [String],
        shows: [(); 0],
    }
    let mut head = to_json(&Film {
        id,
        title,
        genres,
        shows: [],
    });
    // `…,"shows":[]}` less its last two bytes.
    head.truncate(head.len() - 2);
    head
}

/// A show's part of a search's answer: its summary as JSON. The listing keeps it, written
/// once per show.
pub fn show_part(show: &ShowSummary) -> String {
    to_json(show)
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("strings, numbers and instants always serialize")
}

/// A search's answer, `{"movies":[…]}`, from its shows in order, each with its film (anything
/// that tells films apart, and the film's `film_head`) and its `show_part`: each film once,
/// where its first show came, with its shows in order. Every answer, the database's and the
/// listing's, is joined here from parts written once, so a search copies its shows' bytes
/// rather than writing (and escaping) each one again: writing them was most of booking-core's
/// CPU at the design's scale (BENCHMARKS.md).
pub fn answer<'a, F: PartialEq>(shows: impl IntoIterator<Item = (F, &'a str, &'a str)>) -> Bytes {
    Bytes::from(lay_out(shows, Vec::with_capacity))
}

/// The same answer gzipped, from pieces deflated once (`crate::gzip`): a piece may hold one
/// show's part or several shows' parts joined with commas, as `answer` would have joined them.
pub fn gzip_answer<'a, F: PartialEq>(
    pieces: impl IntoIterator<Item = (F, Piece<'a>, Piece<'a>)>,
) -> Bytes {
    lay_out(pieces, Gzip::with_capacity).finish()
}

/// A piece of an answer: its length, for the room made for the answer at once.
trait Part: Copy {
    fn size(&self) -> usize;
}

impl Part for &str {
    fn size(&self) -> usize {
        self.len()
    }
}

impl Part for Piece<'_> {
    fn size(&self) -> usize {
        match self {
            Piece::Plain(text) => text.len(),
            Piece::Deflated(d) => d.size(),
        }
    }
}

/// What an answer is written into: the JSON's own punctuation and the films' and shows' parts.
trait Written<P> {
    fn punctuation(&mut self, text: &'static str);
    fn part(&mut self, part: P);
}

impl Written<&str> for Vec<u8> {
    fn punctuation(&mut self, text: &'static str) {
        self.extend_from_slice(text.as_bytes());
    }
    fn part(&mut self, part: &str) {
        self.extend_from_slice(part.as_bytes());
    }
}

impl<'a> Written<Piece<'a>> for Gzip {
    fn punctuation(&mut self, text: &'static str) {
        self.plain(text.as_bytes());
    }
    fn part(&mut self, part: Piece<'a>) {
        self.piece(part);
    }
}

/// The answer's layout, written once for both encodings: each film once, where its first
/// show came (its head, then its shows' parts joined with commas, closed), in `{"movies":[…]}`.
fn lay_out<F: PartialEq, P: Part, W: Written<P>>(
    shows: impl IntoIterator<Item = (F, P, P)>,
    new: impl FnOnce(usize) -> W,
) -> W {
    let mut films: Vec<(F, P, Vec<P>)> = Vec::new();
    let mut len = 0;
    for (film, head, show) in shows {
        len += show.size() + 1;
        // Shows come in title order, so a show's film is nearly always the last one seen.
        match films.iter_mut().rev().find(|(f, ..)| *f == film) {
            Some((_, _, parts)) => parts.push(show),
            None => {
                len += head.size() + 3;
                films.push((film, head, vec![show]));
            }
        }
    }
    let mut out = new(len + 16);
    out.punctuation(r#"{"movies":["#);
    for (i, (_, head, shows)) in films.into_iter().enumerate() {
        if i > 0 {
            out.punctuation(",");
        }
        out.part(head);
        for (j, show) in shows.into_iter().enumerate() {
            if j > 0 {
                out.punctuation(",");
            }
            out.part(show);
        }
        out.punctuation("]}");
    }
    out.punctuation("]}");
    out
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
    let row: Row = sqlx::query_as(concat!(
        "SELECT s.seat_count, ",
        show_summary_from!(),
        " WHERE s.id = $1"
    ))
    .bind(&show_id)
    .fetch_optional(&state.read_db)
    .await?
    .ok_or(ApiError::NotFound("show"))?;
    let mut body = serde_json::to_value(&row.show).map_err(anyhow::Error::from)?;
    body["movie"] = serde_json::json!({ "title": row.title, "genres": row.genres });
    body["seat_count"] = row.seat_count.into();
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn show(id: &str) -> ShowSummary {
        ShowSummary {
            id: id.into(),
            theater: "The \"Rex\"".into(),
            city: "Zürich".into(),
            screen: "1".into(),
            starts_at: "2030-06-01T18:30:00Z".parse().expect("an instant"),
            time_zone: "Europe/Zurich".into(),
            price_cents: 1_500,
            currency: "CHF".into(),
            event_id: "ev_1".into(),
        }
    }

    #[test]
    fn an_answer_lists_each_film_once_where_its_first_show_came_with_its_shows_in_order() {
        let genres = vec!["Drama".to_owned(), "Sci-Fi".to_owned()];
        let heads = [
            film_head("f1", "Arrival", &genres),
            film_head("f2", "Blade \\ Runner", &[]),
        ];
        let parts: Vec<String> = ["s1", "s2", "s3", "s4"]
            .iter()
            .map(|id| show_part(&show(id)))
            .collect();
        // Films A, B, A, B: each film's shows come together, in the order they came.
        let order = [(0, 0), (1, 1), (0, 2), (1, 3)];
        let body = answer(
            order
                .iter()
                .map(|&(f, s)| (f, heads[f].as_str(), parts[s].as_str())),
        );
        let got: Value = serde_json::from_slice(&body).expect("the answer is JSON");
        let shows = |ids: &[&str]| -> Value {
            ids.iter()
                .map(|id| serde_json::to_value(show(id)).expect("a show"))
                .collect()
        };
        assert_eq!(
            got,
            json!({"movies": [
                {"id": "f1", "title": "Arrival", "genres": ["Drama", "Sci-Fi"], "shows": shows(&["s1", "s3"])},
                {"id": "f2", "title": "Blade \\ Runner", "genres": [], "shows": shows(&["s2", "s4"])},
            ]})
        );
        assert_eq!(
            &answer(std::iter::empty::<(u8, &str, &str)>())[..],
            br#"{"movies":[]}"#
        );
    }
}
