//! A show cancellation resumes after a crash (issue 15): the state a run leaves when it dies
//! right after committing some refunds and before asking Stripe for them, with its claim
//! expired, is finished by the next run: every booking is refunded, each exactly once at
//! Stripe.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use booking_core::payments::settle::{self, Refund};

use crate::helpers::{TestApp, spawn_without_webhooks};

async fn refunds_at_stripe(app: &TestApp) -> HashMap<String, usize> {
    let list: Value = app
        .http
        .get(format!("{}/v1/refunds?limit=100", app.stripe))
        .bearer_auth("sk_test_demo")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut per: HashMap<String, usize> = HashMap::new();
    for r in list["data"].as_array().unwrap() {
        *per.entry(r["payment_intent"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    per
}

#[tokio::test]
async fn a_cancellation_that_died_half_way_finishes_with_one_refund_each() {
    let app = spawn_without_webhooks().await;
    let event = app.event(600).await;
    let show = app.show(&event, 1, 6).await;
    let mut ids = Vec::new();
    for (n, seat) in ["A-1", "A-2", "A-3", "A-4", "A-5", "A-6"]
        .iter()
        .enumerate()
    {
        let id = app.hold(&event, &show, &format!("fan-{n}"), &[seat]).await;
        let (status, body) = app.api.pay(&app.stripe, &id, "pm_card_visa").await;
        assert_eq!(status, 200, "{body}");
        ids.push(id);
    }

    // What a run leaves when it dies: the show marked and its cancellation claimed (the claim
    // since expired), two bookings refunded in the database with their refunds pending, not
    // yet asked of Stripe.
    sqlx::query("UPDATE shows SET status = 'cancelled', cancelled_at = now() WHERE id = $1")
        .bind(&show)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO show_cancellations (show_id, requested_by, total, refunded, claimed_until)
         VALUES ($1, 'test', 6, 2, now() - interval '1 second')",
    )
    .bind(&show)
    .execute(&app.db)
    .await
    .unwrap();
    for id in &ids[..2] {
        let mut tx = app.db.begin().await.unwrap();
        let row = settle::lock_booking(&mut tx, id).await.unwrap();
        assert!(
            settle::booking_refunded(
                &mut tx,
                &row,
                booking_core::cancellation::REASON,
                Refund::Pending
            )
            .await
            .unwrap()
        );
        tx.commit().await.unwrap();
    }

    // The running service takes it up and finishes.
    let done = marquee_testkit::wait_for(
        "the cancellation to finish",
        Duration::from_secs(60),
        || async {
            let v = app.admin_get(&format!("/admin/v1/shows/{show}")).await;
            (v["cancellation"]["done"] == true).then_some(v)
        },
    )
    .await;
    assert_eq!(done["cancellation"]["refunded"], 6, "{done}");
    let per =
        marquee_testkit::wait_for("six refunds at Stripe", Duration::from_secs(30), || async {
            let per = refunds_at_stripe(&app).await;
            (per.values().sum::<usize>() >= 6).then_some(per)
        })
        .await;
    assert_eq!(per.len(), 6, "{per:?}");
    assert!(
        per.values().all(|n| *n == 1),
        "one refund per payment: {per:?}"
    );
    // Each recorded as done once Stripe has answered.
    marquee_testkit::wait_for("every refund recorded", Duration::from_secs(30), || async {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM refunds WHERE booking_id = ANY($1) AND state <> 'succeeded'",
        )
        .bind(&ids)
        .fetch_one(&app.db)
        .await
        .unwrap();
        (pending == 0).then_some(())
    })
    .await;
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT status FROM bookings WHERE show_id = $1")
            .bind(&show)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(statuses, vec!["refunded".to_owned()]);

    // Asking again changes nothing; an event manager of another event may not ask at all.
    let again = app
        .admin_post(&format!("/admin/v1/shows/{show}/cancel"), &json!({}))
        .await;
    assert_eq!(again.status(), 202);
    let other = booking_core::operators::store::add(
        &app.db,
        "test",
        "elsewhere",
        booking_core::operators::Role::EventManager,
        &["another-event".to_owned()],
    )
    .await
    .unwrap();
    let refused = app
        .http
        .post(app.at(&format!("/admin/v1/shows/{show}/cancel")))
        .bearer_auth(other)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}
