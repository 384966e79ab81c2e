//! The soak's curve: one sample a minute of every service's memory and sockets (and Redis's
//! and Postgres's own figures), and whether it stayed flat. "Flat" is the rule: every
//! memory sample of the second half within 5 % of the sample at a quarter of the run (minute
//! 15 and the last 30 minutes of an hour).

use serde::Serialize;

use super::processes::Usage;

/// How far a second-half sample may stray from the quarter-mark one.
pub const FLAT_WITHIN: f64 = 0.05;

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Whole minutes since the soak began.
    pub minute: u64,
    /// Service → usage.
    pub services: Vec<(String, Usage)>,
    pub redis_used_memory: Option<u64>,
    pub redis_clients: Option<u64>,
    pub pg_connections: Option<i64>,
    /// Opening nights finished so far.
    pub nights_done: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub service: String,
    /// The reference sample's minute and memory.
    pub reference_minute: u64,
    pub reference_kib: u64,
    /// The second half's farthest sample from the reference, as a signed share of it.
    pub worst_drift: f64,
    pub flat: bool,
}

/// For each service: its memory over the second half against the quarter mark. `None` when
/// the run is too short to judge (fewer than four samples).
pub fn verdicts(samples: &[Sample]) -> Option<Vec<Verdict>> {
    let last = samples.last()?.minute;
    if samples.len() < 4 {
        return None;
    }
    let reference_minute = last / 4;
    let reference = samples.iter().find(|s| s.minute >= reference_minute)?;
    let second_half: Vec<&Sample> = samples.iter().filter(|s| s.minute >= last / 2).collect();
    let verdicts = reference
        .services
        .iter()
        .map(|(service, at_ref)| {
            let base = at_ref.rss_kib.max(1) as f64;
            let worst_drift = second_half
                .iter()
                .filter_map(|s| s.services.iter().find(|(n, _)| n == service))
                .map(|(_, u)| (u.rss_kib as f64 - base) / base)
                .fold(
                    0.0_f64,
                    |worst, d| if d.abs() > worst.abs() { d } else { worst },
                );
            Verdict {
                service: service.clone(),
                reference_minute: reference.minute,
                reference_kib: at_ref.rss_kib,
                worst_drift,
                flat: worst_drift.abs() <= FLAT_WITHIN,
            }
        })
        .collect();
    Some(verdicts)
}

/// The curve as a Markdown table (memory in MiB, sockets after the slash), then the verdicts.
pub fn markdown(samples: &[Sample]) -> String {
    let Some(first) = samples.first() else {
        return "No samples.\n".into();
    };
    let names: Vec<&str> = first.services.iter().map(|(n, _)| n.as_str()).collect();
    let mut s = String::from("| minute |");
    for n in &names {
        s += &format!(" {n} MiB / sockets |");
    }
    s += " Redis MiB / clients | Postgres connections | nights done |\n|---:|";
    s += &"---:|".repeat(names.len() + 3);
    s += "\n";
    let mib = |kib: u64| kib as f64 / 1024.0;
    for sample in samples {
        s += &format!("| {} |", sample.minute);
        for n in &names {
            match sample.services.iter().find(|(name, _)| name == n) {
                Some((_, u)) => s += &format!(" {:.1} / {} |", mib(u.rss_kib), u.sockets),
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
    match verdicts(samples) {
        None => s += "\nToo short to judge flatness (fewer than four samples).\n",
        Some(verdicts) => {
            s += "\n| service | memory at minute | second half's farthest sample | flat (within 5 %) |\n|---|---:|---:|---|\n";
            for v in verdicts {
                s += &format!(
                    "| {} | {:.1} MiB at {} | {:+.1} % | {} |\n",
                    v.service,
                    mib(v.reference_kib),
                    v.reference_minute,
                    v.worst_drift * 100.0,
                    if v.flat { "yes" } else { "**no**" }
                );
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(minute: u64, rss_kib: u64) -> Sample {
        Sample {
            minute,
            services: vec![(
                "booking-core".into(),
                Usage {
                    rss_kib,
                    sockets: 9,
                },
            )],
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
        let v = &verdicts(&samples).unwrap()[0];
        assert_eq!(v.reference_minute, 15);
        assert!(v.flat, "{v:?}");
        // Early growth (warming up) does not count; a late climb does.
        samples[2].services[0].1.rss_kib = 10_000;
        assert!(verdicts(&samples).unwrap()[0].flat);
        samples[55].services[0].1.rss_kib = 60_000;
        let v = &verdicts(&samples).unwrap()[0];
        assert!(!v.flat, "{v:?}");
        assert!((v.worst_drift - (60_000.0 - 50_150.0) / 50_150.0).abs() < 1e-9);
        assert!(markdown(&samples).contains("**no**"));
    }

    #[test]
    fn a_short_run_is_not_judged() {
        let samples: Vec<Sample> = (0..3).map(|m| sample(m, 50_000)).collect();
        assert_eq!(verdicts(&samples), None);
        assert!(markdown(&samples).contains("Too short"));
    }
}
