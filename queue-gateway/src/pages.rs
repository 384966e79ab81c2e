//! The pages: waiting room (`/e/{event}`), booking (`/b/{event}`) and the operator console
//! (`/ops`). Plain HTML, CSS and JS with no build step; each asset is served under a name
//! carrying its content hash with a year-long immutable cache header, so a CDN can hold them.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, header};
use sha2::{Digest, Sha256};

use crate::error::GatewayError;
use crate::queue::valid_event_id;
use crate::state::AppState;

const FILES: [(&str, &str, &str); 4] = [
    (
        "marquee.css",
        "text/css; charset=utf-8",
        include_str!("../assets/marquee.css"),
    ),
    (
        "waiting-room.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/waiting-room.js"),
    ),
    (
        "booking.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/booking.js"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/console.js"),
    ),
];

pub struct Assets {
    /// Hashed name → (content type, body).
    files: HashMap<String, (&'static str, &'static str)>,
    /// Plain name → hashed name.
    names: HashMap<&'static str, String>,
}

impl Assets {
    pub fn load() -> Self {
        let mut files = HashMap::new();
        let mut names = HashMap::new();
        for (name, ctype, body) in FILES {
            let digest = Sha256::digest(body.as_bytes());
            let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
            let (stem, ext) = name.rsplit_once('.').expect("asset names have extensions");
            let hashed = format!("{stem}.{hash}.{ext}");
            files.insert(hashed.clone(), (ctype, body));
            names.insert(name, hashed);
        }
        Self { files, names }
    }

    pub fn url(&self, name: &str) -> String {
        format!("/assets/{}", self.names[name])
    }

    /// Fill a page template's `{{…}}` slots.
    fn page(&self, template: &str, event: &str, payments: &str) -> Html<String> {
        Html(
            template
                .replace("{{css}}", &self.url("marquee.css"))
                .replace("{{waiting_js}}", &self.url("waiting-room.js"))
                .replace("{{booking_js}}", &self.url("booking.js"))
                .replace("{{console_js}}", &self.url("console.js"))
                .replace("{{event}}", event)
                .replace("{{payments}}", payments),
        )
    }
}

fn no_store(html: Html<String>) -> Response {
    let mut r = html.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub async fn waiting_room(
    State(state): State<AppState>,
    Path(event): Path<String>,
) -> Result<Response, GatewayError> {
    if !valid_event_id(&event) || state.events.get(&event).await?.is_none() {
        return Err(GatewayError::NotFound("event"));
    }
    Ok(no_store(state.assets.page(
        include_str!("../assets/waiting-room.html"),
        &event,
        "",
    )))
}

pub async fn booking(
    State(state): State<AppState>,
    Path(event): Path<String>,
) -> Result<Response, GatewayError> {
    if !valid_event_id(&event) || state.events.get(&event).await?.is_none() {
        return Err(GatewayError::NotFound("event"));
    }
    // The page pays with Stripe.js and the publishable key against real Stripe, and with a
    // test-card form against the simulator.
    let stripe = &state.settings.stripe;
    let payments = if stripe.api_base.contains("api.stripe.com") {
        stripe.publishable_key.clone()
    } else {
        "simulator".to_owned()
    };
    let html = state
        .assets
        .page(include_str!("../assets/booking.html"), &event, &payments);
    Ok(no_store(html))
}

pub async fn console(State(state): State<AppState>) -> Response {
    no_store(
        state
            .assets
            .page(include_str!("../assets/console.html"), "", ""),
    )
}

pub async fn asset(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    match state.assets.files.get(&file) {
        Some((ctype, body)) => (
            [
                (header::CONTENT_TYPE, *ctype),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            *body,
        )
            .into_response(),
        None => GatewayError::NotFound("asset").into_response(),
    }
}
