//! Redis over TLS (`rediss://`, a managed Redis with encryption in transit): the services
//! verify the server against `[redis] ca_file` when set (a private CA), else the web's roots,
//! and nothing is sent to a server they cannot verify.

use std::time::Duration;

use serde_json::json;

use marquee_e2e::stack;
use marquee_testkit::{RedisServer, tls_dir};
use marquee_waitroom::connect;

#[tokio::test]
async fn redis_over_tls_is_verified_against_the_configured_ca_only() {
    let server = RedisServer::start_tls().await;
    let ca = tls_dir().join("ca.pem");

    let mut trusted = connect::redis(&server.url(), false, Some(&ca))
        .await
        .expect("a verified TLS connection");
    let _: () = redis::cmd("SET")
        .arg("over")
        .arg("tls")
        .query_async(&mut trusted)
        .await
        .unwrap();
    let got: String = redis::cmd("GET")
        .arg("over")
        .query_async(&mut trusted)
        .await
        .unwrap();
    assert_eq!(got, "tls");

    // The test CA is not among the web's roots: without ca_file the server is not trusted.
    let err = connect::redis(&server.url(), false, None)
        .await
        .err()
        .expect("an unverified server is refused");
    assert!(
        format!("{err:?}").to_lowercase().contains("certificate"),
        "{err:?}"
    );
    // A plain client gets nowhere with a TLS-only server.
    let plain = format!("redis://127.0.0.1:{}/", server.port);
    assert!(connect::redis(&plain, false, None).await.is_err());
    // A missing CA file is named.
    let missing = tls_dir().join("nope.pem");
    let err = connect::redis(&server.url(), false, Some(&missing))
        .await
        .err()
        .expect("no CA file");
    assert!(err.to_string().contains("nope.pem"), "{err}");
}

/// The whole system on a TLS-only Redis: a fan joins, is admitted by the worker and reserves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_room_runs_on_redis_over_tls() {
    let server = RedisServer::start_tls().await;
    let url = server.url();
    let s = stack(1, |src| {
        src.set("redis.url", &url)
            .set("redis.ca_file", tls_dir().join("ca.pem").display())
            .set("worker.tick_ms", 50)
    })
    .await;
    let event = s.event(json!({})).await;
    let show = s.show(&event, 1, 4).await;
    let (mut fan, _) = s.join(&event, None).await;
    let token = s
        .wait_admitted(&event, &mut fan, Duration::from_secs(10))
        .await;
    let res = s
        .reserve(&token, None, &json!({"show_id": show, "seat_ids": ["A-1"]}))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}
