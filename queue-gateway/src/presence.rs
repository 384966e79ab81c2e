//! Who was seen polling, written to Redis in one batch per event per second, so the worker can
//! drop visitors who left without a Redis write per poll. `ZADD XX` only refreshes visitors
//! still in the queue: one already dropped stays dropped.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use chrono::Utc;
use marquee_waitroom::keys;
use redis::aio::ConnectionManager;

#[derive(Default)]
pub struct Presence {
    seen: Mutex<HashMap<String, HashSet<String>>>,
}

impl Presence {
    pub fn saw(&self, event: &str, visitor: &str) {
        let mut seen = self.seen.lock().expect("presence lock");
        match seen.get_mut(event) {
            Some(set) => {
                set.insert(visitor.to_owned());
            }
            None => {
                seen.insert(event.to_owned(), HashSet::from([visitor.to_owned()]));
            }
        }
    }

    /// Write what was seen since the last flush; returns how many visitors were written.
    pub async fn flush(&self, redis: &mut ConnectionManager) -> redis::RedisResult<usize> {
        let batch = std::mem::take(&mut *self.seen.lock().expect("presence lock"));
        if batch.is_empty() {
            return Ok(0);
        }
        let now = Utc::now().timestamp_millis();
        let mut pipe = redis::pipe();
        let mut count = 0;
        for (event, visitors) in &batch {
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(keys::seen(event)).arg("XX");
            for v in visitors {
                cmd.arg(now).arg(v);
            }
            count += visitors.len();
            pipe.add_command(cmd).ignore();
        }
        if let Err(e) = pipe.query_async::<()>(redis).await {
            // Put them back for the next flush rather than lose them.
            let mut seen = self.seen.lock().expect("presence lock");
            for (event, visitors) in batch {
                seen.entry(event).or_default().extend(visitors);
            }
            return Err(e);
        }
        Ok(count)
    }
}
