//! A visitor's credentials at the edge: the queue token presented (header or cookie), the CSRF
//! echo that cookie-authenticated changes need, and the cookies the answers set.

use axum::http::HeaderValue;
use http::{HeaderMap, header};

use super::QUEUE_COOKIE;
use crate::error::GatewayError;
use crate::state::AppState;
use marquee_waitroom::queue_token::QueueClaims;

/// A queue token presented with a request, verified.
pub struct Presented {
    pub claims: QueueClaims,
    pub from_cookie: bool,
}

/// The queue token from `Authorization: Bearer` or the cookie, if it verifies.
pub fn presented_token(state: &AppState, headers: &HeaderMap) -> Option<Presented> {
    let from_header = headers.contains_key(http::header::AUTHORIZATION);
    let token = marquee_platform::http::bearer_or_cookie(headers, QUEUE_COOKIE)?;
    let claims = state.queue_signer.verify(&token)?;
    Some(Presented {
        claims,
        from_cookie: !from_header,
    })
}

/// State-changing requests made with cookie credentials must echo the CSRF value.
pub fn require_csrf(
    state: &AppState,
    headers: &HeaderMap,
    visitor: &str,
) -> Result<(), GatewayError> {
    let presented = headers
        .get("x-marquee-csrf")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if state.queue_signer.csrf_matches(visitor, presented) {
        Ok(())
    } else {
        Err(GatewayError::Unauthorized(
            "requests made with cookies need the X-Marquee-CSRF header from join or status".into(),
        ))
    }
}

pub fn cookie(state: &AppState, name: &str, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if state.settings.gateway.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}"
    ))
    .expect("token characters are header-safe")
}

pub fn set_cookie(headers: &mut http::HeaderMap, value: HeaderValue) {
    headers.append(header::SET_COOKIE, value);
}
