//! Signed tickets (issue 15): the QR code carries a payload signed with a ticket key; the
//! door checks the signature before the database, so a forged or altered payload, or one
//! signed by any other key (an admission key included), is refused; a good one admits once;
//! the public keys are published, and verify a payload offline.

use serde_json::{Value, json};

use booking_core::tickets::{TICKET_TYPE, TicketClaims};
use marquee_waitroom::Keyring;

use crate::helpers::{TestApp, spawn};

async fn scan(app: &TestApp, code: &str) -> Value {
    let res = app
        .http
        .post(app.at("/v1/tickets/validate"))
        .header("authorization", crate::helpers::OPERATOR)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// A paid booking's ticket: its code and the signed payload its QR code carries.
async fn paid(app: &TestApp) -> (String, String, String) {
    let event = app.event(600).await;
    let show = app.show(&event, 1, 4).await;
    let id = app.hold(&event, &show, "door-fan", &["A-1", "A-2"]).await;
    let (status, body) = app.api.pay(&app.stripe, &id, "pm_card_visa").await;
    assert_eq!(status, 200, "{body}");
    let (code, payload): (String, String) =
        sqlx::query_as("SELECT code, qr_payload FROM tickets WHERE booking_id = $1")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    (show, code, payload)
}

#[tokio::test]
async fn a_signed_payload_admits_once_and_says_what_it_is_for() {
    let app = spawn().await;
    let (show, code, payload) = paid(&app).await;
    assert_ne!(payload, code);
    let first = scan(&app, &payload).await;
    assert_eq!(first["valid"], true, "{first}");
    assert_eq!(first["show_id"], show.as_str());
    assert_eq!(first["seats"], json!(["A-1", "A-2"]));
    let again = scan(&app, &payload).await;
    assert_eq!(
        (again["valid"].clone(), again["reason"].clone()),
        (json!(false), json!("already_used"))
    );
    // The code typed by hand is the same ticket.
    assert_eq!(scan(&app, &code).await["reason"], "already_used");
}

#[tokio::test]
async fn forged_altered_or_foreign_payloads_are_refused_before_the_database() {
    let app = spawn().await;
    let (show, code, payload) = paid(&app).await;

    // Altered: the claims changed (another seat), the signature kept.
    let parts: Vec<&str> = payload.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["seats"] = json!(["A-1", "A-2", "A-3"]);
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(
        scan(&app, &altered).await,
        json!({"valid": false, "reason": "forged"})
    );

    // Signed by a key of someone else's, with the real code.
    let dir = tempfile::tempdir().unwrap();
    let stranger = Keyring::load_dir(dir.path(), true).unwrap();
    let forged = stranger
        .sign_typed(
            TICKET_TYPE,
            &TicketClaims {
                code: code.clone(),
                show,
                seats: vec!["A-1".into()],
                iat: 0,
            },
        )
        .unwrap();
    assert_eq!(scan(&app, &forged).await["reason"], "forged");

    // An admission token (the admission keys, another type) is no ticket either.
    let admission = app.env.admission_token("door-fan", "whatever", 600);
    assert_eq!(scan(&app, &admission).await["reason"], "forged");

    // None of that used the ticket up.
    assert_eq!(scan(&app, &payload).await["valid"], true);
}

#[tokio::test]
async fn the_published_keys_verify_a_ticket_offline() {
    let app = spawn().await;
    let (show, code, payload) = paid(&app).await;
    let jwks: Value = app
        .http
        .get(app.at("/v1/tickets/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let offline = Keyring::from_jwks(&jwks).unwrap();
    let claims: TicketClaims = offline.verify_typed(&payload, TICKET_TYPE).unwrap();
    assert_eq!((claims.code, claims.show), (code, show));
    // The admission keys are not among them.
    let admission = app.env.admission_token("door-fan", "whatever", 600);
    assert!(
        offline
            .verify_typed::<TicketClaims>(&admission, TICKET_TYPE)
            .is_err()
    );
}
