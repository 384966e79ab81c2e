//! The demo's ticket emails as `.eml` files: whoever watches the directory (a person, the
//! browser journey's test) sees each message whole or not at all, and a directory that cannot
//! be written is an error the notifier retries, not a message dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use marquee_events::mail::Mailer;
use serde_json::json;

fn ticket(n: usize) -> lettre::Message {
    Mailer::ticket_email(
        &marquee_events::mail::Letterhead {
            from: "Marquee Tickets <tickets@marquee.test>".into(),
            ticket_base_url: "https://tickets.example".into(),
            pii: None,
        },
        &json!({"email": "fan@example.test", "ticket_code": format!("MQ-FILE-{n}"),
                "seats": ["A-1", "A-2"], "message_id": format!("file-{n}")}),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_never_reads_a_half_written_email() {
    const SENT: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let mailer = Mailer::file(dir.path()).unwrap();
    let done = Arc::new(AtomicBool::new(false));

    // Reads every `.eml` as soon as it appears, for as long as messages are being written.
    let watcher = {
        let (dir, done) = (dir.path().to_path_buf(), done.clone());
        tokio::task::spawn_blocking(move || {
            let mut reads = 0;
            loop {
                // One more whole pass after the last message was written.
                let finished = done.load(Ordering::Acquire);
                for entry in std::fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
                    if entry.path().extension().is_some_and(|x| x == "eml") {
                        let text = std::fs::read_to_string(entry.path()).unwrap();
                        assert!(
                            text.contains("To: fan@example.test")
                                && text.trim_end().ends_with("--"),
                            "read a partial email ({} bytes)",
                            text.len()
                        );
                        reads += 1;
                    }
                }
                if finished {
                    return reads;
                }
            }
        })
    };
    for n in 0..SENT {
        mailer.send(ticket(n)).await.expect("written");
    }
    done.store(true, Ordering::Release);
    let reads = watcher.await.expect("no partial email was read");
    assert!(reads >= SENT, "the watcher read every message: {reads}");

    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".partial")
        .collect();
    let staged = std::fs::read_dir(dir.path().join(".partial"))
        .unwrap()
        .count();
    assert_eq!(staged, 0, "nothing left half way");
    assert_eq!(
        names.len(),
        SENT,
        "one file per email, nothing left over: {names:?}"
    );
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".eml") && !n.starts_with('.'))
    );
    let one = std::fs::read_to_string(dir.path().join(&names[0])).unwrap();
    assert!(
        one.contains("ticket-qr.svg") && one.contains("Ticket code: MQ-FILE-"),
        "{one}"
    );
}

#[tokio::test]
async fn an_unwritable_directory_is_an_error_not_a_lost_email() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone");
    let mailer = Mailer::file(&missing).unwrap();
    std::fs::remove_dir_all(&missing).unwrap();
    let err = mailer.send(ticket(0)).await.expect_err("nowhere to write");
    assert!(err.to_string().contains("gone"), "{err}");
    assert!(!missing.exists());
}
