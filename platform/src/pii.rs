//! Fans' emails, never in clear text (DESIGN.md invariant 9): sealed with XChaCha20-Poly1305
//! (RustCrypto's `chacha20poly1305`; a random 192-bit nonce per value, the key id as
//! associated data) under the newest of the configured keys, with the key id beside each
//! value so keys can rotate; looked up by a keyed hash (HMAC-SHA-256 under a key of its own);
//! opened only to send an email. Every email is trimmed and lower-cased first, so one fan is
//! one lookup hash.
//!
//! Keys come from `[pii]` (`keys = "kid=base64url(32 bytes),…"`, the last listed seals;
//! `lookup_key = base64url(32 bytes)`), secrets set by the environment in production; the demo
//! and test values are in `config/local.toml` and `config/test.toml`.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::Secret;

/// `[pii]`: the sealing keys and the lookup-hash key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PiiSettings {
    /// `kid=base64url(32 random bytes)`, comma-separated; the last listed seals new values,
    /// every one listed opens (keep a retired key until nothing sealed with it is left, the
    /// Kafka topic's retention included).
    pub keys: Secret,
    /// base64url(32 random bytes): the key of the lookup hash.
    pub lookup_key: Secret,
}

/// A sealed email as stored and published: `{kid, nonce, ciphertext}` (base64url).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub kid: String,
    pub nonce: String,
    pub ciphertext: String,
}

/// The demo configuration's lookup key (`config/local.toml`), refused in production, as is any
/// sealing key whose id starts with `demo`.
pub const DEMO_LOOKUP_KEY: &str = "PXT7Gu1OjuM6LXyM5_b4ekoHwEVBOrckfZwyqePXqHI";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PiiError {
    #[error("[pii] {0}")]
    Config(String),
    #[error("no PII key {0} (retired too early?)")]
    UnknownKey(String),
    #[error("a sealed value that does not open: {0}")]
    Corrupt(&'static str),
}

/// The keys, ready to seal, open and hash.
#[derive(Clone)]
pub struct Pii {
    keys: BTreeMap<String, XChaCha20Poly1305>,
    current: String,
    lookup: Vec<u8>,
}

impl std::fmt::Debug for Pii {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pii")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

fn key_bytes(what: &str, b64: &str) -> Result<Vec<u8>, PiiError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64.trim().trim_end_matches('='))
        .map_err(|_| PiiError::Config(format!("{what} is not base64url")))?;
    if bytes.len() != 32 {
        return Err(PiiError::Config(format!("{what} must be 32 bytes")));
    }
    Ok(bytes)
}

impl Pii {
    pub fn from_settings(s: &PiiSettings) -> Result<Self, PiiError> {
        let mut keys = BTreeMap::new();
        let mut current = None;
        for entry in s
            .keys
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (kid, b64) = entry
                .split_once('=')
                .ok_or_else(|| PiiError::Config("keys must be kid=base64url,…".into()))?;
            let kid = kid.trim();
            if kid.is_empty() || kid.len() > 32 {
                return Err(PiiError::Config(
                    "a key id must be 1 to 32 characters".into(),
                ));
            }
            let bytes = key_bytes(&format!("key {kid}"), b64)?;
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|_| PiiError::Config(format!("key {kid} must be 32 bytes")))?;
            keys.insert(kid.to_owned(), cipher);
            current = Some(kid.to_owned());
        }
        let current = current.ok_or_else(|| PiiError::Config("keys names no key".into()))?;
        let lookup = key_bytes("lookup_key", s.lookup_key.expose())?;
        Ok(Self {
            keys,
            current,
            lookup,
        })
    }

    /// The key id new values are sealed with.
    pub fn current_kid(&self) -> &str {
        &self.current
    }

    /// An email as it is sealed and hashed: trimmed and lower-cased.
    pub fn normalize(email: &str) -> String {
        email.trim().to_lowercase()
    }

    /// Seal an email (normalized first) under the current key.
    pub fn seal(&self, email: &str) -> Sealed {
        use rand::Rng;
        let nonce: [u8; 24] = rand::rng().random();
        let cipher = &self.keys[&self.current];
        let plain = Self::normalize(email);
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: self.current.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any message");
        Sealed {
            kid: self.current.clone(),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
            ciphertext: URL_SAFE_NO_PAD.encode(ciphertext),
        }
    }

    /// Open a sealed email: only to send that fan an email.
    pub fn open(&self, sealed: &Sealed) -> Result<String, PiiError> {
        let cipher = self
            .keys
            .get(&sealed.kid)
            .ok_or_else(|| PiiError::UnknownKey(sealed.kid.clone()))?;
        let nonce = URL_SAFE_NO_PAD
            .decode(&sealed.nonce)
            .map_err(|_| PiiError::Corrupt("nonce"))?;
        if nonce.len() != 24 {
            return Err(PiiError::Corrupt("nonce"));
        }
        let ciphertext = URL_SAFE_NO_PAD
            .decode(&sealed.ciphertext)
            .map_err(|_| PiiError::Corrupt("ciphertext"))?;
        let plain = cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: sealed.kid.as_bytes(),
                },
            )
            .map_err(|_| PiiError::Corrupt("authentication failed"))?;
        String::from_utf8(plain).map_err(|_| PiiError::Corrupt("not text"))
    }

    /// Open and seal again under the current key, if it was sealed under another.
    pub fn reseal(&self, sealed: &Sealed) -> Result<Option<Sealed>, PiiError> {
        if sealed.kid == self.current {
            return Ok(None);
        }
        Ok(Some(self.seal(&self.open(sealed)?)))
    }

    /// The lookup hash of an email (normalized first): hex HMAC-SHA-256 under the lookup key.
    /// Also what any fingerprint over an email uses instead of the email.
    pub fn lookup_hash(&self, email: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.lookup)
            .expect("HMAC takes a key of any length");
        mac.update(Self::normalize(email).as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A new random key, base64url, for `[pii] keys` and `lookup_key`.
pub fn new_key() -> String {
    use rand::Rng;
    URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pii(keys: &str) -> Pii {
        Pii::from_settings(&PiiSettings {
            keys: Secret::new(keys.to_owned()),
            lookup_key: Secret::new(new_key()),
        })
        .unwrap()
    }

    #[test]
    fn seals_opens_and_never_shows_the_email() {
        let k1 = new_key();
        let p = pii(&format!("k1={k1}"));
        let sealed = p.seal("  Fan@Example.COM ");
        assert_eq!(sealed.kid, "k1");
        assert!(
            !serde_json::to_string(&sealed)
                .unwrap()
                .to_lowercase()
                .contains("example")
        );
        assert_eq!(p.open(&sealed).unwrap(), "fan@example.com");
        assert_ne!(
            p.seal("fan@example.com").nonce,
            sealed.nonce,
            "a nonce per value"
        );
        // Tampering and the wrong key id are refused.
        let mut bad = sealed.clone();
        bad.ciphertext.replace_range(
            0..2,
            if bad.ciphertext.starts_with("AA") {
                "BB"
            } else {
                "AA"
            },
        );
        assert!(p.open(&bad).is_err());
        let mut other = sealed.clone();
        other.kid = "k9".into();
        assert_eq!(p.open(&other), Err(PiiError::UnknownKey("k9".into())));
    }

    #[test]
    fn rotation_opens_old_values_and_reseals_them_under_the_new_key() {
        let (k1, k2) = (new_key(), new_key());
        let old = pii(&format!("k1={k1}"));
        let sealed = old.seal("fan@example.com");
        let both = pii(&format!("k1={k1},k2={k2}"));
        assert_eq!(both.current_kid(), "k2");
        assert_eq!(both.open(&sealed).unwrap(), "fan@example.com");
        let again = both.reseal(&sealed).unwrap().unwrap();
        assert_eq!(again.kid, "k2");
        assert!(both.reseal(&again).unwrap().is_none());
        assert!(
            old.open(&again).is_err(),
            "the old ring cannot read the new key's values"
        );
    }

    #[test]
    fn the_lookup_hash_is_keyed_and_ignores_case_and_spaces() {
        let p = pii(&format!("k1={}", new_key()));
        let q = pii(&format!("k1={}", new_key()));
        assert_eq!(
            p.lookup_hash("Fan@Example.com "),
            p.lookup_hash("fan@example.com")
        );
        assert_ne!(
            p.lookup_hash("fan@example.com"),
            q.lookup_hash("fan@example.com")
        );
        assert_eq!(p.lookup_hash("x").len(), 64);
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        let settings = |keys: &str, lookup: &str| PiiSettings {
            keys: Secret::new(keys.to_owned()),
            lookup_key: Secret::new(lookup.to_owned()),
        };
        let good = new_key();
        for (keys, lookup) in [
            ("", good.as_str()),
            ("k1=short", good.as_str()),
            ("nokid", good.as_str()),
        ] {
            assert!(
                Pii::from_settings(&settings(keys, lookup)).is_err(),
                "{keys}"
            );
        }
        assert!(Pii::from_settings(&settings(&format!("k1={good}"), "nope")).is_err());
    }
}
