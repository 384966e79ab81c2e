//! The admit script the worker runs each tick, driven with a synthetic clock against the real
//! Redis, so the rate and the cap are checked exactly rather than by sampling the wall clock.

use marquee_waitroom::connect::Redis;
use marquee_waitroom::queue::{self, Admitted, Join, Joined, Tick};
use marquee_waitroom::{keys, lease};
use redis::AsyncCommands;

const WORKER: &str = "worker-under-test";
/// A moment well inside one presence window (windows are `abandon_after_s` long).
const T0: i64 = 1_800_000_000_000;

async fn redis() -> Redis {
    marquee_waitroom::connect::redis(&marquee_testkit::redis_url(), false, None)
        .await
        .expect("Redis")
}

/// An event whose queue holds `n` visitors (`v0`, `v1`, …) who joined at `T0` and so were
/// seen polling; the worker holds its lease.
async fn queue_of(redis: &mut Redis, n: usize) -> String {
    let event = marquee_testkit::unique("admit");
    for i in 0..n {
        let joined = queue::join(
            redis,
            &Join {
                event: &event,
                visitor: &format!("v{i}"),
                before_opening: false,
                now_ms: T0,
                abandon_after_s: 3600,
                pass_through: None,
                fresh: false,
            },
        )
        .await
        .unwrap();
        assert_eq!(joined, Joined::Waiting(queue::OFFSET + 1 + i as u64));
    }
    assert!(lease::take(redis, &event, WORKER, 60_000).await.unwrap());
    event
}

fn tick(event: &str, now_ms: i64, rate_per_minute: u32, max_active: u32) -> Tick<'_> {
    Tick {
        event,
        worker_id: WORKER,
        now_ms,
        rate_per_minute,
        max_active,
        session_ttl_ms: 600_000,
        idle_ms: 180_000,
        max_elapsed_ms: 1_000,
        abandon_after_s: 3600,
        admitting: true,
        history_interval_ms: 10_000,
    }
}

#[tokio::test]
async fn admits_exactly_at_the_rate() {
    let mut redis = redis().await;
    let event = queue_of(&mut redis, 500).await;
    // 600 a minute is 10 a second: 2.5 per 250 ms tick, the half carried over.
    let mut total = 0;
    for n in 0..=40i64 {
        let at = T0 + n * 250;
        let a = queue::admit(&mut redis, &tick(&event, at, 600, 10_000))
            .await
            .unwrap();
        total += a.admitted;
        assert_eq!(total, (n as u64 * 10) / 4, "by tick {n} ({} ms)", n * 250);
        assert_eq!(a.active, total);
        assert_eq!(a.waiting, 500 - total);
        let passed = if total == 0 { 0 } else { queue::OFFSET + total };
        assert_eq!(a.watermark, passed, "the last place admitted");
    }
    assert_eq!(total, 100, "10 s at 10 a second");
}

#[tokio::test]
async fn never_admits_above_the_cap_and_refills_as_slots_free() {
    let mut redis = redis().await;
    let event = queue_of(&mut redis, 100).await;
    let mut t = tick(&event, T0, 60_000, 15);
    t.idle_ms = 5_000;
    for n in 0..20 {
        t.now_ms = T0 + n * 250;
        let a = queue::admit(&mut redis, &t).await.unwrap();
        assert!(a.active <= 15, "tick {n}: {a:?}");
    }
    let active: u64 = redis.zcard(keys::active(&event)).await.unwrap();
    assert_eq!(active, 15, "the cap is full");
    // The slots were given for the idle time; past it they free themselves and the next 15
    // come in, no more.
    t.now_ms = T0 + 5_000 + 250;
    let a = queue::admit(&mut redis, &t).await.unwrap();
    assert_eq!((a.admitted, a.active), (15, 15));
    let total: u64 = redis
        .hget(keys::state(&event), keys::field::ADMITTED_TOTAL)
        .await
        .unwrap();
    assert_eq!(total, 30);
}

#[tokio::test]
async fn slots_last_the_idle_time_and_sessions_record_the_admission() {
    let mut redis = redis().await;
    let event = queue_of(&mut redis, 3).await;
    let mut t = tick(&event, T0, 60_000, 10);
    queue::admit(&mut redis, &t).await.unwrap();
    t.now_ms = T0 + 1_000;
    let a = queue::admit(&mut redis, &t).await.unwrap();
    assert_eq!(a.admitted, 3);
    let slot: f64 = redis.zscore(keys::active(&event), "v0").await.unwrap();
    let admitted_at: f64 = redis.zscore(keys::sessions(&event), "v0").await.unwrap();
    assert_eq!(
        slot as i64,
        T0 + 1_000 + 180_000,
        "the idle time, shorter than the session"
    );
    assert_eq!(admitted_at as i64, T0 + 1_000);
    // A session shorter than the idle time bounds the slot.
    let other = queue_of(&mut redis, 1).await;
    let mut t = tick(&other, T0, 60_000, 10);
    t.session_ttl_ms = 30_000;
    queue::admit(&mut redis, &t).await.unwrap();
    t.now_ms = T0 + 1_000;
    queue::admit(&mut redis, &t).await.unwrap();
    let slot: f64 = redis.zscore(keys::active(&other), "v0").await.unwrap();
    assert_eq!(slot as i64, T0 + 1_000 + 30_000);
}

#[tokio::test]
async fn an_outage_banks_no_burst_and_a_paused_queue_admits_nobody() {
    let mut redis = redis().await;
    let event = queue_of(&mut redis, 200).await;
    let mut t = tick(&event, T0, 600, 10_000);
    queue::admit(&mut redis, &t).await.unwrap();
    // A minute without ticks counts as `max_elapsed_ms` (1 s here): 10, not 600.
    t.now_ms = T0 + 60_000;
    let a = queue::admit(&mut redis, &t).await.unwrap();
    assert_eq!(a.admitted, 10);
    // Not admitting (paused, sold out): the clock runs, nobody comes in, nothing is banked.
    t.admitting = false;
    for n in 1..=8 {
        t.now_ms = T0 + 60_000 + n * 250;
        assert_eq!(queue::admit(&mut redis, &t).await.unwrap().admitted, 0);
    }
    t.admitting = true;
    t.now_ms += 250;
    let a = queue::admit(&mut redis, &t).await.unwrap();
    assert!(
        a.admitted <= 3,
        "at most one tick's worth and the carry: {a:?}"
    );
}

#[tokio::test]
async fn visitors_who_stopped_polling_are_dropped_at_their_turn() {
    let mut redis = redis().await;
    let event = marquee_testkit::unique("admit");
    for (visitor, at) in [("early", T0), ("gone", T0), ("late", T0)] {
        queue::join(
            &mut redis,
            &Join {
                event: &event,
                visitor,
                before_opening: false,
                now_ms: at,
                abandon_after_s: 10,
                pass_through: None,
                fresh: true,
            },
        )
        .await
        .unwrap();
    }
    assert!(
        lease::take(&mut redis, &event, WORKER, 60_000)
            .await
            .unwrap()
    );
    // Two windows later only those seen since are present: mark "early" and "late" as seen.
    let later = T0 + 20_000;
    for place in [queue::OFFSET + 1, queue::OFFSET + 3] {
        let (key, bit) = queue::seen_bit(&event, queue::window(later, 10), place);
        let _: () = redis.setbit(&key, bit as usize, true).await.unwrap();
    }
    let mut t = tick(&event, later - 1_000, 60_000, 10);
    t.abandon_after_s = 10;
    queue::admit(&mut redis, &t).await.unwrap();
    t.now_ms = later;
    let a: Admitted = queue::admit(&mut redis, &t).await.unwrap();
    assert_eq!((a.admitted, a.dropped, a.waiting), (2, 1, 0));
    let gone: Option<f64> = redis.zscore(keys::active(&event), "gone").await.unwrap();
    assert_eq!(gone, None);
}

/// `visitor`'s join of `event` at `T0`, with a 10 s presence window and no pass-through.
fn join_at<'a>(event: &'a str, visitor: &'a str, before_opening: bool, fresh: bool) -> Join<'a> {
    Join {
        event,
        visitor,
        before_opening,
        now_ms: T0,
        abandon_after_s: 10,
        pass_through: None,
        fresh,
    }
}

/// A join with an id that may have joined before finds its place again; one with an id minted
/// for it skips those lookups and otherwise joins as any other: the next place, marked seen.
#[tokio::test]
async fn joining_again_keeps_the_place_and_a_minted_id_joins_as_any_other() {
    let mut redis = redis().await;
    let event = marquee_testkit::unique("admit");
    let join = |visitor, before_opening, fresh| join_at(&event, visitor, before_opening, fresh);
    let first = queue::join(&mut redis, &join("minted", false, true)).await;
    assert_eq!(first.unwrap(), Joined::Waiting(queue::OFFSET + 1));
    let second = queue::join(&mut redis, &join("known", false, false)).await;
    assert_eq!(second.unwrap(), Joined::Waiting(queue::OFFSET + 2));
    for visitor in ["minted", "known"] {
        let again = queue::join(&mut redis, &join(visitor, false, false)).await;
        let place = if visitor == "minted" { 1 } else { 2 };
        assert_eq!(again.unwrap(), Joined::Waiting(queue::OFFSET + place));
    }
    let waiting: u64 = redis.zcard(keys::waiting(&event)).await.unwrap();
    assert_eq!(waiting, 2);
    for place in [queue::OFFSET + 1, queue::OFFSET + 2] {
        let (key, bit) = queue::seen_bit(&event, queue::window(T0, 10), place);
        let seen: bool = redis.getbit(&key, bit as usize).await.unwrap();
        assert!(seen, "place {place} marked seen");
    }

    // Before opening: to the pre-queue, once, whichever way.
    let early = marquee_testkit::unique("admit");
    for fresh in [true, false] {
        let joined = queue::join(
            &mut redis,
            &Join {
                event: &early,
                ..join("early", true, fresh)
            },
        )
        .await;
        assert_eq!(joined.unwrap(), Joined::Prequeue);
    }
    let prequeue: u64 = redis.scard(keys::prequeue(&early)).await.unwrap();
    assert_eq!(prequeue, 1);
}

/// Minted visitors joining together get what each would joining alone, one after another:
/// the next places in order (each marked seen), after a lone join's; the pre-queue before the
/// shuffle. Together is refused for ids that may have joined before, or with pass-through.
#[tokio::test]
async fn visitors_joining_together_get_what_each_would_alone_in_order() {
    let mut redis = redis().await;
    let event = marquee_testkit::unique("admit");
    let join = |visitor, before_opening| join_at(&event, visitor, before_opening, true);
    let alone = queue::join(&mut redis, &join("a", false)).await.unwrap();
    assert_eq!(alone, Joined::Waiting(queue::OFFSET + 1));
    let together = queue::join_together(&mut redis, &join("b", false), &["c", "d"]).await;
    let places: Vec<u64> = (2..=4).map(|p| queue::OFFSET + p).collect();
    assert_eq!(
        together.unwrap(),
        places
            .iter()
            .map(|&p| Joined::Waiting(p))
            .collect::<Vec<_>>()
    );
    for (visitor, place) in ["b", "c", "d"].into_iter().zip(&places) {
        let at: Option<u64> = redis.zscore(keys::waiting(&event), visitor).await.unwrap();
        assert_eq!(at, Some(*place), "{visitor}");
        let (key, bit) = queue::seen_bit(&event, queue::window(T0, 10), *place);
        assert!(redis.getbit::<_, bool>(&key, bit as usize).await.unwrap());
        let ttl: i64 = redis.pttl(&key).await.unwrap();
        assert!(ttl > 0, "the bitmap lapses");
    }
    let next = queue::join(&mut redis, &join("e", false)).await.unwrap();
    assert_eq!(next, Joined::Waiting(queue::OFFSET + 5));

    let early = marquee_testkit::unique("admit");
    let before = Join {
        event: &early,
        ..join("f", true)
    };
    let together = queue::join_together(&mut redis, &before, &["g"]).await;
    assert_eq!(together.unwrap(), vec![Joined::Prequeue, Joined::Prequeue]);
    let prequeue: u64 = redis.scard(keys::prequeue(&early)).await.unwrap();
    assert_eq!(prequeue, 2);

    let known = Join {
        fresh: false,
        ..join("h", false)
    };
    assert!(
        queue::join_together(&mut redis, &known, &["i"])
            .await
            .is_err()
    );
    let passing = Join {
        pass_through: Some(queue::Budget {
            rate_per_minute: 60,
            max_active: 10,
            session_ttl_ms: 60_000,
            idle_ms: 60_000,
            max_elapsed_ms: 1_000,
        }),
        ..join("j", false)
    };
    assert!(
        queue::join_together(&mut redis, &passing, &["k"])
            .await
            .is_err()
    );
    let waiting: u64 = redis.zcard(keys::waiting(&event)).await.unwrap();
    assert_eq!(waiting, 5, "nothing joined by the refused calls");
}

#[tokio::test]
async fn only_the_lease_holder_admits() {
    let mut redis = redis().await;
    let event = queue_of(&mut redis, 5).await;
    let mut t = tick(&event, T0, 60_000, 10);
    t.worker_id = "another-replica";
    let err = queue::admit(&mut redis, &t).await.unwrap_err();
    assert!(err.to_string().contains("NOTLEADER"), "{err}");
    let active: u64 = redis.zcard(keys::active(&event)).await.unwrap();
    assert_eq!(active, 0);
}
