//! What booking-core remembers for a while (a show's reserve facts, admission tokens already
//! verified, the holds it made): a map whose entries count for a fixed time, bounded in size.
//! When full, entries past their time go first, then everything: whatever is remembered can
//! always be found again the slow way.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Expiring<V> {
    ttl: Duration,
    cap: usize,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> Expiring<V> {
    pub fn new(ttl: Duration, cap: usize) -> Self {
        Self {
            ttl,
            cap,
            entries: Mutex::default(),
        }
    }

    /// The value remembered for `key`, if its time has not passed.
    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().expect("expiring map");
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// The value remembered for `key`, if its time has not passed; forgotten either way.
    pub fn take(&self, key: &str) -> Option<V> {
        let mut entries = self.entries.lock().expect("expiring map");
        entries
            .remove(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v)
    }

    pub fn insert(&self, key: String, value: V) {
        let mut entries = self.entries.lock().expect("expiring map");
        if entries.len() >= self.cap {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= self.cap {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    pub fn clear(&self) {
        self.entries.lock().expect("expiring map").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_count_for_their_time_and_the_map_stays_bounded() {
        let map = Expiring::new(Duration::from_secs(60), 3);
        map.insert("a".into(), 1);
        assert_eq!(map.get("a"), Some(1));
        assert_eq!(map.take("a"), Some(1));
        assert_eq!(map.get("a"), None, "taken");
        let instant = Expiring::new(Duration::ZERO, 3);
        instant.insert("b".into(), 2);
        assert_eq!(instant.get("b"), None, "past its time");
        assert_eq!(instant.take("b"), None, "past its time");
        for (i, k) in ["c", "d", "e", "f"].into_iter().enumerate() {
            map.insert(k.into(), i);
        }
        let held = map.entries.lock().unwrap().len();
        assert!(held <= 3, "{held} entries");
        assert_eq!(map.get("f"), Some(3), "the newest is always kept");
        map.clear();
        assert_eq!(map.get("f"), None);
    }
}
