//! The Redis connection every service uses: reconnecting, with bounded connect and response
//! times so an outage turns into quick errors (503s), not hung requests. One Redis node, or a
//! Redis Cluster (`[redis] cluster = true`): every key of an event carries the event's hash
//! tag (`wr:{event}:…`), so each script and each pipeline the services send stays on one
//! slot and runs unchanged on either.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const RETRIES: u32 = 2;

/// A connection to one Redis node or to a Redis Cluster; cheap to clone (both multiplex one
/// connection per node).
#[derive(Clone)]
pub enum Redis {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Connects to the node at `url`, or, with `cluster`, to the cluster that the comma-separated
/// seed nodes in `url` belong to (the others are discovered).
pub async fn redis(url: &str, cluster: bool) -> RedisResult<Redis> {
    if cluster {
        let seeds: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let client = redis::cluster::ClusterClient::builder(seeds)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(RETRIES)
            .build()?;
        return Ok(Redis::Cluster(client.get_async_connection().await?));
    }
    let client = redis::Client::open(url)?;
    let manager = ConnectionManager::new_with_config(
        client,
        redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RETRIES as usize),
    )
    .await?;
    Ok(Redis::Node(manager))
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Redis::Node(c) => c.req_packed_command(cmd),
            Redis::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Redis::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Redis::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Redis::Node(c) => c.get_db(),
            Redis::Cluster(c) => c.get_db(),
        }
    }
}
