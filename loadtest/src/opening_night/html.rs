//! The report as a page people read a sale from: charts over time (queue length and active
//! sessions, admissions, holds and sales, seats left, p99 latency per phase) drawn as inline
//! SVG, and the figures and the audit as tables. Self-contained: no scripts, fonts or files
//! from anywhere else.

use std::fmt::Write;

use super::report::Report;

const COLOURS: [&str; 7] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart of `lines` (name, points (seconds, value)) with a y axis from 0.
fn chart(title: &str, unit: &str, lines: &[(&str, Vec<(f64, f64)>)]) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 260.0, 60.0, 150.0, 30.0, 36.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let max_x = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .fold(1.0f64, f64::max);
    let max_y = nice_ceiling(
        lines
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
            .fold(0.0f64, f64::max)
            .max(1.0)
            * 1.05,
    );
    let sx = |x: f64| left + x / max_x * pw;
    let sy = |y: f64| top + ph - y / max_y * ph;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<figure><svg viewBox="0 0 {w} {h}" role="img" aria-label="{t}"><title>{t}</title>
<text x="{left}" y="18" class="title">{t}</text>"##,
        t = escape(title)
    );
    for i in 0..=4 {
        let y = max_y * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{x2}" y1="{py:.1}" y2="{py:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" class="tick" text-anchor="end">{label}</text>"##,
            x2 = left + pw,
            py = sy(y),
            tx = left - 6.0,
            ty = sy(y) + 4.0,
            label = short(y)
        );
        let x = max_x * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<text x="{px:.1}" y="{ty}" class="tick" text-anchor="middle">{x:.0} s</text>"##,
            px = sx(x),
            ty = top + ph + 18.0
        );
    }
    let _ = write!(
        svg,
        r##"<text x="12" y="{y}" class="tick" transform="rotate(-90 12 {y})" text-anchor="middle">{u}</text>"##,
        y = top + ph / 2.0,
        u = escape(unit)
    );
    for (k, (name, points)) in lines.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        if !points.is_empty() {
            let path: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
                .collect();
            let _ = write!(
                svg,
                r##"<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{}"/>"##,
                path.join(" ")
            );
        }
        let ly = top + 14.0 + k as f64 * 18.0;
        let _ = write!(
            svg,
            r##"<line x1="{x1}" x2="{x2}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{tx}" y="{ty}" class="legend">{n}</text>"##,
            x1 = left + pw + 12.0,
            x2 = left + pw + 30.0,
            tx = left + pw + 36.0,
            ty = ly + 4.0,
            n = escape(name)
        );
    }
    svg += "</svg></figure>";
    svg
}

/// The smallest of 1, 2, 2.5, 5 × 10ⁿ (so a quarter of it is a round tick) at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
}

fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{}k", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn row(cells: &[String]) -> String {
    let mut s = String::from("<tr>");
    for c in cells {
        let _ = write!(s, "<td>{}</td>", escape(c));
    }
    s + "</tr>"
}

pub fn page(r: &Report) -> String {
    let samples = &r.series.samples;
    let along = |f: &dyn Fn(&super::sampler::Sample) -> f64| -> Vec<(f64, f64)> {
        samples.iter().map(|s| (s.t, f(s))).collect()
    };
    let admitted_per_s: Vec<(f64, f64)> = samples
        .windows(2)
        .map(|w| {
            let dt = (w[1].t - w[0].t).max(0.001);
            (
                w[1].t,
                w[1].admitted_total.saturating_sub(w[0].admitted_total) as f64 / dt,
            )
        })
        .collect();
    let per_s = |v: &[u64]| -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .map(|(i, n)| (i as f64, *n as f64))
            .collect()
    };
    let bucket = r.series.bucket_s as f64;
    let p99: Vec<(&str, Vec<(f64, f64)>)> = r
        .series
        .p99_ms
        .iter()
        .filter(|(_, v)| v.iter().any(Option::is_some))
        .map(|(phase, v)| {
            (
                *phase,
                v.iter()
                    .enumerate()
                    .filter_map(|(i, p)| Some((i as f64 * bucket + bucket / 2.0, (*p)?)))
                    .collect(),
            )
        })
        .collect();
    let cap = f64::from(r.admission.max_active);
    let charts = [
        chart(
            "Queue length and fans shopping",
            "fans",
            &[
                ("waiting", along(&|s| s.waiting as f64)),
                ("active", along(&|s| s.active as f64)),
                ("cap", along(&|_| cap)),
            ],
        ),
        chart(
            "Admitted per second",
            "fans/s",
            &[
                ("admitted", admitted_per_s),
                (
                    "configured",
                    along(&|_| f64::from(r.admission.configured_rate_per_minute) / 60.0),
                ),
            ],
        ),
        chart(
            "Holds and sales per second",
            "per s",
            &[
                ("holds", per_s(&r.series.holds_per_s)),
                ("sales", per_s(&r.series.sales_per_s)),
            ],
        ),
        chart(
            "Seats left",
            "seats",
            &[
                (
                    "left",
                    along(&|s| r.seats_total.saturating_sub(s.sold_seats) as f64),
                ),
                ("held", along(&|s| s.held_seats as f64)),
            ],
        ),
        chart("p99 latency per phase", "ms", &p99),
    ];

    let a = &r.audit;
    let audit_rows: String = [
        ("double_sells", a.double_sells),
        ("lost_payments", a.lost_payments),
        ("missing_emails", a.missing_emails),
        ("missing_events", a.missing_events),
        ("stuck_holds", a.stuck_holds),
    ]
    .iter()
    .map(|(k, v)| {
        format!(
            r#"<tr class="{}"><td>{k}</td><td>{v}</td></tr>"#,
            if *v == 0 { "ok" } else { "bad" }
        )
    })
    .collect();
    let latency_rows: String = r
        .latency_ms
        .iter()
        .map(|(p, l)| {
            row(&[
                (*p).to_owned(),
                l.count.to_string(),
                format!("{:.1}", l.p50),
                format!("{:.1}", l.p90),
                format!("{:.1}", l.p99),
                format!("{:.1}", l.max),
            ])
        })
        .collect();
    let status_rows: String = r
        .status_codes
        .iter()
        .map(|(route, codes)| {
            let codes: Vec<String> = codes.iter().map(|(c, n)| format!("{c}: {n}")).collect();
            row(&[(*route).to_owned(), codes.join(", ")])
        })
        .collect();
    let fairness = r.fairness.as_ref().map_or("n/a".to_owned(), |f| {
        format!(
            "{:.4} over {} fans ({:.1} % of pairs tied in a tick)",
            f.kendall_tau,
            f.fans,
            f.tied_share * 100.0
        )
    });
    let figures: String = [
        ("fans", r.fans.to_string()),
        ("seats sold", format!("{} of {}", r.sold, r.seats_total)),
        (
            "fans admitted / who bought",
            format!("{} / {}", r.fans_admitted, r.fans_who_bought),
        ),
        (
            "sold out after",
            r.time_to_sold_out_s
                .map_or("not sold out".to_owned(), |t| format!("{t:.1} s")),
        ),
        (
            "admission rate",
            format!(
                "{} observed of {}/min configured",
                r.admission
                    .observed_rate_per_minute
                    .map_or("n/a".to_owned(), |v| format!("{v:.0}/min")),
                r.admission.configured_rate_per_minute
            ),
        ),
        (
            "most fans active",
            format!(
                "{} (cap {})",
                r.admission.max_active_observed, r.admission.max_active
            ),
        ),
        ("fairness (Kendall tau)", fairness),
        (
            "throughput",
            format!(
                "joins {:.0}/s, polls {:.0}/s, holds {:.1}/s, payments {:.1}/s",
                r.joins_per_s, r.polls_per_s, r.holds_per_s, r.payments_per_s
            ),
        ),
        (
            "generator CPU",
            format!(
                "{:.2} of one core ({} cores)",
                r.generator.cpu_share_of_one_core, r.generator.cores
            ),
        ),
    ]
    .iter()
    .map(|(k, v)| row(&[(*k).to_owned(), v.clone()]))
    .collect();

    format!(
        r##"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Opening night {event}</title>
<style>
body{{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:16px;color:#222}}
h1{{font-size:1.4em}} h2{{font-size:1.1em;margin-top:1.6em}}
table{{border-collapse:collapse;margin:.5em 0}} td,th{{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}}
tr.ok td:last-child{{color:#176b2c;font-weight:600}} tr.bad td:last-child{{color:#b00020;font-weight:700}}
figure{{margin:1em 0}} svg{{width:100%;height:auto;background:#fafafa;border:1px solid #e3e3e3}}
.title{{font-weight:600;font-size:14px}} .tick{{font-size:11px;fill:#555}} .legend{{font-size:12px}}
.grid{{stroke:#e0e0e0}} .verdict{{font-weight:700;color:{colour}}}
</style></head><body>
<h1>Opening night: {fans} fans, <span class="verdict">audit {verdict}</span></h1>
<p>Event <code>{event}</code>, {arrival:?} arrival, {duration:.0} s.</p>
<h2>Audit (read back from Postgres, Stripe, the mail folder and Kafka)</h2>
<table>{audit_rows}</table>
<h2>Figures</h2><table>{figures}</table>
<h2>Over time</h2>{charts}
<h2>Latency per phase (ms)</h2>
<table><tr><th>phase</th><th>n</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>{latency_rows}</table>
<h2>Status codes per route</h2><table>{status_rows}</table>
</body></html>
"##,
        event = escape(&r.event),
        fans = r.fans,
        verdict = if a.clean() { "clean" } else { "FAILED" },
        colour = if a.clean() { "#176b2c" } else { "#b00020" },
        arrival = r.arrival,
        duration = r.duration_s,
        charts = charts.join("\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_ceiling(2085.0), 2500.0);
        assert_eq!(nice_ceiling(21.0), 25.0);
        assert_eq!(nice_ceiling(0.7), 1.0);
        assert_eq!(nice_ceiling(400.0), 500.0);
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape("<b>&\""), "&lt;b&gt;&amp;&quot;");
    }
}
