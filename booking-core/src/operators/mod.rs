//! Who is calling the admin API, and what they may do. Operators are named, each with a role
//! (API.md, "Operators"): `admin` does everything, `event_manager` manages events (all, or the
//! ones it was given), and `scanner` only validates tickets at the door. Tokens are kept as
//! SHA-256 hashes in `operators` (`store`); the tokens in configuration (`[operator] tokens`,
//! the demo's `demo-operator-token`) are admins named `config-1`, `config-2`, …. A revoked
//! operator's token stops working at its next request: nothing is cached.
//!
//! Every permission rule is `Operator::may`, and a route asks it before acting.

pub mod store;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// An operator's role, as the `operators.role` column and the CLI spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Role {
    Admin,
    EventManager,
    Scanner,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "event_manager" => Some(Self::EventManager),
            "scanner" => Some(Self::Scanner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::EventManager => "event_manager",
            Self::Scanner => "scanner",
        }
    }
}

/// What an operator asks to do.
#[derive(Debug, Clone, Copy)]
pub enum Act<'a> {
    /// Read or change an event's settings and state, its shows, its bookings' refunds and its
    /// access codes, or read its audit trail.
    Manage(&'a str),
    /// Create an event (an event manager limited to named events cannot make new ones).
    CreateEvent,
    /// Read the whole audit trail, every event's and the operators' changes.
    AuditAll,
    /// Validate a ticket at the door.
    Scan,
}

impl Act<'_> {
    fn describe(&self) -> String {
        match self {
            Self::Manage(event) => format!("manage event {event}"),
            Self::CreateEvent => "create events".into(),
            Self::AuditAll => "read the whole audit trail (name an event_id)".into(),
            Self::Scan => "validate tickets".into(),
        }
    }
}

/// The operator a request comes from (a route that takes this refuses a request without a
/// valid operator token with 401), and the request's id for the audit trail.
#[derive(Debug, Clone)]
pub struct Operator {
    pub name: String,
    pub role: Role,
    /// The events an event manager is limited to; empty for all.
    pub events: Vec<String>,
    pub request_id: Option<String>,
}

impl Operator {
    /// The one permission rule: `Ok` if this operator may `act`, else a 403 naming what.
    pub fn may(&self, act: Act<'_>) -> ApiResult<()> {
        let allowed = match (self.role, act) {
            (Role::Admin, _) => true,
            (Role::EventManager, Act::Manage(event)) => {
                self.events.is_empty() || self.events.iter().any(|e| e == event)
            }
            (Role::EventManager, Act::CreateEvent | Act::AuditAll) => self.events.is_empty(),
            (Role::EventManager, Act::Scan) => false,
            (Role::Scanner, Act::Scan) => true,
            (Role::Scanner, _) => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::NotPermitted(act.describe()))
        }
    }

    /// Whether this operator sees `event` in lists (the events it may manage).
    pub fn sees(&self, event: &str) -> bool {
        self.may(Act::Manage(event)).is_ok()
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("operator token missing".into()))?;
        let request_id = parts
            .headers
            .get(marquee_platform::http::REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Every configured token is compared, so the time taken does not say which matched.
        let configured = state
            .operator_tokens
            .iter()
            .enumerate()
            .fold(None, |found, (i, t)| {
                let same = bool::from(t.as_bytes().ct_eq(presented.as_bytes()));
                found.or(same.then_some(i))
            });
        if let Some(i) = configured {
            return Ok(Self {
                name: format!("config-{}", i + 1),
                role: Role::Admin,
                events: Vec::new(),
                request_id,
            });
        }
        match store::find(&state.db, presented).await? {
            Some((name, role, events)) => Ok(Self {
                name,
                role,
                events,
                request_id,
            }),
            None => Err(ApiError::Unauthorized(
                "operator token not recognised".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(role: Role, events: &[&str]) -> Operator {
        Operator {
            name: "o".into(),
            role,
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            request_id: None,
        }
    }

    #[test]
    fn each_role_may_do_what_api_md_says_and_no_more() {
        let admin = op(Role::Admin, &[]);
        let manager = op(Role::EventManager, &[]);
        let friday = op(Role::EventManager, &["friday"]);
        let door = op(Role::Scanner, &[]);
        for act in [
            Act::Manage("friday"),
            Act::CreateEvent,
            Act::AuditAll,
            Act::Scan,
        ] {
            assert!(admin.may(act).is_ok(), "{act:?}");
            assert_eq!(door.may(act).is_ok(), matches!(act, Act::Scan), "{act:?}");
        }
        assert!(manager.may(Act::Manage("saturday")).is_ok());
        assert!(manager.may(Act::CreateEvent).is_ok());
        assert!(manager.may(Act::Scan).is_err());
        assert!(friday.may(Act::Manage("friday")).is_ok());
        assert!(friday.may(Act::Manage("saturday")).is_err());
        assert!(friday.may(Act::CreateEvent).is_err());
        assert!(friday.may(Act::AuditAll).is_err());
        assert!(friday.sees("friday") && !friday.sees("saturday"));
    }
}
