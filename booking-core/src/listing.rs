//! The catalog's upcoming shows held in memory by city, so that a search naming a city (every
//! search a fan's page makes) is answered without asking the database: at the design's scale
//! the mix of searches is nearly all distinct (cities × dates × genres), so caching answers
//! alone left one query per search, and Postgres's CPU bounded the catalog at ~230 answers a
//! second (BENCHMARKS.md).
//!
//! The listing is read in one go (three statements in one snapshot: the catalog's revision,
//! the films, the shows) and kept for `[booking] catalog_listing_ttl_ms`; past that the
//! catalog's revision is read (one row, moved on by every statement that changes shows, films,
//! theaters or screens: the `catalog_revision` migration) and, only if it moved, the listing
//! is read again, in the background while the old one still answers. A show created or
//! cancelled through this replica forgets it: the next search waits for a listing that has
//! the change. What a search finds in it is what
//! the database's own search statement would find (`catalog::search`): the conditions below
//! are that statement's, the order is the database's own (rows are read in the statement's
//! `ORDER BY` and a city's keep that order), and `tests/api/catalog.rs` compares the two.
//! Each show's part of an answer is written once, as the listing is read, so a search joins
//! bytes (`catalog::answer`) rather than writing each show's JSON again.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use futures::future::{BoxFuture, FutureExt, Shared};
use prometheus::IntCounter;

use crate::catalog::{SEARCH_LIMIT, ShowSummary, answer, film_head, show_part};
use crate::error::{ApiError, ApiResult};

/// Every upcoming show on sale, in the search statement's order.
const SHOWS: &str = concat!(
    "SELECT s.id, s.movie_id, lower(t.city) AS city_key, t.name AS theater, t.city,
            t.time_zone, sc.name AS screen, s.starts_at,
            (s.starts_at AT TIME ZONE t.time_zone)::date AS local_date,
            s.price_cents, s.currency, s.event_id ",
    show_tables!(),
    " WHERE s.starts_at > now() AND s.status = 'on_sale'",
    catalog_order!()
);

/// The catalog's revision: the listing is read again only when it moved.
const REVISION: &str = "SELECT revision FROM catalog_revision";

/// Every film, with its genres in lower case as the search compares them.
const FILMS: &str = "SELECT id, title, genres,
        ARRAY(SELECT lower(g) FROM unnest(genres) g) AS genres_lower
    FROM movies";

/// A film of the listing.
struct Film {
    /// Its part of an answer before its shows (`catalog::film_head`).
    head: Box<str>,
    /// Its genres in lower case, as a search compares them.
    genres_lower: Vec<String>,
}

/// One show: what a search filters it by, and where its part of an answer is.
struct Show {
    film: u32,
    starts_at: DateTime<Utc>,
    /// The date at the theater.
    local_date: NaiveDate,
    /// Its part of an answer (`catalog::show_part`) in its city's `parts`.
    part: Range<u32>,
}

/// A city's shows in the search statement's order, and their parts of an answer, written
/// once when the listing is read and copied into each answer (about 250 bytes a show: at the
/// design's scale the listing of 350,000 shows takes ~115 MiB, against ~63 MiB when each
/// answer wrote its shows anew, for 1.4 × the answers a second; BENCHMARKS.md).
#[derive(Default)]
struct City {
    shows: Vec<Show>,
    parts: String,
}

pub struct Listing {
    /// The catalog's revision it was read at.
    revision: i64,
    films: Vec<Film>,
    /// By the city in lower case.
    cities: HashMap<String, City>,
}

impl Listing {
    /// Reads the listing: the films and the shows of one snapshot of the database.
    async fn load(db: &sqlx::PgPool) -> Result<Self, sqlx::Error> {
        #[derive(sqlx::FromRow)]
        struct FilmRow {
            id: uuid::Uuid,
            title: String,
            genres: Vec<String>,
            genres_lower: Vec<String>,
        }
        #[derive(sqlx::FromRow)]
        struct ShowRow {
            movie_id: uuid::Uuid,
            city_key: String,
            local_date: NaiveDate,
            #[sqlx(flatten)]
            show: ShowSummary,
        }
        let mut tx = db.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let revision: i64 = sqlx::query_scalar(REVISION).fetch_one(&mut *tx).await?;
        let film_rows: Vec<FilmRow> = sqlx::query_as(FILMS).fetch_all(&mut *tx).await?;
        let mut film_index = HashMap::with_capacity(film_rows.len());
        let films: Vec<Film> = film_rows
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                film_index.insert(f.id, i as u32);
                Film {
                    head: film_head(&f.id.to_string(), &f.title, &f.genres).into_boxed_str(),
                    genres_lower: f.genres_lower,
                }
            })
            .collect();
        let mut cities: HashMap<String, City> = HashMap::new();
        let mut rows = sqlx::query_as::<_, ShowRow>(SHOWS).fetch(&mut *tx);
        while let Some(r) = rows.try_next().await? {
            // A film made after the films were read cannot be here (one snapshot); a show of
            // a film that is not is left out rather than answered wrong.
            let Some(&film) = film_index.get(&r.movie_id) else {
                continue;
            };
            let city = cities.entry(r.city_key).or_default();
            let start = city.parts.len();
            city.parts += &show_part(&r.show);
            city.shows.push(Show {
                film,
                starts_at: r.show.starts_at,
                local_date: r.local_date,
                part: offset(start)..offset(city.parts.len()),
            });
        }
        drop(rows);
        tx.commit().await?;
        for city in cities.values_mut() {
            city.shows.shrink_to_fit();
            city.parts.shrink_to_fit();
        }
        Ok(Self {
            revision,
            films,
            cities,
        })
    }

    /// The answer to a search of `city` (lower case): its shows still to start at `now`, on
    /// the theater's `date` and of a film of `genre` (lower case) when asked, at most
    /// `SEARCH_LIMIT`, in the search statement's order, each with its film.
    pub fn answer(
        &self,
        city: &str,
        date: Option<NaiveDate>,
        genre: Option<&str>,
        now: DateTime<Utc>,
    ) -> Bytes {
        let Some(city) = self.cities.get(city) else {
            return answer(std::iter::empty::<(u32, &str, &str)>());
        };
        answer(
            city.shows
                .iter()
                .filter(|s| s.starts_at > now)
                .filter(|s| date.is_none_or(|d| s.local_date == d))
                .map(|s| (s, &self.films[s.film as usize]))
                .filter(|(_, f)| genre.is_none_or(|g| f.genres_lower.iter().any(|fg| fg == g)))
                .take(SEARCH_LIMIT)
                .map(|(s, f)| {
                    let part = s.part.start as usize..s.part.end as usize;
                    (s.film, &*f.head, &city.parts[part])
                }),
        )
    }

    /// How many shows it holds.
    fn len(&self) -> usize {
        self.cities.values().map(|c| c.shows.len()).sum()
    }
}

/// Where a show's part starts or ends in its city's `parts`: a city's week at the design's
/// scale is ~500 KB, far below 4 GiB.
fn offset(at: usize) -> u32 {
    u32::try_from(at).expect("a city's parts of an answer fit in 4 GiB")
}

/// A read of the listing under way, shared by every search waiting for it.
type Build = Shared<BoxFuture<'static, Result<Arc<Listing>, Arc<ApiError>>>>;

/// The listing this replica answers from, read again when its lifetime has passed.
pub struct Listings {
    ttl: Duration,
    held: Arc<Mutex<Held>>,
}

#[derive(Default)]
struct Held {
    /// The listing, and when the catalog was last seen unchanged since it was read.
    current: Option<(Arc<Listing>, Instant)>,
    /// The read under way and the generation it started in.
    building: Option<(u64, Build)>,
    /// Moved on by `forget`: a read that started before is not kept.
    generation: u64,
}

impl Listings {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            held: Arc::default(),
        }
    }

    /// The listing to answer from: the current one while its lifetime lasts; past it, still
    /// the current one while the catalog's revision is checked (and, if it moved, a new
    /// listing read) in the background; none (after `forget`, or at first): the one being
    /// read, waited for. `reads` counts the listing's reads (not the revision's).
    pub async fn get(&self, db: &sqlx::PgPool, reads: &IntCounter) -> ApiResult<Arc<Listing>> {
        let build = {
            let mut held = self.held.lock().expect("listing lock");
            if let Some((current, checked)) = &held.current
                && checked.elapsed() < self.ttl
            {
                return Ok(current.clone());
            }
            let generation = held.generation;
            let stale = held.current.as_ref().map(|(listing, _)| listing.clone());
            let build = match &held.building {
                Some((g, build)) if *g == generation => build.clone(),
                _ => {
                    let build = self.start(db.clone(), reads.clone(), generation, stale.clone());
                    held.building = Some((generation, build.clone()));
                    build
                }
            };
            if let Some(stale) = stale {
                return Ok(stale);
            }
            build
        };
        build.await.map_err(|e| e.shared())
    }

    /// In a task of its own (a search that stops waiting does not stop it): the `stale`
    /// listing again if the catalog's revision has not moved since it was read, else the
    /// listing read anew; kept, unless forgotten meanwhile.
    fn start(
        &self,
        db: sqlx::PgPool,
        reads: IntCounter,
        generation: u64,
        stale: Option<Arc<Listing>>,
    ) -> Build {
        let held = self.held.clone();
        let task = tokio::spawn(async move {
            let read = async {
                if let Some(stale) = stale {
                    let now: i64 = sqlx::query_scalar(REVISION).fetch_one(&db).await?;
                    if now == stale.revision {
                        return Ok(stale);
                    }
                }
                reads.inc();
                Listing::load(&db).await.map(Arc::new)
            }
            .await;
            let mut held = held.lock().expect("listing lock");
            if held
                .building
                .as_ref()
                .is_some_and(|(g, _)| *g == generation)
            {
                held.building = None;
            }
            match read {
                Ok(listing) => {
                    if held.generation == generation {
                        held.current = Some((listing.clone(), Instant::now()));
                    }
                    tracing::debug!(
                        shows = listing.len(),
                        revision = listing.revision,
                        "catalog listing current"
                    );
                    Ok(listing)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "catalog listing not read");
                    Err(Arc::new(ApiError::from(e)))
                }
            }
        });
        async move {
            task.await
                .unwrap_or_else(|e| Err(Arc::new(ApiError::Internal(anyhow::anyhow!(e)))))
        }
        .boxed()
        .shared()
    }

    /// The listing is forgotten: the catalog changed through this replica.
    pub fn forget(&self) {
        let mut held = self.held.lock().expect("listing lock");
        held.generation += 1;
        held.current = None;
    }
}
