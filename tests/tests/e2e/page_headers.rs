//! Every page defends itself (issue 17): a Content-Security-Policy with no inline script that
//! forbids framing, `nosniff`, no referrer, and HSTS only where the gateway is served over
//! https (`secure_cookies`). That the pages still work under their policies is checked in
//! Chromium by `fan_pages` and `browser` (any CSP violation the browser reports fails them).

use serde_json::json;

use marquee_e2e::stack;

#[tokio::test]
async fn every_page_carries_its_security_headers_and_hsts_only_over_https() {
    let s = stack(0, |s| s).await;
    let event = s.event(json!({})).await;
    let https = s
        .another_gateway_with(|src| src.set("gateway.secure_cookies", true))
        .await;
    let pages = [
        format!("/e/{event}"),
        format!("/b/{event}"),
        "/t/r_0123456789abcdef".to_owned(),
        "/find".to_owned(),
        "/ops".to_owned(),
    ];
    for (base, secure) in [(s.base.clone(), false), (https, true)] {
        for path in &pages {
            let res = s.http.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            let h = res.headers();
            let csp = h["content-security-policy"].to_str().unwrap();
            for needed in [
                "default-src 'self'",
                "frame-ancestors 'none'",
                "object-src 'none'",
                "base-uri 'none'",
            ] {
                assert!(csp.contains(needed), "{path}: {needed} missing from {csp}");
            }
            let scripts = csp
                .split(';')
                .find(|d| d.trim().starts_with("script-src"))
                .unwrap_or_else(|| panic!("{path}: no script-src in {csp}"));
            assert!(
                !scripts.contains("unsafe-inline") && !scripts.contains("unsafe-eval"),
                "{path}: {scripts}"
            );
            assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
            assert_eq!(h["x-frame-options"], "DENY", "{path}");
            assert_eq!(
                h.get("strict-transport-security").is_some(),
                secure,
                "{path}: HSTS exactly when served over https"
            );
        }
    }
    // The booking page may talk to the demo's payment simulator, and to nothing else.
    let booking = s
        .http
        .get(s.at(&format!("/b/{event}")))
        .send()
        .await
        .unwrap();
    let csp = booking.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let stripe = s.stripe_url.trim_end_matches('/');
    assert!(
        csp.contains(&format!("connect-src 'self' {stripe};")),
        "{csp}"
    );
    // Assets are never sniffed either.
    let html = booking.text().await.unwrap();
    let asset = html
        .split("src=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a script asset");
    let res = s.http.get(s.at(asset)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{asset}");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
}
