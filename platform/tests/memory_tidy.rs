//! The runtime's tidy gives a burst's memory back once the threads go quiet. Its own test
//! binary: the allocator is mimalloc, as in the services that use the tidy, and nothing else
//! runs beside it to move the process's memory.

use std::time::{Duration, Instant};

use marquee_platform::memory::{MemorySettings, runtime};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// This process's anonymous resident memory (heap, stacks), KiB.
fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon in /proc/self/status")
}

#[test]
fn a_bursts_memory_is_given_back_once_the_threads_go_quiet() {
    const BURST_MIB: u64 = 64;
    let rt = runtime(&MemorySettings {
        tidy_interval_ms: 100,
    })
    .expect("runtime");
    rt.block_on(async {
        // A timer, as every service has one (a sweep, a flush): the threads keep parking.
        let ticker = tokio::spawn(async {
            let mut every = tokio::time::interval(Duration::from_millis(20));
            loop {
                every.tick().await;
            }
        });
        let before = rss_anon_kib();
        // The burst: 64 MiB in 1 KiB blocks over 8 tasks across the worker threads, each block
        // written, held until the peak is read (a task may move threads meanwhile), then freed.
        // Read while all of it is held: a thread that parks once its task is done may tidy
        // before the last task ends.
        let (allocated, mut all_allocated) = tokio::sync::mpsc::channel::<()>(8);
        let (release, released) = tokio::sync::watch::channel(false);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (allocated, mut released) = (allocated.clone(), released.clone());
                tokio::spawn(async move {
                    let blocks: Vec<Vec<u8>> =
                        (0..BURST_MIB * 128).map(|_| vec![7; 1024]).collect();
                    allocated.send(()).await.expect("the test waits");
                    released.wait_for(|r| *r).await.expect("the test releases");
                    blocks.iter().map(|b| u64::from(b[512])).sum::<u64>()
                })
            })
            .collect();
        for _ in 0..8 {
            all_allocated.recv().await.expect("a burst task");
        }
        let peak = rss_anon_kib();
        release.send(true).expect("the tasks wait");
        let mut touched = 0;
        for t in tasks {
            touched += t.await.expect("burst task");
        }
        assert_eq!(touched, 7 * BURST_MIB * 1024);
        assert!(
            peak >= before + BURST_MIB * 1024 / 2,
            "the burst should have taken memory: {before} KiB before, {peak} KiB at its height"
        );
        // Given back: within a quarter of the burst of where it started, within 10 s.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut now = rss_anon_kib();
        while now > before + BURST_MIB * 1024 / 4 {
            assert!(
                Instant::now() < deadline,
                "still {now} KiB resident 10 s after the burst (before {before}, peak {peak})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            now = rss_anon_kib();
        }
        ticker.abort();
    });
}
