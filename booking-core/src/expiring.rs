//! What booking-core remembers for a while (a show's reserve facts, admission tokens already
//! verified, the holds it made): a map whose entries count until their time passes, bounded
//! in size. Entries past their time are swept out as the map is used (at most once a
//! `SWEEP_EVERY`, or once a time-to-live when that is shorter), so what it holds follows what
//! is current, not everything seen since the last time it filled up: the soak found this map
//! growing for an hour. A sweep that leaves the table mostly empty shrinks it too: a hash
//! table keeps the room its biggest moment needed, so one burst of fans would otherwise set
//! the service's memory for the rest of its life. When full of current entries, everything
//! goes: whatever is remembered can always be found again the slow way.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often, at most, entries past their time are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct Expiring<V> {
    ttl: Duration,
    cap: usize,
    inner: Mutex<Inner<V>>,
}

struct Inner<V> {
    /// Key → (until when it counts, value).
    entries: HashMap<String, (Instant, V)>,
    swept: Instant,
}

impl<V: Clone> Expiring<V> {
    pub fn new(ttl: Duration, cap: usize) -> Self {
        Self {
            ttl,
            cap,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// The value remembered for `key`, if its time has not passed.
    pub fn get(&self, key: &str) -> Option<V> {
        let inner = self.inner.lock().expect("expiring map");
        inner
            .entries
            .get(key)
            .filter(|(until, _)| Instant::now() < *until)
            .map(|(_, v)| v.clone())
    }

    /// The value remembered for `key`, if its time has not passed; forgotten either way.
    pub fn take(&self, key: &str) -> Option<V> {
        let mut inner = self.inner.lock().expect("expiring map");
        inner
            .entries
            .remove(key)
            .filter(|(until, _)| Instant::now() < *until)
            .map(|(_, v)| v)
    }

    /// Remember `value` for the map's time-to-live.
    pub fn insert(&self, key: String, value: V) {
        self.insert_for(key, value, self.ttl);
    }

    /// Remember `value` for `ttl` (at most the map's own time-to-live).
    pub fn insert_for(&self, key: String, value: V, ttl: Duration) {
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("expiring map");
        self.make_room(&mut inner, now);
        inner.entries.insert(key, (now + ttl.min(self.ttl), value));
    }

    /// The value remembered for `key` if its time has not passed, else `make()`'s, remembered
    /// now for the map's time-to-live: everyone asking for `key` within one lifetime gets the
    /// same value, however many ask at once.
    pub fn get_or_insert_with(&self, key: &str, make: impl FnOnce() -> V) -> V {
        self.get_or_insert_with_until(key, make).0
    }

    /// As `get_or_insert_with`, with until when the value counts.
    pub fn get_or_insert_with_until(&self, key: &str, make: impl FnOnce() -> V) -> (V, Instant) {
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("expiring map");
        if let Some((until, v)) = inner.entries.get(key)
            && now < *until
        {
            return (v.clone(), *until);
        }
        self.make_room(&mut inner, now);
        let value = make();
        let until = now + self.ttl;
        inner.entries.insert(key.to_owned(), (until, value.clone()));
        (value, until)
    }

    /// Before an insert: entries past their time swept out (when full, or at most once a
    /// `SWEEP_EVERY`), and everything dropped if the map is still full.
    fn make_room(&self, inner: &mut Inner<V>, now: Instant) {
        let full = inner.entries.len() >= self.cap;
        if full || now.duration_since(inner.swept) >= SWEEP_EVERY.min(self.ttl) {
            inner.entries.retain(|_, (until, _)| now < *until);
            inner.swept = now;
            if inner.entries.len() < inner.entries.capacity() / 4 {
                let room = inner.entries.len() * 2;
                inner.entries.shrink_to(room);
            }
        }
        if inner.entries.len() >= self.cap {
            inner.entries.clear();
        }
    }

    /// How many entries the map holds (current or not yet swept).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().expect("expiring map").entries.len()
    }

    /// How many entries the map's table has room for.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.inner.lock().expect("expiring map").entries.capacity()
    }

    pub fn clear(&self) {
        self.inner.lock().expect("expiring map").entries.clear();
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
        let held = map.len();
        assert!(held <= 3, "{held} entries");
        assert_eq!(map.get("f"), Some(3), "the newest is always kept");
        map.clear();
        assert_eq!(map.get("f"), None);
    }

    #[test]
    fn entries_past_their_time_are_swept_out_before_the_map_is_full() {
        // A time-to-live of zero: every entry is past its time at the next insert, which
        // sweeps (the sweep runs at most once a time-to-live).
        let map = Expiring::new(Duration::ZERO, 1_000);
        for i in 0..100 {
            map.insert(format!("k{i}"), i);
        }
        assert_eq!(map.len(), 1, "only the newest, never the 100 seen");
        // An entry may count for less than the map's time, never more.
        let map = Expiring::new(Duration::from_secs(60), 1_000);
        map.insert_for("short".into(), 1, Duration::ZERO);
        map.insert_for("long".into(), 2, Duration::from_secs(3600));
        assert_eq!(map.get("short"), None);
        assert_eq!(map.get("long"), Some(2));
    }

    #[test]
    fn a_sweep_gives_back_the_room_a_burst_took() {
        let ttl = Duration::from_millis(100);
        let map = Expiring::new(ttl, 100_000);
        for i in 0..10_000 {
            map.insert(format!("k{i}"), i);
        }
        let burst = map.capacity();
        assert!(burst >= 10_000, "the table grew to {burst}");
        // Once the burst's entries are past their time, the next insert sweeps them out.
        let deadline = Instant::now() + Duration::from_secs(10);
        while map.len() > 1 {
            assert!(
                Instant::now() < deadline,
                "never swept: {} entries",
                map.len()
            );
            std::thread::sleep(ttl / 4);
            map.insert("after".into(), 0);
        }
        assert!(
            map.capacity() < burst / 4,
            "room for {} entries kept after a burst of {burst}",
            map.capacity()
        );
    }

    #[test]
    fn get_or_insert_with_makes_one_value_per_key_per_lifetime() {
        let map = Expiring::new(Duration::from_secs(60), 10);
        let mut made = 0;
        for _ in 0..3 {
            let v = map.get_or_insert_with("k", || {
                made += 1;
                made
            });
            assert_eq!(v, 1);
        }
        assert_eq!(made, 1, "made once, then remembered");
        let instant = Expiring::new(Duration::ZERO, 10);
        assert_eq!(instant.get_or_insert_with("k", || 1), 1);
        assert_eq!(
            instant.get_or_insert_with("k", || 2),
            2,
            "past its time: made again"
        );
    }
}
