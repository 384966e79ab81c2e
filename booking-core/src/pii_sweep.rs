//! Sealing what is still in clear, and resealing under a new key. Rows written before
//! migration 12 hold the fan's email in clear (`bookings.email`, `payment_attempts.email`,
//! the outbox payload's `email`); booking-core holds the keys, so it seals them at start (SQL
//! cannot) and empties the clear column, 500 rows a statement. `booking-core rotate-pii-key`
//! runs the same sweep and also reseals every value sealed under an older key, so that key
//! can be retired (once the Kafka topic's retention has passed too).

use marquee_platform::pii::{Pii, Sealed};
use sqlx::PgPool;
use sqlx::types::Json;

const BATCH: i64 = 500;

/// How many values were sealed (clear before) and resealed (under an older key).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub sealed: u64,
    pub resealed: u64,
}

/// Seal every email still in clear; with `rotate`, reseal every value under an older key.
pub async fn run(db: &PgPool, pii: &Pii, rotate: bool) -> anyhow::Result<Swept> {
    let mut swept = Swept::default();
    swept.sealed += seal_bookings(db, pii).await?;
    swept.sealed += seal_attempts(db, pii).await?;
    swept.sealed += seal_outbox(db, pii).await?;
    if rotate {
        swept.resealed += reseal(db, pii).await?;
    }
    if swept != Swept::default() {
        tracing::info!(
            sealed = swept.sealed,
            resealed = swept.resealed,
            "fans' emails sealed"
        );
    }
    Ok(swept)
}

async fn seal_bookings(db: &PgPool, pii: &Pii) -> anyhow::Result<u64> {
    let mut n = 0;
    loop {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT show_id, id, email FROM bookings WHERE email IS NOT NULL LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(db)
        .await?;
        if rows.is_empty() {
            return Ok(n);
        }
        for (show, id, email) in rows {
            sqlx::query(
                "UPDATE bookings SET email_enc = $3, email_hash = $4, email = NULL
                 WHERE show_id = $1 AND id = $2",
            )
            .bind(&show)
            .bind(&id)
            .bind(Json(pii.seal(&email)))
            .bind(pii.lookup_hash(&email))
            .execute(db)
            .await?;
            n += 1;
        }
    }
}

async fn seal_attempts(db: &PgPool, pii: &Pii) -> anyhow::Result<u64> {
    let mut n = 0;
    loop {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT payment_intent_id, email FROM payment_attempts WHERE email IS NOT NULL LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(db)
        .await?;
        if rows.is_empty() {
            return Ok(n);
        }
        for (pi, email) in rows {
            sqlx::query(
                "UPDATE payment_attempts SET email_enc = $2, email_hash = $3, email = NULL
                 WHERE payment_intent_id = $1",
            )
            .bind(&pi)
            .bind(Json(pii.seal(&email)))
            .bind(pii.lookup_hash(&email))
            .execute(db)
            .await?;
            n += 1;
        }
    }
}

async fn seal_outbox(db: &PgPool, pii: &Pii) -> anyhow::Result<u64> {
    let mut n = 0;
    loop {
        let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT id, payload->>'email' FROM outbox WHERE payload ? 'email' LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(db)
        .await?;
        if rows.is_empty() {
            return Ok(n);
        }
        for (id, email) in rows {
            let sealed = email
                .map(|e| serde_json::to_value(pii.seal(&e)))
                .transpose()?;
            sqlx::query(
                "UPDATE outbox SET payload = (payload - 'email') || jsonb_build_object('email_enc', $2::jsonb)
                 WHERE id = $1",
            )
            .bind(id)
            .bind(sealed)
            .execute(db)
            .await?;
            n += 1;
        }
    }
}

/// Reseal under the current key every value sealed under another (each table, then the
/// outbox), a batch at a time, until none is left.
async fn reseal(db: &PgPool, pii: &Pii) -> anyhow::Result<u64> {
    let kid = pii.current_kid();
    let mut n = 0;
    loop {
        let rows: Vec<(String, String, Json<Sealed>)> = sqlx::query_as(
            "SELECT show_id, id, email_enc FROM bookings
             WHERE email_enc IS NOT NULL AND email_enc->>'kid' <> $1 LIMIT $2",
        )
        .bind(kid)
        .bind(BATCH)
        .fetch_all(db)
        .await?;
        let attempts: Vec<(String, Json<Sealed>)> = sqlx::query_as(
            "SELECT payment_intent_id, email_enc FROM payment_attempts
             WHERE email_enc IS NOT NULL AND email_enc->>'kid' <> $1 LIMIT $2",
        )
        .bind(kid)
        .bind(BATCH)
        .fetch_all(db)
        .await?;
        let outbox: Vec<(i64, Json<Sealed>)> = sqlx::query_as(
            "SELECT id, payload->'email_enc' FROM outbox
             WHERE jsonb_typeof(payload->'email_enc') = 'object' AND payload->'email_enc'->>'kid' <> $1
             LIMIT $2",
        )
        .bind(kid)
        .bind(BATCH)
        .fetch_all(db)
        .await?;
        if rows.is_empty() && attempts.is_empty() && outbox.is_empty() {
            return Ok(n);
        }
        for (show, id, sealed) in rows {
            if let Some(again) = pii.reseal(&sealed)? {
                sqlx::query("UPDATE bookings SET email_enc = $3 WHERE show_id = $1 AND id = $2")
                    .bind(&show)
                    .bind(&id)
                    .bind(Json(again))
                    .execute(db)
                    .await?;
                n += 1;
            }
        }
        for (pi, sealed) in attempts {
            if let Some(again) = pii.reseal(&sealed)? {
                sqlx::query(
                    "UPDATE payment_attempts SET email_enc = $2 WHERE payment_intent_id = $1",
                )
                .bind(&pi)
                .bind(Json(again))
                .execute(db)
                .await?;
                n += 1;
            }
        }
        for (id, sealed) in outbox {
            if let Some(again) = pii.reseal(&sealed)? {
                sqlx::query(
                    "UPDATE outbox SET payload = jsonb_set(payload, '{email_enc}', $2::jsonb) WHERE id = $1",
                )
                .bind(id)
                .bind(serde_json::to_value(again)?)
                .execute(db)
                .await?;
                n += 1;
            }
        }
    }
}
