//! Connections kept back from the pool between the busiest statements (a hold, a release).
//!
//! sqlx's pool checks every connection given back to it with a round trip to Postgres before
//! anyone may use it again (it cannot be turned off), so a one-statement hold through the pool
//! costs two round trips, and Postgres wakes twice. The lane borrows pool connections and,
//! when a statement ends cleanly, keeps the connection for the next one instead of giving it
//! back. A connection whose statement failed other than by an error in the statement (its
//! socket is gone, the server ended the session, or the statement was abandoned half-way) goes
//! back to the pool, which checks it, and so do all the others the lane keeps: what ended one
//! session (a database restart, say) has likely ended them all. A connection idle for a second
//! goes back too, and one borrowed for ten minutes or the pool's connection lifetime, whichever
//! is shorter (so the pool's own rules, such as that lifetime, still apply). The lane keeps at
//! most three quarters of the pool, so every other statement still finds connections.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};

/// A connection idle this long is given back to the pool rather than used.
const IDLE: Duration = Duration::from_secs(1);
/// A connection borrowed from the pool this long (or the pool's connection lifetime, if
/// shorter) is given back after its statement.
const BORROW: Duration = Duration::from_secs(600);

pub struct Lane {
    pool: PgPool,
    /// Most recently used last.
    kept: Mutex<Vec<Kept>>,
    cap: usize,
    idle: Duration,
    borrow: Duration,
}

struct Kept {
    conn: PoolConnection<Postgres>,
    borrowed: Instant,
    used: Instant,
}

impl Lane {
    pub fn new(pool: PgPool) -> Self {
        let borrow = pool
            .options()
            .get_max_lifetime()
            .map_or(BORROW, |lifetime| lifetime.min(BORROW));
        Self::with_limits(pool, IDLE, borrow)
    }

    /// A lane giving connections back after `idle` unused or `borrow` borrowed.
    pub fn with_limits(pool: PgPool, idle: Duration, borrow: Duration) -> Self {
        let cap = (pool.options().get_max_connections() as usize * 3 / 4).max(1);
        Self {
            pool,
            kept: Mutex::new(Vec::with_capacity(cap)),
            cap,
            idle,
            borrow,
        }
    }

    /// A kept connection used within the last second (`idle`), else one from the pool. While
    /// connections are suspect (one failed a moment ago, `crate::outage`) none is kept back:
    /// each goes through the pool, which checks it.
    pub async fn acquire(&self) -> Result<LaneConnection<'_>, sqlx::Error> {
        if crate::outage::suspect() {
            self.give_back_all();
        }
        let kept = {
            let mut kept = self.kept.lock().expect("lane");
            match kept.pop() {
                Some(k) if k.used.elapsed() < self.idle => Some((k.conn, k.borrowed)),
                // The most recent is stale, so all are: back to the pool with them.
                Some(stale) => {
                    kept.push(stale);
                    drop(kept);
                    self.give_back_all();
                    None
                }
                None => None,
            }
        };
        let (conn, borrowed) = match kept {
            Some(kept) => kept,
            None => (self.pool.acquire().await?, Instant::now()),
        };
        Ok(LaneConnection {
            lane: self,
            conn: Some(conn),
            borrowed,
            state: Settled::Clean,
        })
    }

    /// Give connections idle for a second back to the pool (called by the sweeper's tick, so
    /// a lane that went quiet does not keep them).
    pub fn tidy(&self) {
        let stale: Vec<_> = {
            let mut kept = self.kept.lock().expect("lane");
            let fresh = kept.partition_point(|k| k.used.elapsed() >= self.idle);
            kept.drain(..fresh).collect()
        };
        drop(stale);
    }

    /// Give every kept connection back to the pool, which checks each.
    fn give_back_all(&self) {
        let all = std::mem::take(&mut *self.kept.lock().expect("lane"));
        drop(all);
    }

    /// The pool itself, for statements that do not go through the lane.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// How many connections the lane keeps now.
    pub fn kept(&self) -> usize {
        self.kept.lock().expect("lane").len()
    }

    fn keep(&self, conn: PoolConnection<Postgres>, borrowed: Instant) {
        if borrowed.elapsed() >= self.borrow {
            return;
        }
        let mut kept = self.kept.lock().expect("lane");
        if kept.len() < self.cap {
            kept.push(Kept {
                conn,
                borrowed,
                used: Instant::now(),
            });
        }
    }
}

/// A connection from the lane: kept for the next statement if `settle` saw its statement end
/// cleanly, else given back to the pool when dropped.
pub struct LaneConnection<'a> {
    lane: &'a Lane,
    conn: Option<PoolConnection<Postgres>>,
    borrowed: Instant,
    state: Settled,
}

enum Settled {
    /// Nothing run, or the last statement ended cleanly: keep it.
    Clean,
    /// A statement was started and not settled (abandoned half-way): give it back.
    Running,
    /// The connection failed: give it back, and every other the lane keeps.
    Broken,
}

impl LaneConnection<'_> {
    /// Pass a statement's result through, noting whether the connection is still good for
    /// the next one: it is after a result or an error in the statement that Postgres reported
    /// (the statement ended and Postgres said so); not after a failure of the connection
    /// itself (`outage::is_connection_failure`), nor after any other error, which leaves the
    /// connection in a state nobody vouched for.
    pub fn settle<T>(&mut self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if let Err(e) = &result {
            crate::outage::observe(e);
        }
        let broken = match &result {
            Ok(_) | Err(sqlx::Error::RowNotFound) => false,
            Err(e @ sqlx::Error::Database(_)) => crate::outage::is_connection_failure(e),
            Err(_) => true,
        };
        self.state = if broken {
            Settled::Broken
        } else {
            Settled::Clean
        };
        result
    }
}

impl Deref for LaneConnection<'_> {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect("connection")
    }
}

/// Every statement runs through this: until `settle` has seen it end, the connection counts
/// as out of step (a statement abandoned half-way leaves it so).
impl DerefMut for LaneConnection<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.state = Settled::Running;
        self.conn.as_mut().expect("connection")
    }
}

impl Drop for LaneConnection<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        match self.state {
            Settled::Clean => self.lane.keep(conn, self.borrowed),
            Settled::Running => drop(conn),
            Settled::Broken => {
                drop(conn);
                self.lane.give_back_all();
            }
        }
    }
}
