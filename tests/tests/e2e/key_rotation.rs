//! Keys rotated mid-sale (issue 17): two gateways and booking-core pick up an added admission
//! key and a retired one from the keys folder without a restart, within `keys_reload_s` (1 s
//! in the test configuration); a rolling change loses no admitted fan; a retired key's tokens
//! stop working; the queue-token secret rotates with the previous one still accepted.

use std::time::Duration;

use serde_json::{Value, json};

use marquee_e2e::{Stack, stack};

/// The `kid` in an admission token's header.
fn kid(token: &str) -> String {
    marquee_waitroom::admission::token_kid(token).expect("a kid")
}

async fn jwks_kids(s: &Stack, base: &str) -> Vec<String> {
    let v: Value = s
        .http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

async fn reserve_at(s: &Stack, base: &str, token: &str, show: &str, seat: &str) -> u16 {
    s.http
        .post(format!("{base}/v1/bookings/reserve"))
        .bearer_auth(token)
        .json(&json!({"show_id": show, "seat_ids": [seat]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signing_key_rotates_mid_sale_on_two_gateways_without_a_restart() {
    let s = stack(1, |s| s.set("worker.tick_ms", 50)).await;
    let other = s.another_gateway().await;
    let event = s.event(json!({"max_active": 100})).await;
    let show = s.show(&event, 1, 10).await;
    let dir = s.env.keys_dir.path().to_owned();
    let old_kid = jwks_kids(&s, &s.base).await[0].clone();

    // Admitted under the old key: one fan who holds at once, one who will hold later.
    let (_, early) = s.admitted_fan(&event).await;
    let (_, late) = s.admitted_fan(&event).await;
    assert_eq!(kid(&early), old_kid);

    // The new key everywhere: it sorts last, so each process signs with it once it has read
    // the folder.
    let new_kid = "kz-rotated".to_owned();
    std::fs::write(
        dir.join(format!("{new_kid}.pem")),
        marquee_waitroom::admission::generate_private_pem(),
    )
    .unwrap();
    for base in [s.base.clone(), other.clone()] {
        marquee_testkit::wait_for(
            "the new key in the JWKS",
            Duration::from_secs(3),
            || async {
                (jwks_kids(&s, &base).await == [old_kid.clone(), new_kid.clone()]).then_some(())
            },
        )
        .await;
    }
    let (_, fresh) = s.admitted_fan(&event).await;
    assert_eq!(kid(&fresh), new_kid, "the new key signs");
    // Both keys work everywhere while both are in the folder: nobody admitted is lost.
    assert_eq!(reserve_at(&s, &other, &fresh, &show, "A-1").await, 201);
    assert_eq!(reserve_at(&s, &s.base, &early, &show, "A-2").await, 201);

    // The old key retired: its tokens stop working within keys_reload_s, on both gateways
    // and in booking-core (asked directly, as a proxy that skipped the gateway would).
    std::fs::remove_file(dir.join(format!("{old_kid}.pem"))).unwrap();
    marquee_testkit::wait_for("the old key refused", Duration::from_secs(3), || async {
        let gateways = [
            reserve_at(&s, &s.base, &late, &show, "A-3").await,
            reserve_at(&s, &other, &late, &show, "A-3").await,
            reserve_at(&s, &s.booking_url, &late, &show, "A-3").await,
        ];
        // The JWKS follows the same folder read: waited for with the rest, not assumed.
        let published = jwks_kids(&s, &other).await == vec![new_kid.clone()];
        (gateways == [401, 401, 401] && published).then_some(())
    })
    .await;
    assert_eq!(jwks_kids(&s, &other).await, vec![new_kid.clone()]);
    let (_, after) = s.admitted_fan(&event).await;
    assert_eq!(reserve_at(&s, &other, &after, &show, "A-4").await, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_token_secret_rotates_with_the_previous_one_accepted() {
    let s = stack(1, |s| s).await;
    let old = "test-queue-token-secret-0123456789abcdef";
    let new = "rotated-queue-token-secret-0123456789abcdef";
    let rotated = s
        .another_gateway_with(|c| {
            c.set("admission.queue_token_secret", new)
                .set("admission.queue_token_secret_previous", old)
        })
        .await;
    let retired = s
        .another_gateway_with(|c| c.set("admission.queue_token_secret", new))
        .await;
    let event = s.event(json!({"state": "paused"})).await;
    let (fan, _) = s.join(&event, None).await;
    // Signed with the old secret: still good where it is the previous one.
    assert_eq!(s.status_at(&rotated, &event, &fan).await.status(), 200);
    // Once the previous secret is dropped, it is not.
    assert_eq!(s.status_at(&retired, &event, &fan).await.status(), 401);
}
