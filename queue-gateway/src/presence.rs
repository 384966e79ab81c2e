//! Who was seen polling, written to Redis once a second per event as presence bitmaps (a bit
//! per place per time window): one `BITFIELD` command per bitmap, however many fans polled.
//! The admission worker drops, at its turn, a visitor seen in neither the current window nor
//! the last.

use std::collections::{HashMap, HashSet};
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

/// One `BITFIELD` (and its expiry) per presence bitmap the event's `places` fall in. A window
/// has two bitmaps, so each key is written once per flush, not once per place.
fn event_pipeline(event: &str, abandon: u32, places: &HashSet<u64>, now: i64) -> redis::Pipeline {
    let window = queue::window(now, abandon);
    // The pre-queue's bitmap first, then the line's.
    let mut bits: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    for p in places {
        let (prequeue, bit) = queue::seen_slot(*p);
        bits[usize::from(!prequeue)].push(bit);
    }
    let mut pipe = redis::pipe();
    for (prequeue, bits) in [true, false].into_iter().zip(bits) {
        if bits.is_empty() {
            continue;
        }
        let key = marquee_waitroom::keys::seen(event, window, prequeue);
        let mut cmd = redis::cmd("BITFIELD");
        cmd.arg(&key);
        for b in bits {
            cmd.arg("SET").arg("u1").arg(b).arg(1);
        }
        pipe.add_command(cmd).ignore();
        pipe.pexpire(&key, queue::window_ttl_ms(abandon) as i64)
            .ignore();
    }
    pipe
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pipeline's commands as text, one per line, arguments separated by spaces.
    fn commands(pipe: &redis::Pipeline) -> Vec<String> {
        let packed = String::from_utf8(pipe.get_packed_pipeline()).unwrap();
        let mut out = Vec::new();
        let mut lines = packed.split("\r\n");
        while let Some(line) = lines.next() {
            let Some(n) = line.strip_prefix('*') else {
                continue;
            };
            let args: Vec<&str> = (0..n.parse::<usize>().unwrap())
                .map(|_| {
                    lines.next().unwrap(); // the argument's length
                    lines.next().unwrap()
                })
                .collect();
            out.push(args.join(" "));
        }
        out
    }

    #[test]
    fn each_bitmap_is_written_once_with_every_bit_it_holds() {
        let now = 1_700_000_000_000;
        let window = queue::window(now, 10);
        let places = HashSet::from([3, queue::OFFSET + 5, 7]);
        let cmds = commands(&event_pipeline("ev", 10, &places, now));
        let (prequeue, _) = queue::seen_bit("ev", window, 3);
        let (line, bit) = queue::seen_bit("ev", window, queue::OFFSET + 5);
        assert_eq!(bit, 5);
        assert_eq!(cmds.len(), 4, "{cmds:?}");
        let mut pre_bits: Vec<&str> = cmds[0].split(' ').skip(4).step_by(4).collect();
        pre_bits.sort_unstable();
        assert!(cmds[0].starts_with(&format!("BITFIELD {prequeue} SET")));
        assert_eq!(pre_bits, ["3", "7"]);
        assert_eq!(
            cmds[1],
            format!("PEXPIRE {prequeue} {}", queue::window_ttl_ms(10))
        );
        assert_eq!(cmds[2], format!("BITFIELD {line} SET u1 5 1"));
        assert_eq!(
            cmds[3],
            format!("PEXPIRE {line} {}", queue::window_ttl_ms(10))
        );
        // Only the line's bitmap when no pre-queue place was seen.
        let cmds = commands(&event_pipeline(
            "ev",
            10,
            &HashSet::from([queue::OFFSET + 1]),
            now,
        ));
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0], format!("BITFIELD {line} SET u1 1 1"));
    }
}
