//! The whole system on a Redis Cluster (`[redis] cluster = true`; three masters on
//! 127.0.0.1:7101-7103 that `scripts/redis-cluster.sh` starts): with one event on each master,
//! fans join, are seen polling, are admitted by the worker and reserve through the gateway, and
//! the operator reads the queue's figures. Every script and pipeline of the services must stay
//! on one slot for this to pass: one that spans events is refused there with CROSSSLOT.

use std::time::Duration;

use marquee_e2e::stack;
use marquee_testkit::{unique, wait_for};
use marquee_waitroom::{keys, queue};
use redis::AsyncCommands;
use serde_json::{Value, json};

/// Event ids whose keys land one on each of the cluster's three masters.
async fn ids_on_every_shard(redis: &mut marquee_waitroom::connect::Redis) -> Vec<String> {
    let mut shards = std::collections::BTreeMap::new();
    while shards.len() < 3 {
        let id = unique("ev");
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(keys::state(&id))
            .query_async(redis)
            .await
            .expect("a Redis Cluster (bash scripts/redis-cluster.sh starts one)");
        // `redis-cli --cluster create` gives three masters these ranges.
        let shard = match slot {
            0..=5460 => 0,
            5461..=10922 => 1,
            _ => 2,
        };
        shards.entry(shard).or_insert(id);
    }
    shards.into_values().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fans_wait_are_admitted_and_reserve_with_every_event_on_its_own_cluster_shard() {
    let mut s = stack(1, |src| {
        src.set("redis.url", marquee_testkit::redis_cluster_url())
            .set("redis.cluster", true)
            .set("worker.tick_ms", 100)
    })
    .await;
    let ids = ids_on_every_shard(&mut s.redis).await;
    let mut events = Vec::new();
    for id in &ids {
        let event = s.event(json!({"id": id, "state": "paused"})).await;
        let show = s.show(&event, 1, 4).await;
        let (fan, joined) = s.join(&event, None).await;
        assert_eq!(joined["state"], "paused", "{joined}");
        events.push((event, show, fan));
    }

    // Each fan is seen polling: the gateway's once-a-second presence write reaches every
    // event's shard (it failed as a whole when one pipeline carried several events). Joining
    // marked them seen; that mark is wiped so only the polls' write can restore it.
    let now = chrono::Utc::now().timestamp_millis();
    for (event, _, _) in &events {
        for w in [queue::window(now, 60), queue::window(now, 60) - 1] {
            let _: () = s.redis.del(keys::seen(event, w, false)).await.unwrap();
        }
    }
    for (event, _, fan) in &events {
        let v: Value = s.status(event, fan).await.json().await.unwrap();
        assert_eq!(v["state"], "paused", "{v}");
    }
    let redis = s.redis.clone();
    for (event, _, _) in &events {
        wait_for("the fan's presence bit", Duration::from_secs(10), || {
            let mut redis = redis.clone();
            async move {
                let window = queue::window(chrono::Utc::now().timestamp_millis(), 60);
                for w in [window, window - 1] {
                    let key = keys::seen(event, w, false);
                    let seen: bool = redis.exists(&key).await.unwrap();
                    if seen {
                        return Some(());
                    }
                }
                None
            }
        })
        .await;
    }

    // Opened, the worker admits each fan; each reserves a seat through the gateway.
    for (event, show, fan) in &mut events {
        s.patch_event(event, json!({"state": "open"})).await;
        let token = s.wait_admitted(event, fan, Duration::from_secs(15)).await;
        let res = s
            .reserve(&token, None, &json!({"show_id": show, "seat_ids": ["A-1"]}))
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

        // The operator's view reads the queue's figures from the event's shard.
        let v = s.admin_get(&format!("/admin/v1/events/{event}")).await;
        assert_eq!(
            (v["admitted_total"].as_u64(), v["held_seats"].as_i64()),
            (Some(1), Some(1)),
            "{v}"
        );
        assert_eq!(s.admitted_total(event).await, 1);
    }
}

/// The pre-queue shuffle at opening (the freeze script, then the worker's pipelines that place
/// everyone and mark them present) on each of the three masters: every early fan gets a place,
/// 1 to 5, in the order the published seed replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prequeue_is_shuffled_on_every_cluster_shard() {
    let mut s = stack(1, |src| {
        src.set("redis.url", marquee_testkit::redis_cluster_url())
            .set("redis.cluster", true)
            .set("worker.tick_ms", 50)
    })
    .await;
    let opens = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    for id in ids_on_every_shard(&mut s.redis).await {
        let event = s
            .event(json!({"id": id, "state": "prequeue", "opens_at": opens, "rate_per_minute": 1}))
            .await;
        let mut early = Vec::new();
        for _ in 0..5 {
            let (fan, joined) = s.join(&event, None).await;
            assert_eq!(joined["state"], "prequeue", "{joined}");
            early.push(fan);
        }
        s.patch_event(&event, json!({"state": "open"})).await;
        let (mut placed, mut seed) = (Vec::new(), String::new());
        for fan in &early {
            let v = wait_for(
                "a place after the shuffle",
                Duration::from_secs(10),
                || async {
                    let v: Value = s.status(&event, fan).await.json().await.unwrap();
                    (v["state"] == "waiting").then_some(v)
                },
            )
            .await;
            placed.push((v["position"].as_u64().unwrap(), fan.visitor_id.clone()));
            seed = v["shuffle_seed"].as_str().unwrap().to_owned();
        }
        placed.sort();
        let arrival = early.iter().map(|f| f.visitor_id.clone()).collect();
        let by_place: Vec<String> = placed.iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(
            by_place,
            marquee_waitroom::queue::shuffle_order(&seed, arrival)
        );
        let places: Vec<u64> = placed.iter().map(|(p, _)| *p).collect();
        assert_eq!(places, [1, 2, 3, 4, 5], "{event}");
    }
}
