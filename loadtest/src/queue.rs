//! Waiting-room load: a pool of queued visitors for status-poll benchmarks, and Redis memory
//! per waiting visitor at a million.

use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;
use marquee_waitroom::{keys, queue};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct SetupOptions {
    /// The gateway.
    #[arg(long, default_value = "http://127.0.0.1:18080")]
    pub url: String,
    #[arg(long, default_value = "demo-operator-token")]
    pub operator_token: String,
    #[arg(long, default_value_t = 5000)]
    pub visitors: usize,
    /// Where to write the tokens, one per line.
    #[arg(long)]
    pub tokens_file: std::path::PathBuf,
}

pub async fn setup(o: SetupOptions) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let event = format!(
        "bench-q-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let res = http
        .post(format!("{}/admin/v1/events", o.url))
        .header("authorization", format!("Bearer {}", o.operator_token))
        .json(
            &json!({"id": event, "name": "Queue benchmark", "opens_at": "2026-01-01T00:00:00Z",
            "state": "open", "rate_per_minute": 1, "max_active": 1, "session_ttl_s": 3600,
            "hold_ttl_s": 600, "min_poll_interval_ms": 0, "abandon_after_s": 86400}),
        )
        .send()
        .await?;
    anyhow::ensure!(res.status() == 201, "create event: {}", res.text().await?);
    // Let the gateway's refresher see the event before the flood.
    let url = Arc::new(format!("{}/v1/queue/{event}/join", o.url));
    let tokens: Vec<String> = futures::stream::iter(0..o.visitors)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let v: Value = http
                    .post(url.as_str())
                    .json(&json!({}))
                    .send()
                    .await?
                    .json()
                    .await?;
                Ok::<_, anyhow::Error>(v["queue_token"].as_str().unwrap_or_default().to_owned())
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    std::fs::write(&o.tokens_file, tokens.join("\n") + "\n")?;
    println!(
        "{}",
        json!({"event": event, "path": format!("/v1/queue/{event}/status"), "join_path": format!("/v1/queue/{event}/join"), "visitors": tokens.len()})
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct MemoryOptions {
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    pub redis: String,
    #[arg(long, default_value_t = 1_000_000)]
    pub visitors: usize,
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no used_memory in INFO"))
}

pub async fn memory(o: MemoryOptions) -> anyhow::Result<()> {
    // A bulk load: pipelines of thousands of scripts may take longer than the default
    // response timeout.
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let mut conn = redis::Client::open(o.redis.as_str())?
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let event = format!(
        "bench-mem-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let abandon = 60;
    let now_ms = Utc::now().timestamp_millis();
    let join = |visitor: &str| {
        queue::Join {
            event: &event,
            visitor,
            before_opening: false,
            now_ms,
            abandon_after_s: abandon,
            pass_through: None,
            fresh: true,
        }
        .invocation()
    };
    let (seen_key, _) = queue::seen_bit(&event, queue::window(now_ms, abandon), queue::OFFSET + 1);
    let before = used_memory(&mut conn).await?;
    let started = std::time::Instant::now();
    let batch = 2000;
    // Load the script once; every call in the pipelines then goes by its hash.
    let _: String = join("loader").load_async(&mut conn).await?;
    for chunk in (0..o.visitors).collect::<Vec<_>>().chunks(batch) {
        let mut pipe = redis::pipe();
        for i in chunk {
            // The gateway's visitor ids: 12 random bytes, base64url (16 characters).
            let id = format!("{:016x}", (*i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))[..16]
                .to_owned();
            pipe.invoke_script(&join(&id));
        }
        pipe.query_async::<()>(&mut conn).await?;
    }
    let joins_per_s = o.visitors as f64 / started.elapsed().as_secs_f64();
    let after = used_memory(&mut conn).await?;
    let (waiting, seen): (u64, u64) = redis::pipe()
        .zcard(keys::waiting(&event))
        .bitcount(&seen_key)
        .query_async(&mut conn)
        .await?;
    let _: () = redis::pipe()
        .del(keys::waiting(&event))
        .del(&seen_key)
        .del(keys::state(&event))
        .query_async(&mut conn)
        .await?;
    println!(
        "{}",
        json!({"benchmark": "queue_memory", "visitors": o.visitors, "waiting": waiting, "seen": seen,
               "bytes_per_visitor": (after.saturating_sub(before)) as f64 / o.visitors as f64,
               "script_joins_per_s": joins_per_s})
    );
    Ok(())
}
