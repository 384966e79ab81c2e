//! jemalloc's own account of the gateway's memory, as `marquee_allocator_bytes{kind}` on
//! `/metrics`, read at each scrape. Resident memory alone does not say whether memory that
//! stays is held by the program (`allocated`), by pages the allocator cannot give back while
//! a few of their blocks live (`active` above `allocated`), by freed pages waiting for the
//! decay to hand them back (`resident` above `active` and `metadata`), or by the allocator's
//! bookkeeping (`metadata`).

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};
use tikv_jemalloc_ctl::{epoch, stats};

/// How one figure is read.
type Read = fn() -> tikv_jemalloc_ctl::Result<usize>;

/// The figures read, by their label.
const KINDS: [(&str, Read); 6] = [
    ("allocated", stats::allocated::read),
    ("active", stats::active::read),
    ("metadata", stats::metadata::read),
    ("resident", stats::resident::read),
    ("mapped", stats::mapped::read),
    ("retained", stats::retained::read),
];

pub struct AllocatorStats {
    bytes: IntGaugeVec,
}

impl AllocatorStats {
    pub fn new() -> prometheus::Result<Self> {
        let bytes = IntGaugeVec::new(
            Opts::new(
                "allocator_bytes",
                "jemalloc's statistics: allocated (held by the program), active (in pages \
                 holding live blocks), metadata, resident, mapped, retained (virtual only)",
            ),
            &["kind"],
        )?;
        Ok(Self { bytes })
    }
}

impl Collector for AllocatorStats {
    fn desc(&self) -> Vec<&Desc> {
        self.bytes.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // jemalloc's statistics are a snapshot taken when the epoch advances.
        if epoch::advance().is_ok() {
            for (kind, read) in KINDS {
                if let Ok(v) = read() {
                    self.bytes
                        .with_label_values(&[kind])
                        .set(i64::try_from(v).unwrap_or(i64::MAX));
                }
            }
        }
        self.bytes.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the service's binary allocates (`main.rs`), so these tests' blocks are jemalloc's.
    #[global_allocator]
    static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

    fn value(families: &[MetricFamily], kind: &str) -> f64 {
        families[0]
            .get_metric()
            .iter()
            .find(|m| m.get_label().iter().any(|l| l.value() == kind))
            .map(|m| m.get_gauge().get_value())
            .unwrap_or_else(|| panic!("{kind} missing"))
    }

    #[test]
    fn a_block_held_shows_in_allocated_active_and_resident() {
        // Large against what the other tests in this process allocate and free meanwhile
        // (the figures are the whole process's): they may move them by a few hundred KiB.
        const SIZE: usize = 64 << 20;
        const SLACK: f64 = (8 << 20) as f64;
        let stats = AllocatorStats::new().unwrap();
        let before = stats.collect();
        // Written, so its pages are resident.
        let block = std::hint::black_box(vec![1u8; SIZE]);
        let held = stats.collect();
        drop(block);
        for (kind, _) in KINDS {
            value(&held, kind);
        }
        let grew = |kind| value(&held, kind) - value(&before, kind);
        for kind in ["allocated", "active", "resident"] {
            assert!(grew(kind) >= SIZE as f64 - SLACK, "{kind}: {}", grew(kind));
        }
        assert!(value(&held, "allocated") <= value(&held, "active"));
        assert!(value(&held, "active") <= value(&held, "resident"));
    }
}
