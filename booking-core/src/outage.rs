//! After a database restart or failover every pooled connection is dead, but the pool pings
//! only a connection idle for a second before handing it out (`startup::pool`): in a busy sale
//! each dead one would fail a fan's request. So the first connection failure anywhere in
//! booking-core makes the connections suspect for a few seconds: the pool then pings every
//! connection it hands out (a dead one is closed and a new one opened: a round trip, not a
//! failed request) and the lane keeps none back. One flag for the process: a failure on the
//! primary or on the read replica makes both pools check their connections, which costs
//! pings only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How long connections stay suspect after a failure.
const SUSPECT_FOR_MS: u64 = 5_000;

/// Until when (ms since the Unix epoch) connections are suspect; 0 when never.
static SUSPECT_UNTIL_MS: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Whether `e` is a failure of the connection rather than of the statement: I/O, TLS, the
/// protocol, or the server ending the session (SQLSTATE 57P, 08).
pub fn is_connection_failure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
        _ => false,
    }
}

/// Look at a database error: a connection failure makes every connection suspect for a while.
pub fn observe(e: &sqlx::Error) {
    if is_connection_failure(e) {
        SUSPECT_UNTIL_MS.fetch_max(now_ms() + SUSPECT_FOR_MS, Ordering::Relaxed);
    }
}

/// Whether a connection failed in the last few seconds (then check connections before use).
pub fn suspect() -> bool {
    let until = SUSPECT_UNTIL_MS.load(Ordering::Relaxed);
    until != 0 && now_ms() < until
}
