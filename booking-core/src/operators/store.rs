//! The `operators` table: adding an operator (its token made here and shown once), listing,
//! revoking, and finding the operator a presented token belongs to. Each change is written to
//! the audit trail in the same transaction, as `cli` when it comes from the command line.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::Role;
use crate::audit::{self, Entry};
use crate::error::{ApiError, ApiResult};

/// A new operator token: 256 random bits, prefixed so a leaked one is recognisable.
pub fn new_token() -> String {
    format!(
        "mqo_{}",
        URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>())
    )
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The live (not revoked) operator whose token this is: name, role, events.
pub async fn find(db: &PgPool, token: &str) -> ApiResult<Option<(String, Role, Vec<String>)>> {
    Ok(sqlx::query_as(
        "SELECT name, role, events FROM operators WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash(token))
    .fetch_optional(db)
    .await?)
}

/// One operator as `operators list` shows it (never the token).
#[derive(Debug, sqlx::FromRow, serde::Serialize)]
pub struct Listed {
    pub name: String,
    pub role: Role,
    pub events: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Add an operator; its token, to be shown once.
pub async fn add(
    db: &PgPool,
    by: &str,
    name: &str,
    role: Role,
    events: &[String],
) -> ApiResult<String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with("config-")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !valid {
        return Err(ApiError::field(
            "name",
            "must be 1 to 64 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit, \
             and not config-…",
        ));
    }
    if role != Role::EventManager && !events.is_empty() {
        return Err(ApiError::field(
            "event",
            "only an event manager is limited to events",
        ));
    }
    let token = new_token();
    let mut tx = db.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO operators (name, role, events, token_hash) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(role)
    .bind(events)
    .bind(hash(&token))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(ApiError::Conflict(format!(
            "an operator named {name} exists (revoked ones keep their name)"
        )));
    }
    audit::record(
        &mut tx,
        &Entry {
            operator: by,
            action: "operator.add",
            event_id: None,
            target: name,
            before: None,
            after: Some(serde_json::json!({"role": role, "events": events})),
            request_id: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

pub async fn list(db: &PgPool) -> ApiResult<Vec<Listed>> {
    Ok(sqlx::query_as(
        "SELECT name, role, events, created_at, revoked_at FROM operators ORDER BY name",
    )
    .fetch_all(db)
    .await?)
}

/// Revoke an operator: its token stops working at once.
pub async fn revoke(db: &PgPool, by: &str, name: &str) -> ApiResult<()> {
    let mut tx = db.begin().await?;
    let revoked = sqlx::query(
        "UPDATE operators SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
    )
    .bind(name)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if revoked == 0 {
        return Err(ApiError::NotFound("operator"));
    }
    audit::record(
        &mut tx,
        &Entry {
            operator: by,
            action: "operator.revoke",
            event_id: None,
            target: name,
            before: None,
            after: None,
            request_id: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
