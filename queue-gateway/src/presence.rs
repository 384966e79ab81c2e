//! Who was seen polling, written to Redis once a second per event as presence bitmaps (a bit
//! per place per time window): one `BITFIELD` command per bitmap, however many fans polled.
//! The admission worker drops, at its turn, a visitor seen in neither the current window nor
//! the last.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use chrono::Utc;
use marquee_waitroom::queue;
use redis::aio::ConnectionManager;

#[derive(Default)]
pub struct Presence {
    /// Event → (its `abandon_after_s`, places seen since the last flush).
    seen: Mutex<HashMap<String, (u32, HashSet<u64>)>>,
}

impl Presence {
    pub fn saw(&self, event: &str, abandon_after_s: u32, place: u64) {
        let mut seen = self.seen.lock().expect("presence lock");
        match seen.get_mut(event) {
            Some((a, set)) => {
                *a = abandon_after_s;
                set.insert(place);
            }
            None => {
                seen.insert(event.to_owned(), (abandon_after_s, HashSet::from([place])));
            }
        }
    }

    /// Write what was seen since the last flush; returns how many places were written.
    pub async fn flush(&self, redis: &mut ConnectionManager) -> redis::RedisResult<usize> {
        let batch = std::mem::take(&mut *self.seen.lock().expect("presence lock"));
        if batch.is_empty() {
            return Ok(0);
        }
        let now = Utc::now().timestamp_millis();
        let mut pipe = redis::pipe();
        let mut count = 0;
        for (event, (abandon, places)) in &batch {
            let window = queue::window(now, *abandon);
            let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            for p in places {
                let (key, bit) = queue::seen_bit(event, window, *p);
                by_key.entry(key).or_default().push(bit);
            }
            for (key, bits) in by_key {
                let mut cmd = redis::cmd("BITFIELD");
                cmd.arg(&key);
                for b in &bits {
                    cmd.arg("SET").arg("u1").arg(*b).arg(1);
                }
                count += bits.len();
                pipe.add_command(cmd).ignore();
                pipe.pexpire(&key, queue::window_ttl_ms(*abandon) as i64)
                    .ignore();
            }
        }
        if let Err(e) = pipe.query_async::<()>(redis).await {
            // Put them back for the next flush rather than lose them.
            let mut seen = self.seen.lock().expect("presence lock");
            for (event, (abandon, places)) in batch {
                let entry = seen.entry(event).or_insert((abandon, HashSet::new()));
                entry.1.extend(places);
            }
            return Err(e);
        }
        Ok(count)
    }
}
