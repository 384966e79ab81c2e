//! One fan's evening, as the pages would play it: join (solving the proof of work when asked),
//! poll at the `poll_after_ms` the gateway answers (never faster), and once admitted read the
//! seat map, hold seats (chosen or best available; on `409` pick again from a fresh map, a
//! bounded number of times), check out, confirm the PaymentIntent at the Stripe simulator
//! (a declined card first, for some), and confirm the booking.
//!
//! Over 400 lines with its tests: one fan's evening reads top to bottom as one story, each
//! step a function of its own, rather than split across files a reader would hop between.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use rand::seq::IndexedRandom;
use reqwest::RequestBuilder;
use serde_json::{Value, json};

use super::record::{FanRecord, Outcome, Phase, Recorder};
use super::stop::Stop;

/// What fans do, drawn per fan from these shares.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub seats_min: u32,
    pub seats_max: u32,
    /// Share who pick seats on the map (the rest ask for the best available).
    pub choose_share: f64,
    /// Share who stop polling while waiting.
    pub abandon_share: f64,
    /// Share whose first card is declined (then they pay again).
    pub decline_share: f64,
    /// Share who hold seats and walk away (their holds must lapse and the seats sell again).
    pub walkaway_share: f64,
    /// Hold attempts before a fan gives up.
    pub hold_attempts: u32,
}

/// What every fan shares.
pub struct Evening {
    pub http: reqwest::Client,
    pub gateway: String,
    pub stripe: String,
    pub event: String,
    pub shows: Vec<String>,
    pub pow_bits: u8,
    pub behaviour: Behaviour,
    pub rec: Arc<Recorder>,
    pub stop: Stop,
    /// The pre-queue's shuffle seed, once a status answer publishes it.
    pub shuffle_seed: std::sync::OnceLock<String>,
}

/// An answer: status (0 when none came), body, and `Retry-After`.
struct Answer {
    status: u16,
    body: Value,
    retry_after_s: Option<u64>,
}

impl Evening {
    async fn call(&self, phase: Phase, route: &'static str, req: RequestBuilder) -> Answer {
        let began = Instant::now();
        let answer = match req.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let retry_after_s = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                let body = res.json().await.unwrap_or(Value::Null);
                Answer {
                    status,
                    body,
                    retry_after_s,
                }
            }
            Err(_) => Answer {
                status: 0,
                body: Value::Null,
                retry_after_s: None,
            },
        };
        self.rec
            .request(phase, route, answer.status, began.elapsed());
        answer
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }
}

/// The client address a fan presents (through the trusted-proxy header): its own, from
/// 198.18.0.0/15, the range set aside for benchmarks.
fn client_address(n: usize) -> String {
    format!("198.{}.{}.{}", 18 + (n >> 16) % 2, (n >> 8) & 255, n & 255)
}

/// The place a queue token carries (its payload is readable; only the server can sign one).
pub fn place_in(token: &str) -> Option<u64> {
    let payload = token.split('.').next()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims["p"].as_u64()
}

/// One fan, number `n`, arriving after `arrive_after`.
pub async fn play(evening: Arc<Evening>, n: usize, arrive_after: Duration) {
    let record = Fan::new(&evening, n).run(arrive_after).await;
    evening.rec.fan(record);
}

struct Fan<'a> {
    e: &'a Evening,
    n: usize,
    address: String,
    secret: String,
    record: FanRecord,
    abandons: bool,
    declines: bool,
    walks_away: bool,
    seats: u32,
    chooses: bool,
}

impl<'a> Fan<'a> {
    fn new(e: &'a Evening, n: usize) -> Self {
        let b = &e.behaviour;
        let mut rng = rand::rng();
        let abandons = rng.random_bool(b.abandon_share.clamp(0.0, 1.0));
        Self {
            e,
            n,
            address: client_address(n),
            secret: URL_SAFE_NO_PAD.encode(rng.random::<[u8; 24]>()),
            record: FanRecord {
                visitor_id: String::new(),
                place: None,
                prequeue: false,
                kept_polling: !abandons,
                admitted_at_ms: None,
                outcome: Outcome::Failed,
                seats_bought: 0,
            },
            abandons,
            declines: rng.random_bool(b.decline_share.clamp(0.0, 1.0)),
            walks_away: rng.random_bool(b.walkaway_share.clamp(0.0, 1.0)),
            seats: rng.random_range(b.seats_min..=b.seats_max.max(b.seats_min)),
            chooses: rng.random_bool(b.choose_share.clamp(0.0, 1.0)),
        }
    }

    fn get(&self, url: String) -> RequestBuilder {
        self.e
            .http
            .get(url)
            .header("x-forwarded-for", &self.address)
    }

    fn post(&self, url: String) -> RequestBuilder {
        self.e
            .http
            .post(url)
            .header("x-forwarded-for", &self.address)
    }

    async fn run(mut self, arrive_after: Duration) -> FanRecord {
        if !self.e.stop.sleep(arrive_after).await {
            self.record.outcome = Outcome::StillWaiting;
            return self.record;
        }
        let live = &self.e.rec.live;
        let Some(joined) = self.join().await else {
            return self.record;
        };
        live.waiting.fetch_add(1, Ordering::Relaxed);
        let admitted = self.wait(joined).await;
        live.waiting.fetch_sub(1, Ordering::Relaxed);
        if let Some(token) = admitted {
            live.shopping.fetch_add(1, Ordering::Relaxed);
            self.record.outcome = self.shop(&token).await;
            live.shopping.fetch_sub(1, Ordering::Relaxed);
        }
        self.record
    }

    /// Join, retrying what the gateway asks to be retried; the join answer.
    async fn join(&mut self) -> Option<Value> {
        let key_hash = marquee_waitroom::admission::visitor_key_hash(&self.secret);
        let url = self.e.at(&format!("/v1/queue/{}/join", self.e.event));
        for _ in 0..20 {
            let mut body = json!({"visitor_key_hash": key_hash});
            if self.e.pow_bits > 0 {
                let c = self
                    .e
                    .call(
                        Phase::Join,
                        "challenge",
                        self.get(self.e.at(&format!("/v1/queue/{}/challenge", self.e.event))),
                    )
                    .await;
                let (Some(challenge), Some(bits)) =
                    (c.body["challenge"].as_str(), c.body["bits"].as_u64())
                else {
                    self.e.stop.sleep(Duration::from_secs(1)).await;
                    continue;
                };
                let (challenge, bits) = (challenge.to_owned(), bits as u8);
                let nonce = {
                    let c = challenge.clone();
                    tokio::task::spawn_blocking(move || marquee_waitroom::pow::solve(&c, bits))
                        .await
                        .expect("solver")
                };
                body["pow"] = json!({"challenge": challenge, "nonce": nonce});
            }
            let a = self
                .e
                .call(Phase::Join, "join", self.post(url.clone()).json(&body))
                .await;
            match a.status {
                201 => {
                    self.record.visitor_id = a.body["visitor_id"].as_str()?.to_owned();
                    self.record.prequeue = a.body["state"] == "prequeue";
                    self.record.place = a.body["queue_token"].as_str().and_then(place_in);
                    return Some(a.body);
                }
                409 => break,
                _ => {
                    let wait = a.retry_after_s.unwrap_or(1).max(1);
                    if !self.e.stop.sleep(jittered(wait * 1000)).await {
                        break;
                    }
                }
            }
        }
        self.record.outcome = Outcome::Failed;
        None
    }

    /// Poll until admitted (the admission token), or until the fan's wait ends otherwise.
    async fn wait(&mut self, joined: Value) -> Option<String> {
        let mut answer = joined;
        let mut queue_token = answer["queue_token"].as_str()?.to_owned();
        let give_up_after = self.abandons.then(|| rand::rng().random_range(1..=3u32));
        let mut polls = 0u32;
        let mut errors = 0u32;
        let mut wait_ms = answer["poll_after_ms"].as_u64().unwrap_or(2000);
        loop {
            if let Some(seed) = answer["shuffle_seed"].as_str() {
                let _ = self.e.shuffle_seed.set(seed.to_owned());
            }
            if let Some(t) = answer["queue_token"].as_str() {
                queue_token = t.to_owned();
                if self.record.place.is_none() {
                    self.record.place = place_in(t);
                }
            }
            match answer["state"].as_str().unwrap_or_default() {
                "admitted" => {
                    self.record.admitted_at_ms = answer["admitted_at"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.timestamp_millis());
                    if self.abandons {
                        // Gone before its turn came; its slot idles out.
                        self.record.outcome = Outcome::Abandoned;
                        return None;
                    }
                    return answer["admission_token"].as_str().map(str::to_owned);
                }
                "expired" => {
                    self.record.outcome = Outcome::Expired;
                    return None;
                }
                "closed" => {
                    self.record.outcome = Outcome::StillWaiting;
                    return None;
                }
                _ => {}
            }
            if give_up_after.is_some_and(|n| polls >= n) {
                self.record.outcome = Outcome::Abandoned;
                return None;
            }
            if !self.e.stop.sleep(Duration::from_millis(wait_ms)).await {
                self.record.outcome = Outcome::StillWaiting;
                return None;
            }
            let a = self
                .e
                .call(
                    Phase::Poll,
                    "status",
                    self.get(self.e.at(&format!("/v1/queue/{}/status", self.e.event)))
                        .bearer_auth(&queue_token),
                )
                .await;
            polls += 1;
            if a.status == 200 {
                errors = 0;
                wait_ms = a.body["poll_after_ms"].as_u64().unwrap_or(2000);
                answer = a.body;
            } else {
                errors += 1;
                if errors > 20 {
                    self.record.outcome = Outcome::Failed;
                    return None;
                }
                wait_ms = a.retry_after_s.unwrap_or(1).max(1) * 1000;
                answer = Value::Null;
            }
        }
    }

    /// Admitted: choose, hold, pay.
    async fn shop(&mut self, token: &str) -> Outcome {
        let Some(hold) = self.hold(token).await else {
            return self.record.outcome;
        };
        let live = &self.e.rec.live;
        live.holding.fetch_add(1, Ordering::Relaxed);
        self.e.rec.held();
        let outcome = if self.walks_away {
            Outcome::WalkedAway
        } else {
            self.pay(&hold).await
        };
        live.holding.fetch_sub(1, Ordering::Relaxed);
        outcome
    }

    /// Hold seats; the reservation id, or `None` with the outcome recorded.
    async fn hold(&mut self, token: &str) -> Option<String> {
        let mut shows = self.e.shows.clone();
        let mut want = self.seats;
        let mut attempts = 0;
        while attempts < self.e.behaviour.hold_attempts && !shows.is_empty() {
            attempts += 1;
            let show = shows.choose(&mut rand::rng()).expect("a show").clone();
            let map = self
                .e
                .call(
                    Phase::SeatMap,
                    "seatmap",
                    self.get(self.e.at(&format!("/v1/shows/{show}/seats"))),
                )
                .await;
            let free = free_seats(&map.body);
            if map.status == 200 && free.is_empty() {
                shows.retain(|s| *s != show);
                continue;
            }
            want = want.min(free.len().max(1) as u32);
            let body = if self.chooses && !free.is_empty() {
                json!({"show_id": show, "seat_ids": pick_together(&free, want as usize)})
            } else {
                json!({"show_id": show, "quantity": want})
            };
            let a = self
                .e
                .call(
                    Phase::Hold,
                    "reserve",
                    self.post(self.e.at("/v1/bookings/reserve"))
                        .bearer_auth(token)
                        .header("x-visitor-key", &self.secret)
                        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                        .json(&body),
                )
                .await;
            match a.status {
                201 => return a.body["reservation_id"].as_str().map(str::to_owned),
                401 => {
                    self.record.outcome = Outcome::Expired;
                    return None;
                }
                409 if a.body["type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("not-enough-seats")) =>
                {
                    want = 1;
                }
                409 => {}
                _ => {
                    let wait = a.retry_after_s.unwrap_or(1).max(1);
                    self.e.stop.sleep(jittered(wait * 1000)).await;
                }
            }
        }
        self.record.outcome = if shows.is_empty() {
            Outcome::NoSeats
        } else {
            Outcome::GaveUp
        };
        None
    }

    /// Check out `hold`: the PaymentIntent's id and publishable key, retrying what the page
    /// would retry (`503` while payments are unavailable, `429`, no answer) after
    /// `Retry-After`; otherwise how it ended.
    async fn checkout(&mut self, hold: &str) -> Result<(String, String), Outcome> {
        for _ in 0..10 {
            let a = self
                .e
                .call(
                    Phase::Checkout,
                    "checkout",
                    self.post(self.e.at(&format!("/v1/bookings/{hold}/checkout")))
                        .json(&json!({"email": format!("fan-{}@example.com", self.n)})),
                )
                .await;
            match a.status {
                200 => {
                    let (Some(pi), Some(pk)) = (
                        a.body["payment_intent_id"].as_str(),
                        a.body["publishable_key"].as_str(),
                    ) else {
                        return Err(Outcome::Failed);
                    };
                    return Ok((pi.to_owned(), pk.to_owned()));
                }
                410 => return Err(Outcome::HoldLost),
                0 | 429 | 503 => {
                    let wait = a.retry_after_s.unwrap_or(1).max(1);
                    tokio::time::sleep(jittered(wait * 1000)).await;
                }
                _ => return Err(Outcome::Failed),
            }
        }
        Err(Outcome::Failed)
    }

    /// Check out and pay for `hold`; how it ended.
    async fn pay(&mut self, hold: &str) -> Outcome {
        let (pi, pk) = match self.checkout(hold).await {
            Ok(intent) => intent,
            Err(outcome) => return outcome,
        };
        let (pi, pk) = (pi.as_str(), pk.as_str());
        let cards: &[&str] = if self.declines {
            &["pm_card_chargeDeclined", "pm_card_visa"]
        } else {
            &["pm_card_visa"]
        };
        for card in cards {
            self.e
                .call(
                    Phase::Pay,
                    "stripe_confirm",
                    self.e
                        .http
                        .post(format!("{}/v1/payment_intents/{pi}/confirm", self.e.stripe))
                        .bearer_auth(pk)
                        .form(&[("payment_method", *card)]),
                )
                .await;
            for _ in 0..20 {
                let a = self
                    .e
                    .call(
                        Phase::Confirm,
                        "confirm",
                        self.post(self.e.at("/v1/bookings/confirm"))
                            .json(&json!({"reservation_id": hold, "payment_intent_id": pi})),
                    )
                    .await;
                match a.status {
                    200 if a.body["status"] == "confirmed" => {
                        self.record.seats_bought = self.seats_of(hold).await;
                        self.e.rec.sold();
                        self.e.rec.live.paid.fetch_add(1, Ordering::Relaxed);
                        return Outcome::Bought;
                    }
                    402 => break,
                    410 => return Outcome::HoldLost,
                    _ => {
                        let wait = a.retry_after_s.unwrap_or(1).max(1);
                        tokio::time::sleep(jittered(wait * 1000)).await;
                    }
                }
            }
        }
        Outcome::Failed
    }

    async fn seats_of(&self, hold: &str) -> u32 {
        let a = self
            .e
            .call(
                Phase::Confirm,
                "booking",
                self.get(self.e.at(&format!("/v1/bookings/{hold}"))),
            )
            .await;
        a.body["seats"].as_array().map_or(0, |s| s.len() as u32)
    }
}

/// Up to 50 % more than `ms`, so retries spread out.
fn jittered(ms: u64) -> Duration {
    Duration::from_millis(ms + rand::rng().random_range(0..=ms / 2))
}

/// Available seats on a map: (id, row, number), in map order.
fn free_seats(map: &Value) -> Vec<(String, String, i64)> {
    map["seats"]
        .as_array()
        .map(|seats| {
            seats
                .iter()
                .filter(|s| s["status"] == "available")
                .filter_map(|s| {
                    Some((
                        s["id"].as_str()?.to_owned(),
                        s["row"].as_str()?.to_owned(),
                        s["number"].as_i64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// As a fan picks on a map: a seat at random, then its free neighbours in the same row.
fn pick_together(free: &[(String, String, i64)], want: usize) -> Vec<String> {
    let (_, row, number) = free.choose(&mut rand::rng()).expect("a free seat");
    let mut row_seats: Vec<&(String, String, i64)> =
        free.iter().filter(|(_, r, _)| r == row).collect();
    row_seats.sort_by_key(|(_, _, n)| (n - number).abs());
    let mut picked: Vec<String> = row_seats
        .iter()
        .take(want)
        .map(|(id, _, _)| id.clone())
        .collect();
    // A row with too few left: fill from anywhere.
    for (id, _, _) in free {
        if picked.len() >= want {
            break;
        }
        if !picked.contains(id) {
            picked.push(id.clone());
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_neighbours_in_one_row_then_anywhere() {
        let free: Vec<(String, String, i64)> = vec![
            ("A-1".into(), "A".into(), 1),
            ("A-2".into(), "A".into(), 2),
            ("A-3".into(), "A".into(), 3),
        ];
        let mut picked = pick_together(&free, 2);
        picked.sort();
        assert!(
            picked == ["A-1", "A-2"] || picked == ["A-2", "A-3"],
            "{picked:?}"
        );
        assert_eq!(pick_together(&free, 5).len(), 3);
    }

    #[test]
    fn reads_the_place_a_queue_token_carries() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"v":"x","e":"ev","p":42,"t":1}"#);
        assert_eq!(place_in(&format!("{payload}.tag")), Some(42));
        assert_eq!(place_in("garbage"), None);
    }

    #[test]
    fn client_addresses_are_distinct_per_fan() {
        let a: std::collections::HashSet<String> = (0..100_000).map(client_address).collect();
        assert_eq!(a.len(), 100_000);
    }
}
