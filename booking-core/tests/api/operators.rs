//! Named operators with roles and the audit trail (issue 15): each role may do what API.md
//! says and gets a 403 problem for the rest; a revoked token stops at once; every change is in
//! the audit trail with who, what, before and after and the request id, written in the
//! change's transaction (absent when the change rolls back), and nothing can alter an entry.

use std::time::Duration;

use booking_core::operators::{Role, store};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn, spawn_with};

async fn patch(app: &TestApp, token: &str, event: &str, body: Value) -> reqwest::Response {
    app.http
        .patch(app.at(&format!("/admin/v1/events/{event}")))
        .bearer_auth(token)
        .header("x-request-id", "req-audit-1")
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn audit(app: &TestApp, query: &str) -> Value {
    app.admin_get(&format!("/admin/v1/audit?{query}")).await
}

#[tokio::test]
async fn each_role_may_do_its_part_and_gets_a_403_problem_for_the_rest() {
    let app = spawn().await;
    let friday = app.event(600).await;
    let saturday = app.event(600).await;
    let manager = store::add(
        &app.db,
        "test",
        "fri-manager",
        Role::EventManager,
        std::slice::from_ref(&friday),
    )
    .await
    .unwrap();
    let door = store::add(&app.db, "test", "door-1", Role::Scanner, &[])
        .await
        .unwrap();
    assert!(
        manager.starts_with("mqo_") && manager.len() >= 4 + 43,
        "256 bits: {manager}"
    );

    assert_eq!(
        patch(&app, &manager, &friday, json!({"rate_per_minute": 900}))
            .await
            .status(),
        200
    );
    let refused = patch(&app, &manager, &saturday, json!({"rate_per_minute": 900})).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["type"].as_str().unwrap().ends_with("not-permitted"),
        "{problem}"
    );
    // Listing shows the manager its own event only.
    let listed: Value = app
        .http
        .get(app.at("/admin/v1/events"))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![friday.as_str()]);

    // The door scanner scans and does nothing else.
    assert_eq!(
        patch(&app, &door, &friday, json!({"state": "closed"}))
            .await
            .status(),
        403
    );
    let scan = app
        .http
        .post(app.at("/v1/tickets/validate"))
        .bearer_auth(&door)
        .json(&json!({"code": "MQ-NOT-A-TICKET"}))
        .send()
        .await
        .unwrap();
    assert!(
        scan.status() != 401 && scan.status() != 403,
        "{}",
        scan.status()
    );
    let scan = app
        .http
        .post(app.at("/v1/tickets/validate"))
        .bearer_auth(&manager)
        .json(&json!({"code": "MQ-NOT-A-TICKET"}))
        .send()
        .await
        .unwrap();
    assert_eq!(scan.status(), 403);

    // Revoked: refused at the next request. Unknown: refused.
    store::revoke(&app.db, "test", "fri-manager").await.unwrap();
    assert_eq!(
        patch(&app, &manager, &friday, json!({"rate_per_minute": 1000}))
            .await
            .status(),
        401
    );
    assert_eq!(
        patch(
            &app,
            "mqo_forged",
            &friday,
            json!({"rate_per_minute": 1000})
        )
        .await
        .status(),
        401
    );
}

#[tokio::test]
async fn every_change_is_audited_with_who_what_before_after_and_the_request() {
    let app = spawn().await;
    let event = app.event(600).await;
    let manager = store::add(&app.db, "test", "eve", Role::EventManager, &[])
        .await
        .unwrap();
    assert_eq!(
        patch(
            &app,
            &manager,
            &event,
            json!({"rate_per_minute": 1200, "state": "paused"})
        )
        .await
        .status(),
        200
    );
    let page = audit(&app, &format!("event_id={event}")).await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{page}");
    let (change, create) = (&entries[0], &entries[1]);
    assert_eq!(create["action"], "event.create");
    assert_eq!(create["operator"], "config-1");
    assert_eq!(change["action"], "event.state");
    assert_eq!(change["operator"], "eve");
    assert_eq!(change["request_id"], "req-audit-1");
    assert_eq!(
        change["before"],
        json!({"rate_per_minute": 600, "state": "open"})
    );
    assert_eq!(
        change["after"],
        json!({"rate_per_minute": 1200, "state": "paused"})
    );

    // The operators' own changes are there too, by who made them, without any token.
    let all = audit(&app, "operator=test").await;
    assert_eq!(all["entries"][0]["action"], "operator.add");
    assert!(
        !all.to_string().contains(&manager),
        "a token in the trail: {all}"
    );

    // Pages: newest first, `next` until the last.
    for rate in 700..705 {
        patch(&app, &manager, &event, json!({"rate_per_minute": rate})).await;
    }
    let first = audit(&app, &format!("event_id={event}&limit=3")).await;
    assert_eq!(first["entries"].as_array().unwrap().len(), 3);
    let cursor = first["next"].as_i64().expect("more pages");
    let second = audit(&app, &format!("event_id={event}&limit=3&cursor={cursor}")).await;
    assert!(
        second["entries"][0]["id"].as_i64().unwrap() < first["entries"][2]["id"].as_i64().unwrap()
    );
    let last = audit(&app, &format!("event_id={event}&limit=100")).await;
    assert_eq!(last["entries"].as_array().unwrap().len(), 7);
    assert!(last["next"].is_null());
}

#[tokio::test]
async fn nothing_can_change_or_remove_an_entry() {
    let app = spawn().await;
    let event = app.event(600).await;
    for sql in [
        "UPDATE audit_log SET operator = 'someone-else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = sqlx::query(sql).execute(&app.db).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let page = audit(&app, &format!("event_id={event}")).await;
    assert_eq!(page["entries"][0]["operator"], "config-1");
}

#[tokio::test]
async fn a_change_that_rolls_back_leaves_no_entry() {
    // A Redis of the test's own, killed so publishing the change fails after the audit entry
    // was written in the change's transaction.
    let mut redis = marquee_testkit::RedisServer::start().await;
    let url = redis.url();
    let app = spawn_with(|s| s.set("redis.url", &url)).await;
    let event = app.event(600).await;
    redis.crash();
    let res = patch(
        &app,
        "test-operator-token",
        &event,
        json!({"rate_per_minute": 4321}),
    )
    .await;
    assert_eq!(res.status(), 503, "{}", res.text().await.unwrap());
    let (rate, entries): (i32, i64) = sqlx::query_as(
        "SELECT (SELECT rate_per_minute FROM events WHERE id = $1),
                (SELECT count(*) FROM audit_log WHERE event_id = $1 AND action <> 'event.create')",
    )
    .bind(&event)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (rate, entries),
        (600, 0),
        "the change and its entry both rolled back"
    );
    redis.restart().await;
    marquee_testkit::wait_for(
        "the change once Redis is back",
        Duration::from_secs(30),
        || {
            let app = &app;
            let event = &event;
            async move {
                let res = patch(
                    app,
                    "test-operator-token",
                    event,
                    json!({"rate_per_minute": 4321}),
                )
                .await;
                (res.status() == 200).then_some(())
            }
        },
    )
    .await;
    let page = audit(&app, &format!("event_id={event}")).await;
    assert_eq!(
        page["entries"][0]["after"],
        json!({"rate_per_minute": 4321})
    );
}

#[tokio::test]
async fn the_command_line_adds_lists_and_revokes_operators_as_cli() {
    let app = spawn().await;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_booking-core"))
            .args(args)
            .env("MARQUEE_ENV", "test")
            .env("MARQUEE_CONFIG_DIR", marquee_testkit::config_dir())
            .env("MARQUEE_DATABASE__URL", &app.env.database_url)
            .env("MARQUEE_LOG__FILTER", "error")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let token = run(&["operators", "add", "alice", "--role", "admin"])
        .trim()
        .to_owned();
    let listed = run(&["operators", "list"]);
    assert!(listed.contains("alice\tadmin\tall events"), "{listed}");
    assert!(!listed.contains(&token));
    let res = app
        .http
        .get(app.at("/admin/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    run(&["operators", "revoke", "alice"]);
    let res = app
        .http
        .get(app.at("/admin/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let trail = audit(&app, "operator=cli").await;
    let actions: Vec<&str> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["operator.revoke", "operator.add"]);
}
