//! The pre-queue shuffle at opening: publish a fresh seed (which freezes the pre-queue), give
//! its visitors places `1..=n` in the order the seed decides, then mark the event shuffled.
//! Re-running after a crash gives the same places, since the seed is already fixed.

use marquee_waitroom::connect::Redis;
use marquee_waitroom::{keys, queue};
use rand::Rng;
use redis::AsyncCommands;

const BATCH: usize = 10_000;

/// Returns the number of pre-queue visitors placed.
pub async fn run(redis: &mut Redis, event: &str, abandon_after_s: u32) -> redis::RedisResult<u64> {
    let fresh: [u8; 16] = rand::rng().random();
    let fresh: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
    let seed = queue::freeze_prequeue(redis, event, &fresh).await?;
    let mut visitors: Vec<String> = Vec::new();
    let mut iter: redis::AsyncIter<String> = redis.sscan(keys::prequeue(event)).await?;
    while let Some(v) = iter.next_item().await {
        visitors.push(v?);
    }
    drop(iter);
    let order = queue::shuffle_order(&seed, visitors);
    let total = order.len() as u64;
    for (chunk_no, chunk) in order.chunks(BATCH).enumerate() {
        let items: Vec<(u64, &str)> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| ((chunk_no * BATCH + i + 1) as u64, v.as_str()))
            .collect();
        let _: () = redis.zadd_multiple(keys::waiting(event), &items).await?;
    }
    // Everyone just placed counts as present now: the clock for dropping fans who left starts
    // at opening, not when they joined the pre-queue.
    let window = queue::window(chrono::Utc::now().timestamp_millis(), abandon_after_s);
    let (present, _) = queue::seen_bit(event, window, 1);
    let ones = vec![0xffu8; (total as usize).div_ceil(8) + 1];
    let _: () = redis::pipe()
        .cmd("SETRANGE")
        .arg(&present)
        .arg(0)
        .arg(ones)
        .ignore()
        .pexpire(&present, queue::window_ttl_ms(abandon_after_s) as i64)
        .ignore()
        .query_async(redis)
        .await?;
    let _: () = redis::pipe()
        .atomic()
        .hset(keys::state(event), "prequeue_total", total)
        .hset(keys::state(event), "shuffled", 1)
        .del(keys::prequeue(event))
        .query_async(redis)
        .await?;
    tracing::info!(event, total, seed = %seed, "pre-queue shuffled");
    Ok(total)
}
