//! Access codes for presales and partners (issue 19, API.md): made in batches by booking-core,
//! kept in Redis only as keyed hashes with their uses left, redeemed at join by the gateways
//! (`scripts/redeem_code.lua`, whose KEYS and ARGV order lives only in [`redeem`]).
//!
//! A code is 13 characters of Crockford's base32 (65 random bits), shown as `XXXX-XXXX-XXXXX`;
//! what a fan types is read forgivingly (case, dashes and spaces, `O`/`I`/`L` for `0`/`1`).

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::Rng;
use redis::Script;
use sha2::Sha256;

use crate::keys;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code: 13 × 5 = 65 random bits.
pub const CODE_LEN: usize = 13;
/// The most codes in one batch.
pub const MAX_BATCH: u32 = 10_000;

/// What a code does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Admitted at once while the event is open and below its cap; else first in the
    /// priority lane.
    Skip,
    /// Into the priority lane, admitted before the general queue within the rate and cap.
    Priority,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Priority => "priority",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "skip" => Some(Self::Skip),
            "priority" => Some(Self::Priority),
            _ => None,
        }
    }
}

/// A new code, as shown to the operator once.
pub fn generate() -> String {
    let mut rng = rand::rng();
    let raw: String = (0..CODE_LEN)
        .map(|_| ALPHABET[rng.random_range(0..32)] as char)
        .collect();
    format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..])
}

/// A code as typed, in its one spelling; `None` when it cannot be a code at all.
pub fn normalise(typed: &str) -> Option<String> {
    let out: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    (out.len() == CODE_LEN && out.bytes().all(|b| ALPHABET.contains(&b))).then_some(out)
}

/// The keyed hash a code is stored and redeemed by (HMAC-SHA-256 under
/// `[admission] access_code_key`, base64url); `code` as [`normalise`] gives it.
pub fn hash(key: &[u8], code: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(code.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// A batch as the redeem script reads it.
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    pub id: &'a str,
    pub effect: Effect,
    pub expires_at_ms: i64,
    pub revoked: bool,
}

impl Batch<'_> {
    fn meta(&self) -> String {
        format!(
            "{}|{}|{}",
            self.effect.as_str(),
            self.expires_at_ms.max(0),
            u8::from(self.revoked)
        )
    }
}

/// Publish a batch: its codes' hashes with `uses` each, and its terms. One atomic pipeline.
pub async fn publish<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    event: &str,
    batch: &Batch<'_>,
    hashes: &[String],
    uses: u32,
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for chunk in hashes.chunks(1000) {
        let uses: Vec<(&str, u32)> = chunk.iter().map(|h| (h.as_str(), uses)).collect();
        let owners: Vec<(&str, &str)> = chunk.iter().map(|h| (h.as_str(), batch.id)).collect();
        pipe.hset_multiple(keys::codes(event), &uses).ignore();
        pipe.hset_multiple(keys::code_batch(event), &owners)
            .ignore();
    }
    pipe.hset(keys::batches(event), batch.id, batch.meta())
        .ignore();
    pipe.query_async(redis).await
}

/// Set a batch's terms (revoking it: its codes stop working at once).
pub async fn set_terms<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    event: &str,
    batch: &Batch<'_>,
) -> redis::RedisResult<()> {
    redis::cmd("HSET")
        .arg(keys::batches(event))
        .arg(batch.id)
        .arg(batch.meta())
        .query_async(redis)
        .await
}

/// Uses redeemed so far, per batch.
pub async fn used<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    event: &str,
) -> redis::RedisResult<HashMap<String, u64>> {
    redis::cmd("HGETALL")
        .arg(keys::batch_used(event))
        .query_async(redis)
        .await
}

static REDEEM: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/redeem_code.lua")));

/// One redemption attempt.
#[derive(Debug, Clone)]
pub struct Redeem<'a> {
    pub event: &'a str,
    pub visitor: &'a str,
    /// The code's keyed hash.
    pub code_hash: &'a str,
    /// The client address the wrong-code limit counts by.
    pub client: &'a str,
    pub now_ms: i64,
    pub fails_per_client: u32,
    pub fails_per_event: u32,
    pub max_active: u32,
    pub session_ttl_ms: u64,
    pub idle_ms: u64,
    /// The event is open: a skip code may admit at once.
    pub open: bool,
}

/// What a redemption did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// Too many wrong codes from this client or on this event: try again after this long.
    Limited { retry_after_ms: u64 },
    /// Unknown, revoked, expired or used up.
    Wrong(String),
    /// A skip code, below the cap: admitted now.
    Admitted,
    /// In the priority lane.
    Lane,
}

pub async fn redeem<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    r: &Redeem<'_>,
) -> redis::RedisResult<Redeemed> {
    let minute = r.now_ms.div_euclid(60_000);
    let mut call = REDEEM.prepare_invoke();
    for key in [
        keys::codes(r.event),
        keys::code_batch(r.event),
        keys::batches(r.event),
        keys::batch_used(r.event),
        keys::code_fails(r.event, None, minute),
        keys::code_fails(r.event, Some(r.client), minute),
        keys::priority(r.event),
        keys::active(r.event),
        keys::sessions(r.event),
        keys::state(r.event),
        keys::admits(r.event),
        keys::waiting(r.event),
        keys::prequeue(r.event),
    ] {
        call.key(key);
    }
    let (outcome, detail): (String, String) = call
        .arg(r.code_hash)
        .arg(r.now_ms)
        .arg(r.fails_per_client)
        .arg(r.fails_per_event)
        .arg(r.visitor)
        .arg(r.max_active)
        .arg(r.session_ttl_ms)
        .arg(r.idle_ms)
        .arg(if r.open { "1" } else { "0" })
        .invoke_async(redis)
        .await?;
    Ok(match outcome.as_str() {
        "limited" => Redeemed::Limited {
            retry_after_ms: detail.parse().unwrap_or(60_000),
        },
        "admitted" => Redeemed::Admitted,
        "lane" => Redeemed::Lane,
        _ => Redeemed::Wrong(detail),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_has_65_random_bits_and_is_read_forgivingly() {
        let code = generate();
        assert_eq!(code.len(), CODE_LEN + 2);
        let plain = normalise(&code).expect("a generated code reads back");
        assert_eq!(plain.len(), CODE_LEN);
        assert_eq!(
            normalise(&code.to_lowercase().replace('-', " ")),
            Some(plain)
        );
        assert_eq!(normalise("ABCD-EFGH-JKMNO"), normalise("abcd efgh jkmn0"));
        assert_eq!(normalise("too-short"), None);
        assert_eq!(
            normalise("ABCD-EFGH-JKMNU"),
            None,
            "U is not in the alphabet"
        );
        assert_ne!(generate(), generate());
    }

    #[test]
    fn the_hash_is_keyed() {
        let code = normalise(&generate()).unwrap();
        assert_ne!(hash(b"one key", &code), hash(b"another key", &code));
        assert_eq!(hash(b"one key", &code), hash(b"one key", &code));
    }
}
