//! Fans' emails are never in clear text (DESIGN.md invariant 9, issue 15): after a booking is
//! paid for, a dump of the whole database holds no trace of the email; it is sealed in every
//! table that holds it and in the outbox, looked up by its keyed hash, and the checkout's
//! idempotency fingerprint is keyed too. Rows from before sealing are sealed by the sweep
//! booking-core runs at start, and a new key reseals everything.

use marquee_platform::Secret;
use marquee_platform::pii::{Pii, PiiSettings, Sealed, new_key};
use serde_json::Value;
use sqlx::types::Json;

use crate::helpers::{TestApp, spawn};

const EMAIL: &str = "Dump.Check+Fan@Example.com";

fn test_pii(app: &TestApp) -> Pii {
    Pii::from_settings(&app.env.settings().pii).unwrap()
}

/// The whole database as `pg_dump` writes it.
fn dump(app: &TestApp) -> String {
    let out = std::process::Command::new("pg_dump")
        .arg("--data-only")
        .arg(&app.env.database_url)
        .output()
        .expect("pg_dump (PostgreSQL's client tools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().to_lowercase()
}

async fn paid_booking(app: &TestApp) -> String {
    let event = app.event(600).await;
    let show = app.show(&event, 1, 4).await;
    let id = app.hold(&event, &show, "private-fan", &["A-1"]).await;
    let res = app
        .http
        .post(app.at(&format!("/v1/bookings/{id}/checkout")))
        .header("idempotency-key", "checkout-1")
        .json(&serde_json::json!({ "email": EMAIL }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let intent: Value = res.json().await.unwrap();
    let pi = intent["payment_intent_id"].as_str().unwrap();
    marquee_testkit::api::stripe_confirm(&app.http, &app.stripe, pi, "pm_card_visa").await;
    let (status, body) = app.api.confirm(&id, pi).await;
    assert_eq!(status, 200, "{body}");
    id
}

#[tokio::test]
async fn a_dump_of_the_database_shows_no_email_after_a_booking() {
    let app = spawn().await;
    let id = paid_booking(&app).await;
    let pii = test_pii(&app);

    let dumped = dump(&app);
    for needle in ["dump.check", "example.com", "@example"] {
        assert!(!dumped.contains(needle), "{needle} in the dump");
    }

    // Sealed where it is kept, and found by its keyed hash.
    let (sealed, hash): (Json<Sealed>, String) = sqlx::query_as(
        "SELECT email_enc, email_hash FROM bookings b JOIN booking_index i
           ON i.show_id = b.show_id AND i.id = b.id WHERE i.id = $1",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(pii.open(&sealed).unwrap(), EMAIL.to_lowercase());
    assert_eq!(hash, pii.lookup_hash(EMAIL));
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE email_hash = $1")
        .bind(pii.lookup_hash(" dump.check+fan@EXAMPLE.com"))
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(found, 1);

    // The announcement carries it sealed.
    let payload: Value = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE payload->>'booking_id' = $1 AND type = 'BookingConfirmed'",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(payload.get("email").is_none(), "{payload}");
    let on_topic: Sealed = serde_json::from_value(payload["email_enc"].clone()).unwrap();
    assert_eq!(pii.open(&on_topic).unwrap(), EMAIL.to_lowercase());
}

#[tokio::test]
async fn rows_from_before_sealing_are_sealed_and_a_new_key_reseals_everything() {
    let app = spawn().await;
    let id = paid_booking(&app).await;
    // A booking, an attempt and an announcement as they were written before sealing.
    let legacy = "Legacy.Fan@Example.org";
    let show: String = sqlx::query_scalar("SELECT show_id FROM booking_index WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    sqlx::query("UPDATE bookings SET email = $3, email_enc = NULL WHERE show_id = $1 AND id = $2")
        .bind(&show)
        .bind(&id)
        .bind(legacy)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("UPDATE payment_attempts SET email = $2, email_enc = NULL WHERE booking_id = $1")
        .bind(&id)
        .bind(legacy)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE outbox SET payload = (payload - 'email_enc') || jsonb_build_object('email', $2::text)
         WHERE payload->>'booking_id' = $1",
    )
    .bind(&id)
    .bind(legacy)
    .execute(&app.db)
    .await
    .unwrap();
    assert!(dump(&app).contains("legacy.fan"));

    let old = test_pii(&app);
    let swept = booking_core::pii_sweep::run(&app.db, &old, false)
        .await
        .unwrap();
    assert!(swept.sealed >= 3, "{swept:?}");
    assert!(!dump(&app).contains("legacy.fan"), "sealed everywhere");
    assert_eq!(
        booking_core::pii_sweep::run(&app.db, &old, false)
            .await
            .unwrap()
            .sealed,
        0,
        "nothing left to seal"
    );

    // A new key, listed last: everything is resealed under it, and still opens.
    let settings = app.env.settings().pii;
    let rotated = Pii::from_settings(&PiiSettings {
        keys: Secret::new(format!("{},t2={}", settings.keys.expose(), new_key())),
        lookup_key: settings.lookup_key.clone(),
    })
    .unwrap();
    let swept = booking_core::pii_sweep::run(&app.db, &rotated, true)
        .await
        .unwrap();
    assert!(swept.resealed >= 3, "{swept:?}");
    let kids: Vec<String> = sqlx::query_scalar(
        "SELECT email_enc->>'kid' FROM bookings WHERE email_enc IS NOT NULL
         UNION ALL SELECT email_enc->>'kid' FROM payment_attempts WHERE email_enc IS NOT NULL
         UNION ALL SELECT payload->'email_enc'->>'kid' FROM outbox WHERE payload ? 'email_enc'
                                                        AND jsonb_typeof(payload->'email_enc') = 'object'",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        !kids.is_empty() && kids.iter().all(|k| k == "t2"),
        "{kids:?}"
    );
    let sealed: Json<Sealed> =
        sqlx::query_scalar("SELECT email_enc FROM bookings WHERE show_id = $1 AND id = $2")
            .bind(&show)
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(rotated.open(&sealed).unwrap(), legacy.to_lowercase());
    assert!(
        old.open(&sealed).is_err(),
        "the old ring alone can no longer read it"
    );
}
