//! Admission keys that follow their folder (issue 17): added and retired `{kid}.pem` files
//! reach a running process within `[admission] keys_reload_s`, and at once (at most once a
//! second) when a token names a kid it does not know yet, so a rolling change of the signing
//! key (the new key everywhere, signing with it, the old one removed no sooner than the
//! longest session after) loses no admitted fan and needs no restart.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::admission::{AdmissionClaims, Keyring, KeyringError, TokenError, token_kid};

pub struct LiveKeyring {
    dir: PathBuf,
    ring: RwLock<Arc<Keyring>>,
    /// When the folder was last read for an unknown kid (at most once a second).
    last_unknown: Mutex<Option<Instant>>,
}

impl LiveKeyring {
    pub fn load(dir: PathBuf, generate_if_missing: bool) -> Result<Self, KeyringError> {
        let ring = Keyring::load_dir(&dir, generate_if_missing)?;
        Ok(Self {
            dir,
            ring: RwLock::new(Arc::new(ring)),
            last_unknown: Mutex::new(None),
        })
    }

    /// The keys as last read.
    pub fn current(&self) -> Arc<Keyring> {
        self.ring.read().expect("keyring lock").clone()
    }

    /// Read the folder again; whether the set of keys changed. A folder that cannot be read,
    /// or holds no key, leaves the keys as they were (and says why).
    pub fn reload(&self) -> Result<bool, KeyringError> {
        let fresh = Keyring::load_dir(&self.dir, false)?;
        let changed = fresh.kids() != self.current().kids();
        if changed {
            tracing::info!(kids = ?fresh.kids(), "admission keys reloaded");
            *self.ring.write().expect("keyring lock") = Arc::new(fresh);
        }
        Ok(changed)
    }

    /// Reload every `every` until `stop` resolves.
    pub async fn follow(
        self: Arc<Self>,
        every: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = self.reload() {
                        tracing::warn!(error = %e, "admission keys not reloaded; keeping the last ones");
                    }
                }
                () = &mut stop => return,
            }
        }
    }

    pub fn sign(&self, claims: &AdmissionClaims) -> Result<String, String> {
        self.current().sign(claims)
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.current().jwks()
    }

    /// Authenticate an admission token whatever its event (`Keyring::authenticate`), with the
    /// keys `keys_for` gives it.
    pub fn authenticate(
        &self,
        token: &str,
        issuer: &str,
        visitor_key: Option<&str>,
    ) -> Result<AdmissionClaims, TokenError> {
        self.keys_for(token)
            .authenticate(token, issuer, visitor_key)
    }

    /// The keys to judge `token` with, reading the folder first if it names a kid not known
    /// yet (a key another process already signs with).
    fn keys_for(&self, token: &str) -> Arc<Keyring> {
        if let Some(kid) = token_kid(token)
            && !self.current().knows(&kid)
            && self.may_look_again()
            && let Err(e) = self.reload()
        {
            tracing::warn!(error = %e, "admission keys not reloaded for an unknown kid");
        }
        self.current()
    }

    fn may_look_again(&self) -> bool {
        let mut last = self.last_unknown.lock().expect("reload clock");
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}
