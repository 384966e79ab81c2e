//! The audit, read back from the system after the run, never from the generator's own counts:
//! Postgres (bookings, seats), the Stripe simulator's payments and refunds (its list API), the
//! ticket emails in the mail folder, and the Kafka topic. Every figure must be 0. Of what the
//! system keeps, only what was made from the night's start on is read ([`Start`]): payments,
//! emails and messages of earlier nights cannot be this night's, and a soak of sixty nights
//! that read them all each time made its own load grow night after night.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use serde_json::Value;
use sqlx::PgPool;

/// Where the audit reads.
#[derive(Debug, Clone, clap::Args)]
pub struct Sources {
    /// Postgres, as booking-core writes it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/marquee")]
    pub database_url: String,
    /// The Stripe simulator (or any Stripe API booking-core pays through).
    #[arg(long, default_value = "http://127.0.0.1:12111")]
    pub stripe_url: String,
    /// The secret key to list payments with.
    #[arg(long, default_value = "sk_test_demo")]
    pub stripe_key: String,
    /// Where the events service writes ticket emails (`.eml`).
    #[arg(long, default_value = "var/mail")]
    pub mail_dir: PathBuf,
    /// Kafka brokers; unset: read the embedded broker's address from `--kafka-bootstrap-file`.
    #[arg(long)]
    pub kafka_brokers: Option<String>,
    #[arg(long, default_value = "var/kafka-bootstrap")]
    pub kafka_bootstrap_file: PathBuf,
    #[arg(long, default_value = "marquee.bookings")]
    pub kafka_topic: String,
    /// booking-core's sweeper interval: a hold still `held` this long (twice, plus a second)
    /// past its `expires_at` is stuck.
    #[arg(long, default_value_t = 1000)]
    pub sweep_interval_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Audit {
    /// Seats in two confirmed bookings, or confirmed and held (or held twice) at once.
    pub double_sells: u64,
    /// PaymentIntents that succeeded with neither a confirmed booking nor a refund.
    pub lost_payments: u64,
    /// Confirmed bookings without exactly one ticket email.
    pub missing_emails: u64,
    /// Confirmed bookings without exactly one distinct `BookingConfirmed` message id.
    pub missing_events: u64,
    /// Holds still `held` past `expires_at` plus the sweeper's interval.
    pub stuck_holds: u64,
    pub confirmed_bookings: u64,
    pub seats_total: u64,
    pub seats_sold: u64,
    pub payments_succeeded: u64,
    pub payments_refunded: u64,
    pub ticket_emails: u64,
    pub confirmed_messages: u64,
}

impl Audit {
    pub fn clean(&self) -> bool {
        self.double_sells == 0
            && self.lost_payments == 0
            && self.missing_emails == 0
            && self.missing_events == 0
            && self.stuck_holds == 0
    }
}

/// Where a night's audit starts reading, taken before the night makes anything.
#[derive(Debug, Clone, Default)]
pub struct Start {
    /// Unix seconds: the night's payments and ticket emails are all made from then on.
    pub unix_s: i64,
    /// The topic's end, partition by partition (a partition not named: from its beginning).
    pub topic: HashMap<i32, i64>,
}

impl Start {
    /// Now, less `grace_s` (for the clocks of a Stripe elsewhere). If the topic's ends cannot
    /// be read, it is read from its beginning: slower, never less.
    pub async fn now(src: &Sources, grace_s: i64) -> Self {
        let unix_s = chrono::Utc::now().timestamp() - grace_s;
        let topic = match brokers(src) {
            Ok(brokers) => {
                let topic = src.kafka_topic.clone();
                tokio::task::spawn_blocking(move || topic_ends(&brokers, &topic))
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|r| r)
            }
            Err(e) => Err(e),
        };
        let topic = topic.unwrap_or_else(|e| {
            eprintln!("[opening-night] the topic's ends: {e:#}; its audit reads from the start");
            HashMap::new()
        });
        Self { unix_s, topic }
    }
}

/// Audit `event` once, reading what was made from `start` on.
pub async fn audit(
    src: &Sources,
    db: &PgPool,
    event: &str,
    start: &Start,
) -> anyhow::Result<Audit> {
    let since = start.unix_s;
    let double_sells = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM (
           SELECT b.show_id, seat FROM bookings b CROSS JOIN LATERAL unnest(b.seat_ids) AS seat
           WHERE b.event_id = $1
             AND (b.status = 'confirmed' OR (b.status = 'held' AND b.expires_at > now()))
           GROUP BY 1, 2 HAVING count(*) > 1) twice",
    )
    .bind(event)
    .fetch_one(db)
    .await? as u64;
    let mut a = Audit {
        double_sells,
        ..Audit::default()
    };
    a.stuck_holds = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'held'
           AND expires_at < now() - make_interval(secs => $2)",
    )
    .bind(event)
    .bind((src.sweep_interval_ms * 2 + 1000) as f64 / 1000.0)
    .fetch_one(db)
    .await? as u64;
    let (total, sold): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM seats s JOIN shows sh ON sh.id = s.show_id WHERE sh.event_id = $1),
                (SELECT count(*) FROM sold_seats s JOIN shows sh ON sh.id = s.show_id WHERE sh.event_id = $1)",
    )
    .bind(event)
    .fetch_one(db)
    .await?;
    (a.seats_total, a.seats_sold) = (total as u64, sold as u64);
    let bookings: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT id, status, payment_intent_id FROM bookings WHERE event_id = $1")
            .bind(event)
            .fetch_all(db)
            .await?;
    let confirmed: HashMap<&str, Option<&str>> = bookings
        .iter()
        .filter(|(_, status, _)| status == "confirmed")
        .map(|(id, _, pi)| (id.as_str(), pi.as_deref()))
        .collect();
    let ours: HashSet<&str> = bookings.iter().map(|(id, _, _)| id.as_str()).collect();
    a.confirmed_bookings = confirmed.len() as u64;

    // Payments: every PaymentIntent of this event's bookings that succeeded was either
    // turned into that confirmed booking or given back.
    let http = reqwest::Client::new();
    let intents = list_all(&http, src, "/v1/payment_intents", since).await?;
    let refunds = list_all(&http, src, "/v1/refunds", since).await?;
    let mut refunded: HashMap<String, i64> = HashMap::new();
    for r in &refunds {
        if let Some(pi) = r["payment_intent"].as_str() {
            *refunded.entry(pi.to_owned()).or_default() += r["amount"].as_i64().unwrap_or(0);
        }
    }
    for pi in &intents {
        let Some(reservation) = pi["metadata"]["reservation_id"].as_str() else {
            continue;
        };
        if !ours.contains(reservation) || pi["status"] != "succeeded" {
            continue;
        }
        a.payments_succeeded += 1;
        let id = pi["id"].as_str().unwrap_or_default();
        let made_a_ticket = confirmed.get(reservation) == Some(&Some(id));
        let given_back =
            refunded.get(id).copied().unwrap_or(0) >= pi["amount"].as_i64().unwrap_or(1);
        if given_back {
            a.payments_refunded += 1;
        }
        if !made_a_ticket && !given_back {
            a.lost_payments += 1;
        }
    }

    // Ticket emails: exactly one per confirmed booking. Only files written since the start.
    let written_since = std::time::UNIX_EPOCH + Duration::from_secs(since.max(0) as u64);
    let mut emails: HashMap<String, u64> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir(&src.mail_dir) {
        for entry in dir.filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "eml")
                || entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < written_since)
            {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if let Some(booking) = confirmed_booking_in(&text)
                && confirmed.contains_key(booking.as_str())
            {
                *emails.entry(booking).or_default() += 1;
            }
        }
    }
    a.ticket_emails = emails.values().sum();
    a.missing_emails = confirmed
        .keys()
        .filter(|id| emails.get(**id).copied() != Some(1))
        .count() as u64;

    // Kafka: exactly one distinct message id of type BookingConfirmed per confirmed booking
    // (redeliveries of the same message are fine).
    let messages = confirmed_messages(src, &start.topic).await?;
    a.confirmed_messages = messages
        .iter()
        .filter(|(b, _)| confirmed.contains_key(b.as_str()))
        .map(|(_, ids)| ids.len() as u64)
        .sum();
    a.missing_events = confirmed
        .keys()
        .filter(|id| messages.get(**id).map(HashSet::len) != Some(1))
        .count() as u64;
    Ok(a)
}

/// Every object of a Stripe list created from `since` on, page by page.
async fn list_all(
    http: &reqwest::Client,
    src: &Sources,
    path: &str,
    since: i64,
) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![
            ("limit", "100".to_owned()),
            ("created[gte]", since.to_string()),
        ];
        if let Some(a) = &after {
            query.push(("starting_after", a.clone()));
        }
        let page: Value = http
            .get(format!("{}{path}", src.stripe_url.trim_end_matches('/')))
            .bearer_auth(&src.stripe_key)
            .query(&query)
            .send()
            .await
            .with_context(|| format!("listing {path}"))?
            .error_for_status()
            .with_context(|| format!("listing {path}"))?
            .json()
            .await?;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        after = data
            .last()
            .and_then(|o| o["id"].as_str())
            .map(str::to_owned);
        all.extend(data);
        if page["has_more"] != true || after.is_none() {
            return Ok(all);
        }
    }
}

/// The booking a ticket email confirms ("Your booking r_… is confirmed."), with
/// quoted-printable soft line breaks undone.
fn confirmed_booking_in(email: &str) -> Option<String> {
    let text = email.replace("=\r\n", "").replace("=\n", "");
    let rest = &text[text.find("Your booking ")? + "Your booking ".len()..];
    let id = &rest[..rest.find(" is confirmed")?];
    Some(id.trim().to_owned())
}

fn brokers(src: &Sources) -> anyhow::Result<String> {
    Ok(match &src.kafka_brokers {
        Some(b) => b.clone(),
        None => std::fs::read_to_string(&src.kafka_bootstrap_file)
            .with_context(|| format!("reading {}", src.kafka_bootstrap_file.display()))?
            .trim()
            .to_owned(),
    })
}

/// Booking id → the distinct message ids of its `BookingConfirmed` messages, reading every
/// partition of the topic from `from` (its beginning where `from` does not say) to its end as
/// it is now.
async fn confirmed_messages(
    src: &Sources,
    from: &HashMap<i32, i64>,
) -> anyhow::Result<HashMap<String, HashSet<String>>> {
    let brokers = brokers(src)?;
    let topic = src.kafka_topic.clone();
    let from = from.clone();
    tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, &from))
        .await
        .context("the topic reader")?
}

fn consumer(brokers: &str) -> anyhow::Result<BaseConsumer> {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "marquee-audit")
        .set("enable.auto.commit", "false")
        .create()
        .context("a Kafka consumer")
}

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// Each partition's end (its high watermark), of the partitions holding anything.
fn ends(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<HashMap<i32, i64>> {
    let metadata = consumer.fetch_metadata(Some(topic), KAFKA_TIMEOUT)?;
    let mut ends = HashMap::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            let (_, high) = consumer.fetch_watermarks(topic, p.id(), KAFKA_TIMEOUT)?;
            if high > 0 {
                ends.insert(p.id(), high);
            }
        }
    }
    Ok(ends)
}

fn topic_ends(brokers: &str, topic: &str) -> anyhow::Result<HashMap<i32, i64>> {
    ends(&consumer(brokers)?, topic)
}

fn read_topic(
    brokers: &str,
    topic: &str,
    from: &HashMap<i32, i64>,
) -> anyhow::Result<HashMap<String, HashSet<String>>> {
    let consumer = consumer(brokers)?;
    let mut ends = ends(&consumer, topic)?;
    // Partitions with nothing past where this night began are not read.
    ends.retain(|p, end| from.get(p).is_none_or(|start| start < end));
    let mut assignment = rdkafka::TopicPartitionList::new();
    for p in ends.keys() {
        let start = from
            .get(p)
            .map_or(Offset::Beginning, |&o| Offset::Offset(o));
        assignment.add_partition_offset(topic, *p, start)?;
    }
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    if ends.is_empty() {
        return Ok(out);
    }
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the topic was not read to its end within 60 s"
        );
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message?;
        if ends
            .get(&message.partition())
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            ends.remove(&message.partition());
        }
        let Some(value) = message
            .payload()
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
        else {
            continue;
        };
        if value["type"] == "BookingConfirmed"
            && let (Some(booking), Some(id)) =
                (value["booking_id"].as_str(), value["message_id"].as_str())
        {
            out.entry(booking.to_owned())
                .or_default()
                .insert(id.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_booking_in_a_ticket_email() {
        let email =
            "Subject: x\r\n\r\nYour booking r_abc-DEF_123 is confirmed.\r\n\r\nSeats: A-1\r\n";
        assert_eq!(
            confirmed_booking_in(email).as_deref(),
            Some("r_abc-DEF_123")
        );
        let folded = "Your booking r_abcdef=\r\nghij is confirmed.";
        assert_eq!(
            confirmed_booking_in(folded).as_deref(),
            Some("r_abcdefghij")
        );
        assert_eq!(confirmed_booking_in("no booking here"), None);
    }
}
