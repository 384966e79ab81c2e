//! The operators' admin API: events (the on-sale unit with its queue settings) and shows.
//! Every route needs `Authorization: Bearer <operator token>` (`crate::operators`) and asks
//! `Operator::may` before acting; every change is written to the audit trail (`crate::audit`)
//! in its own transaction.

mod access_codes;
mod events;
mod history;
mod shows;

use axum::Router;
use axum::routing::{get, post};

pub use crate::operators::Operator;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/events", get(events::list).post(events::create))
        .route(
            "/admin/v1/events/{event_id}",
            get(events::get).patch(events::update),
        )
        .route("/admin/v1/events/{event_id}/history", get(history::history))
        .route(
            "/admin/v1/events/{event_id}/access-codes",
            get(access_codes::list).post(access_codes::create),
        )
        .route(
            "/admin/v1/events/{event_id}/access-codes/{batch_id}",
            axum::routing::delete(access_codes::revoke),
        )
        .route("/admin/v1/shows", get(shows::list).post(shows::create))
        .route("/admin/v1/shows/{show_id}", get(shows::get))
        .route("/admin/v1/shows/{show_id}/cancel", post(shows::cancel))
        .route("/admin/v1/audit", get(crate::audit::list))
        .route("/admin/v1/me", get(me))
}

/// An event an operator names in a path: it must look like an event id (else `404`, with
/// nothing read) and the operator's role must let them manage it (else `403`).
fn managed(op: &Operator, event_id: &str) -> crate::error::ApiResult<()> {
    if !crate::model::valid_event_id(event_id) {
        return Err(crate::error::ApiError::NotFound("event"));
    }
    op.may(crate::operators::Act::Manage(event_id))?;
    Ok(())
}

/// `GET /admin/v1/me`: who this token belongs to and what it may do, for the console.
async fn me(op: Operator) -> axum::Json<serde_json::Value> {
    use crate::operators::Act;
    axum::Json(serde_json::json!({
        "name": op.name,
        "role": op.role,
        "events": op.events,
        "may": {
            "create_events": op.may(Act::CreateEvent).is_ok(),
            "audit_all": op.may(Act::AuditAll).is_ok(),
            "scan": op.may(Act::Scan).is_ok(),
        },
    }))
}
