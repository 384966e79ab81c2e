//! How a service's process takes memory from the kernel and gives it back.

use std::cell::Cell;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Turns transparent huge pages off for this process, first thing in `main`; true when the
/// kernel took the call.
///
/// mimalloc (booking-core's allocator) advises the kernel to back its arenas with huge pages.
/// The kernel's background collapser (`khugepaged`, with `max_ptes_none` at 511) then fills a
/// 2 MiB page around any one 4 KiB page in use, while mimalloc's purges split them again: the
/// soak saw the gateway's memory (when it too used mimalloc) move by megabytes with nothing in
/// flight, half of it in huge pages. Without them a service's memory is what it uses. Best
/// effort: a kernel without THP refuses the call, and then there is nothing to turn off.
pub fn disable_transparent_huge_pages() -> bool {
    rustix::thread::disable_transparent_huge_pages(true).is_ok()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemorySettings {
    /// How often each runtime thread of a service allocating with mimalloc (booking-core)
    /// hands its free pages back, when it next goes idle; 0: never.
    pub tidy_interval_ms: u64,
}

impl MemorySettings {
    pub fn tidy_interval(&self) -> Option<Duration> {
        (self.tidy_interval_ms > 0).then(|| Duration::from_millis(self.tidy_interval_ms))
    }
}

/// The multi-threaded tokio runtime of a service whose global allocator is mimalloc, with the
/// tidy of [`MemorySettings::tidy_interval`] on every worker thread.
///
/// mimalloc keeps a thread's emptied pages for its next allocations and returns freed memory
/// to the kernel only from inside later allocations and frees, some time after; so a burst's
/// memory stays resident on a thread that goes quiet after it. Here a worker thread about to
/// park (nothing left to run) collects, at most once an interval: its empty pages are freed and
/// every pending purge done at once. A service always has a timer due within a second or
/// so (a sweep, a flush), so its threads keep parking and the tidy keeps its pace.
pub fn runtime(settings: &MemorySettings) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(every) = settings.tidy_interval() {
        builder.on_thread_park(move || {
            if tidy_due(every, Instant::now()) {
                marquee_alloc::collect();
            }
        });
    }
    builder.build()
}

/// Run a service's whole work, `service`, on [`runtime`]'s worker threads and wait for it
/// there; the main thread only waits.
///
/// `block_on` would run the future on the main thread, and with it the accept loop, which
/// allocates every new connection's task: on the one thread that never parks through the
/// runtime, so never tidies, while the workers free those tasks from their own threads. A
/// burst of connections left its pages there. A panic in `service` goes on as a panic here.
pub fn run<F>(settings: &MemorySettings, service: F) -> std::io::Result<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = runtime(settings)?;
    let service = runtime.spawn(service);
    match runtime.block_on(service) {
        Ok(output) => Ok(output),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(std::io::Error::other(e)),
    }
}

thread_local! {
    /// When this thread last tidied (or first parked).
    static LAST_TIDY: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Whether this thread's tidy is due at `now`: an interval after its last, never at its first
/// park (there is nothing to give back yet).
fn tidy_due(every: Duration, now: Instant) -> bool {
    LAST_TIDY.with(|last| match last.get() {
        Some(t) if now.saturating_duration_since(t) < every => false,
        before => {
            last.set(Some(now));
            before.is_some()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_tidies_at_most_once_an_interval_and_never_at_its_first_park() {
        std::thread::spawn(|| {
            let every = Duration::from_secs(10);
            let t0 = Instant::now();
            assert!(!tidy_due(every, t0), "first park");
            assert!(!tidy_due(every, t0 + Duration::from_secs(9)));
            assert!(tidy_due(every, t0 + Duration::from_secs(10)));
            assert!(!tidy_due(every, t0 + Duration::from_secs(19)));
            assert!(tidy_due(every, t0 + Duration::from_secs(21)));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_service_runs_on_the_worker_threads_not_the_waiting_one() {
        let settings = MemorySettings {
            tidy_interval_ms: 10_000,
        };
        let waiting = std::thread::current().id();
        let ran_on = run(&settings, async { std::thread::current().id() }).unwrap();
        assert_ne!(ran_on, waiting, "the service ran on the thread that waits");
        let panicked = std::panic::catch_unwind(|| run(&settings, async { panic!("boom") }));
        assert!(panicked.is_err(), "a service's panic goes on as a panic");
    }

    #[test]
    fn zero_turns_the_tidy_off() {
        let off = MemorySettings {
            tidy_interval_ms: 0,
        };
        assert_eq!(off.tidy_interval(), None);
        let on = MemorySettings {
            tidy_interval_ms: 1500,
        };
        assert_eq!(on.tidy_interval(), Some(Duration::from_millis(1500)));
    }
}
