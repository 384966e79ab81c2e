//! Every service's /metrics passes `promtool check metrics`, and every metric the dashboard
//! and the alert rules query is one the services really export.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use marquee_e2e::stack;

fn metric_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .fold(n.to_owned(), |n, s| {
                    n.strip_suffix(s).map(str::to_owned).unwrap_or(n)
                })
        })
        .collect()
}

/// Metric names in PromQL expressions: identifiers starting `marquee_`.
fn queried(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("marquee_") {
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.insert(name.trim_end_matches("_bucket").to_owned());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_valid_and_cover_the_dashboard_and_alerts() {
    let s = stack(1, |s| s.set("worker.tick_ms", 50)).await;
    let event = s.event(json!({})).await;
    let show = s.show(&event, 1, 3).await;
    let (mut fan, _) = s.join(&event, None).await;
    s.wait_admitted(&event, &mut fan, Duration::from_secs(10))
        .await;
    s.http
        .get(s.at(&format!("/v1/shows/{show}/seats")))
        .send()
        .await
        .unwrap();

    let mut exported = BTreeSet::new();
    for url in [
        s.base.clone(),
        s.booking_url.clone(),
        s.worker_urls[0].clone(),
        s.events_url.clone(),
    ] {
        let text = s.text(&format!("{url}/metrics")).await;
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool (make test installs it)");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{url}/metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        exported.extend(metric_names(&text));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../monitoring");
    let mut wanted = queried(&std::fs::read_to_string(root.join("dashboard.json")).unwrap());
    wanted.extend(queried(
        &std::fs::read_to_string(root.join("alerts.yml")).unwrap(),
    ));
    let missing: Vec<_> = wanted.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "queried but never exported: {missing:?}\nexported: {exported:?}"
    );
}
