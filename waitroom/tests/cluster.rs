//! The waiting room's keys and scripts on a real Redis Cluster (three masters on
//! 127.0.0.1:7101-7103, started by `scripts/redis-cluster.sh`, which `make test` runs; or
//! `MARQUEE_TEST_REDIS_CLUSTER`, comma-separated node URLs). Every key one script touches
//! carries its event's hash tag, so each script runs whole on the shard that owns the event:
//! a key outside the tag would fail here with CROSSSLOT.

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

use marquee_waitroom::queue::{self, OFFSET};
use marquee_waitroom::{keys, live};

async fn cluster() -> ClusterConnection {
    let nodes = std::env::var("MARQUEE_TEST_REDIS_CLUSTER")
        .unwrap_or_else(|_| "redis://127.0.0.1:7101/,redis://127.0.0.1:7102/".into());
    ClusterClient::new(nodes.split(',').collect::<Vec<_>>())
        .expect("cluster node URLs")
        .get_async_connection()
        .await
        .expect("a Redis Cluster for the tests (bash scripts/redis-cluster.sh starts one)")
}

/// One event on each of the cluster's three masters, so every shard runs the scripts.
async fn events_on_every_shard(conn: &mut ClusterConnection) -> Vec<String> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut shards = std::collections::BTreeMap::new();
    for i in 0.. {
        let event = format!("cluster-{}-{i}", &run[..8]);
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(keys::state(&event))
            .query_async(conn)
            .await
            .unwrap();
        // `redis-cli --cluster create` gives three masters these ranges.
        let shard = match slot {
            0..=5460 => 0,
            5461..=10922 => 1,
            _ => 2,
        };
        shards.entry(shard).or_insert(event);
        if shards.len() == 3 {
            break;
        }
    }
    shards.into_values().collect()
}

#[tokio::test]
async fn an_events_scripts_run_whole_on_a_real_cluster() {
    let mut conn = cluster().await;
    let events = events_on_every_shard(&mut conn).await;
    let now = chrono::Utc::now().timestamp_millis();
    for event in &events {
        // Live settings, as booking-core publishes them.
        let written: i64 = live::publish_script()
            .key(keys::cfg(event))
            .arg(r#"{"revision": 2}"#)
            .arg(2)
            .invoke_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(written, 1, "{event}");

        // Three fans join, in order, as the gateway joins them.
        for (i, visitor) in ["a", "b", "c"].into_iter().enumerate() {
            let joined = queue::join(
                &mut conn,
                &queue::Join {
                    event,
                    visitor,
                    before_opening: false,
                    now_ms: now,
                    abandon_after_s: 60,
                    pass_through: None,
                    fresh: false,
                },
            )
            .await
            .unwrap();
            assert_eq!(joined, queue::Joined::Waiting(OFFSET + 1 + i as u64));
        }

        // A worker takes the lease and ticks twice, a second apart: the first tick starts
        // the clock, the second admits all three (6,000 a minute, cap 10).
        let held = marquee_waitroom::lease::take(&mut conn, event, "worker-1", 5_000)
            .await
            .unwrap();
        assert!(held);
        let mut admitted = Vec::new();
        for at in [now, now + 1_000] {
            let tick = queue::Tick {
                event,
                worker_id: "worker-1",
                now_ms: at,
                rate_per_minute: 6_000,
                max_active: 10,
                session_ttl_ms: 600_000,
                idle_ms: 180_000,
                max_elapsed_ms: 5_000,
                abandon_after_s: 60,
                admitting: true,
                history_interval_ms: 10_000,
            };
            let queue::Admitted {
                admitted: n,
                active,
                waiting,
                dropped,
                ..
            } = queue::admit(&mut conn, &tick).await.unwrap();
            admitted.push((n, active, waiting, dropped));
        }
        assert_eq!(admitted, [(0, 0, 3, 0), (3, 3, 0, 0)], "{event}");
    }
}
