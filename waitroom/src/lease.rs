//! Which admission-worker replica admits for an event (`wr:{event}:lease`): one at a time,
//! so several replicas never admit twice. The admit script checks the lease itself too.

use std::sync::LazyLock;

use redis::Script;

use crate::keys;

static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/lease.lua")));
static GIVE_BACK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/release_lease.lua")));

/// Take or renew the lease for `ttl_ms` (`scripts/lease.lua`); true when `worker` holds it.
pub async fn take<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    event: &str,
    worker: &str,
    ttl_ms: u64,
) -> redis::RedisResult<bool> {
    let held: i64 = TAKE
        .key(keys::lease(event))
        .arg(worker)
        .arg(ttl_ms)
        .invoke_async(redis)
        .await?;
    Ok(held == 1)
}

/// Hand the lease back on a clean stop, so another replica takes over at once
/// (`scripts/release_lease.lua`); true when `worker` held it.
pub async fn give_back<C: redis::aio::ConnectionLike>(
    redis: &mut C,
    event: &str,
    worker: &str,
) -> redis::RedisResult<bool> {
    let released: i64 = GIVE_BACK
        .key(keys::lease(event))
        .arg(worker)
        .invoke_async(redis)
        .await?;
    Ok(released == 1)
}
