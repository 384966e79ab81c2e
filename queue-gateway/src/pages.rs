//! The pages: waiting room (`/e/{event}`), booking (`/b/{event}`), the ticket
//! (`/t/{reservation_id}`), find my booking (`/find`) and the operator console (`/ops`). Plain HTML, CSS and JS with no build step; each asset is served under a name
//! carrying its content hash with a year-long immutable cache header, so a CDN can hold them.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};

use crate::error::GatewayError;
use crate::i18n::{self, Lang};
use crate::page_headers::{Page, defend, nosniff};
use crate::queue::valid_event_id;
use crate::state::AppState;

fn no_store(html: Html<String>) -> Response {
    let mut r = html.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A fan's page in the fan's language (`i18n`): said in `Content-Language`, and varying by
/// what chose it.
fn in_language(mut page: Response, lang: Lang) -> Response {
    let h = page.headers_mut();
    h.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.tag()),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("accept-language, cookie"),
    );
    page
}

pub async fn waiting_room(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    if !valid_event_id(&event) || state.events.get(&event).await?.is_none() {
        return Err(GatewayError::NotFound("event"));
    }
    let lang = i18n::negotiate(&headers);
    let page = in_language(
        no_store(state.assets.page(
            i18n::page(include_str!("../assets/waiting-room.html"), lang, &["wait"]),
            &[("event", &event)],
        )),
        lang,
    );
    Ok(defend(page, Page::WaitingRoom, &state.settings))
}

pub async fn booking(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
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
    let lang = i18n::negotiate(&headers);
    let html = state.assets.page(
        i18n::page(include_str!("../assets/booking.html"), lang, &["book"]),
        &[("event", &event), ("payments", &payments)],
    );
    Ok(defend(
        in_language(no_store(html), lang),
        Page::Booking,
        &state.settings,
    ))
}

/// The ticket page, the link ticket emails carry. The reservation id is the credential: the
/// page is never cached and sends no referrer (as no page does); the script reads the booking
/// through the API.
pub async fn ticket(
    State(state): State<AppState>,
    Path(reservation): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let plausible = (8..=64).contains(&reservation.len())
        && reservation
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !plausible {
        return Err(GatewayError::NotFound("ticket"));
    }
    let lang = i18n::negotiate(&headers);
    let page = in_language(
        no_store(state.assets.page(
            i18n::page(
                include_str!("../assets/ticket.html"),
                lang,
                &["ticket", "book"],
            ),
            &[("reservation", &reservation)],
        )),
        lang,
    );
    Ok(defend(page, Page::Ticket, &state.settings))
}

/// Find my booking: a fan enters an email and is sent links to their tickets.
pub async fn find(State(state): State<AppState>) -> Response {
    defend(
        no_store(state.assets.page(include_str!("../assets/find.html"), &[])),
        Page::Find,
        &state.settings,
    )
}

pub async fn console(State(state): State<AppState>) -> Response {
    defend(
        no_store(
            state
                .assets
                .page(include_str!("../assets/console.html"), &[]),
        ),
        Page::Console,
        &state.settings,
    )
}

pub async fn asset(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    match state.assets.get(&file) {
        Some((ctype, body)) => {
            let mut r = (
                [
                    (header::CONTENT_TYPE, ctype),
                    (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                ],
                body,
            )
                .into_response();
            nosniff(&mut r);
            r
        }
        None => GatewayError::NotFound("asset").into_response(),
    }
}
