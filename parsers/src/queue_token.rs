//! Queue tokens: what a waiting fan's client presents on every status poll. HMAC-signed and
//! self-contained (visitor, event, place), so a poll is answered from memory without a Redis
//! round trip. A pre-queue token has no place yet; the first poll after the shuffle swaps it
//! for one that does.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The cookie that carries the queue token.
pub const COOKIE: &str = "marquee_queue";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueClaims {
    /// Visitor id.
    pub v: String,
    /// Event id.
    pub e: String,
    /// Place in the queue; absent while the pre-queue order is not decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<u64>,
    /// Possession binding: base64url(SHA-256(visitor secret)), carried into the admission token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<String>,
    /// Issued at (seconds).
    pub t: i64,
    /// In the event's priority lane (an access code): no place in the line; where it stands is
    /// read from Redis.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub l: bool,
}

#[derive(Clone)]
pub struct QueueSigner {
    /// The HMAC with the key already absorbed: each use clones it instead of hashing the key
    /// pads again (two of the four SHA-256 blocks of a short message's HMAC).
    keyed: HmacSha256,
    /// The secret before the last rotation: what it signed still verifies (never signs).
    previous: Option<Box<QueueSigner>>,
}

impl QueueSigner {
    pub fn new(secret: &str) -> Self {
        Self {
            keyed: HmacSha256::new_from_slice(secret.as_bytes())
                .expect("HMAC takes any key length"),
            previous: None,
        }
    }

    /// Signing with `secret`, still accepting what `previous` signed (a rotation in progress;
    /// empty: none).
    pub fn rotating(secret: &str, previous: &str) -> Self {
        let mut signer = Self::new(secret);
        if !previous.is_empty() {
            signer.previous = Some(Box::new(Self::new(previous)));
        }
        signer
    }

    fn mac(&self, domain: &[u8], data: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(domain);
        mac.update(data);
        mac
    }

    pub fn sign(&self, claims: &QueueClaims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let tag = self
            .mac(b"queue:", payload.as_bytes())
            .finalize()
            .into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The claims, if the token is ours and untouched.
    pub fn verify(&self, token: &str) -> Option<QueueClaims> {
        let (payload, tag) = token.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let ours = self
            .mac(b"queue:", payload.as_bytes())
            .verify_slice(&tag)
            .is_ok();
        if !ours {
            return self.previous.as_ref()?.verify(token);
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }

    /// A tag over `text` under its own domain (proof-of-work challenges): base64url, 24
    /// characters.
    pub fn tag(&self, domain: &[u8], text: &str) -> String {
        let tag = self.mac(domain, text.as_bytes()).finalize().into_bytes();
        URL_SAFE_NO_PAD.encode(&tag[..18])
    }

    pub fn tag_matches(&self, domain: &[u8], text: &str, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(
            self.tag(domain, text)
                .as_bytes()
                .ct_eq(presented.as_bytes()),
        ) || self
            .previous
            .as_ref()
            .is_some_and(|p| p.tag_matches(domain, text, presented))
    }

    /// The CSRF value for a visitor: the page reads it from join/status and echoes it in
    /// `X-Marquee-CSRF` on state-changing requests made with cookies.
    pub fn csrf(&self, visitor: &str) -> String {
        self.tag(b"csrf:", visitor)
    }

    pub fn csrf_matches(&self, visitor: &str, presented: &str) -> bool {
        self.tag_matches(b"csrf:", visitor, presented)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_keeps_what_the_previous_secret_signed() {
        let old = QueueSigner::new("old-secret-0123456789abcdef0123456789");
        let new = QueueSigner::rotating(
            "new-secret-0123456789abcdef0123456789",
            "old-secret-0123456789abcdef0123456789",
        );
        let c = QueueClaims {
            l: false,
            v: "vis".into(),
            e: "ev".into(),
            p: Some(7),
            k: None,
            t: 1,
        };
        let signed_before = old.sign(&c);
        assert_eq!(new.verify(&signed_before), Some(c.clone()), "still valid");
        assert!(new.csrf_matches("vis", &old.csrf("vis")));
        let signed_after = new.sign(&c);
        assert_ne!(signed_after, signed_before, "the new secret signs");
        assert!(old.verify(&signed_after).is_none());
        let done = QueueSigner::new("new-secret-0123456789abcdef0123456789");
        assert!(done.verify(&signed_before).is_none(), "retired: refused");
    }

    #[test]
    fn signs_verifies_and_rejects_tampering() {
        let s = QueueSigner::new("0123456789abcdef0123456789abcdef");
        let c = QueueClaims {
            l: false,
            v: "vis".into(),
            e: "ev".into(),
            p: Some(42),
            k: None,
            t: 1,
        };
        let t = s.sign(&c);
        assert_eq!(s.verify(&t), Some(c.clone()));
        let forged = QueueClaims { p: Some(1), ..c };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let tag = t.split_once('.').unwrap().1;
        assert_eq!(s.verify(&format!("{forged_payload}.{tag}")), None);
        assert_eq!(
            QueueSigner::new("another-secret-another-secret-xx").verify(&t),
            None
        );
        assert_eq!(s.verify("garbage"), None);
        assert!(s.csrf_matches("vis", &s.csrf("vis")));
        assert!(!s.csrf_matches("other", &s.csrf("vis")));
    }
}
