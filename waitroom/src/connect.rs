//! The Redis connection every service uses: reconnecting, with bounded connect and response
//! times so an outage turns into quick errors (503s), not hung requests.

use std::time::Duration;

pub async fn redis(url: &str) -> redis::RedisResult<redis::aio::ConnectionManager> {
    let client = redis::Client::open(url)?;
    redis::aio::ConnectionManager::new_with_config(
        client,
        redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2),
    )
    .await
}
