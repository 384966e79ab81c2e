//! The outbox relay: claims unpublished rows in id order with `FOR UPDATE SKIP LOCKED` (so
//! several relays share the work and each row normally goes out once), publishes them with
//! the idempotent producer keyed by show, and marks them published only after the broker
//! acknowledged them. A crash between publishing and marking publishes again (at least once);
//! consumers de-duplicate on `message_id`. Wakes on `LISTEN marquee_outbox`, polls as a
//! fallback.

use std::sync::Arc;
use std::time::Duration;

use marquee_platform::shutdown::Shutdown;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tracing::Instrument;

use crate::kafka::SEND_TIMEOUT;
use crate::metrics::EventMetrics;

pub struct Relay {
    pub db: PgPool,
    pub producer: FutureProducer,
    pub topic: String,
    pub batch: i64,
    pub poll: Duration,
    pub metrics: Arc<EventMetrics>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    message_id: uuid::Uuid,
    topic_key: String,
    r#type: String,
    payload: serde_json::Value,
    /// The trace of the booking (or request) the message is about, if spans were exported.
    traceparent: Option<String>,
}

impl Relay {
    /// Publish one batch and mark what the broker acknowledged; how many went out.
    pub async fn publish_batch(&self) -> anyhow::Result<usize> {
        self.publish(true).await
    }

    /// As `publish_batch`, but `mark: false` stops before marking, as a crash right after
    /// publishing would (for tests of at-least-once delivery).
    pub async fn publish(&self, mark: bool) -> anyhow::Result<usize> {
        let mut tx = self.db.begin().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, message_id, topic_key, type, payload, traceparent FROM outbox
             WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.batch)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let sends = rows.iter().map(|row| {
            // Each message is a span of its booking's trace, and names that span in its
            // `traceparent` header for the consumers.
            let span = tracing::info_span!("publish", otel.kind = "producer", kind = %row.r#type);
            marquee_platform::trace::continue_from(&span, row.traceparent.as_deref());
            let trace = marquee_platform::trace::traceparent(&span);
            async move {
                let payload = row.payload.to_string();
                let message_id = row.message_id.to_string();
                let mut headers = OwnedHeaders::new()
                    .insert(Header {
                        key: "message_id",
                        value: Some(&message_id),
                    })
                    .insert(Header {
                        key: "type",
                        value: Some(&row.r#type),
                    });
                if let Some(t) = &trace {
                    headers = headers.insert(Header {
                        key: marquee_platform::trace::TRACEPARENT,
                        value: Some(t),
                    });
                }
                let record = FutureRecord::to(&self.topic)
                    .key(&row.topic_key)
                    .payload(&payload)
                    .headers(headers);
                self.producer
                    .send(record, Timeout::After(SEND_TIMEOUT))
                    .await
                    .map_err(|(e, _)| e)
            }
            .instrument(span)
        });
        let results = futures::future::join_all(sends).await;
        let mut acked = Vec::new();
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(_) => acked.push(row.id),
                Err(e) => {
                    self.metrics.unacknowledged.inc();
                    tracing::warn!(id = row.id, error = %e, "outbox row not acknowledged; will retry")
                }
            }
        }
        if mark && !acked.is_empty() {
            sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
                .bind(&acked)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.metrics.published.inc_by(acked.len() as u64);
        Ok(acked.len())
    }

    /// Backlog size and the age of its oldest row, for the metrics.
    pub async fn backlog(&self) -> anyhow::Result<(i64, i64)> {
        Ok(sqlx::query_as(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::bigint
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.db)
        .await?)
    }

    pub async fn run(self, shutdown: Shutdown) {
        let mut listener = match PgListener::connect_with(&self.db).await {
            Ok(mut l) => match l.listen("marquee_outbox").await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN failed; polling only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection failed; polling only");
                None
            }
        };
        loop {
            let published = match self.publish_batch().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay pass failed; will retry");
                    0
                }
            };
            if let Ok((count, age)) = self.backlog().await {
                self.metrics.backlog.set(count);
                self.metrics.oldest_age.set(age);
            }
            if published as i64 >= self.batch {
                continue;
            }
            let notified = async {
                match listener.as_mut() {
                    Some(l) => {
                        let _ = l.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(self.poll) => {}
                () = shutdown.wait() => return,
            }
        }
    }
}
