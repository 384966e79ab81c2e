//! admission-worker: moves visitors from each event's waiting line to its active set at the
//! operator's rate, never above the active cap, in queue order; shuffles the pre-queue once
//! at opening; expires sessions and drops visitors who stopped polling. A Redis lease per
//! event, checked inside the admit script itself, means any number of replicas admit once.
//!
//! Map. `startup` runs the tick loop and a small health and metrics server; each tick
//! (`tick`) takes every listed event's lease and runs `marquee_waitroom::queue::admit` once,
//! after the pre-queue `shuffle` at opening, and retires a closed event once no admitted fan
//! holds a slot (`tick::retired`); `metrics` exports what each tick did, for listed events.

pub mod metrics;
pub mod shuffle;
pub mod startup;
pub mod tick;

pub use startup::Application;
