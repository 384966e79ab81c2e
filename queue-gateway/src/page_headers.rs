//! The headers every page defends itself with: a Content-Security-Policy without inline
//! script and never framed, `nosniff`, no referrer, and HSTS when the gateway is served over
//! https (`[gateway] secure_cookies`). Each page's policy is written here and nowhere else.

use axum::response::Response;
use http::{HeaderValue, header};
use marquee_platform::Settings;

/// The pages, for their policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/e/{event}`: the operator's logo may be any https image.
    WaitingRoom,
    /// `/b/{event}`: pays through Stripe.js (real Stripe) or posts test cards to the simulator.
    Booking,
    Ticket,
    Find,
    /// `/ops`: previews each event's logo, any https image.
    Console,
}

/// What every page allows: its own scripts, styles, images and API; no plugins, no `<base>`,
/// never framed, forms only to itself.
const BASE: [(&str, &str); 9] = [
    ("default-src", "'self'"),
    ("script-src", "'self'"),
    ("style-src", "'self'"),
    ("img-src", "'self'"),
    ("connect-src", "'self'"),
    ("frame-src", "'none'"),
    ("object-src", "'none'"),
    ("base-uri", "'none'"),
    ("frame-ancestors", "'none'"),
];

/// Stripe.js's own origins (its script, its card frames, its API).
const STRIPE_JS: &str = "https://js.stripe.com";
const STRIPE_FRAMES: &str = "https://js.stripe.com https://hooks.stripe.com";
const STRIPE_API: &str = "https://api.stripe.com";

/// `page`'s Content-Security-Policy, payments going to `stripe` (`[stripe] api_base`).
pub fn policy(page: Page, stripe: &str) -> String {
    let real_stripe = stripe.contains("api.stripe.com");
    let extra = |directive: &str| -> Option<String> {
        match (page, directive) {
            // The operator's logo, any https image: shown to fans and previewed in the console.
            (Page::WaitingRoom | Page::Console, "img-src") => Some("https:".into()),
            (Page::Booking, "script-src") if real_stripe => Some(STRIPE_JS.into()),
            (Page::Booking, "frame-src") if real_stripe => Some(STRIPE_FRAMES.into()),
            (Page::Booking, "connect-src") if real_stripe => Some(STRIPE_API.into()),
            // The demo's test-card form confirms at the simulator itself.
            (Page::Booking, "connect-src") => origin(stripe),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(BASE.len() + 1);
    for (directive, own) in BASE {
        let sources = match extra(directive) {
            // Frames from Stripe replace `'none'` rather than join it.
            Some(more) if own == "'none'" => more,
            Some(more) => format!("{own} {more}"),
            None => own.to_owned(),
        };
        out.push(format!("{directive} {sources}"));
    }
    out.push("form-action 'self'".to_owned());
    out.join("; ")
}

/// `scheme://host[:port]` of a URL, if it has one.
fn origin(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

/// Put `page`'s defences on `response`.
pub fn defend(mut response: Response, page: Page, settings: &Settings) -> Response {
    let h = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&policy(page, &settings.stripe.api_base)) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    nosniff(&mut response);
    let h = response.headers_mut();
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if settings.gateway.secure_cookies {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// `X-Content-Type-Options: nosniff`, for pages and their assets alike.
pub fn nosniff(response: &mut Response) {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_page_allows_inline_script_or_framing() {
        for api in ["http://127.0.0.1:12111", "https://api.stripe.com"] {
            for page in [
                Page::WaitingRoom,
                Page::Booking,
                Page::Ticket,
                Page::Find,
                Page::Console,
            ] {
                let p = policy(page, api);
                assert!(
                    !p.contains("unsafe-inline") && !p.contains("unsafe-eval"),
                    "{p}"
                );
                assert!(p.contains("frame-ancestors 'none'"), "{p}");
                assert!(p.contains("script-src 'self'"), "{p}");
            }
        }
    }

    #[test]
    fn the_booking_page_reaches_stripe_or_the_simulator_and_nothing_else() {
        let real = policy(Page::Booking, "https://api.stripe.com");
        assert!(
            real.contains("script-src 'self' https://js.stripe.com"),
            "{real}"
        );
        assert!(
            real.contains("frame-src https://js.stripe.com https://hooks.stripe.com;"),
            "{real}"
        );
        assert!(
            real.contains("connect-src 'self' https://api.stripe.com"),
            "{real}"
        );
        let sim = policy(Page::Booking, "http://127.0.0.1:12111/");
        assert!(
            sim.contains("connect-src 'self' http://127.0.0.1:12111;"),
            "{sim}"
        );
        assert!(
            sim.contains("script-src 'self';") && sim.contains("frame-src 'none'"),
            "{sim}"
        );
        let waiting = policy(Page::WaitingRoom, "http://127.0.0.1:12111");
        assert!(
            waiting.contains("img-src 'self' https:;") && waiting.contains("connect-src 'self';")
        );
    }
}
