use clap::Parser;

/// A Stripe-compatible simulator: payment intents, Stripe's test payment methods, refunds,
/// Stripe's error shape, and webhooks signed exactly as Stripe signs them.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[arg(long, env = "STRIPE_SIM_LISTEN", default_value = "127.0.0.1:12111")]
    listen: std::net::SocketAddr,
    /// Where to deliver webhooks (repeat for several endpoints).
    #[arg(
        long,
        env = "STRIPE_SIM_WEBHOOK_URL",
        default_value = "http://127.0.0.1:8080/v1/payments/stripe/webhook"
    )]
    webhook_url: Vec<String>,
    /// The endpoint signing secret (`whsec_…`).
    #[arg(
        long,
        env = "STRIPE_SIM_WEBHOOK_SECRET",
        default_value = "whsec_demo_marquee"
    )]
    webhook_secret: String,
    /// Secret keys accepted (comma-separated); empty accepts any `sk_test_…`.
    #[arg(long, env = "STRIPE_SIM_SECRET_KEYS", default_value = "")]
    secret_keys: String,
    /// Export spans (webhook deliveries) over OTLP/HTTP to this collector, as the services'
    /// `[telemetry] otlp_endpoint` does; empty: off.
    #[arg(long, env = "STRIPE_SIM_OTLP_ENDPOINT", default_value = "")]
    otlp_endpoint: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = marquee_platform::telemetry::init(
        &marquee_platform::config::LogSettings {
            format: marquee_platform::config::LogFormat::Pretty,
            filter: "info".into(),
        },
        &marquee_platform::telemetry::TelemetrySettings {
            otlp_endpoint: args.otlp_endpoint.clone(),
            ..Default::default()
        },
        "stripe-sim",
    );
    let sim = stripe_sim::Simulator::new(stripe_sim::Config {
        webhook_urls: args.webhook_url,
        webhook_secret: args.webhook_secret,
        secret_keys: args
            .secret_keys
            .split(',')
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
    });
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %args.listen, "stripe simulator listening");
    axum::serve(listener, sim.router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
