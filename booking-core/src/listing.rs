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
//! bytes (`catalog::answer`) rather than writing each show's JSON again; and each run of a
//! film's shows in a city's day is deflated once, so a gzip answer is joined the same way
//! (`Run`, `crate::gzip`).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use futures::future::{BoxFuture, FutureExt, Shared};
use prometheus::IntCounter;

use crate::catalog::{SEARCH_LIMIT, ShowSummary, answer, film_head, gzip_answer, show_part};
use crate::error::{ApiError, ApiResult};
use crate::gzip::{Deflated, Deflater, Piece};

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
    /// The same, deflated for gzip answers.
    head_deflated: Deflated,
    /// Its genres in lower case, as a search compares them.
    genres_lower: Vec<String>,
}

/// One show: when it starts (a search lists only shows still to start), and where its part of
/// an answer is.
struct Show {
    starts_at: DateTime<Utc>,
    /// Its part of an answer (`catalog::show_part`) in its city's `parts`.
    part: Range<u32>,
}

/// A city's shows of one film on one local date, one after another in the search statement's
/// order: a search takes or leaves them together (its date and genre are theirs), but for
/// those already started (the first ones: the order is by start within a film) and those past
/// `SEARCH_LIMIT`. Their parts joined with commas are deflated once, for gzip answers
/// (`crate::gzip`): a gzip answer is its runs' pieces joined (a run only partly taken gives its
/// shows' plain parts instead), so no search compresses anything; at the design's scale a run
/// is a film's half-dozen shows in a city's day.
struct Run {
    film: u32,
    /// The date at the theater.
    local_date: NaiveDate,
    /// Its shows in its city's `shows`.
    shows: Range<u32>,
    deflated: Deflated,
}

/// A city's shows in the search statement's order, and their parts of an answer, written
/// once when the listing is read and copied into each answer (about 250 bytes a show: at the
/// design's scale the listing of 350,000 shows takes ~115 MiB, against ~63 MiB when each
/// answer wrote its shows anew, for 1.4 × the answers a second; BENCHMARKS.md).
#[derive(Default)]
struct City {
    shows: Vec<Show>,
    parts: String,
    runs: Vec<Run>,
}

impl City {
    /// A show, the last one so far in the search statement's order.
    fn push(&mut self, film: u32, local_date: NaiveDate, show: &ShowSummary) {
        let start = self.parts.len();
        self.parts += &show_part(show);
        let at = offset(self.shows.len());
        self.shows.push(Show {
            starts_at: show.starts_at,
            part: offset(start)..offset(self.parts.len()),
        });
        match self.runs.last_mut() {
            Some(run) if run.film == film && run.local_date == local_date => run.shows.end = at + 1,
            _ => self.runs.push(Run {
                film,
                local_date,
                shows: at..at + 1,
                deflated: Deflated::default(),
            }),
        }
    }

    /// Every run's shows deflated, and the room left over given back: the city is complete.
    fn finish(&mut self, deflater: &mut Deflater) {
        let mut joined = String::new();
        for run in &mut self.runs {
            joined.clear();
            for (i, show) in self.shows[range(&run.shows)].iter().enumerate() {
                if i > 0 {
                    joined.push(',');
                }
                joined += &self.parts[range(&show.part)];
            }
            run.deflated = deflater.deflate(joined.as_bytes());
        }
        self.shows.shrink_to_fit();
        self.parts.shrink_to_fit();
        self.runs.shrink_to_fit();
    }

    fn part(&self, show: &Show) -> &str {
        &self.parts[range(&show.part)]
    }
}

/// A city the listing does not know: no shows.
static NO_SHOWS: City = City {
    shows: Vec::new(),
    parts: String::new(),
    runs: Vec::new(),
};

fn range(r: &Range<u32>) -> Range<usize> {
    r.start as usize..r.end as usize
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
        let mut deflater = Deflater::default();
        let films: Vec<Film> = film_rows
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                film_index.insert(f.id, i as u32);
                let head = film_head(&f.id.to_string(), &f.title, &f.genres);
                Film {
                    head_deflated: deflater.deflate(head.as_bytes()),
                    head: head.into_boxed_str(),
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
            city.push(film, r.local_date, &r.show);
        }
        drop(rows);
        tx.commit().await?;
        for city in cities.values_mut() {
            city.finish(&mut deflater);
        }
        Ok(Self {
            revision,
            films,
            cities,
        })
    }

    /// The answer to a search of `city` (lower case): its shows still to start at `now`, on
    /// the theater's `date` and of a film of `genre` (lower case) when asked, at most
    /// `SEARCH_LIMIT`, in the search statement's order, each with its film. `gzip`: the same
    /// answer gzipped, joined from pieces deflated when the listing was read (a run taken
    /// only in part gives its shows' plain parts).
    pub fn answer(
        &self,
        city: &str,
        date: Option<NaiveDate>,
        genre: Option<&str>,
        now: DateTime<Utc>,
        gzip: bool,
    ) -> Bytes {
        let city = self.cities.get(city).unwrap_or(&NO_SHOWS);
        let taken = self.taken(city, date, genre, now);
        if !gzip {
            return answer(taken.flat_map(|(run, shows)| {
                let head = &*self.films[run.film as usize].head;
                shows.iter().map(move |s| (run.film, head, city.part(s)))
            }));
        }
        let mut pieces = Vec::new();
        for (run, shows) in taken {
            let head = Piece::Deflated(&self.films[run.film as usize].head_deflated);
            if shows.len() == run.shows.len() {
                pieces.push((run.film, head, Piece::Deflated(&run.deflated)));
            } else {
                let parts = shows.iter().map(|s| Piece::Plain(city.part(s)));
                pieces.extend(parts.map(|part| (run.film, head, part)));
            }
        }
        gzip_answer(pieces)
    }

    /// What a search takes of a city's runs, in order: those on its date and of its genre,
    /// less each one's shows already started at `now`, up to `SEARCH_LIMIT` shows in all.
    fn taken<'a>(
        &'a self,
        city: &'a City,
        date: Option<NaiveDate>,
        genre: Option<&'a str>,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = (&'a Run, &'a [Show])> {
        let mut left = SEARCH_LIMIT;
        city.runs
            .iter()
            .filter(move |r| date.is_none_or(|d| r.local_date == d))
            .filter(move |r| {
                let genres = &self.films[r.film as usize].genres_lower;
                genre.is_none_or(|g| genres.iter().any(|fg| fg == g))
            })
            .map_while(move |run| {
                let shows = &city.shows[range(&run.shows)];
                // A run's shows start in order: those started are the first ones.
                let first = shows.partition_point(|s| s.starts_at <= now);
                let end = shows.len().min(first + left);
                left -= end - first;
                (left > 0 || end > first).then(|| (run, &shows[first..end]))
            })
            .filter(|(_, shows)| !shows.is_empty())
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use chrono::TimeDelta;
    use serde_json::Value;

    use super::*;

    const FILMS: [(&str, &[&str]); 3] = [
        ("Arrival", &["drama", "sci-fi"]),
        ("Bolero", &["comedy"]),
        ("Crimson", &["drama"]),
    ];
    const PER_FILM: usize = 800;

    fn start(i: usize) -> DateTime<Utc> {
        let first: DateTime<Utc> = "2030-06-01T00:10:00Z".parse().unwrap();
        first + TimeDelta::minutes(37 * i as i64)
    }

    /// One city's 2,400 shows (more than `SEARCH_LIMIT`): three films, each with a show every
    /// 37 minutes over 20 days, so each day is a run of ~39, as the listing reads them.
    fn listing() -> Listing {
        let mut deflater = Deflater::default();
        let films = FILMS
            .iter()
            .map(|(title, genres)| {
                let genres: Vec<String> = genres.iter().map(|g| g.to_string()).collect();
                let head = film_head(title, title, &genres);
                Film {
                    head_deflated: deflater.deflate(head.as_bytes()),
                    head: head.into(),
                    genres_lower: genres,
                }
            })
            .collect();
        let mut city = City::default();
        for film in 0..FILMS.len() {
            for i in 0..PER_FILM {
                let show = ShowSummary {
                    id: format!("s{film}_{i}"),
                    theater: "Odeon".into(),
                    city: "London".into(),
                    screen: "1".into(),
                    starts_at: start(i),
                    time_zone: "UTC".into(),
                    price_cents: 900,
                    currency: "GBP".into(),
                    event_id: "ev".into(),
                };
                city.push(film as u32, start(i).date_naive(), &show);
            }
        }
        city.finish(&mut deflater);
        Listing {
            revision: 1,
            films,
            cities: HashMap::from([("london".to_owned(), city)]),
        }
    }

    fn ids(answer: &[u8]) -> Vec<String> {
        let answer: Value = serde_json::from_slice(answer).expect("JSON");
        let films = answer["movies"].as_array().expect("movies");
        films
            .iter()
            .flat_map(|f| f["shows"].as_array().expect("shows"))
            .map(|s| s["id"].as_str().expect("an id").to_owned())
            .collect()
    }

    /// Every search, at instants before, between, at and after shows' starts (runs taken
    /// whole, in part, not at all; of 2,400 shows, the limit reached inside a run): the gzip answer unzips to
    /// the plain one byte for byte, and the plain one lists what the search's conditions say.
    #[test]
    fn a_gzip_answer_unzips_to_the_answer_and_both_list_what_the_search_asks_for() {
        let listing = listing();
        let dates = [
            None,
            Some(start(0).date_naive()),
            Some(start(500).date_naive()),
        ];
        for now in [0, 1, 40, 41, 200, 799, 800]
            .map(|i| start(i) - TimeDelta::seconds(1))
            .into_iter()
            .chain([start(41), start(41) + TimeDelta::seconds(1)])
        {
            for date in dates {
                for genre in [None, Some("drama"), Some("comedy"), Some("western")] {
                    let plain = listing.answer("london", date, genre, now, false);
                    let zipped = listing.answer("london", date, genre, now, true);
                    let mut unzipped = Vec::new();
                    flate2::read::GzDecoder::new(&zipped[..])
                        .read_to_end(&mut unzipped)
                        .expect("a gzip answer");
                    let search = format!("{now} {date:?} {genre:?}");
                    assert_eq!(unzipped, plain, "{search}");
                    let expected: Vec<String> = (0..FILMS.len())
                        .filter(|&f| genre.is_none_or(|g| FILMS[f].1.contains(&g)))
                        .flat_map(|f| (0..PER_FILM).map(move |i| (f, i)))
                        .filter(|&(_, i)| start(i) > now)
                        .filter(|&(_, i)| date.is_none_or(|d| start(i).date_naive() == d))
                        .take(SEARCH_LIMIT)
                        .map(|(f, i)| format!("s{f}_{i}"))
                        .collect();
                    assert_eq!(ids(&plain), expected, "{search}");
                }
            }
        }
        assert_eq!(
            ids(&listing.answer("paris", None, None, start(0), false)).len(),
            0
        );
    }

    #[test]
    fn a_whole_day_gzipped_is_a_fraction_of_its_answer() {
        let listing = listing();
        let day = Some(start(100).date_naive());
        let plain = listing.answer("london", day, None, start(0), false);
        let zipped = listing.answer("london", day, None, start(0), true);
        assert!(
            zipped.len() * 5 < plain.len(),
            "{} of {}",
            zipped.len(),
            plain.len()
        );
    }
}
