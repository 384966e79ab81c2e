//! `/admin/v1/events/{event_id}/access-codes`: batches of presale and partner codes (issue 19,
//! API.md). A batch's codes are answered once, at creation, and kept only as keyed hashes
//! (`marquee_waitroom::access_codes`), in Postgres and in Redis where the gateways redeem them;
//! the batch, its revocation and who did each are in the audit trail, never a code.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::StatusCode;
use marquee_parsers::form::Fields;
use marquee_waitroom::access_codes::{self, Batch, Effect, MAX_BATCH};
use serde_json::{Value, json};

use super::Operator;
use crate::audit::{self, Entry};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::state::AppState;

#[derive(sqlx::FromRow)]
struct BatchRow {
    id: String,
    count: i32,
    uses_per_code: i32,
    expires_at: DateTime<Utc>,
    effect: String,
    created_by: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl BatchRow {
    fn effect(&self) -> Effect {
        Effect::parse(&self.effect).unwrap_or(Effect::Priority)
    }

    fn terms(&self) -> Batch<'_> {
        Batch {
            id: &self.id,
            effect: self.effect(),
            expires_at_ms: self.expires_at.timestamp_millis(),
            revoked: self.revoked_at.is_some(),
        }
    }

    fn view(&self, used: u64) -> Value {
        json!({
            "batch_id": self.id, "count": self.count, "uses_per_code": self.uses_per_code,
            "used": used, "expires_at": self.expires_at, "effect": self.effect,
            "revoked": self.revoked_at.is_some(), "revoked_at": self.revoked_at,
            "created_by": self.created_by, "created_at": self.created_at,
        })
    }
}

async fn event_exists(state: &AppState, event_id: &str) -> ApiResult<()> {
    let found: Option<String> = sqlx::query_scalar("SELECT id FROM events WHERE id = $1")
        .bind(event_id)
        .fetch_optional(&state.db)
        .await?;
    found.map(|_| ()).ok_or(ApiError::NotFound("event"))
}

/// `POST`: a new batch, `{count, uses_per_code, expires_at, effect}`; `201 {batch_id, codes}`.
pub async fn create(
    op: Operator,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    Body(body): Body<Value>,
) -> ApiResult<Response> {
    super::managed(&op, &event_id)?;
    let mut f = Fields::new(&body)?;
    f.only(&["count", "uses_per_code", "expires_at", "effect"]);
    let count = f.int("count", 1, i64::from(MAX_BATCH), true);
    let uses = f.int("uses_per_code", 1, 1_000_000, true);
    let expires_at = f.time("expires_at", true);
    if let Some(t) = expires_at {
        f.check
            .require(t > Utc::now(), "expires_at", "must be in the future");
    }
    let effect = f.text("effect", 16, true).and_then(|e| {
        let parsed = Effect::parse(&e);
        f.check
            .require(parsed.is_some(), "effect", "must be skip or priority");
        parsed
    });
    f.done()?;
    let (Some(count), Some(uses), Some(expires_at), Some(effect)) =
        (count, uses, expires_at, effect)
    else {
        unreachable!("required fields were checked");
    };
    event_exists(&state, &event_id).await?;

    let key = state.settings.admission.access_code_key.expose().as_bytes();
    let codes: Vec<String> = (0..count).map(|_| access_codes::generate()).collect();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| access_codes::hash(key, &access_codes::normalise(c).expect("a generated code")))
        .collect();
    let batch_id = format!("acb_{}", uuid::Uuid::now_v7().simple());

    let mut tx = state.db.begin().await?;
    sqlx::query(
        "INSERT INTO access_code_batches (id, event_id, count, uses_per_code, expires_at, effect, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&batch_id)
    .bind(&event_id)
    .bind(count as i32)
    .bind(uses as i32)
    .bind(expires_at)
    .bind(effect.as_str())
    .bind(&op.name)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO access_codes (code_hash, batch_id) SELECT unnest($1::text[]), $2")
        .bind(&hashes)
        .bind(&batch_id)
        .execute(&mut *tx)
        .await?;
    let terms = json!({"count": count, "uses_per_code": uses, "expires_at": expires_at, "effect": effect.as_str()});
    audit::record(
        &mut tx,
        &Entry::by(&op, "access_codes.create", &batch_id)
            .event(&event_id)
            .change(None, Some(terms)),
    )
    .await?;
    // Redis takes the batch before the transaction commits: if it cannot, nothing was made.
    access_codes::publish(
        &mut state.redis.clone(),
        &event_id,
        &Batch {
            id: &batch_id,
            effect,
            expires_at_ms: expires_at.timestamp_millis(),
            revoked: false,
        },
        &hashes,
        uses as u32,
    )
    .await
    .map_err(|e| ApiError::Unavailable(format!("redis: {e}")))?;
    tx.commit().await?;
    tracing::info!(event = %event_id, batch = %batch_id, count, "access-code batch created");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "batch_id": batch_id, "count": count, "uses_per_code": uses,
            "expires_at": expires_at, "effect": effect.as_str(), "codes": codes,
        })),
    )
        .into_response())
}

/// `GET`: the event's batches with their use so far.
pub async fn list(
    op: Operator,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Value>> {
    super::managed(&op, &event_id)?;
    event_exists(&state, &event_id).await?;
    let rows: Vec<BatchRow> = sqlx::query_as(
        "SELECT id, count, uses_per_code, expires_at, effect, created_by, created_at, revoked_at
         FROM access_code_batches WHERE event_id = $1 ORDER BY created_at DESC",
    )
    .bind(&event_id)
    .fetch_all(&state.db)
    .await?;
    let used = access_codes::used(&mut state.redis.clone(), &event_id)
        .await
        .map_err(|e| ApiError::Unavailable(format!("redis: {e}")))?;
    let batches: Vec<Value> = rows
        .iter()
        .map(|r| r.view(used.get(&r.id).copied().unwrap_or(0)))
        .collect();
    Ok(Json(json!({ "batches": batches })))
}

/// `DELETE …/{batch_id}`: revoke a batch; its codes stop working at once (`204`).
pub async fn revoke(
    op: Operator,
    State(state): State<AppState>,
    Path((event_id, batch_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    super::managed(&op, &event_id)?;
    let mut tx = state.db.begin().await?;
    let row: Option<BatchRow> = sqlx::query_as(
        "UPDATE access_code_batches SET revoked_at = coalesce(revoked_at, now())
         WHERE id = $1 AND event_id = $2
         RETURNING id, count, uses_per_code, expires_at, effect, created_by, created_at, revoked_at",
    )
    .bind(&batch_id)
    .bind(&event_id)
    .fetch_optional(&mut *tx)
    .await?;
    let row = row.ok_or(ApiError::NotFound("access-code batch"))?;
    audit::record(
        &mut tx,
        &Entry::by(&op, "access_codes.revoke", &batch_id)
            .event(&event_id)
            .change(
                Some(json!({"revoked": false})),
                Some(json!({"revoked": true})),
            ),
    )
    .await?;
    access_codes::set_terms(&mut state.redis.clone(), &event_id, &row.terms())
        .await
        .map_err(|e| ApiError::Unavailable(format!("redis: {e}")))?;
    tx.commit().await?;
    tracing::info!(event = %event_id, batch = %batch_id, "access-code batch revoked");
    Ok(StatusCode::NO_CONTENT)
}
