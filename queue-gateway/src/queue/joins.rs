//! New visitors' joins of one event, coalesced (`marquee_platform::coalesce`): joins that
//! arrive while one is at Redis go together in the next script call
//! (`queue::join_together`), each answered as it would be joining alone, one after another in
//! arrival order. A lone join goes at once, as a batch of one. Only joins that cannot pass
//! straight through: a pass-through spends the admission budget one fan at a time. At most
//! `[gateway] join_batch_max` joins a call (1: each alone).

use std::sync::Arc;

use chrono::Utc;
use marquee_platform::coalesce::Coalescer;
use marquee_waitroom::connect::Redis;
use marquee_waitroom::queue::{self, Joined};
use prometheus::{IntCounter, Registry};

use crate::error::GatewayError;

/// Script calls of one event's joins at Redis at once: one made batches larger, and joins 4 %
/// more, than two (session 26).
const MAX_RUNNERS: usize = 1;

/// What the joins of one batch share.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Batch {
    event: String,
    before_opening: bool,
    abandon_after_s: u32,
}

/// A batch's answer for one visitor (a Redis error is every visitor's in the batch).
type Outcome = Result<Joined, String>;

pub struct Joins {
    coalescer: Arc<Coalescer<Batch, String, Outcome>>,
    figures: Figures,
}

/// How batching goes, for operators (`/metrics`).
#[derive(Clone)]
struct Figures {
    /// `join_batches_total`: script calls that joined two or more visitors.
    together: IntCounter,
    /// `join_batched_total`: the visitors joined in those calls.
    joined: IntCounter,
}

impl Joins {
    /// Batches of at most `max_batch` joins, counted in `registry`.
    pub fn new(max_batch: usize, registry: &Registry) -> Self {
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        Self {
            coalescer: Coalescer::new(max_batch, MAX_RUNNERS),
            figures: Figures {
                together: counter(
                    "join_batches_total",
                    "Calls of the join script that joined two or more new visitors of one event",
                ),
                joined: counter(
                    "join_batched_total",
                    "New visitors joined in calls of two or more",
                ),
            },
        }
    }

    /// `visitor` (minted for this join) joins `event`'s line, or its pre-queue before opening.
    pub async fn join(
        &self,
        redis: &Redis,
        event: &str,
        visitor: String,
        before_opening: bool,
        abandon_after_s: u32,
    ) -> Result<Joined, GatewayError> {
        let batch = Batch {
            event: event.to_owned(),
            before_opening,
            abandon_after_s,
        };
        let run = {
            let (redis, batch, figures) = (redis.clone(), batch.clone(), self.figures.clone());
            move |visitors: Vec<String>| {
                let (mut redis, batch) = (redis.clone(), batch.clone());
                if visitors.len() > 1 {
                    figures.together.inc();
                    figures.joined.inc_by(visitors.len() as u64);
                }
                async move { run(&mut redis, &batch, &visitors).await }
            }
        };
        match self.coalescer.submit(batch, visitor, run).await {
            Ok(Ok(joined)) => Ok(joined),
            Ok(Err(redis)) => Err(GatewayError::Unavailable(redis)),
            Err(lost) => Err(GatewayError::Internal(anyhow::anyhow!(lost))),
        }
    }
}

/// One script call for the batch's visitors, in order; an answer for each.
async fn run(redis: &mut Redis, batch: &Batch, visitors: &[String]) -> Vec<Outcome> {
    let (first, more) = visitors.split_first().expect("a batch has a visitor");
    let more: Vec<&str> = more.iter().map(String::as_str).collect();
    let join = queue::Join {
        event: &batch.event,
        visitor: first,
        before_opening: batch.before_opening,
        now_ms: Utc::now().timestamp_millis(),
        abandon_after_s: batch.abandon_after_s,
        pass_through: None,
        fresh: true,
    };
    match queue::join_together(redis, &join, &more).await {
        Ok(joined) => joined.into_iter().map(Ok).collect(),
        Err(e) => {
            let e = format!("redis: {e}");
            visitors.iter().map(|_| Err(e.clone())).collect()
        }
    }
}
