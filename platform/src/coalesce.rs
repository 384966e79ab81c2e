//! Requests for one key coalesced into batches (booking-core's holds of one show at Postgres,
//! the gateway's joins of one event at Redis). A request for a key starts a runner (a task of
//! its own, so a fan who hangs up never strands the others) unless the key has its most
//! runners already; while runners' batches are at the store, requests for the key queue, and
//! the next runner to come free takes all of them (up to a cap), in arrival order. Nothing
//! waits for a batch to fill: a lone request runs at once, as a batch of one, and batches grow
//! only while the store is busy with the last ones.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

pub struct Coalescer<K, R, O> {
    /// A key is here while any runner of its lives.
    queues: Mutex<HashMap<K, Queue<R, O>>>,
    max_batch: usize,
    max_runners: usize,
}

struct Queue<R, O> {
    /// The requests waiting for a batch, in arrival order.
    waiting: Vec<Waiting<R, O>>,
    /// Runners of this key now (at least one while the key is here).
    runners: usize,
}

struct Waiting<R, O> {
    request: R,
    answer: oneshot::Sender<O>,
}

/// The runner stopped (it panicked) before answering.
#[derive(Debug, thiserror::Error)]
#[error("the batch this request was in was lost")]
pub struct Lost;

impl<K, R, O> Coalescer<K, R, O>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    R: Send + 'static,
    O: Send + 'static,
{
    /// Batches of at most `max_batch` requests, at most `max_runners` of a key's at the
    /// store at once (each at least one).
    pub fn new(max_batch: usize, max_runners: usize) -> Arc<Self> {
        Arc::new(Self {
            queues: Mutex::new(HashMap::new()),
            max_batch: max_batch.max(1),
            max_runners: max_runners.max(1),
        })
    }

    /// `request`'s answer. `run` gets each batch of `key`'s requests in arrival order and
    /// answers them in the same order, one answer each.
    pub async fn submit<F, Fut>(self: &Arc<Self>, key: K, request: R, run: F) -> Result<O, Lost>
    where
        F: Fn(Vec<R>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queues = self.queues.lock().expect("coalescer");
            let queue = queues.entry(key.clone()).or_insert_with(|| Queue {
                waiting: Vec::new(),
                runners: 0,
            });
            queue.waiting.push(Waiting { request, answer });
            let start = queue.runners < self.max_runners;
            if start {
                queue.runners += 1;
            }
            start
        };
        if start {
            tokio::spawn(self.clone().drain(key, run));
        }
        answered.await.map_err(|_| Lost)
    }

    /// A runner: batches until none is waiting, then it ends (the last forgets the key).
    async fn drain<F, Fut>(self: Arc<Self>, key: K, run: F)
    where
        F: Fn(Vec<R>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send + 'static,
    {
        // A panic in `run` ends this runner too: `Leave` counts it out, and if it was the
        // key's last, the requests then waiting are told their batch was lost (the next
        // request starts a new runner).
        let mut leave = Leave {
            coalescer: &self,
            key: &key,
            armed: true,
        };
        loop {
            let batch: Vec<Waiting<R, O>> = {
                let mut queues = self.queues.lock().expect("coalescer");
                let queue = queues.get_mut(&key).expect("a runner's key is kept");
                if queue.waiting.is_empty() {
                    // Under the lock that found the queue empty: a request queued after this
                    // finds room for a runner of its own.
                    leave.armed = false;
                    leave_queue(&mut queues, &key);
                    return;
                }
                // Requests whose senders gave up waiting (timed out, hung up) before their
                // batch began are dropped unrun: nobody is told their outcome. Under a stalled
                // store this also keeps the queue to the requests still waiting.
                queue.waiting.retain(|w| !w.answer.is_closed());
                if queue.waiting.is_empty() {
                    continue;
                }
                let n = queue.waiting.len().min(self.max_batch);
                queue.waiting.drain(..n).collect()
            };
            let (requests, answers): (Vec<R>, Vec<_>) =
                batch.into_iter().map(|w| (w.request, w.answer)).unzip();
            let outcomes = run(requests).await;
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                // The fan may have hung up; its outcome stands all the same.
                let _ = answer.send(outcome);
            }
        }
    }
}

impl<K: Eq + Hash, R, O> Coalescer<K, R, O> {
    /// Keys with a runner now.
    pub fn running(&self) -> usize {
        self.queues.lock().expect("coalescer").len()
    }
}

/// One runner of `key` fewer; the last one forgets the key (and whatever still waits).
fn leave_queue<K: Eq + Hash, R, O>(queues: &mut HashMap<K, Queue<R, O>>, key: &K) {
    if let Some(queue) = queues.get_mut(key) {
        queue.runners -= 1;
        if queue.runners == 0 {
            queues.remove(key);
        }
    }
}

/// Counts a runner out if it ends other than by finding its queue empty (a panic).
struct Leave<'a, K: Eq + Hash, R, O> {
    coalescer: &'a Coalescer<K, R, O>,
    key: &'a K,
    armed: bool,
}

impl<K: Eq + Hash, R, O> Drop for Leave<'_, K, R, O> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut queues = match self.coalescer.queues.lock() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        };
        leave_queue(&mut queues, self.key);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_lone_request_runs_at_once_as_a_batch_of_one() {
        let c = Coalescer::<&str, u32, (usize, u32)>::new(8, 2);
        let out = c.submit("k", 7, |b: Vec<u32>| async move {
            let n = b.len();
            b.into_iter().map(|r| (n, r * 2)).collect()
        });
        assert_eq!(out.await.unwrap(), (1, 14));
        runner_ends(&c).await;
    }

    async fn runner_ends<K: Eq + Hash, R, O>(c: &Coalescer<K, R, O>) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while c.running() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the runner ends when nothing waits");
    }

    #[tokio::test]
    async fn requests_arriving_while_a_batch_runs_go_in_the_next_in_arrival_order() {
        let c = Coalescer::<&str, u32, Vec<u32>>::new(3, 1);
        let (release_first, first_released) = tokio::sync::watch::channel(false);
        let run = move |b: Vec<u32>| {
            let mut first_released = first_released.clone();
            async move {
                if b == [0] {
                    first_released.wait_for(|r| *r).await.unwrap();
                }
                b.iter().map(|_| b.clone()).collect()
            }
        };
        let run = Arc::new(run);
        let submit = |r: u32| {
            let c = c.clone();
            let run = run.clone();
            tokio::spawn(async move { c.submit("k", r, move |b| run(b)).await.unwrap() })
        };
        let first = submit(0);
        // The first batch is at the "database" (blocked); these queue behind it.
        while c
            .queues
            .lock()
            .unwrap()
            .get("k")
            .is_none_or(|q| !q.waiting.is_empty())
        {
            tokio::task::yield_now().await;
        }
        let mut later = Vec::new();
        for r in 1..=4 {
            later.push(submit(r));
            while c.queues.lock().unwrap()["k"].waiting.len() < r as usize {
                tokio::task::yield_now().await;
            }
        }
        release_first.send(true).unwrap();
        assert_eq!(first.await.unwrap(), [0]);
        let batches: Vec<Vec<u32>> = futures::future::join_all(later)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        // Capped at three: 1, 2, 3 together, then 4.
        assert_eq!(
            batches,
            [vec![1, 2, 3], vec![1, 2, 3], vec![1, 2, 3], vec![4]]
        );
    }

    #[tokio::test]
    async fn a_request_given_up_before_its_batch_began_is_not_run() {
        let c = Coalescer::<&str, u32, Vec<u32>>::new(8, 1);
        let (release_first, first_released) = tokio::sync::watch::channel(false);
        let ran = Arc::new(Mutex::new(Vec::new()));
        let run = {
            let ran = ran.clone();
            Arc::new(move |b: Vec<u32>| {
                let mut first_released = first_released.clone();
                ran.lock().unwrap().extend(b.iter().copied());
                async move {
                    if b == [0] {
                        first_released.wait_for(|r| *r).await.unwrap();
                    }
                    b.iter().map(|_| b.clone()).collect::<Vec<_>>()
                }
            })
        };
        let submit = |r: u32| {
            let (c, run) = (c.clone(), run.clone());
            tokio::spawn(async move { c.submit("k", r, move |b| run(b)).await.unwrap() })
        };
        let first = submit(0);
        while ran.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let waiting =
            |c: &Coalescer<&str, u32, Vec<u32>>| c.queues.lock().unwrap()["k"].waiting.len();
        let mut later = Vec::new();
        for r in 1..=3 {
            later.push(submit(r));
            while waiting(&c) < r as usize {
                tokio::task::yield_now().await;
            }
        }
        // The second gives up while the first batch is still out.
        later.remove(1).abort();
        while !c.queues.lock().unwrap()["k"].waiting[1].answer.is_closed() {
            tokio::task::yield_now().await;
        }
        release_first.send(true).unwrap();
        assert_eq!(first.await.unwrap(), [0]);
        for task in later {
            assert_eq!(task.await.unwrap(), [1, 3]);
        }
        assert_eq!(*ran.lock().unwrap(), [0, 1, 3]);
        runner_ends(&c).await;
    }

    #[tokio::test]
    async fn a_key_has_at_most_its_runners_at_the_database_and_the_rest_wait_together() {
        let c = Coalescer::<&str, u32, Vec<u32>>::new(3, 2);
        let (release, released) = tokio::sync::watch::channel(false);
        let at_once = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let run = {
            let (at_once, most) = (at_once.clone(), most.clone());
            Arc::new(move |b: Vec<u32>| {
                let mut released = released.clone();
                let (at_once, most) = (at_once.clone(), most.clone());
                async move {
                    let now = at_once.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    if b == [0] || b == [1] {
                        released.wait_for(|r| *r).await.unwrap();
                    }
                    at_once.fetch_sub(1, Ordering::SeqCst);
                    b.iter().map(|_| b.clone()).collect::<Vec<_>>()
                }
            })
        };
        let submit = |r: u32| {
            let (c, run) = (c.clone(), run.clone());
            tokio::spawn(async move { c.submit("k", r, move |b| run(b)).await.unwrap() })
        };
        let waiting = |c: &Coalescer<&str, u32, Vec<u32>>| {
            c.queues
                .lock()
                .unwrap()
                .get("k")
                .map_or(0, |q| q.waiting.len())
        };
        // Two runners take 0 and 1 and stay at the "database"; 2–5 wait for either.
        let mut first = Vec::new();
        for r in 0..2 {
            first.push(submit(r));
            while at_once.load(Ordering::SeqCst) < r as usize + 1 {
                tokio::task::yield_now().await;
            }
        }
        let mut later = Vec::new();
        for r in 2..=5 {
            later.push(submit(r));
            while waiting(&c) < r as usize - 1 {
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(c.queues.lock().unwrap()["k"].runners, 2, "no third runner");
        release.send(true).unwrap();
        for (r, task) in first.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), [r as u32]);
        }
        let batches: Vec<Vec<u32>> = futures::future::join_all(later)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            batches,
            [vec![2, 3, 4], vec![2, 3, 4], vec![2, 3, 4], vec![5]]
        );
        assert_eq!(most.load(Ordering::SeqCst), 2);
        runner_ends(&c).await;
    }

    #[tokio::test]
    async fn keys_batch_apart() {
        let c = Coalescer::<u8, u8, u8>::new(8, 2);
        let (a, b) = tokio::join!(
            c.submit(1, 10, |b: Vec<u8>| async move { b }),
            c.submit(2, 20, |b: Vec<u8>| async move { b })
        );
        assert_eq!((a.unwrap(), b.unwrap()), (10, 20));
    }

    #[tokio::test]
    async fn a_runner_that_panics_loses_its_batch_and_the_key_recovers() {
        let c = Coalescer::<&str, u32, u32>::new(8, 2);
        let lost = c
            .submit("k", 1, |_b: Vec<u32>| async move {
                panic!("the batch's statement code panicked")
            })
            .await;
        assert!(lost.is_err());
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let again = c
            .submit("k", 2, move |b: Vec<u32>| {
                counted.fetch_add(1, Ordering::SeqCst);
                async move { b }
            })
            .await;
        assert_eq!(again.unwrap(), 2);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        runner_ends(&c).await;
    }
}
