//! Reconciliation: what webhooks may have missed. Open payment attempts past a deadline are
//! re-read from Stripe and settled; attempts whose hold lapsed longer ago than the payment
//! grace are canceled; pending refunds are sent again. Claims rows with `SKIP LOCKED` so
//! several replicas share the work.

use super::settle;
use crate::state::AppState;

/// One pass; returns how many attempts and refunds it looked at.
pub async fn run_once(state: &AppState) -> anyhow::Result<(usize, usize)> {
    if state.stripe.breaker_open() {
        return Ok((0, 0));
    }
    let s = &state.settings.stripe;
    #[derive(sqlx::FromRow)]
    struct Due {
        payment_intent_id: String,
        past_grace: bool,
    }
    // Claim rows for a while by touching them, so other replicas skip them.
    let due: Vec<Due> = sqlx::query_as(
        "WITH due AS (
            SELECT a.payment_intent_id
            FROM payment_attempts a
            JOIN booking_index i ON i.id = a.booking_id
            JOIN bookings b ON b.show_id = i.show_id AND b.id = i.id
            WHERE a.state = 'open' AND a.updated_at < now() - interval '5 seconds'
              AND (a.started_at < now() - make_interval(secs => $1)
                   OR b.expires_at < now() - make_interval(secs => $2)
                   OR b.status <> 'held')
            ORDER BY a.started_at LIMIT 50
            FOR UPDATE OF a SKIP LOCKED)
         UPDATE payment_attempts a SET updated_at = now()
         FROM due, booking_index i, bookings b
         WHERE a.payment_intent_id = due.payment_intent_id AND i.id = a.booking_id
           AND b.show_id = i.show_id AND b.id = i.id
         RETURNING a.payment_intent_id, (b.expires_at < now() - make_interval(secs => $2)) AS past_grace",
    )
    .bind(s.reconcile_after_s as f64)
    .bind(s.payment_grace_s as f64)
    .fetch_all(&state.db)
    .await?;
    for d in &due {
        let intent = match state.stripe.retrieve(&d.payment_intent_id).await {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation paused");
                break;
            }
        };
        match intent.status.as_str() {
            "succeeded" => {
                settle::payment_succeeded(state, &intent).await?;
            }
            "canceled" => settle::attempt_closed(state, &intent.id, "canceled", "canceled").await?,
            "processing" => {}
            _ if d.past_grace => {
                // The hold lapsed and the grace is over: this attempt may not finish.
                match state.stripe.cancel(&intent.id).await {
                    Ok(_) => {
                        settle::attempt_closed(state, &intent.id, "canceled", "canceled").await?
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, payment_intent = %intent.id, "cancel failed; will retry")
                    }
                }
            }
            _ => {}
        }
    }
    let pending: Vec<String> = sqlx::query_scalar(
        "UPDATE refunds SET updated_at = now() WHERE payment_intent_id IN (
            SELECT payment_intent_id FROM refunds WHERE state = 'pending' AND updated_at < now() - interval '5 seconds'
            ORDER BY created_at LIMIT 50 FOR UPDATE SKIP LOCKED)
         RETURNING payment_intent_id",
    )
    .fetch_all(&state.db)
    .await?;
    for pi in &pending {
        settle::send_refund(state, pi).await;
    }
    Ok((due.len(), pending.len()))
}
