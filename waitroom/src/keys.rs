//! Redis key names. Every key of one event carries the hash tag `{event}` so all of them live
//! on one Redis Cluster shard and the event's scripts run unchanged on a cluster.

/// `wr:{event}:cfg`: the event's live settings as JSON, written by booking-core.
pub fn cfg(event: &str) -> String {
    format!("wr:{{{event}}}:cfg")
}

/// `wr:{event}:waiting`: sorted set of waiting visitors scored by place.
pub fn waiting(event: &str) -> String {
    format!("wr:{{{event}}}:waiting")
}

/// `wr:{event}:prequeue`: set of visitors who arrived before opening (order decided later).
pub fn prequeue(event: &str) -> String {
    format!("wr:{{{event}}}:prequeue")
}

/// `wr:{event}:active`: sorted set of admitted visitors holding a slot under the event's
/// active cap, scored by when the slot frees itself (ms): the session's end, or sooner when the
/// fan is idle (see [`crate::session`]). A fan who bought, or left, no longer has one.
pub fn active(event: &str) -> String {
    format!("wr:{{{event}}}:active")
}

/// `wr:{event}:sessions`: sorted set of admitted visitors scored by when they were admitted
/// (ms): the server's record of admission, from which `admitted_at` and `admitted_until` are
/// answered whether or not the fan still holds a slot. Pruned by the admit script once a
/// session is over.
pub fn sessions(event: &str) -> String {
    format!("wr:{{{event}}}:sessions")
}

/// `wr:{event}:seen:{window}:{range}`: a bitmap of the places seen polling during one time
/// window (`abandon_after_s` long), bit = place. `range` is `a` for post-opening arrivals
/// (bit = place − OFFSET) and `p` for pre-queue places. An eighth of a byte per visitor.
pub fn seen(event: &str, window: i64, prequeue: bool) -> String {
    let range = if prequeue { 'p' } else { 'a' };
    format!("wr:{{{event}}}:seen:{window}:{range}")
}

/// `wr:{event}:state`: hash of counters and markers (next place, watermark, admitted and
/// dropped totals, carry, shuffle seed); the fields are listed in [`crate::queue`].
pub fn state(event: &str) -> String {
    format!("wr:{{{event}}}:state")
}

/// `wr:{event}:lease`: which worker replica admits for this event.
pub fn lease(event: &str) -> String {
    format!("wr:{{{event}}}:lease")
}

/// `wr:{event}:admits`: sorted set of `"{tick_ms}:{admitted}:{dropped}"` scored by tick time,
/// one per tick that moved the queue, so its recent pace can be read back (see
/// [`crate::queue::Pace`]).
pub fn admits(event: &str) -> String {
    format!("wr:{{{event}}}:admits")
}

/// `wr:{event}:reserve:{visitor}`: when the visitor's next reserve attempt is due by the
/// per-visitor limit (ms, a GCRA "theoretical arrival time"), shared by every booking-core.
pub fn reserve_attempts(event: &str, visitor: &str) -> String {
    format!("wr:{{{event}}}:reserve:{visitor}")
}

/// `bk:lookup:{hash}`: find-my-booking requests for one email address (by its keyed lookup
/// hash, never the address) in the current hour, shared by every booking-core.
pub fn lookups(email_hash: &str) -> String {
    format!("bk:lookup:{email_hash}")
}

/// Fields of [`state`].
pub mod field {
    /// The place the next joining visitor gets.
    pub const NEXT_PLACE: &str = "next_place";
    /// Every visitor with a place at or below this has been admitted (or dropped).
    pub const WATERMARK: &str = "watermark";
    /// Visitors admitted since the event was created.
    pub const ADMITTED_TOTAL: &str = "admitted_total";
}

/// `wr:{event}:pow:{minute}`: set of the tags of accepted proof-of-work challenges that expire
/// in that minute (Unix minutes), kept until the minute ends. One set a minute rather than a
/// key a challenge: 79 bytes a challenge instead of 133 (measured with 100,000 of each).
pub fn pow_used(event: &str, expiry_minute: i64) -> String {
    format!("wr:{{{event}}}:pow:{expiry_minute}")
}

/// `wr:{event}:codes`: hash of access-code hash → uses left (see [`crate::access_codes`]).
pub fn codes(event: &str) -> String {
    format!("wr:{{{event}}}:codes")
}

/// `wr:{event}:code_batch`: hash of access-code hash → its batch id.
pub fn code_batch(event: &str) -> String {
    format!("wr:{{{event}}}:code_batch")
}

/// `wr:{event}:batches`: hash of batch id → `"{effect}|{expires_at_ms}|{revoked 0/1}"`.
pub fn batches(event: &str) -> String {
    format!("wr:{{{event}}}:batches")
}

/// `wr:{event}:batch_used`: hash of batch id → uses redeemed.
pub fn batch_used(event: &str) -> String {
    format!("wr:{{{event}}}:batch_used")
}

/// `wr:{event}:priority`: the priority lane, a sorted set of visitors admitted before the
/// general queue (scored by arrival in ms; a `skip` code that met a full cap goes first).
pub fn priority(event: &str) -> String {
    format!("wr:{{{event}}}:priority")
}

/// `wr:{event}:codefail:{minute}`: wrong access codes on the event this minute, from anyone;
/// with `client`, from one client address.
pub fn code_fails(event: &str, client: Option<&str>, minute: i64) -> String {
    match client {
        Some(c) => format!("wr:{{{event}}}:codefail:{c}:{minute}"),
        None => format!("wr:{{{event}}}:codefail:{minute}"),
    }
}

/// `wr:{event}:seats`: the event's seat figures as booking-core last published them (every
/// second): `available` (on sale, neither held nor sold, of shows not cancelled), `held`,
/// `sold`, `holders` (fans holding seats) and `at` (ms). The worker admits no more than the
/// seats available beyond those admitted fans not yet holding could take.
pub fn seats(event: &str) -> String {
    format!("wr:{{{event}}}:seats")
}

/// `wr:{event}:history`: the last hour of the event, one member a `history_interval_ms`
/// (`"{ms}|{waiting}|{active}|{cap}|{admitted_total}|{dropped_total}|{held}|{sold}|{rate}"`,
/// scored by ms), written by the admitting worker for the console's charts.
pub fn history(event: &str) -> String {
    format!("wr:{{{event}}}:history")
}
