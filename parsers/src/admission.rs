//! Admission tokens: EdDSA-signed JWTs with a `kid`, verified against a keyring that holds
//! every key still in service so a new key can sign while the old one still verifies.
//!
//! Over 400 lines with its tests (about 300 without): the token, its claims and the keyring
//! are one rule (what a gateway signs is what booking-core accepts) and read best together.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie that carries the admission token (the gateway sets it, booking-core reads it).
pub const COOKIE: &str = "marquee_admission";

pub const AUDIENCE: &str = "marquee-booking";

/// Possession binding: the SHA-256 of a secret the visitor's client keeps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    pub vkh: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdmissionClaims {
    pub iss: String,
    pub aud: String,
    /// The visitor id.
    pub sub: String,
    /// The event the visitor was admitted to.
    pub evt: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Missing, malformed, expired, not yet valid, badly signed, unknown key or algorithm.
    #[error("admission token invalid: {0}")]
    Invalid(String),
    /// Valid, but for another event.
    #[error("admission token is for another event")]
    WrongEvent,
    /// Bound to a visitor key that was not presented, or another one was.
    #[error("admission token requires the matching X-Visitor-Key")]
    KeyMismatch,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("reading keys in {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
    #[error("key {file} is not a PKCS#8 Ed25519 private key: {reason}")]
    BadKey { file: String, reason: String },
    #[error("no admission signing keys in {0}")]
    Empty(String),
}

struct KeyEntry {
    /// Present for keys we may sign with.
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    /// The public key, base64url, as it appears in the JWKS.
    x: String,
}

/// The keys in service. The signing key is the greatest `kid` by name (name new keys so they
/// sort last, e.g. by date).
#[derive(Default)]
pub struct Keyring {
    keys: BTreeMap<String, KeyEntry>,
    signer: Option<String>,
}

impl Keyring {
    /// Load every `{kid}.pem` in `dir`; with `generate_if_missing`, create one key when the
    /// folder holds none.
    pub fn load_dir(dir: &Path, generate_if_missing: bool) -> Result<Self, KeyringError> {
        let io = |source| KeyringError::Io {
            dir: dir.display().to_string(),
            source,
        };
        if generate_if_missing {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut ring = Self::default();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("pem") {
                continue;
            }
            let kid = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            let pem = std::fs::read_to_string(&path).map_err(io)?;
            ring.add_private_pem(&kid, &pem)
                .map_err(|reason| KeyringError::BadKey {
                    file: path.display().to_string(),
                    reason,
                })?;
        }
        if ring.keys.is_empty() && generate_if_missing {
            let kid = format!("k{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
            let pem = generate_private_pem();
            std::fs::write(dir.join(format!("{kid}.pem")), &pem).map_err(io)?;
            ring.add_private_pem(&kid, &pem)
                .map_err(|reason| KeyringError::BadKey {
                    file: kid.clone(),
                    reason,
                })?;
            tracing::info!(%kid, dir = %dir.display(), "generated a signing key");
        }
        if ring.keys.is_empty() {
            return Err(KeyringError::Empty(dir.display().to_string()));
        }
        Ok(ring)
    }

    /// Add a signing key from a PKCS#8 PEM; the greatest kid signs.
    pub fn add_private_pem(&mut self, kid: &str, pem: &str) -> Result<(), String> {
        let signing = SigningKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())?;
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
        let encoding = EncodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
        let decoding = DecodingKey::from_ed_components(&x).map_err(|e| e.to_string())?;
        self.keys.insert(
            kid.to_owned(),
            KeyEntry {
                encoding: Some(encoding),
                decoding,
                x,
            },
        );
        self.signer = self
            .keys
            .iter()
            .filter(|(_, k)| k.encoding.is_some())
            .map(|(kid, _)| kid.clone())
            .next_back();
        Ok(())
    }

    /// Add a verify-only key from a JWKS entry (`OKP`/`Ed25519`).
    pub fn add_public(&mut self, kid: &str, x: &str) -> Result<(), String> {
        let decoding = DecodingKey::from_ed_components(x).map_err(|e| e.to_string())?;
        self.keys.insert(
            kid.to_owned(),
            KeyEntry {
                encoding: None,
                decoding,
                x: x.to_owned(),
            },
        );
        Ok(())
    }

    /// Read a JWKS document (as served at `/.well-known/jwks.json`) into a verify-only ring.
    pub fn from_jwks(doc: &serde_json::Value) -> Result<Self, String> {
        let mut ring = Self::default();
        for key in doc["keys"].as_array().ok_or("JWKS has no `keys` array")? {
            if key["kty"] == "OKP" && key["crv"] == "Ed25519" {
                let kid = key["kid"].as_str().ok_or("JWKS key without kid")?;
                let x = key["x"].as_str().ok_or("JWKS key without x")?;
                ring.add_public(kid, x)?;
            }
        }
        Ok(ring)
    }

    pub fn knows(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The key ids held, in order (the last signs).
    pub fn kids(&self) -> Vec<&str> {
        self.keys.keys().map(String::as_str).collect()
    }

    pub fn signing_kid(&self) -> Option<&str> {
        self.signer.as_deref()
    }

    /// The public half of every key, as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|(kid, k)| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": kid, "x": k.x,
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    pub fn sign(&self, claims: &AdmissionClaims) -> Result<String, String> {
        let kid = self.signer.as_ref().ok_or("no signing key")?;
        let key = self.keys[kid].encoding.as_ref().ok_or("no signing key")?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, key).map_err(|e| e.to_string())
    }

    /// Sign `claims` as a token of type `typ` (the header's `typ`), for tokens other than
    /// admission tokens (tickets), which must never pass for one another.
    pub fn sign_typed<T: serde::Serialize>(&self, typ: &str, claims: &T) -> Result<String, String> {
        let kid = self.signer.as_ref().ok_or("no signing key")?;
        let key = self.keys[kid].encoding.as_ref().ok_or("no signing key")?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, key).map_err(|e| e.to_string())
    }

    /// Verify a token of type `typ` signed by one of these keys (EdDSA only; no time claims
    /// required: the caller decides what its claims mean).
    pub fn verify_typed<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
    ) -> Result<T, TokenError> {
        let invalid = |m: &str| TokenError::Invalid(m.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(&e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid("algorithm not allowed"));
        }
        if header.typ.as_deref() != Some(typ) {
            return Err(invalid("wrong token type"));
        }
        let kid = header.kid.ok_or_else(|| invalid("no kid"))?;
        let key = self.keys.get(&kid).ok_or_else(|| invalid("unknown kid"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_required_spec_claims::<&str>(&[]);
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<T>(token, &key.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|e| invalid(&e.to_string()))
    }

    /// Verify a token for `event`. The algorithm is pinned to EdDSA whatever the header says;
    /// `visitor_key` is the `X-Visitor-Key` the request presented, if any.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        event: &str,
        visitor_key: Option<&str>,
    ) -> Result<AdmissionClaims, TokenError> {
        let claims = self.authenticate(token, issuer, visitor_key)?;
        check_event(&claims, event)?;
        Ok(claims)
    }

    /// Everything about the credential but the event it is for: signature, times and
    /// possession. A request is judged on this before anything it asks for is looked at (a
    /// bad token is `401` whatever the body or the show); `check_event` comes once the show's
    /// event is known.
    pub fn authenticate(
        &self,
        token: &str,
        issuer: &str,
        visitor_key: Option<&str>,
    ) -> Result<AdmissionClaims, TokenError> {
        let claims = self.verify_any_event(token, issuer)?;
        check_possession(&claims, visitor_key)?;
        Ok(claims)
    }

    /// Verify signature and times, not the event.
    pub fn verify_any_event(
        &self,
        token: &str,
        issuer: &str,
    ) -> Result<AdmissionClaims, TokenError> {
        let invalid = |m: &str| TokenError::Invalid(m.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(&e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid("algorithm not allowed"));
        }
        let kid = header.kid.ok_or_else(|| invalid("no kid"))?;
        let key = self.keys.get(&kid).ok_or_else(|| invalid("unknown kid"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_S;
        jsonwebtoken::decode::<AdmissionClaims>(token, &key.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|e| invalid(&e.to_string()))
    }
}

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY_S: u64 = 2;

/// `exp` and `nbf` against `now` (Unix seconds), as verification judges them: for claims
/// whose signature was checked earlier.
pub fn check_times(claims: &AdmissionClaims, now: i64) -> Result<(), TokenError> {
    let leeway = LEEWAY_S as i64;
    if claims.exp < now - leeway {
        Err(TokenError::Invalid("ExpiredSignature".into()))
    } else if claims.nbf > now + leeway {
        Err(TokenError::Invalid("ImmatureSignature".into()))
    } else {
        Ok(())
    }
}

/// Authenticated claims are good for `event` only if they name it (`403` otherwise).
pub fn check_event(claims: &AdmissionClaims, event: &str) -> Result<(), TokenError> {
    if claims.evt == event {
        Ok(())
    } else {
        Err(TokenError::WrongEvent)
    }
}

/// The `kid` a token names in its header, without verifying anything.
pub fn token_kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid)
}

/// A bound token (`cnf.vkh`) needs the secret whose SHA-256 it names.
pub fn check_possession(
    claims: &AdmissionClaims,
    visitor_key: Option<&str>,
) -> Result<(), TokenError> {
    let Some(cnf) = &claims.cnf else {
        return Ok(());
    };
    let presented = visitor_key.ok_or(TokenError::KeyMismatch)?;
    let hash = visitor_key_hash(presented);
    if bool::from(hash.as_bytes().ct_eq(cnf.vkh.as_bytes())) {
        Ok(())
    } else {
        Err(TokenError::KeyMismatch)
    }
}

/// base64url(SHA-256(secret)), as the page sends it at join.
pub fn visitor_key_hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh Ed25519 private key as PKCS#8 PEM.
pub fn generate_private_pem() -> String {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    key.to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .expect("encode key")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(kid: &str) -> Keyring {
        let mut r = Keyring::default();
        r.add_private_pem(kid, &generate_private_pem()).unwrap();
        r
    }

    fn claims(evt: &str, offset_s: i64, ttl_s: i64) -> AdmissionClaims {
        let now = chrono::Utc::now().timestamp() + offset_s;
        AdmissionClaims {
            iss: "marquee".into(),
            aud: AUDIENCE.into(),
            sub: "v1".into(),
            evt: evt.into(),
            iat: now,
            nbf: now,
            exp: now + ttl_s,
            jti: "j1".into(),
            cnf: None,
        }
    }

    #[test]
    fn signs_and_verifies_for_its_event_only() {
        let r = ring("k1");
        let t = r.sign(&claims("ev", 0, 60)).unwrap();
        assert_eq!(r.verify(&t, "marquee", "ev", None).unwrap().sub, "v1");
        assert_eq!(
            r.verify(&t, "marquee", "other", None),
            Err(TokenError::WrongEvent)
        );
        assert!(matches!(
            r.verify(&t, "someone-else", "ev", None),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn refuses_expired_future_and_foreign_tokens() {
        let r = ring("k1");
        let expired = r.sign(&claims("ev", -120, 60)).unwrap();
        let future = r.sign(&claims("ev", 120, 60)).unwrap();
        let foreign = ring("k1").sign(&claims("ev", 0, 60)).unwrap();
        let unknown_kid = ring("k9").sign(&claims("ev", 0, 60)).unwrap();
        for t in [expired, future, foreign, unknown_kid] {
            assert!(
                matches!(
                    r.verify(&t, "marquee", "ev", None),
                    Err(TokenError::Invalid(_))
                ),
                "{t}"
            );
        }
    }

    #[test]
    fn refuses_alg_none_and_hs256_with_the_public_key() {
        let r = ring("k1");
        let good = r.sign(&claims("ev", 0, 60)).unwrap();
        let payload = good.split('.').nth(1).unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1","typ":"JWT"}"#);
        let none_token = format!("{none_header}.{payload}.");
        assert!(r.verify(&none_token, "marquee", "ev", None).is_err());
        let x = r.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        let hs = jsonwebtoken::encode(
            &h,
            &claims("ev", 0, 60),
            &EncodingKey::from_secret(x.as_bytes()).unwrap(),
        )
        .unwrap();
        assert!(r.verify(&hs, "marquee", "ev", None).is_err());
    }

    #[test]
    fn tampered_payload_fails() {
        let r = ring("k1");
        let good = r.sign(&claims("ev", 0, 60)).unwrap();
        let parts: Vec<_> = good.split('.').collect();
        let mut c = claims("ev", 0, 60);
        c.sub = "someone-else".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap()),
            parts[2]
        );
        assert!(r.verify(&forged, "marquee", "ev", None).is_err());
    }

    #[test]
    fn rotation_old_key_verifies_until_retired() {
        let mut r = ring("k2026a");
        let old = r.sign(&claims("ev", 0, 60)).unwrap();
        r.add_private_pem("k2026b", &generate_private_pem())
            .unwrap();
        assert_eq!(r.signing_kid(), Some("k2026b"));
        let new = r.sign(&claims("ev", 0, 60)).unwrap();
        assert!(r.verify(&old, "marquee", "ev", None).is_ok());
        assert!(r.verify(&new, "marquee", "ev", None).is_ok());
        // A verifier built from the JWKS checks both; once the old key is gone, only the new.
        let verifier = Keyring::from_jwks(&r.jwks()).unwrap();
        assert!(verifier.verify(&old, "marquee", "ev", None).is_ok());
        let mut retired = Keyring::default();
        let jwks = r.jwks();
        let newest = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == "k2026b")
            .unwrap();
        retired
            .add_public("k2026b", newest["x"].as_str().unwrap())
            .unwrap();
        assert!(retired.verify(&old, "marquee", "ev", None).is_err());
        assert!(retired.verify(&new, "marquee", "ev", None).is_ok());
    }

    #[test]
    fn bound_token_needs_its_visitor_key() {
        let r = ring("k1");
        let mut c = claims("ev", 0, 60);
        c.cnf = Some(Confirmation {
            vkh: visitor_key_hash("s3cret"),
        });
        let t = r.sign(&c).unwrap();
        assert_eq!(
            r.verify(&t, "marquee", "ev", None),
            Err(TokenError::KeyMismatch)
        );
        assert_eq!(
            r.verify(&t, "marquee", "ev", Some("wrong")),
            Err(TokenError::KeyMismatch)
        );
        assert!(r.verify(&t, "marquee", "ev", Some("s3cret")).is_ok());
    }
}
