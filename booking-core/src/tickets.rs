//! Tickets: a confirmed booking's code (128 random bits, valid only as a row in `tickets`),
//! its QR code, and door scanning (`POST /v1/tickets/validate`).
//!
//! The QR code carries a signed payload, not the bare code: an EdDSA token of type
//! `marquee-ticket` (`TicketClaims`: the code, the show and the seats) under a ticket key of
//! its own (`[booking] ticket_keys_dir`; admission keys rotate during a sale, tickets must
//! outlive it). A scanner verifies it before the database is touched, so a forged or altered
//! code is refused at once, and `GET /v1/tickets/keys` publishes the public keys so a scanner
//! app could check tickets offline. A code typed by hand (the plain code printed under the QR)
//! is still looked up: 128 random bits cannot be guessed.

use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use marquee_waitroom::Keyring;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::admin::Operator;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::model::Ticket;
use crate::state::AppState;

pub fn new_code() -> String {
    format!(
        "T{}",
        URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 16]>())
    )
}

/// The code as a QR image (SVG), for the ticket page and the email.
pub fn qr_svg(code: &str) -> String {
    match qrcode::QrCode::new(code.as_bytes()) {
        Ok(qr) => qr
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// The token type of a ticket's signed payload (its header's `typ`).
pub const TICKET_TYPE: &str = "marquee-ticket";

/// What a ticket's QR code says, signed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TicketClaims {
    pub code: String,
    pub show: String,
    pub seats: Vec<String>,
    pub iat: i64,
}

/// The signed payload for a new ticket's QR code.
pub fn sign(keys: &Keyring, code: &str, show: &str, seats: &[String]) -> ApiResult<String> {
    let claims = TicketClaims {
        code: code.to_owned(),
        show: show.to_owned(),
        seats: seats.to_vec(),
        iat: chrono::Utc::now().timestamp(),
    };
    keys.sign_typed(TICKET_TYPE, &claims)
        .map_err(|e| ApiError::Unavailable(format!("ticket signing: {e}")))
}

/// A ticket as answered: the code, and the QR code of its signed payload (of the bare code for
/// a ticket issued before payloads were signed).
pub fn ticket(code: String, payload: Option<String>) -> Ticket {
    let qr_svg = qr_svg(payload.as_deref().unwrap_or(&code));
    Ticket { code, qr_svg }
}

/// `GET /v1/tickets/keys`: the ticket keys' public halves (JWKS), for scanners.
pub async fn keys(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(http::header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.ticket_keys.jwks()),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    code: String,
}

/// `POST /v1/tickets/validate` (operator or scanner token): the first scan admits, a second
/// says it was already used.
pub async fn validate(
    op: Operator,
    State(state): State<AppState>,
    Body(scan): Body<Scan>,
) -> ApiResult<Json<Value>> {
    op.may(crate::operators::Act::Scan)?;
    let presented = scan.code.trim();
    // No control characters (a NUL cannot even be stored, let alone be part of a code).
    if presented.is_empty() || presented.len() > 4096 || presented.chars().any(char::is_control) {
        return Err(ApiError::field(
            "code",
            "must be a ticket code or a ticket's QR payload",
        ));
    }
    // A QR payload is checked before anything is looked up; a typed code is looked up.
    let signed;
    let code = if presented.contains('.') {
        match state
            .ticket_keys
            .verify_typed::<TicketClaims>(presented, TICKET_TYPE)
        {
            Ok(claims) => {
                signed = claims.code;
                signed.as_str()
            }
            Err(_) => return Ok(Json(json!({"valid": false, "reason": "forged"}))),
        }
    } else if presented.len() <= 64 {
        presented
    } else {
        return Err(ApiError::field(
            "code",
            "must be a ticket code or a ticket's QR payload",
        ));
    };
    #[derive(sqlx::FromRow)]
    struct Row {
        show_id: String,
        seat_ids: Vec<String>,
        first_scan_at: chrono::DateTime<chrono::Utc>,
        fresh: bool,
        voided: bool,
    }
    // Mark the first scan; a later scan reads the first one back.
    let row: Option<Row> = sqlx::query_as(
        "WITH scanned AS (
            UPDATE tickets SET first_scan_at = now()
            WHERE code = $1 AND first_scan_at IS NULL AND voided_at IS NULL
            RETURNING show_id, seat_ids, first_scan_at, true AS fresh, false AS voided)
         SELECT * FROM scanned
         UNION ALL
         SELECT show_id, seat_ids, coalesce(first_scan_at, now()), false, voided_at IS NOT NULL
         FROM tickets WHERE code = $1 AND NOT EXISTS (SELECT 1 FROM scanned)",
    )
    .bind(code)
    .fetch_optional(&state.db)
    .await?;
    Ok(Json(match row {
        None => json!({"valid": false, "reason": "unknown"}),
        Some(r) if r.voided => {
            json!({"valid": false, "reason": "refunded", "show_id": r.show_id, "seats": r.seat_ids})
        }
        Some(r) if r.fresh => {
            json!({"valid": true, "show_id": r.show_id, "seats": r.seat_ids, "first_scan_at": r.first_scan_at})
        }
        Some(r) => {
            json!({"valid": false, "reason": "already_used", "show_id": r.show_id, "seats": r.seat_ids, "first_scan_at": r.first_scan_at})
        }
    }))
}
