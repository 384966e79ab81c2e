//! The scaling table for BENCHMARKS.md: opening nights of different sizes side by side, each
//! cost as a ratio to the first (smallest) run's, so a reader sees what stays flat.

use serde_json::Value;

/// One row: a label, how to read it from a report, and whether a ratio means anything.
struct Figure {
    label: &'static str,
    read: fn(&Value) -> Option<f64>,
}

fn per_fan(r: &Value, path: &[&str]) -> Option<f64> {
    let mut v = r;
    for p in path {
        v = &v[*p];
    }
    Some(v.as_f64()? / r["fans"].as_f64()?.max(1.0))
}

fn at(r: &Value, path: &[&str]) -> Option<f64> {
    let mut v = r;
    for p in path {
        v = &v[*p];
    }
    v.as_f64()
}

const FIGURES: &[Figure] = &[
    Figure {
        label: "join p50 (ms)",
        read: |r| at(r, &["latency_ms", "join", "p50"]),
    },
    Figure {
        label: "join p99 (ms)",
        read: |r| at(r, &["latency_ms", "join", "p99"]),
    },
    Figure {
        label: "poll p50 (ms)",
        read: |r| at(r, &["latency_ms", "poll", "p50"]),
    },
    Figure {
        label: "poll p99 (ms)",
        read: |r| at(r, &["latency_ms", "poll", "p99"]),
    },
    Figure {
        label: "hold p50 (ms)",
        read: |r| at(r, &["latency_ms", "hold", "p50"]),
    },
    Figure {
        label: "hold p99 (ms)",
        read: |r| at(r, &["latency_ms", "hold", "p99"]),
    },
    Figure {
        label: "confirm p50 (ms)",
        read: |r| at(r, &["latency_ms", "confirm", "p50"]),
    },
    Figure {
        label: "confirm p99 (ms)",
        read: |r| at(r, &["latency_ms", "confirm", "p99"]),
    },
    Figure {
        label: "Redis growth per fan (bytes, peak over start)",
        read: |r| per_fan(r, &["system", "redis_growth_peak"]),
    },
    Figure {
        label: "Postgres commits per fan",
        read: |r| per_fan(r, &["system", "pg_commits"]),
    },
    Figure {
        label: "Postgres rows written per seat sold",
        read: |r| {
            let s = &r["system"];
            Some(
                (s["pg_rows_inserted"].as_f64()?
                    + s["pg_rows_updated"].as_f64()?
                    + s["pg_rows_deleted"].as_f64()?)
                    / r["sold"].as_f64()?.max(1.0),
            )
        },
    },
    Figure {
        label: "polls per fan",
        read: |r| Some(r["latency_ms"]["poll"]["count"].as_f64()? / r["fans"].as_f64()?.max(1.0)),
    },
    Figure {
        label: "generator CPU (cores)",
        read: |r| at(r, &["generator", "cpu_share_of_one_core"]),
    },
];

/// A Markdown table of `reports` (parsed JSON), the first as the baseline of every ratio.
pub fn table(reports: &[Value]) -> String {
    let mut s = String::from("| figure |");
    for r in reports {
        s += &format!(" {} fans |", r["fans"]);
    }
    s += "\n|---|";
    s += &"---|".repeat(reports.len());
    s += "\n";
    let row = |label: &str, cells: Vec<String>| format!("| {label} | {} |\n", cells.join(" | "));
    let plain = |f: fn(&Value) -> String| reports.iter().map(f).collect::<Vec<_>>();
    s += &row(
        "seats sold / total",
        plain(|r| format!("{} / {}", r["sold"], r["seats_total"])),
    );
    s += &row(
        "run (s)",
        plain(|r| format!("{:.0}", r["duration_s"].as_f64().unwrap_or(0.0))),
    );
    s += &row(
        "audit",
        plain(|r| {
            let a = &r["audit"];
            let zero = [
                "double_sells",
                "lost_payments",
                "missing_emails",
                "missing_events",
                "stuck_holds",
            ]
            .iter()
            .all(|k| a[*k] == 0);
            if zero { "all 0".into() } else { format!("{a}") }
        }),
    );
    s += &row(
        "fairness (Kendall tau)",
        plain(|r| {
            r["fairness"]["kendall_tau"]
                .as_f64()
                .map_or("n/a".into(), |t| format!("{t:.4}"))
        }),
    );
    s += &row(
        "admission rate (observed / configured per min)",
        plain(|r| {
            let a = &r["admission"];
            format!(
                "{} / {}",
                a["observed_rate_per_minute"]
                    .as_f64()
                    .map_or("n/a".into(), |v| format!("{v:.0}")),
                a["configured_rate_per_minute"]
            )
        }),
    );
    for f in FIGURES {
        let base = reports.first().and_then(f.read);
        let cells = reports
            .iter()
            .map(|r| match ((f.read)(r), base) {
                (Some(v), Some(b)) if b > 0.0 => format!("{v:.3} ({:.2}×)", v / b),
                (Some(v), _) => format!("{v:.3}"),
                (None, _) => "n/a".into(),
            })
            .collect();
        s += &row(f.label, cells);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_against_the_first_run() {
        let small = serde_json::json!({"fans": 1000, "sold": 100, "seats_total": 100,
            "latency_ms": {"poll": {"p50": 2.0, "count": 10000}},
            "system": {"redis_growth_peak": 1_000_000, "pg_commits": 3000},
            "audit": {"double_sells": 0, "lost_payments": 0, "missing_emails": 0, "missing_events": 0, "stuck_holds": 0}});
        let big = serde_json::json!({"fans": 10000, "sold": 1000, "seats_total": 1000,
            "latency_ms": {"poll": {"p50": 3.0, "count": 100000}},
            "system": {"redis_growth_peak": 5_000_000, "pg_commits": 30000},
            "audit": {"double_sells": 1}});
        let t = table(&[small, big]);
        assert!(
            t.contains("| poll p50 (ms) | 2.000 (1.00×) | 3.000 (1.50×) |"),
            "{t}"
        );
        assert!(
            t.contains("| Redis growth per fan (bytes, peak over start) | 1000.000 (1.00×) | 500.000 (0.50×) |"),
            "{t}"
        );
        assert!(t.contains("| audit | all 0 |"), "{t}");
    }
}
