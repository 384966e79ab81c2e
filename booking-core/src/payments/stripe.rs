//! Stripe through async-stripe, with a per-call timeout and a circuit breaker. The same code
//! talks to Stripe or to the project's simulator (`[stripe] api_base`).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use marquee_platform::Settings;
use stripe::{ClientBuilder, RequestStrategy, StripeRequest};
use stripe_core::payment_intent::{
    CancelPaymentIntent, CreatePaymentIntent, RetrievePaymentIntent,
};
use stripe_core::refund::CreateRefund;
use stripe_core::{PaymentIntent, PaymentIntentStatus};
use tracing::Instrument;

use super::breaker::Breaker;

/// Why a Stripe call did not give an answer we can act on.
#[derive(Debug, thiserror::Error)]
pub enum StripeFailure {
    /// Stripe is unreachable, slow, failing, or the breaker is open: retry later.
    #[error("Stripe unavailable: {reason}")]
    Unavailable { reason: String, retry_after_s: u64 },
    /// Stripe refused the request (4xx): retrying the same request will not help.
    #[error("Stripe refused the request: {0}")]
    Refused(String),
}

/// The parts of a PaymentIntent Marquee acts on.
#[derive(Debug, Clone)]
pub struct Intent {
    pub id: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub client_secret: String,
    pub metadata: HashMap<String, String>,
}

impl From<PaymentIntent> for Intent {
    fn from(pi: PaymentIntent) -> Self {
        Self {
            id: pi.id.to_string(),
            status: status_str(&pi.status).to_owned(),
            amount: pi.amount,
            currency: pi.currency.to_string(),
            client_secret: pi.client_secret.unwrap_or_default(),
            metadata: pi.metadata,
        }
    }
}

fn status_str(s: &PaymentIntentStatus) -> &'static str {
    match s {
        PaymentIntentStatus::Canceled => "canceled",
        PaymentIntentStatus::Processing => "processing",
        PaymentIntentStatus::RequiresAction => "requires_action",
        PaymentIntentStatus::RequiresCapture => "requires_capture",
        PaymentIntentStatus::RequiresConfirmation => "requires_confirmation",
        PaymentIntentStatus::RequiresPaymentMethod => "requires_payment_method",
        PaymentIntentStatus::Succeeded => "succeeded",
        _ => "unknown",
    }
}

pub struct StripeGateway {
    client: stripe::Client,
    breaker: Breaker,
    timeout: Duration,
    open_s: u64,
}

impl StripeGateway {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let s = &settings.stripe;
        let client = ClientBuilder::new(s.secret_key.expose())
            .url(s.api_base.trim_end_matches('/'))
            .build()?;
        Ok(Self {
            client,
            breaker: Breaker::new(s.breaker_failures, Duration::from_secs(s.breaker_open_s)),
            timeout: Duration::from_millis(s.request_timeout_ms),
            open_s: s.breaker_open_s,
        })
    }

    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Run one call under the breaker and the timeout.
    async fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, stripe::StripeError>>,
    ) -> Result<T, StripeFailure> {
        if let Err(open) = self.breaker.admit() {
            return Err(StripeFailure::Unavailable {
                reason: "circuit breaker open".into(),
                retry_after_s: open.0,
            });
        }
        let unavailable = |reason: String| StripeFailure::Unavailable {
            reason,
            retry_after_s: self.open_s.clamp(1, 5),
        };
        let span = tracing::info_span!("stripe call", otel.kind = "client", call = what);
        match tokio::time::timeout(self.timeout, fut)
            .instrument(span)
            .await
        {
            Err(_) => {
                self.breaker.failure();
                Err(unavailable(format!("{what} timed out")))
            }
            Ok(Ok(v)) => {
                self.breaker.success();
                Ok(v)
            }
            Ok(Err(stripe::StripeError::Stripe(e, status)))
                if (400..500).contains(&status) && status != 429 =>
            {
                // Stripe answered: it is up, the request was wrong.
                self.breaker.success();
                Err(StripeFailure::Refused(format!(
                    "{what}: {status} {:?}",
                    e.message
                )))
            }
            Ok(Err(e)) => {
                self.breaker.failure();
                tracing::warn!(error = %e, "{what} failed");
                Err(unavailable(format!("{what}: {e}")))
            }
        }
    }

    /// A new PaymentIntent. The idempotency key names the booking and the attempt, so a retry
    /// of the same attempt never charges twice, and a retry after a decline is a new attempt.
    pub async fn create_intent(
        &self,
        booking_id: &str,
        attempt: i32,
        amount: i64,
        currency: &str,
        email: &str,
        metadata: HashMap<String, String>,
    ) -> Result<Intent, StripeFailure> {
        let currency = stripe_types::Currency::from_str(currency)
            .map_err(|_| StripeFailure::Refused(format!("unknown currency {currency}")))?;
        let key = stripe::IdempotencyKey::new(format!("marquee-{booking_id}-attempt-{attempt}"))
            .map_err(|e| StripeFailure::Refused(e.to_string()))?;
        let req = CreatePaymentIntent::new(amount, currency)
            .metadata(metadata)
            .receipt_email(email)
            .description(format!("Marquee booking {booking_id}"));
        let pi = self
            .call(
                "create PaymentIntent",
                req.customize()
                    .request_strategy(RequestStrategy::Idempotent(key))
                    .send(&self.client),
            )
            .await?;
        Ok(pi.into())
    }

    pub async fn retrieve(&self, id: &str) -> Result<Intent, StripeFailure> {
        let req = RetrievePaymentIntent::new(id);
        Ok(self
            .call("retrieve PaymentIntent", req.send(&self.client))
            .await?
            .into())
    }

    pub async fn cancel(&self, id: &str) -> Result<Intent, StripeFailure> {
        let req = CancelPaymentIntent::new(id);
        Ok(self
            .call("cancel PaymentIntent", req.send(&self.client))
            .await?
            .into())
    }

    /// Refund a PaymentIntent in full; at most once per PaymentIntent, however often asked.
    pub async fn refund(
        &self,
        payment_intent: &str,
        reason: &str,
    ) -> Result<String, StripeFailure> {
        let key = stripe::IdempotencyKey::new(format!("marquee-refund-{payment_intent}"))
            .map_err(|e| StripeFailure::Refused(e.to_string()))?;
        let req = CreateRefund::new()
            .payment_intent(payment_intent)
            .metadata(HashMap::from([("reason".to_owned(), reason.to_owned())]));
        let refund = self
            .call(
                "create Refund",
                req.customize()
                    .request_strategy(RequestStrategy::Idempotent(key))
                    .send(&self.client),
            )
            .await?;
        Ok(refund.id.to_string())
    }
}
