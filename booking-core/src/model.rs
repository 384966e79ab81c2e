//! Shapes on the wire and the checks on what comes in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use marquee_parsers::form::Check;
pub use marquee_parsers::layout::SeatKind;

pub use marquee_platform::ids::{plausible_id, valid_event_id};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeatRef {
    pub id: String,
    pub row: String,
    pub number: i32,
    /// The seat's price category and price (the hold's total is the sum of its seats').
    pub category: String,
    pub price_cents: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    pub show_id: String,
    #[serde(default)]
    pub seat_ids: Option<Vec<String>>,
    #[serde(default)]
    pub quantity: Option<u32>,
    /// With `quantity`: the price category to choose in (any, if absent).
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ticket {
    pub code: String,
    pub qr_svg: String,
}

/// A booking's state: `held` → `confirmed` | `expired` | `released`; `confirmed` → `refunded`;
/// `expired`/`released` → `refunded` (a payment that came after the hold was lost). The same
/// lower-case words in the `bookings.status` column and in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum BookingStatus {
    Held,
    Confirmed,
    Expired,
    Released,
    Refunded,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Confirmed => "confirmed",
            Self::Expired => "expired",
            Self::Released => "released",
            Self::Refunded => "refunded",
        }
    }

    /// A hold that ended without a sale: its seats were (or are being) given back.
    pub fn ended_unsold(self) -> bool {
        matches!(self, Self::Held | Self::Expired | Self::Released)
    }
}

impl std::fmt::Display for BookingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A seat's state, as the `seats.status` column and the seat map (JSON) spell it. A lapsed hold
/// reads as `available` on the map (`crate::rules::seat_lapsed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum SeatStatus {
    Available,
    Held,
    Booked,
}

/// A show's state, as the `shows.status` column and the admin API spell it: on sale, or
/// cancelled (`crate::cancellation`; SQL that only needs "on sale" says `status = 'on_sale'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum ShowStatus {
    OnSale,
    Cancelled,
}

/// A booking as `GET /v1/bookings/{id}` and reserve return it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookingView {
    pub reservation_id: String,
    pub show_id: String,
    pub event_id: String,
    pub status: BookingStatus,
    pub seats: Vec<SeatRef>,
    pub expires_at: DateTime<Utc>,
    pub total_cents: i64,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
    /// What the ticket page shows of the show: `{title, theater, city, screen, starts_at,
    /// time_zone}` (a booking looked up, not a hold just made).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show: Option<serde_json::Value>,
}
