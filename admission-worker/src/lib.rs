//! admission-worker: moves visitors from each event's waiting line to its active set at the
//! operator's rate, never above the active cap, in queue order; shuffles the pre-queue once
//! at opening; expires sessions and drops visitors who stopped polling. A Redis lease per
//! event, checked inside the admit script itself, means any number of replicas admit once.

pub mod metrics;
pub mod shuffle;
pub mod startup;
pub mod tick;

pub use startup::Application;
