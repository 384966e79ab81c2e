//! Ticket email over TLS: `smtps://` reaches a server that speaks only TLS, verified against
//! the configured CA; without that CA the server is not trusted and nothing is sent.

use marquee_events::mail::Mailer;
use serde_json::json;

use crate::helpers::Smtp;

fn ca_file() -> std::path::PathBuf {
    marquee_testkit::tls_dir().join("ca.pem")
}

fn ticket() -> lettre::Message {
    Mailer::ticket_email(
        &marquee_events::mail::Letterhead {
            from: "Marquee Tickets <tickets@marquee.test>".into(),
            ticket_base_url: "https://tickets.example".into(),
            pii: None,
        },
        &json!({"email": "fan@example.test", "ticket_code": "MQ-TLS-1", "seats": ["A-1"],
                "message_id": "tls-1"}),
    )
    .unwrap()
}

#[tokio::test]
async fn tickets_go_out_over_tls_to_a_verified_server_only() {
    let sink = Smtp::start_tls().await;
    let url = format!("smtps://127.0.0.1:{}", sink.port);

    let trusted = Mailer::smtp(&url, Some(&ca_file())).unwrap();
    trusted.send(ticket()).await.expect("sent over TLS");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("MQ-TLS-1"), "{}", messages[0]);

    // The same server without its CA: an unknown issuer, so no message.
    let untrusting = Mailer::smtp(&url, None).unwrap();
    let refused = untrusting.send(ticket()).await.unwrap_err().to_string();
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    // A client speaking plain SMTP to it gets no conversation either.
    let plain = Mailer::smtp(&format!("smtp://127.0.0.1:{}", sink.port), None).unwrap();
    assert!(plain.send(ticket()).await.is_err());
    assert_eq!(sink.messages().len(), 1);

    // A CA for a URL that asks for no TLS is a mistake in the settings, said at start-up.
    let err = Mailer::smtp(&format!("smtp://127.0.0.1:{}", sink.port), Some(&ca_file()))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("no TLS"), "{err}");
    // Settings errors never repeat the URL (it carries credentials).
    let err = Mailer::smtp("smtps://user:hunter2@", None)
        .err()
        .expect("refused")
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
}
