//! A circuit breaker for calls to Stripe: after N consecutive failures it opens and calls fail
//! at once (503 + Retry-After) for a while; then one trial call is let through, and a success
//! closes it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    /// A trial call is under way while half-open.
    trial: bool,
}

/// The breaker refused the call; retry after this many seconds.
#[derive(Debug)]
pub struct Open(pub u64);

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            state: Mutex::new(State::default()),
        }
    }

    /// May a call go out now?
    pub fn admit(&self) -> Result<(), Open> {
        let mut s = self.state.lock().expect("breaker lock");
        match s.open_until {
            Some(until) if Instant::now() < until => {
                Err(Open((until - Instant::now()).as_secs().max(1)))
            }
            Some(_) if s.trial => Err(Open(1)),
            Some(_) => {
                s.trial = true;
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub fn success(&self) {
        *self.state.lock().expect("breaker lock") = State::default();
    }

    pub fn failure(&self) {
        let mut s = self.state.lock().expect("breaker lock");
        s.failures += 1;
        s.trial = false;
        if s.failures >= self.threshold || s.open_until.is_some() {
            s.open_until = Some(Instant::now() + self.open_for);
            tracing::warn!(failures = s.failures, "Stripe circuit breaker open");
        }
    }

    pub fn is_open(&self) -> bool {
        self.state
            .lock()
            .expect("breaker lock")
            .open_until
            .is_some_and(|u| Instant::now() < u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_closes_after_a_good_trial() {
        let b = Breaker::new(2, Duration::from_millis(50));
        b.admit().unwrap();
        b.failure();
        b.admit().unwrap();
        b.failure();
        assert!(b.admit().is_err(), "open");
        std::thread::sleep(Duration::from_millis(60));
        b.admit().unwrap(); // the trial
        assert!(b.admit().is_err(), "one trial at a time");
        b.success();
        b.admit().unwrap();
        assert!(!b.is_open());
    }

    #[test]
    fn a_failed_trial_opens_it_again() {
        let b = Breaker::new(1, Duration::from_millis(30));
        b.failure();
        std::thread::sleep(Duration::from_millis(40));
        b.admit().unwrap();
        b.failure();
        assert!(b.admit().is_err());
    }
}
