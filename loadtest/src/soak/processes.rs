//! What each running service holds, read from `/proc`: resident memory (`VmRSS`, and of it
//! the anonymous pages, `RssAnon`, and the file-backed ones, `RssFile`) and open sockets
//! (file descriptors that are sockets: its listeners, its clients' connections and its own to
//! Postgres, Redis, Kafka and Stripe).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The services `make up` starts, by executable name.
pub const SERVICES: &[&str] = &[
    "queue-gateway",
    "booking-core",
    "admission-worker",
    "marquee-events",
    "stripe-sim",
    // The mock Kafka cluster, when it runs on its own (`loadtest/soak.sh`).
    "kafka-mock",
];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Resident memory: one reading, or in a sample the median of its interval's readings.
    pub rss_kib: u64,
    /// Open sockets, likewise.
    pub sockets: u64,
    /// The highest reading of resident memory in the sample's interval (a single reading's
    /// own memory; absent in reports written before samples were summaries).
    #[serde(default)]
    pub rss_peak_kib: u64,
    /// Of resident memory, the anonymous pages (`RssAnon`: the heap, stacks and the
    /// allocator's arenas), likewise a reading or a median (absent in reports written before).
    #[serde(default)]
    pub anon_kib: u64,
    /// Of resident memory, the file-backed pages (`RssFile`: mostly the program's own code,
    /// which the kernel reads in, a readahead window at a time, as paths first run), likewise.
    #[serde(default)]
    pub file_kib: u64,
}

/// Readings taken every few seconds over a sample's interval, summed up per service: the
/// median memory and sockets, and the peak memory. A reading catches whatever requests are in
/// flight at that instant (a gateway's memory moves by several percent from one second to the
/// next under a steady load); the median of a minute's readings is that minute's memory, and
/// memory that leaks moves it as surely as it moves any one reading.
pub fn summarize(readings: &[Vec<(String, Usage)>]) -> Vec<(String, Usage)> {
    let mut names: Vec<&str> = Vec::new();
    for reading in readings {
        for (n, _) in reading {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    names
        .into_iter()
        .map(|name| {
            let of: Vec<Usage> = readings
                .iter()
                .filter_map(|r| r.iter().find(|(n, _)| n == name).map(|(_, u)| *u))
                .collect();
            let usage = Usage {
                rss_kib: median(of.iter().map(|u| u.rss_kib).collect()),
                sockets: median(of.iter().map(|u| u.sockets).collect()),
                rss_peak_kib: of.iter().map(|u| u.rss_peak_kib).max().unwrap_or(0),
                anon_kib: median(of.iter().map(|u| u.anon_kib).collect()),
                file_kib: median(of.iter().map(|u| u.file_kib).collect()),
            };
            (name.to_owned(), usage)
        })
        .collect()
}

/// Each named service's usage, summed over its processes (a service not running is absent).
pub fn read(names: &[&str]) -> Vec<(String, Usage)> {
    let mut found: Vec<(String, Usage)> = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        let Some(name) = executable(&path) else {
            continue;
        };
        if !names.contains(&name.as_str()) {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        let rss = status_kib(&status, "VmRSS").unwrap_or(0);
        let usage = Usage {
            rss_kib: rss,
            sockets: sockets(&path),
            rss_peak_kib: rss,
            anon_kib: status_kib(&status, "RssAnon").unwrap_or(0),
            file_kib: status_kib(&status, "RssFile").unwrap_or(0),
        };
        match found.iter_mut().find(|(n, _)| *n == name) {
            Some((_, u)) => {
                u.rss_kib += usage.rss_kib;
                u.sockets += usage.sockets;
                u.rss_peak_kib += usage.rss_peak_kib;
                u.anon_kib += usage.anon_kib;
                u.file_kib += usage.file_kib;
            }
            None => found.push((name, usage)),
        }
    }
    found.sort_by_key(|(n, _)| names.iter().position(|s| s == n));
    found
}

/// The process's program name: the file name of its first argument.
fn executable(proc_dir: &Path) -> Option<String> {
    let cmdline = std::fs::read(proc_dir.join("cmdline")).ok()?;
    let argv0 = cmdline.split(|b| *b == 0).next()?;
    let argv0 = std::str::from_utf8(argv0).ok()?;
    Some(argv0.rsplit('/').next()?.to_owned())
}

/// A `field:    12345 kB` line's figure from a `/proc/<pid>/status` text.
fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn sockets(proc_dir: &Path) -> u64 {
    let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) else {
        return 0;
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resident_memory_from_status() {
        let status = "Name:\tbooking-core\nVmPeak:\t  900 kB\nVmRSS:\t   41234 kB\n\
                      RssAnon:\t   21000 kB\nRssFile:\t   20234 kB\nThreads:\t5\n";
        assert_eq!(status_kib(status, "VmRSS"), Some(41_234));
        assert_eq!(status_kib(status, "RssAnon"), Some(21_000));
        assert_eq!(status_kib(status, "RssFile"), Some(20_234));
        // A field is its whole name (`VmRS` is not `VmRSS`); an absent one has no figure.
        assert_eq!(status_kib(status, "VmRS"), None);
        assert_eq!(status_kib("Name:\tkthreadd\n", "VmRSS"), None);
    }

    #[test]
    fn a_summary_is_the_median_of_its_readings_and_their_peak() {
        let reading = |kib: u64, sockets: u64| Usage {
            rss_kib: kib,
            sockets,
            rss_peak_kib: kib,
            anon_kib: kib / 2,
            file_kib: kib - kib / 2,
        };
        let readings: Vec<Vec<(String, Usage)>> = [(100, 5), (300, 9), (120, 6), (110, 7)]
            .into_iter()
            .map(|(kib, sockets)| vec![("queue-gateway".to_owned(), reading(kib, sockets))])
            .chain([vec![
                ("queue-gateway".to_owned(), reading(115, 8)),
                // A service seen in only one reading is summed up from that one.
                ("kafka-mock".to_owned(), reading(40, 2)),
            ]])
            .collect();
        let summary = summarize(&readings);
        assert_eq!(
            summary,
            vec![
                (
                    "queue-gateway".to_owned(),
                    Usage {
                        rss_kib: 115,
                        sockets: 7,
                        rss_peak_kib: 300,
                        anon_kib: 57,
                        file_kib: 58,
                    }
                ),
                ("kafka-mock".to_owned(), reading(40, 2)),
            ]
        );
    }

    #[test]
    fn finds_this_process_with_its_memory_and_sockets() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let me = std::env::current_exe().unwrap();
        let name = me.file_name().unwrap().to_str().unwrap().to_owned();
        let found = read(&[name.as_str()]);
        let (_, usage) = found.iter().find(|(n, _)| *n == name).expect("this test");
        assert!(usage.rss_kib > 1000, "{usage:?}");
        assert!(usage.anon_kib > 0 && usage.file_kib > 0, "{usage:?}");
        assert!(
            usage.anon_kib + usage.file_kib <= usage.rss_kib,
            "{usage:?}"
        );
        assert!(usage.sockets >= 1, "{usage:?}");
        drop(listener);
    }
}
