//! Verifying admission tokens on reserve. Keys come from the admission key folder when this
//! process can read it, else from the gateway's JWKS; an unknown `kid` triggers a reload
//! (at most once a second) so a rotated key is picked up without a restart.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use marquee_platform::Settings;
use marquee_waitroom::{AdmissionClaims, Keyring, TokenError};

use crate::expiring::Expiring;

enum KeySource {
    Dir(PathBuf),
    Jwks(String),
}

pub struct Verifier {
    ring: RwLock<Arc<Keyring>>,
    /// Tokens whose signature, issuer and audience checked out, and when: a fan's retries and
    /// next holds carry the same token, and the Ed25519 check was a fifth of booking-core's
    /// CPU under the hot-show benchmark. Times, event and possession are judged again on
    /// every use; the signature again after 30 s or a key reload, so a retired key stops
    /// working within 30 s.
    verified: Expiring<AdmissionClaims>,
    source: KeySource,
    issuer: String,
    last_reload: tokio::sync::Mutex<Option<Instant>>,
    http: reqwest::Client,
}

impl Verifier {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let a = &settings.admission;
        let dir_has_keys = std::fs::read_dir(&a.keys_dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|e| e.path().extension().is_some_and(|x| x == "pem"))
            })
            .unwrap_or(false);
        let (source, ring) = if dir_has_keys || a.generate_if_missing {
            let ring = Keyring::load_dir(&a.keys_dir, a.generate_if_missing)?;
            (KeySource::Dir(a.keys_dir.clone()), ring)
        } else if !settings.booking.jwks_url.is_empty() {
            (
                KeySource::Jwks(settings.booking.jwks_url.clone()),
                Keyring::default(),
            )
        } else {
            anyhow::bail!(
                "no admission keys in {} and no [booking] jwks_url to fetch them from",
                a.keys_dir.display()
            );
        };
        Ok(Self {
            ring: RwLock::new(Arc::new(ring)),
            verified: Expiring::new(Duration::from_secs(30), 50_000),
            source,
            issuer: a.issuer.clone(),
            last_reload: tokio::sync::Mutex::new(None),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()?,
        })
    }

    fn ring(&self) -> Arc<Keyring> {
        self.ring.read().expect("keyring lock").clone()
    }

    pub async fn verify(
        &self,
        token: &str,
        event: &str,
        visitor_key: Option<&str>,
    ) -> Result<AdmissionClaims, TokenError> {
        if let Some(claims) = self.verified.get(token) {
            marquee_waitroom::admission::check_times(&claims, chrono::Utc::now().timestamp())?;
            if claims.evt != event {
                return Err(TokenError::WrongEvent);
            }
            marquee_waitroom::admission::check_possession(&claims, visitor_key)?;
            return Ok(claims);
        }
        let kid = marquee_waitroom::admission::token_kid(token)
            .ok_or_else(|| TokenError::Invalid("malformed token or no kid".into()))?;
        if !self.ring().knows(&kid) {
            self.reload().await;
        }
        let claims = self
            .ring()
            .verify(token, &self.issuer, event, visitor_key)?;
        self.verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    async fn reload(&self) {
        let mut last = self.last_reload.lock().await;
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *last = Some(Instant::now());
        let loaded = match &self.source {
            KeySource::Dir(dir) => Keyring::load_dir(dir, false).map_err(|e| e.to_string()),
            KeySource::Jwks(url) => match self.http.get(url).send().await {
                Ok(r) => match r.json::<serde_json::Value>().await {
                    Ok(doc) => Keyring::from_jwks(&doc),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            },
        };
        match loaded {
            Ok(ring) => {
                *self.ring.write().expect("keyring lock") = Arc::new(ring);
                // A retired key's tokens must be checked against the new keys.
                self.verified.clear();
            }
            Err(e) => tracing::warn!(error = %e, "could not reload admission keys"),
        }
    }
}
