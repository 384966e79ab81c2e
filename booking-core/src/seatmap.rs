//! Live seat maps. Reads far outnumber writes, so each show's map is cached for a short TTL
//! (≤ 1 s) and concurrent misses collapse into one query (single-flight). The body is
//! serialized once per refresh; every reader shares it. Server-sent events come from one
//! watcher per show, however many fans are subscribed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus::{IntCounter, Registry};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::sync::broadcast;

use crate::error::{ApiError, ApiResult};
use crate::model::{SeatKind, SeatStatus};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SeatView {
    pub id: String,
    /// Shared by the row's seats, as `category` by the category's: a show's map is kept while
    /// its fans read it, and a string per seat per field was most of it.
    pub row: Arc<str>,
    pub number: i32,
    pub status: SeatStatus,
    pub category: Arc<str>,
    pub price_cents: i64,
    pub kind: SeatKind,
    /// An aisle follows this seat: the seats either side of it are not side by side.
    pub gap_after: bool,
    #[serde(skip)]
    pub row_index: i32,
}

impl SeatView {
    /// Whether best available may offer this seat: a free ordinary seat of the category asked
    /// for (any, if none). Wheelchair spaces and companion seats are chosen by name only.
    fn offered(&self, category: Option<&str>) -> bool {
        self.status == SeatStatus::Available
            && self.kind == SeatKind::Standard
            && category.is_none_or(|c| c == &*self.category)
    }
}

/// A price category as the seat map's legend lists it, front row's first.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CategoryView {
    pub name: String,
    pub price_cents: i64,
}

/// One show's map at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub show_id: String,
    pub version: i64,
    pub seats: Vec<SeatView>,
    pub categories: Vec<CategoryView>,
    /// `{show_id, version, currency, categories, seats}` as sent to clients.
    pub body: Bytes,
    pub etag: String,
    /// Positions in `seats`, in the order of their ids: a reserve finds its seats without
    /// scanning the map (a binary search), and without a copy of every id.
    by_id: Vec<u32>,
}

impl Snapshot {
    fn build(show_id: &str, currency: &str, seats: Vec<SeatView>, version: i64) -> Self {
        #[derive(Serialize)]
        struct Wire<'a> {
            show_id: &'a str,
            version: i64,
            currency: &'a str,
            categories: &'a [CategoryView],
            seats: &'a [SeatView],
        }
        let mut categories: Vec<CategoryView> = Vec::new();
        for seat in &seats {
            if !categories.iter().any(|c| *c.name == *seat.category) {
                categories.push(CategoryView {
                    name: seat.category.to_string(),
                    price_cents: seat.price_cents,
                });
            }
        }
        let mut body = serde_json::to_vec(&Wire {
            show_id,
            version,
            currency,
            categories: &categories,
            seats: &seats,
        })
        .expect("seat map serializes");
        // Kept as long as the show is read: no room beyond what it holds (a `Bytes` made from
        // a `Vec` keeps the vector's spare capacity), as for the seats.
        body.shrink_to_fit();
        let mut seats = seats;
        seats.shrink_to_fit();
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", hex16(&digest));
        let mut by_id: Vec<u32> = (0..seats.len() as u32).collect();
        by_id.sort_unstable_by(|&a, &b| seats[a as usize].id.cmp(&seats[b as usize].id));
        Self {
            show_id: show_id.to_owned(),
            version,
            seats,
            categories,
            body: Bytes::from(body),
            etag,
            by_id,
        }
    }

    fn position(&self, seat_id: &str) -> Option<usize> {
        self.by_id
            .binary_search_by(|&i| self.seats[i as usize].id.as_str().cmp(seat_id))
            .ok()
            .map(|at| self.by_id[at] as usize)
    }

    pub fn contains(&self, seat_id: &str) -> bool {
        self.position(seat_id).is_some()
    }

    pub fn status_of(&self, seat_id: &str) -> Option<SeatStatus> {
        self.position(seat_id).map(|i| self.seats[i].status)
    }

    /// The preferred row (two thirds of the way back through the rows of `category`, or of
    /// the whole house) and the centre seat number.
    pub fn sweet_spot(&self, category: Option<&str>) -> (i32, i32) {
        let of = || {
            self.seats
                .iter()
                .filter(move |s| category.is_none_or(|c| c == &*s.category))
        };
        let first = of().map(|s| s.row_index).min().unwrap_or(0);
        let last = of().map(|s| s.row_index).max().unwrap_or(0);
        let widest = of().map(|s| s.number).max().unwrap_or(1);
        (first + ((last - first + 1) * 2) / 3, (widest + 1) / 2)
    }

    /// Whether the show has a category of this name.
    pub fn has_category(&self, name: &str) -> bool {
        self.categories.iter().any(|c| c.name == name)
    }

    /// Every run of `n` seats best available may offer (`SeatView::offered`) side by side in
    /// one row, with no aisle between them, best first.
    pub fn adjacent_blocks(&self, n: usize, category: Option<&str>) -> Vec<Vec<String>> {
        if n == 0 {
            return Vec::new();
        }
        let (best_row, center) = self.sweet_spot(category);
        let mut blocks: Vec<((i32, i32), Vec<String>)> = Vec::new();
        let mut run: Vec<&SeatView> = Vec::new();
        let flush = |run: &mut Vec<&SeatView>, blocks: &mut Vec<((i32, i32), Vec<String>)>| {
            if run.len() >= n {
                for w in run.windows(n) {
                    let mid = (w[0].number + w[n - 1].number) / 2;
                    let score = ((w[0].row_index - best_row).abs(), (mid - center).abs());
                    blocks.push((score, w.iter().map(|s| s.id.clone()).collect()));
                }
            }
            run.clear();
        };
        for seat in &self.seats {
            let continues = run.last().is_some_and(|last| {
                last.row_index == seat.row_index
                    && last.number + 1 == seat.number
                    && !last.gap_after
            });
            if !continues {
                flush(&mut run, &mut blocks);
            }
            if seat.offered(category) {
                run.push(seat);
            } else {
                flush(&mut run, &mut blocks);
            }
        }
        flush(&mut run, &mut blocks);
        blocks.sort_by_key(|(score, _)| *score);
        blocks.into_iter().map(|(_, b)| b).collect()
    }
}

fn hex16(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

struct Slot {
    latest: RwLock<Option<(Instant, Arc<Snapshot>)>>,
    /// Held by the one request refreshing this show; the others wait and share its result.
    refresh: tokio::sync::Mutex<()>,
}

/// The per-show caches and live streams.
pub struct SeatMaps {
    db: PgPool,
    ttl: Duration,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    streams: Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>,
    /// `seatmap_queries_total`: database reads of seat maps, to show the cache at work.
    queries: IntCounter,
}

impl SeatMaps {
    pub fn new(db: PgPool, ttl: Duration, registry: &Registry) -> Self {
        let queries = IntCounter::new(
            "seatmap_queries_total",
            "Seat-map reads that went to the database",
        )
        .expect("valid metric");
        let _ = registry.register(Box::new(queries.clone()));
        Self {
            db,
            ttl,
            slots: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            queries,
        }
    }

    fn slot(&self, show_id: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().expect("slots lock");
        slots
            .entry(show_id.to_owned())
            .or_insert_with(|| {
                Arc::new(Slot {
                    latest: RwLock::new(None),
                    refresh: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    fn fresh(&self, slot: &Slot) -> Option<Arc<Snapshot>> {
        let latest = slot.latest.read().expect("slot lock");
        latest
            .as_ref()
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, s)| s.clone())
    }

    /// Forget the shows nobody has read for `idle` (their map is older than that, or there is
    /// none: a show id that does not exist), unless a read holds the slot right now; how many
    /// were forgotten. Run every minute (`sweeper`): without it every show id ever asked
    /// about, real or not, would keep a slot for good.
    pub fn tidy(&self, idle: Duration) -> usize {
        let mut slots = self.slots.lock().expect("slots lock");
        let before = slots.len();
        slots.retain(|_, slot| {
            let in_use = Arc::strong_count(slot) > 1;
            let recent = slot
                .latest
                .read()
                .expect("slot lock")
                .as_ref()
                .is_some_and(|(at, _)| at.elapsed() < idle);
            in_use || recent
        });
        before - slots.len()
    }

    /// How many shows have a slot (for tests and the tidy's log).
    pub fn slot_count(&self) -> usize {
        self.slots.lock().expect("slots lock").len()
    }

    /// The show's map, at most one TTL old.
    pub async fn get(&self, show_id: &str) -> ApiResult<Arc<Snapshot>> {
        let slot = self.slot(show_id);
        if let Some(s) = self.fresh(&slot) {
            return Ok(s);
        }
        let _refreshing = slot.refresh.lock().await;
        if let Some(s) = self.fresh(&slot) {
            return Ok(s);
        }
        let snapshot = match self.load(show_id).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                // No such show: keep no slot for it (a stream of made-up ids costs nothing).
                if matches!(e, ApiError::NotFound(_))
                    && slot.latest.read().expect("slot lock").is_none()
                {
                    self.slots.lock().expect("slots lock").remove(show_id);
                }
                return Err(e);
            }
        };
        *slot.latest.write().expect("slot lock") = Some((Instant::now(), snapshot.clone()));
        Ok(snapshot)
    }

    /// The latest map this process has, however old (loaded if there is none). For the
    /// reserve path, which needs only what never changes (which seats exist) or what may be
    /// stale (candidate blocks; the lock decides): writes never invalidate the cache, so a
    /// busy show is not reloaded on every hold. Readers get `get`, fresh within the TTL.
    pub async fn latest(&self, show_id: &str) -> ApiResult<Arc<Snapshot>> {
        let slot = self.slot(show_id);
        if let Some((_, s)) = slot.latest.read().expect("slot lock").as_ref() {
            return Ok(s.clone());
        }
        self.get(show_id).await
    }

    async fn load(&self, show_id: &str) -> ApiResult<Snapshot> {
        use sqlx::Row as _;
        self.queries.inc();
        // Decoded by position, unchecked: the columns are this statement's own, in this order
        // (by name, each of a cold map's ~1,650 values was found by comparing column names,
        // and its type checked again: about a fifth of booking-core's time for a map nobody
        // had opened, `BENCHMARKS.md`).
        let rows = sqlx::query(concat!(
            "SELECT seat_id, row_name, row_index, number, version, category, price_cents, kind,
                    gap_after, (SELECT currency FROM shows WHERE id = $1) AS currency,
                    CASE WHEN ",
            crate::seat_lapsed!(),
            " THEN 'available' ELSE status END AS status
             FROM seats WHERE show_id = $1 ORDER BY row_index, number"
        ))
        .bind(show_id)
        .fetch_all(&self.db)
        .await?;
        struct Row {
            seat_id: String,
            row_name: String,
            row_index: i32,
            number: i32,
            version: i64,
            category: String,
            price_cents: i64,
            kind: SeatKind,
            gap_after: bool,
            currency: String,
            status: SeatStatus,
        }
        let rows = rows
            .iter()
            .map(|r| {
                Ok(Row {
                    seat_id: r.try_get_unchecked(0)?,
                    row_name: r.try_get_unchecked(1)?,
                    row_index: r.try_get_unchecked(2)?,
                    number: r.try_get_unchecked(3)?,
                    version: r.try_get_unchecked(4)?,
                    category: r.try_get_unchecked(5)?,
                    price_cents: r.try_get_unchecked(6)?,
                    kind: r.try_get_unchecked(7)?,
                    gap_after: r.try_get_unchecked(8)?,
                    currency: r.try_get_unchecked(9)?,
                    status: r.try_get_unchecked(10)?,
                })
            })
            .collect::<Result<Vec<Row>, sqlx::Error>>()?;
        if rows.is_empty() {
            return Err(ApiError::NotFound("show"));
        }
        let version = rows.iter().map(|r| r.version).max().unwrap_or(0);
        let currency = rows[0].currency.clone();
        // One string per row name and per category, shared by their seats.
        let mut shared: HashMap<String, Arc<str>> = HashMap::new();
        let mut share = |s: String| -> Arc<str> {
            shared
                .entry(s)
                .or_insert_with_key(|s| Arc::from(s.as_str()))
                .clone()
        };
        let seats = rows
            .into_iter()
            .map(|r| SeatView {
                id: r.seat_id,
                row: share(r.row_name),
                number: r.number,
                status: r.status,
                category: share(r.category),
                price_cents: r.price_cents,
                kind: r.kind,
                gap_after: r.gap_after,
                row_index: r.row_index,
            })
            .collect();
        Ok(Snapshot::build(show_id, &currency, seats, version))
    }

    /// Subscribe to a show's changes: each message is a JSON `{version, seats:[{id,status}]}`
    /// of the seats that changed. One watcher per show polls the cache while anyone listens.
    pub fn subscribe(self: &Arc<Self>, show_id: &str) -> broadcast::Receiver<Arc<str>> {
        let mut streams = self.streams.lock().expect("streams lock");
        if let Some(tx) = streams.get(show_id) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(64);
        streams.insert(show_id.to_owned(), tx.clone());
        let me = self.clone();
        let show = show_id.to_owned();
        tokio::spawn(async move { me.watch(show, tx).await });
        rx
    }

    async fn watch(self: Arc<Self>, show_id: String, tx: broadcast::Sender<Arc<str>>) {
        let mut previous: Option<Arc<Snapshot>> = self.get(&show_id).await.ok();
        let mut tick = tokio::time::interval(self.ttl.max(Duration::from_millis(200)));
        loop {
            tick.tick().await;
            if tx.receiver_count() == 0 {
                let mut streams = self.streams.lock().expect("streams lock");
                if tx.receiver_count() == 0 {
                    streams.remove(&show_id);
                    return;
                }
            }
            let Ok(now) = self.get(&show_id).await else {
                continue;
            };
            if let Some(prev) = &previous
                && prev.etag != now.etag
            {
                let changed: Vec<_> = now
                    .seats
                    .iter()
                    .zip(prev.seats.iter())
                    .filter(|(a, b)| a.status != b.status)
                    .map(|(a, _)| serde_json::json!({"id": a.id, "status": a.status}))
                    .collect();
                if !changed.is_empty() {
                    let msg = serde_json::json!({"version": now.version, "seats": changed});
                    let _ = tx.send(Arc::from(msg.to_string()));
                }
            }
            previous = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_and_unknown_shows_are_forgotten_unless_in_use() {
        let db = PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
        let maps = SeatMaps::new(db, Duration::from_millis(500), &Registry::new());
        let busy = maps.slot("s_busy");
        let _ = maps.slot("s_made_up");
        let idle = maps.slot("s_idle");
        *idle.latest.write().unwrap() = Some((Instant::now(), Arc::new(Snapshot::default())));
        drop(idle);
        assert_eq!(maps.slot_count(), 3);
        assert_eq!(
            maps.tidy(Duration::from_secs(600)),
            1,
            "the made-up show goes"
        );
        assert_eq!(maps.tidy(Duration::ZERO), 1, "then the idle one");
        assert_eq!(maps.slot_count(), 1, "the one in use stays");
        drop(busy);
        assert_eq!(maps.tidy(Duration::ZERO), 1);
    }

    fn seat(row_index: i32, number: i32, status: SeatStatus) -> SeatView {
        SeatView {
            id: format!("{row_index}-{number}"),
            row: row_index.to_string().into(),
            number,
            status,
            category: if row_index == 0 { "Prime" } else { "Classic" }.into(),
            price_cents: 1000,
            kind: SeatKind::Standard,
            gap_after: false,
            row_index,
        }
    }

    #[test]
    fn every_seat_is_found_by_its_id_and_no_other_id_is() {
        let seats: Vec<SeatView> = (0..3)
            .flat_map(|r| (1..=12).map(move |n| seat(r, n, SeatStatus::Available)))
            .chain([seat(3, 1, SeatStatus::Held)])
            .collect();
        let snap = Snapshot::build("s", "gbp", seats.clone(), 1);
        for s in &seats {
            assert_eq!(snap.status_of(&s.id), Some(s.status), "{}", s.id);
        }
        for made_up in ["", "0-0", "0-13", "3-2", "9-1", "0-1 "] {
            assert!(!snap.contains(made_up), "{made_up:?}");
        }
    }

    #[test]
    fn blocks_are_runs_of_free_seats_in_one_row() {
        let seats = vec![
            seat(0, 1, SeatStatus::Available),
            seat(0, 2, SeatStatus::Available),
            seat(0, 3, SeatStatus::Held),
            seat(0, 4, SeatStatus::Available),
            seat(1, 1, SeatStatus::Available),
            seat(1, 2, SeatStatus::Available),
            seat(1, 3, SeatStatus::Available),
        ];
        let snap = Snapshot::build("s", "gbp", seats, 1);
        let blocks = snap.adjacent_blocks(2, None);
        assert_eq!(blocks.len(), 3);
        assert!(blocks.iter().all(|b| b.len() == 2));
        assert!(!blocks.iter().any(|b| b.contains(&"0-3".to_owned())));
        assert!(snap.adjacent_blocks(4, None).is_empty());
        assert_eq!(
            snap.adjacent_blocks(2, Some("Prime")),
            vec![vec!["0-1".to_owned(), "0-2".to_owned()]]
        );
        assert_eq!(snap.adjacent_blocks(3, Some("Classic")).len(), 1);
    }

    #[test]
    fn blocks_never_cross_an_aisle_or_take_wheelchair_spaces() {
        let mut seats: Vec<SeatView> = (1..=6).map(|n| seat(1, n, SeatStatus::Available)).collect();
        seats[2].gap_after = true; // an aisle between 3 and 4
        seats[5].kind = SeatKind::Wheelchair;
        let snap = Snapshot::build("s", "gbp", seats, 1);
        let blocks = snap.adjacent_blocks(2, None);
        let ids = |b: &Vec<String>| b.join(",");
        let all: Vec<String> = blocks.iter().map(ids).collect();
        assert!(all.contains(&"1-1,1-2".to_owned()) && all.contains(&"1-4,1-5".to_owned()));
        assert!(
            !all.contains(&"1-3,1-4".to_owned()),
            "across the aisle: {all:?}"
        );
        assert!(
            !all.iter().any(|b| b.contains("1-6")),
            "a wheelchair space: {all:?}"
        );
        assert!(snap.adjacent_blocks(4, None).is_empty());
        assert_eq!(
            snap.categories,
            vec![CategoryView {
                name: "Classic".into(),
                price_cents: 1000
            }]
        );
    }
}
