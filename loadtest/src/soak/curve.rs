//! The soak's curve: one sample a minute of every service's memory and sockets (the median
//! of the minute's readings, and their peak; Redis's and Postgres's own figures of the
//! moment), and whether it stayed flat. "Flat" is the rule: every
//! memory sample from half the soak's time on within 5 % of the sample at a quarter of it
//! (minute 15, and the last 30 minutes of an hour). The Stripe simulator and the mock Kafka
//! cluster are sampled but not judged: they stand in for Stripe and Kafka and keep every
//! PaymentIntent and message (the audits read them all back).

use serde::{Deserialize, Serialize};

use super::processes::Usage;

/// How far a second-half sample may stray from the quarter-mark one.
pub const FLAT_WITHIN: f64 = 0.05;

/// The services whose memory must stay flat.
pub const JUDGED: &[&str] = &[
    "queue-gateway",
    "booking-core",
    "admission-worker",
    "marquee-events",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the soak began.
    pub t_s: u64,
    /// Service → usage.
    pub services: Vec<(String, Usage)>,
    pub redis_used_memory: Option<u64>,
    pub redis_clients: Option<u64>,
    pub pg_connections: Option<i64>,
    /// Opening nights finished so far.
    pub nights_done: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub service: String,
    /// The reference sample's time and memory.
    pub reference_s: u64,
    pub reference_kib: u64,
    /// The second half's farthest sample from the reference, as a signed share of it.
    pub worst_drift: f64,
    pub flat: bool,
    /// The second half's least-squares slope, as a share of the reference per ten minutes:
    /// what tells growth (a leak climbs) from samples that swing with the load of the moment.
    #[serde(default)]
    pub trend_per_10_min: f64,
    /// The same farthest drift for the anonymous pages alone (the heap and the allocator's
    /// arenas, without the program's code pages): where a drift of the whole comes from.
    #[serde(default)]
    pub anon_worst_drift: f64,
}

/// For each judged service, its memory from half of `soak_s` on against the sample at a
/// quarter of it. `None` when the samples do not reach that far or are too few (under four).
pub fn verdicts(samples: &[Sample], soak_s: u64) -> Option<Vec<Verdict>> {
    if samples.len() < 4 || samples.last()?.t_s < soak_s / 2 {
        return None;
    }
    let reference = samples.iter().find(|s| s.t_s >= soak_s / 4)?;
    let second_half: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= soak_s / 2).collect();
    let verdicts = reference
        .services
        .iter()
        .filter(|(service, _)| JUDGED.contains(&service.as_str()))
        .map(|(service, at_ref)| {
            let base = at_ref.rss_kib.max(1) as f64;
            let farthest = |kib: fn(&Usage) -> u64| {
                let base = kib(at_ref).max(1) as f64;
                second_half
                    .iter()
                    .filter_map(|s| s.services.iter().find(|(n, _)| n == service))
                    .map(|(_, u)| (kib(u) as f64 - base) / base)
                    .fold(
                        0.0_f64,
                        |worst, d| if d.abs() > worst.abs() { d } else { worst },
                    )
            };
            let worst_drift = farthest(|u| u.rss_kib);
            let points: Vec<(f64, f64)> = second_half
                .iter()
                .filter_map(|s| {
                    let (_, u) = s.services.iter().find(|(n, _)| n == service)?;
                    Some((s.t_s as f64, u.rss_kib as f64))
                })
                .collect();
            Verdict {
                trend_per_10_min: slope(&points) * 600.0 / base,
                service: service.clone(),
                reference_s: reference.t_s,
                reference_kib: at_ref.rss_kib,
                worst_drift,
                flat: worst_drift.abs() <= FLAT_WITHIN,
                anon_worst_drift: farthest(|u| u.anon_kib),
            }
        })
        .collect();
    Some(verdicts)
}

/// The least-squares slope of `points` (0 for fewer than two distinct times).
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p.0 / n, y + p.1 / n));
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den > 0.0 { num / den } else { 0.0 }
}

/// The curve as a Markdown table (memory in MiB, sockets after the slash), then the verdicts.
pub fn markdown(samples: &[Sample], soak_s: u64) -> String {
    let Some(first) = samples.first() else {
        return "No samples.\n".into();
    };
    let names: Vec<&str> = first.services.iter().map(|(n, _)| n.as_str()).collect();
    let mut s = String::from("| time |");
    for n in &names {
        s += &format!(" {n} MiB (peak) / sockets |");
    }
    s += " Redis MiB / clients | Postgres connections | nights done |\n|---:|";
    s += &"---:|".repeat(names.len() + 3);
    s += "\n";
    let mib = |kib: u64| kib as f64 / 1024.0;
    for sample in samples {
        s += &format!("| {}:{:02} |", sample.t_s / 60, sample.t_s % 60);
        for n in &names {
            match sample.services.iter().find(|(name, _)| name == n) {
                Some((_, u)) => {
                    s += &format!(
                        " {:.1} ({:.1}) / {} |",
                        mib(u.rss_kib),
                        mib(u.rss_peak_kib.max(u.rss_kib)),
                        u.sockets
                    )
                }
                None => s += " gone |",
            }
        }
        let redis = sample
            .redis_used_memory
            .map_or("?".into(), |b| format!("{:.1}", b as f64 / 1_048_576.0));
        let clients = sample.redis_clients.map_or("?".into(), |c| c.to_string());
        let pg = sample.pg_connections.map_or("?".into(), |c| c.to_string());
        s += &format!(" {redis} / {clients} | {pg} | {} |\n", sample.nights_done);
    }
    s += &split_table(samples);
    match verdicts(samples, soak_s) {
        None => {
            s += "\nToo short to judge flatness (fewer than four samples, or none past half the soak).\n"
        }
        Some(verdicts) => {
            s += "\n| service | memory at a quarter of the soak | farthest sample from half on | flat (within 5 %) | trend from half on, per 10 minutes | farthest of the anonymous pages alone |\n|---|---:|---:|---|---:|---:|\n";
            for v in verdicts {
                s += &format!(
                    "| {} | {:.1} MiB at {}:{:02} | {:+.1} % | {} | {:+.1} % | {:+.1} % |\n",
                    v.service,
                    mib(v.reference_kib),
                    v.reference_s / 60,
                    v.reference_s % 60,
                    v.worst_drift * 100.0,
                    if v.flat { "yes" } else { "**no**" },
                    v.trend_per_10_min * 100.0,
                    v.anon_worst_drift * 100.0
                );
            }
        }
    }
    s
}

/// The judged services' memory split in two, every sample: anonymous pages (the heap, stacks,
/// the allocator's arenas) + file-backed ones (the program's code as far as it has run), MiB.
fn split_table(samples: &[Sample]) -> String {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let names: Vec<&str> = samples.first().map_or(Vec::new(), |first| {
        first
            .services
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| JUDGED.contains(n))
            .collect()
    });
    let mut s = String::from("\n| time |");
    for n in &names {
        s += &format!(" {n} anonymous + file-backed MiB |");
    }
    s += "\n|---:|";
    s += &"---:|".repeat(names.len());
    s += "\n";
    for sample in samples {
        s += &format!("| {}:{:02} |", sample.t_s / 60, sample.t_s % 60);
        for n in &names {
            match sample.services.iter().find(|(name, _)| name == n) {
                Some((_, u)) => s += &format!(" {:.1} + {:.1} |", mib(u.anon_kib), mib(u.file_kib)),
                None => s += " gone |",
            }
        }
        s += "\n";
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(minute: u64, rss_kib: u64) -> Sample {
        let usage = Usage {
            rss_kib,
            sockets: 9,
            rss_peak_kib: rss_kib,
            anon_kib: rss_kib - 20_000,
            file_kib: 20_000,
        };
        Sample {
            t_s: minute * 60,
            services: vec![
                ("booking-core".into(), usage),
                // Not judged: it may grow as it likes.
                (
                    "stripe-sim".into(),
                    Usage {
                        rss_kib: rss_kib * minute,
                        sockets: 3,
                        rss_peak_kib: rss_kib * minute,
                        ..Usage::default()
                    },
                ),
            ],
            redis_used_memory: Some(2 << 20),
            redis_clients: Some(12),
            pg_connections: Some(20),
            nights_done: minute / 3,
        }
    }

    #[test]
    fn flat_when_the_second_half_stays_within_five_percent_of_the_quarter_mark() {
        // An hour: minute 15 is the reference, minutes 30 to 60 are judged.
        let mut samples: Vec<Sample> = (0..=60).map(|m| sample(m, 50_000 + m * 10)).collect();
        let verdicts = verdicts(&samples, 3600).unwrap();
        assert_eq!(verdicts.len(), 1, "{verdicts:?}");
        let v = &verdicts[0];
        assert_eq!((v.service.as_str(), v.reference_s), ("booking-core", 900));
        assert!(v.flat, "{v:?}");
        assert!(
            (v.trend_per_10_min - 100.0 / 50_150.0).abs() < 1e-9,
            "{v:?}"
        );
        // Early growth (warming up) does not count; a late climb does.
        samples[2].services[0].1.rss_kib = 10_000;
        assert!(super::verdicts(&samples, 3600).unwrap()[0].flat);
        samples[55].services[0].1.rss_kib = 60_000;
        samples[55].services[0].1.anon_kib = 40_000;
        let v = &super::verdicts(&samples, 3600).unwrap()[0];
        assert!(!v.flat, "{v:?}");
        assert!((v.worst_drift - (60_000.0 - 50_150.0) / 50_150.0).abs() < 1e-9);
        // The anonymous pages' own drift, against their own reference (30,150 at minute 15).
        assert!((v.anon_worst_drift - (40_000.0 - 30_150.0) / 30_150.0).abs() < 1e-9);
        let table = markdown(&samples, 3600);
        assert!(
            table.contains("| 15:00 |") && table.contains("**no**"),
            "{table}"
        );
        assert!(table.contains("| 55:00 | 39.1 + 19.5 |\n"), "{table}");
    }

    #[test]
    fn samples_that_swing_with_the_load_are_not_flat_but_show_no_trend() {
        let samples: Vec<Sample> = (0..=60)
            .map(|m| sample(m, if m % 2 == 0 { 46_000 } else { 54_000 }))
            .collect();
        let v = &verdicts(&samples, 3600).unwrap()[0];
        assert!(!v.flat, "{v:?}");
        assert!(v.trend_per_10_min.abs() < 0.01, "{v:?}");
    }

    #[test]
    fn a_short_run_is_not_judged() {
        let samples: Vec<Sample> = (0..3).map(|m| sample(m, 50_000)).collect();
        assert_eq!(verdicts(&samples, 120), None);
        // Samples that stop before half the soak: not judged either.
        let samples: Vec<Sample> = (0..10).map(|m| sample(m, 50_000)).collect();
        assert_eq!(verdicts(&samples, 3600), None);
        assert!(markdown(&samples, 3600).contains("Too short"));
    }
}
