//! The notifier: a consumer group member that turns `BookingConfirmed` into a ticket email.
//! Offsets are committed only after the work is done (email sent, or dead-lettered), each
//! `message_id` is handled once (a row in `notifications`), failures are retried with
//! exponential backoff and, after `max_attempts`, sent to the dead-letter topic.

use std::sync::Arc;
use std::time::Duration;

use marquee_platform::shutdown::Shutdown;
use rdkafka::Message as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde_json::Value;
use sqlx::PgPool;
use tracing::Instrument;

use crate::kafka::SEND_TIMEOUT;
use crate::mail::Mailer;
use crate::metrics::EventMetrics;

pub struct Notifier {
    pub db: PgPool,
    pub consumer: StreamConsumer,
    pub producer: FutureProducer,
    pub dead_letter_topic: String,
    pub mailer: Mailer,
    pub letterhead: crate::mail::Letterhead,
    pub max_attempts: u32,
    /// The first retry waits this long; each later one twice as long (capped at 30 s).
    pub backoff: Duration,
    pub metrics: Arc<EventMetrics>,
}

impl Notifier {
    pub async fn run(self, shutdown: Shutdown) {
        loop {
            let msg = tokio::select! {
                m = self.consumer.recv() => m,
                () = shutdown.wait() => return,
            };
            match msg {
                Ok(m) => {
                    // The email is a span of the trace the message's headers name.
                    let span = tracing::info_span!("notify", otel.kind = "consumer");
                    marquee_platform::trace::continue_from(
                        &span,
                        header(&m, marquee_platform::trace::TRACEPARENT),
                    );
                    if let Err(e) = self.handle(&m).instrument(span).await {
                        // Not committed: the message comes back after a restart or rebalance.
                        tracing::warn!(error = %e, "notification failed; will see it again");
                        tokio::time::sleep(self.backoff).await;
                        continue;
                    }
                    if let Err(e) = self.consumer.commit_message(&m, CommitMode::Async) {
                        tracing::warn!(error = %e, "commit failed; the message may be handled again (deduplicated)");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "consumer error");
                    tokio::time::sleep(self.backoff).await;
                }
            }
        }
    }

    async fn handle(&self, m: &BorrowedMessage<'_>) -> anyhow::Result<()> {
        let Some(Ok(text)) = m.payload_view::<str>() else {
            tracing::warn!("a message without a UTF-8 payload; skipped");
            return Ok(());
        };
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            tracing::warn!("a message that is not JSON; skipped");
            return Ok(());
        };
        // Which email a message asks for: the ticket, or the links of a find-my-booking.
        let compose = match message["type"].as_str() {
            Some("BookingConfirmed") => Mailer::ticket_email,
            Some("BookingsLookup") => Mailer::lookup_email,
            // A refund notice, to a fan who gave an address (a payment refunded because its
            // hold was lost may come from a booking that never recorded one).
            Some("BookingRefunded") if !message["email_enc"].is_null() => Mailer::refund_email,
            _ => return Ok(()),
        };
        let Some(message_id) = message["message_id"]
            .as_str()
            .and_then(|s| s.parse::<uuid::Uuid>().ok())
        else {
            tracing::warn!("a message without a message_id; skipped");
            return Ok(());
        };
        let seen: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM notifications WHERE message_id = $1)")
                .bind(message_id)
                .fetch_one(&self.db)
                .await?;
        if seen {
            return Ok(());
        }
        // The booking the email is about (a lookup's first), for the record and the logs.
        let booking = message["booking_id"]
            .as_str()
            .or_else(|| message["booking_ids"][0].as_str())
            .unwrap_or_default()
            .to_owned();
        let mut delay = self.backoff;
        let mut last_error = String::new();
        for attempt in 1..=self.max_attempts {
            let sent = match compose(&self.letterhead, &message) {
                Ok(email) => self.mailer.send(email).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(()) => {
                    self.record(message_id, &booking, "sent", attempt).await?;
                    self.metrics.sent.inc();
                    tracing::info!(%booking, attempt, kind = %message["type"], "emailed");
                    return Ok(());
                }
                Err(e) => {
                    last_error = e.to_string();
                    tracing::warn!(%booking, attempt, error = %last_error, "email failed");
                    if attempt < self.max_attempts {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
        let key = m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        let id = message_id.to_string();
        let attempts = self.max_attempts.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "message_id",
                value: Some(&id),
            })
            .insert(Header {
                key: "error",
                value: Some(&last_error),
            })
            .insert(Header {
                key: "attempts",
                value: Some(&attempts),
            });
        self.producer
            .send(
                FutureRecord::to(&self.dead_letter_topic)
                    .key(&key)
                    .payload(text)
                    .headers(headers),
                Timeout::After(SEND_TIMEOUT),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("dead-lettering failed: {e}"))?;
        self.record(message_id, &booking, "dead_lettered", self.max_attempts)
            .await?;
        self.metrics.dead_lettered.inc();
        tracing::error!(%booking, "ticket email dead-lettered after {} attempts", self.max_attempts);
        Ok(())
    }

    async fn record(
        &self,
        message_id: uuid::Uuid,
        booking: &str,
        state: &str,
        attempts: u32,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO notifications (message_id, booking_id, state, attempts) VALUES ($1, $2, $3, $4)
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message_id)
        .bind(booking)
        .bind(state)
        .bind(attempts as i32)
        .execute(&self.db)
        .await?;
        Ok(())
    }
}

/// The value of the message's header `key`, when it has one in UTF-8.
fn header<'a>(m: &'a BorrowedMessage<'_>, key: &str) -> Option<&'a str> {
    use rdkafka::message::Headers as _;
    m.headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}
