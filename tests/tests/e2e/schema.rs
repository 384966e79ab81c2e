//! Hostile input, generated (issue 17): schemathesis (from PyPI; `make test` installs it) reads
//! the gateway's `/openapi.json` and sends what it generates from it, valid and invalid, to
//! every operation, the operators' `/admin` routes included: no answer may be a 5xx, and every
//! answer must match what the document declares (status code, content type, headers, body).

use std::time::Duration;

use serde_json::json;

use marquee_e2e::stack;

/// How long schemathesis may take, within `make test`'s budget (it takes about 90 s here).
const BUDGET_S: u64 = 240;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_get_no_5xx_and_only_answers_the_document_declares() {
    let s = stack(1, |s| s).await;
    // Something real to find, besides whatever it invents.
    let event = s.event(json!({})).await;
    s.show(&event, 4, 10).await;
    let report = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new("st")
        .args(["run", &format!("{}/openapi.json", s.base)])
        .args(["--url", &s.base])
        .args(["--checks", "all"])
        // Checks of stateful links between operations, which need the created resources'
        // credentials (a visitor's tokens) the generator cannot have.
        .args([
            "--exclude-checks",
            "use_after_free,ensure_resource_availability,ignored_auth,positive_data_acceptance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        // A number of cases per operation rather than a time budget, so the same seed sends
        // the same cases however fast the machine is.
        .args(["--max-examples", "120"])
        // The same cases every run, so a failure in CI is one a developer can replay;
        // `MARQUEE_SCHEMATHESIS_SEED` explores others.
        .args([
            "--seed",
            &std::env::var("MARQUEE_SCHEMATHESIS_SEED").unwrap_or_else(|_| "17".into()),
        ])
        // One worker: with two, hypothesis's lambda-source cache sometimes fails inside
        // schemathesis ("AST constructor recursion depth mismatch"), a runtime error of its own.
        .args(["--workers", "1"])
        .args(["--request-timeout", "20"])
        .args(["--suppress-health-check", "all"])
        .args(["--header", "Authorization: Bearer test-operator-token"])
        // A live stream never ends, so it cannot be answered in full.
        .args(["--exclude-path", "/v1/shows/{show_id}/seats/events"])
        .args(["--report", "junit", "--report-dir"])
        .arg(report.path())
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(BUDGET_S), run)
        .await
        .expect("schemathesis finished in its budget")
        .expect("schemathesis runs (make test installs it: pip install schemathesis)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
}
