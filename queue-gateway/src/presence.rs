//! Who was seen polling, written to Redis once a second per event as presence bitmaps (a bit
//! per place per time window): one `BITFIELD` command per bitmap, however many fans polled.
//! The admission worker drops, at its turn, a visitor seen in neither the current window nor
//! the last.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use chrono::Utc;
use marquee_waitroom::connect::Redis;
use marquee_waitroom::queue;

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

    /// Write what was seen since the last flush; returns how many places were written. One
    /// pipeline per event, all sent at once: an event's bitmaps share its hash tag, so each
    /// pipeline stays on one Redis Cluster slot (one pipeline across events would be refused
    /// there as CROSSSLOT). An event whose write fails is kept for the next flush.
    pub async fn flush(&self, redis: &Redis) -> redis::RedisResult<usize> {
        let batch = std::mem::take(&mut *self.seen.lock().expect("presence lock"));
        if batch.is_empty() {
            return Ok(0);
        }
        let now = Utc::now().timestamp_millis();
        let writes = batch.into_iter().map(|(event, (abandon, places))| {
            let mut redis = redis.clone();
            async move {
                let pipe = event_pipeline(&event, abandon, &places, now);
                match pipe.query_async::<()>(&mut redis).await {
                    Ok(()) => Ok(places.len()),
                    Err(e) => Err((e, event, abandon, places)),
                }
            }
        });
        let mut written = 0;
        let mut failure = None;
        for result in futures::future::join_all(writes).await {
            match result {
                Ok(n) => written += n,
                Err((e, event, abandon, places)) => {
                    // Put them back for the next flush rather than lose them.
                    let mut seen = self.seen.lock().expect("presence lock");
                    let entry = seen.entry(event).or_insert((abandon, HashSet::new()));
                    entry.1.extend(places);
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }
}

/// One `BITFIELD` (and its expiry) per presence bitmap the event's `places` fall in.
fn event_pipeline(event: &str, abandon: u32, places: &HashSet<u64>, now: i64) -> redis::Pipeline {
    let window = queue::window(now, abandon);
    let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for p in places {
        let (key, bit) = queue::seen_bit(event, window, *p);
        by_key.entry(key).or_default().push(bit);
    }
    let mut pipe = redis::pipe();
    for (key, bits) in by_key {
        let mut cmd = redis::cmd("BITFIELD");
        cmd.arg(&key);
        for b in &bits {
            cmd.arg("SET").arg("u1").arg(*b).arg(1);
        }
        pipe.add_command(cmd).ignore();
        pipe.pexpire(&key, queue::window_ttl_ms(abandon) as i64)
            .ignore();
    }
    pipe
}
