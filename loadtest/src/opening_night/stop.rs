//! The run's end, which every fan's waits listen for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Stop(Arc<(AtomicBool, Notify)>);

impl Stop {
    pub fn trigger(&self) {
        self.0.0.store(true, Ordering::SeqCst);
        self.0.1.notify_waiters();
    }

    pub fn stopped(&self) -> bool {
        self.0.0.load(Ordering::SeqCst)
    }

    /// Sleep for `d`; false if the run ended first (or had ended).
    pub async fn sleep(&self, d: Duration) -> bool {
        let notified = self.0.1.notified();
        if self.stopped() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => !self.stopped(),
            () = notified => false,
        }
    }
}
