//! What the fans saw, recorded as they go: latency per phase (HDR histograms, overall and per
//! time bucket), status codes per route, holds and sales per second, live counts for the
//! progress display, and each fan's place in line and admission.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// One step of a fan's evening, timed on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Join,
    Poll,
    SeatMap,
    Hold,
    Checkout,
    /// Confirming the PaymentIntent at the Stripe simulator, as Stripe.js would.
    Pay,
    /// Asking booking-core to confirm the booking.
    Confirm,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Join,
        Phase::Poll,
        Phase::SeatMap,
        Phase::Hold,
        Phase::Checkout,
        Phase::Pay,
        Phase::Confirm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Join => "join",
            Phase::Poll => "poll",
            Phase::SeatMap => "seatmap",
            Phase::Hold => "hold",
            Phase::Checkout => "checkout",
            Phase::Pay => "pay",
            Phase::Confirm => "confirm",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How one fan's evening ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Bought seats.
    Bought,
    /// Stopped polling while waiting, on purpose (the abandon share).
    Abandoned,
    /// Held seats and walked away on purpose: the hold must lapse.
    WalkedAway,
    /// Admitted but found no seats left.
    NoSeats,
    /// Dropped, or its session over, before it bought.
    Expired,
    /// Still waiting (or sold out) when the run ended.
    StillWaiting,
    /// The hold was lost before the payment confirmed (refunded).
    HoldLost,
    /// Seats were left, but every pick was taken first, for all its attempts.
    GaveUp,
    /// Gave up after errors.
    Failed,
}

/// One fan, as the report needs it.
#[derive(Debug, Clone)]
pub struct FanRecord {
    pub visitor_id: String,
    /// The place its join (or, after a pre-queue, its first poll) answered.
    pub place: Option<u64>,
    /// Joined before opening: its place comes from the published shuffle.
    pub prequeue: bool,
    /// Kept polling (not in the abandon share).
    pub kept_polling: bool,
    /// The server's record of its admission (ms since the epoch).
    pub admitted_at_ms: Option<i64>,
    pub outcome: Outcome,
    pub seats_bought: u32,
}

/// Live counts for the progress display (and the run's end).
#[derive(Default)]
pub struct Live {
    pub waiting: AtomicU64,
    pub shopping: AtomicU64,
    pub holding: AtomicU64,
    pub paid: AtomicU64,
    pub done: AtomicU64,
    pub errors: AtomicU64,
    /// Seats left as the operator's figures last said (−1 before the first sample).
    pub seats_left: AtomicI64,
}

/// Length of a time bucket for the charts' latency percentiles.
pub const BUCKET: Duration = Duration::from_secs(5);

pub struct Recorder {
    pub start: Instant,
    pub live: Live,
    inner: Mutex<Inner>,
}

struct Inner {
    latency: Vec<Histogram<u64>>,
    /// Per phase: the first and the last request's start, since the run began.
    spans: Vec<Option<(Duration, Duration)>>,
    /// Per `BUCKET`: one histogram per phase, made when first needed.
    bucketed: Vec<Vec<Option<Histogram<u64>>>>,
    /// Route → status → count.
    statuses: BTreeMap<&'static str, BTreeMap<u16, u64>>,
    /// Per second: holds made, bookings confirmed.
    per_second: Vec<(u64, u64)>,
    fans: Vec<FanRecord>,
}

fn histogram() -> Histogram<u64> {
    // Microseconds up to ten minutes, two significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 2).expect("valid bounds")
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            live: Live {
                seats_left: AtomicI64::new(-1),
                ..Live::default()
            },
            inner: Mutex::new(Inner {
                latency: Phase::ALL.iter().map(|_| histogram()).collect(),
                spans: vec![None; Phase::ALL.len()],
                bucketed: Vec::new(),
                statuses: BTreeMap::new(),
                per_second: Vec::new(),
                fans: Vec::new(),
            }),
        }
    }
}

impl Recorder {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("recorder lock")
    }

    /// A request of `phase` to `route` took `took` and answered `status` (0: no answer).
    pub fn request(&self, phase: Phase, route: &'static str, status: u16, took: Duration) {
        let micros = (took.as_micros() as u64).clamp(1, 600_000_000);
        let began = self.start.elapsed().saturating_sub(took);
        let bucket = (began.as_secs() / BUCKET.as_secs()) as usize;
        let mut inner = self.inner();
        let span = &mut inner.spans[phase.index()];
        *span = Some(span.map_or((began, began), |(first, last)| {
            (first.min(began), last.max(began))
        }));
        let _ = inner.latency[phase.index()].record(micros);
        if inner.bucketed.len() <= bucket {
            inner
                .bucketed
                .resize_with(bucket + 1, || Phase::ALL.iter().map(|_| None).collect());
        }
        let _ = inner.bucketed[bucket][phase.index()]
            .get_or_insert_with(histogram)
            .record(micros);
        *inner
            .statuses
            .entry(route)
            .or_default()
            .entry(status)
            .or_default() += 1;
        if status == 0 || status >= 500 {
            self.live.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn per_second(&self, f: impl FnOnce(&mut (u64, u64))) {
        let second = self.start.elapsed().as_secs() as usize;
        let mut inner = self.inner();
        if inner.per_second.len() <= second {
            inner.per_second.resize(second + 1, (0, 0));
        }
        f(&mut inner.per_second[second]);
    }

    pub fn held(&self) {
        self.per_second(|s| s.0 += 1);
    }

    pub fn sold(&self) {
        self.per_second(|s| s.1 += 1);
    }

    pub fn fan(&self, record: FanRecord) {
        self.inner().fans.push(record);
        self.live.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything recorded, for the report.
    pub fn take(&self) -> Recorded {
        let mut inner = self.inner();
        Recorded {
            latency: Phase::ALL
                .iter()
                .map(|p| (*p, inner.latency[p.index()].clone()))
                .collect(),
            spans: inner.spans.clone(),
            p99_per_bucket: inner
                .bucketed
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|h| h.as_ref().map(|h| h.value_at_quantile(0.99)))
                        .collect()
                })
                .collect(),
            statuses: inner.statuses.clone(),
            per_second: inner.per_second.clone(),
            fans: std::mem::take(&mut inner.fans),
        }
    }
}

/// What the recorder holds at the end.
pub struct Recorded {
    pub latency: Vec<(Phase, Histogram<u64>)>,
    /// Per phase (in `Phase::ALL` order): the first and last request's start.
    pub spans: Vec<Option<(Duration, Duration)>>,
    /// Per bucket, per phase (in `Phase::ALL` order): p99 in µs, if any request.
    pub p99_per_bucket: Vec<Vec<Option<u64>>>,
    pub statuses: BTreeMap<&'static str, BTreeMap<u16, u64>>,
    pub per_second: Vec<(u64, u64)>,
    pub fans: Vec<FanRecord>,
}
