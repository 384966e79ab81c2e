//! Idempotency keys as rows: the first request with a key runs; repeats get its saved final
//! response; a repeat while it runs gets 409 + Retry-After; the same key with another body
//! gets 422. Keys are scoped to the visitor (or reservation) and the route and kept 24 h.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::{ApiError, ApiResult};

/// A first request abandoned mid-way (its process died) may be taken over after this.
const STALE_RUNNING_S: i64 = 60;

pub struct Key<'a> {
    pub scope: &'a str,
    pub route: &'a str,
    pub key: &'a str,
    pub request_hash: String,
}

/// SHA-256 of the canonical JSON of a request.
pub fn hash_request(body: &Value) -> String {
    let digest = Sha256::digest(body.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

enum Begin {
    Run,
    Replay(StatusCode, Value),
}

async fn begin(db: &PgPool, k: &Key<'_>, ttl_s: u64) -> ApiResult<Begin> {
    for _ in 0..3 {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, route, key, request_hash) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(k.scope)
        .bind(k.route)
        .bind(k.key)
        .bind(&k.request_hash)
        .execute(db)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Begin::Run);
        }
        #[derive(sqlx::FromRow)]
        struct Saved {
            request_hash: String,
            response_status: Option<i32>,
            response_body: Option<Value>,
            age_s: f64,
        }
        let saved: Option<Saved> = sqlx::query_as(
            "SELECT request_hash, response_status, response_body,
                    extract(epoch FROM now() - created_at)::float8 AS age_s
             FROM idempotency_keys WHERE scope = $1 AND route = $2 AND key = $3",
        )
        .bind(k.scope)
        .bind(k.route)
        .bind(k.key)
        .fetch_optional(db)
        .await?;
        let Some(saved) = saved else { continue };
        if saved.age_s > ttl_s as f64 {
            forget(db, k).await?;
            continue;
        }
        if saved.request_hash != k.request_hash {
            return Err(ApiError::field(
                "Idempotency-Key",
                "this key was already used with a different request",
            ));
        }
        match (saved.response_status, saved.response_body) {
            (Some(status), Some(body)) => {
                let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
                return Ok(Begin::Replay(status, body));
            }
            _ if saved.age_s > STALE_RUNNING_S as f64 => {
                let taken = sqlx::query(
                    "UPDATE idempotency_keys SET created_at = now()
                     WHERE scope = $1 AND route = $2 AND key = $3 AND response_status IS NULL
                       AND created_at < now() - make_interval(secs => $4)",
                )
                .bind(k.scope)
                .bind(k.route)
                .bind(k.key)
                .bind(STALE_RUNNING_S as f64)
                .execute(db)
                .await?
                .rows_affected();
                if taken == 1 {
                    return Ok(Begin::Run);
                }
                return Err(ApiError::InFlight);
            }
            _ => return Err(ApiError::InFlight),
        }
    }
    Err(ApiError::InFlight)
}

async fn forget(db: &PgPool, k: &Key<'_>) -> ApiResult<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND route = $2 AND key = $3")
        .bind(k.scope)
        .bind(k.route)
        .bind(k.key)
        .execute(db)
        .await?;
    Ok(())
}

/// Run `work` at most once per key. Final answers (2xx and 4xx) are saved and replayed; a
/// failure on our side (5xx) frees the key so the client's retry runs again.
pub async fn run<F>(db: &PgPool, key: Option<Key<'_>>, ttl_s: u64, work: F) -> Response
where
    F: Future<Output = ApiResult<(StatusCode, Value)>>,
{
    let Some(key) = key else {
        return match work.await {
            Ok((status, body)) => (status, axum::Json(body)).into_response(),
            Err(e) => e.into_response(),
        };
    };
    match begin(db, &key, ttl_s).await {
        Ok(Begin::Replay(status, body)) => replay(status, body),
        Err(e) => e.into_response(),
        Ok(Begin::Run) => {
            let (status, body) = match work.await {
                Ok(ok) => ok,
                Err(e) => {
                    let problem = e.to_problem();
                    if problem.status >= 500 {
                        let _ = forget(db, &key).await;
                        return e.into_response();
                    }
                    (
                        problem.status(),
                        serde_json::to_value(&problem).unwrap_or_default(),
                    )
                }
            };
            let saved = sqlx::query(
                "UPDATE idempotency_keys SET response_status = $4, response_body = $5
                 WHERE scope = $1 AND route = $2 AND key = $3",
            )
            .bind(key.scope)
            .bind(key.route)
            .bind(key.key)
            .bind(i32::from(status.as_u16()))
            .bind(&body)
            .execute(db)
            .await;
            if let Err(e) = saved {
                tracing::warn!(error = %e, "could not save an idempotent response");
            }
            replay(status, body)
        }
    }
}

fn replay(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if !status.is_success() {
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/problem+json"),
        );
    }
    response
}

/// Drop keys older than the retention window.
pub async fn purge(db: &PgPool, ttl_s: u64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
    )
    .bind(ttl_s as f64)
    .execute(db)
    .await?
    .rows_affected())
}
