//! Payments through Stripe PaymentIntents: checkout, confirm, webhooks, refunds, and the
//! reconciliation job that re-reads what was left pending.

pub mod breaker;
pub mod reconcile;
pub mod routes;
pub mod settle;
pub mod stripe;
pub mod webhook;
