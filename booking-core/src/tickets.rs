//! Tickets: a confirmed booking's code (128 random bits, valid only as a row in `tickets`, so
//! it cannot be forged), its QR code, and door scanning (`POST /v1/tickets/validate`).

use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::Deserialize;
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

pub fn ticket(code: String) -> Ticket {
    let qr_svg = qr_svg(&code);
    Ticket { code, qr_svg }
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
    let code = scan.code.trim();
    if code.is_empty() || code.len() > 64 {
        return Err(ApiError::field("code", "must be a ticket code"));
    }
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
