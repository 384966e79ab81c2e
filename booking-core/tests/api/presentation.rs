//! The live message and the event's presentation (issue 19, API.md): checked on create and
//! change with every problem named beside its field, `null` clears, each published to Redis for
//! the gateways; and the admin API answers the effective state, as the gateways act on it.

use serde_json::{Value, json};

use crate::helpers::spawn;

/// The event's live settings as the gateways read them from Redis.
fn published(event: &str) -> Value {
    let mut conn = redis::Client::open(marquee_testkit::redis_url())
        .and_then(|c| c.get_connection())
        .expect("Redis");
    let raw: String = redis::cmd("GET")
        .arg(marquee_waitroom::keys::cfg(event))
        .query(&mut conn)
        .expect("published settings");
    serde_json::from_str(&raw).unwrap()
}

#[tokio::test]
async fn a_message_and_a_look_are_checked_published_and_cleared() {
    let app = spawn().await;
    let event = app
        .api
        .event(json!({"message": "Doors at 7", "accent_color": "#FFB703"}))
        .await;
    let cfg = published(&event);
    assert_eq!(cfg["message"], "Doors at 7");
    assert_eq!(cfg["accent_color"], "#ffb703", "stored in one spelling");

    let path = format!("/admin/v1/events/{event}");
    let res = app
        .admin_patch(
            &path,
            &json!({
                "message": "Friday is sold out; Saturday still has seats",
                "display_name": "Opening night: Dune Part Three",
                "logo_url": "https://cdn.example.com/dune.png",
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["message"],
        "Friday is sold out; Saturday still has seats"
    );
    let cfg = published(&event);
    assert_eq!(cfg["display_name"], "Opening night: Dune Part Three");
    assert_eq!(cfg["logo_url"], "https://cdn.example.com/dune.png");
    assert_eq!(cfg["accent_color"], "#ffb703", "left as it was");

    // Every bad field named at once, and nothing changed.
    let res = app
        .admin_patch(
            &path,
            &json!({
                "message": "x".repeat(281),
                "display_name": "right-to-left \u{202E}gnp.exe",
                "accent_color": "#1b1d36",
                "logo_url": "http://cdn.example.com/dune.png",
            }),
        )
        .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["accent_color", "display_name", "logo_url", "message"],
        "{problem}"
    );
    assert!(
        problem.to_string().contains("contrast"),
        "the accent's problem says why: {problem}"
    );
    assert_eq!(
        published(&event)["message"],
        "Friday is sold out; Saturday still has seats"
    );
    // 280 scalar values is the limit, not 280 bytes.
    let res = app
        .admin_patch(&path, &json!({"message": "é".repeat(280)}))
        .await;
    assert_eq!(res.status(), 200);

    // `null` clears, and the published settings no longer carry it.
    let res = app
        .admin_patch(&path, &json!({"message": null, "logo_url": null}))
        .await;
    assert_eq!(res.status(), 200);
    let cfg = published(&event);
    assert!(cfg.get("message").is_none(), "{cfg}");
    assert!(cfg.get("logo_url").is_none(), "{cfg}");
    assert_eq!(cfg["display_name"], "Opening night: Dune Part Three");
}

#[tokio::test]
async fn the_admin_api_answers_the_state_the_queue_acts_on() {
    let app = spawn().await;
    // Stored as pre-queue, but its opening has passed: the gateways and workers treat it as
    // open, and so does the API.
    let event = app
        .api
        .event(json!({"state": "prequeue", "opens_at": "2026-01-01T00:00:00Z"}))
        .await;
    let got = app.admin_get(&format!("/admin/v1/events/{event}")).await;
    assert_eq!(got["state"], "open", "{got}");
    assert_eq!(got["stored_state"], "prequeue");
    let listed = app.admin_get("/admin/v1/events").await;
    let mine = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == event.as_str())
        .unwrap();
    assert_eq!(mine["state"], "open");

    let later = app
        .api
        .event(json!({"state": "prequeue", "opens_at": "2099-01-01T00:00:00Z"}))
        .await;
    let got = app.admin_get(&format!("/admin/v1/events/{later}")).await;
    assert_eq!(got["state"], "prequeue");
}
