//! Verifying admission tokens on reserve. Keys come from the admission key folder when this
//! process can read it, else from the gateway's JWKS; they are read again every
//! `[admission] keys_reload_s` and at once on an unknown `kid` (at most once a second), so a
//! key added or retired is in force within `keys_reload_s` without a restart.

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
    /// every use; the signature again after 30 s, or at once when a reload changed the keys,
    /// so a retired key stops working within `keys_reload_s`.
    verified: Expiring<AdmissionClaims>,
    source: KeySource,
    issuer: String,
    last_reload: tokio::sync::Mutex<Option<Instant>>,
    /// How often the keys are read again whatever the tokens say, and when they last were
    /// (ms since `epoch`): one atomic load per verification.
    reload_every: Duration,
    last_read_ms: std::sync::atomic::AtomicU64,
    epoch: Instant,
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
            reload_every: Duration::from_secs(a.keys_reload_s),
            last_read_ms: std::sync::atomic::AtomicU64::new(0),
            epoch: Instant::now(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()?,
        })
    }

    fn ring(&self) -> Arc<Keyring> {
        self.ring.read().expect("keyring lock").clone()
    }

    /// The claims of `token` if its signature, times and possession check out, whatever
    /// event it is for (`marquee_waitroom::admission::check_event` judges that once the show
    /// is known: a bad credential is `401` before anything the request asks for is looked at).
    pub async fn authenticate(
        &self,
        token: &str,
        visitor_key: Option<&str>,
    ) -> Result<AdmissionClaims, TokenError> {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let last = self.last_read_ms.load(std::sync::atomic::Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= self.reload_every.as_millis() as u64 {
            self.last_read_ms
                .store(now_ms, std::sync::atomic::Ordering::Relaxed);
            self.reload().await;
        }
        if let Some(claims) = self.verified.get(token) {
            marquee_waitroom::admission::check_times(&claims, chrono::Utc::now().timestamp())?;
            marquee_waitroom::admission::check_possession(&claims, visitor_key)?;
            return Ok(claims);
        }
        let kid = marquee_waitroom::admission::token_kid(token)
            .ok_or_else(|| TokenError::Invalid("malformed token or no kid".into()))?;
        if !self.ring().knows(&kid) {
            self.reload().await;
        }
        let claims = self.ring().authenticate(token, &self.issuer, visitor_key)?;
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
            Ok(ring) if ring.kids() != self.ring().kids() => {
                tracing::info!(kids = ?ring.kids(), "admission keys reloaded");
                *self.ring.write().expect("keyring lock") = Arc::new(ring);
                // A retired key's tokens must be checked against the new keys.
                self.verified.clear();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not reload admission keys"),
        }
    }
}
