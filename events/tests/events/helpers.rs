//! An events service for one test, a booking factory, a consumer that reads a topic from the
//! start, and a real SMTP server on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use marquee_events::kafka::MockKafka;
use marquee_platform::shutdown::Shutdown;
use marquee_testkit::TestEnv;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_rustls::TlsAcceptor;

pub struct Events {
    /// The service's health and metrics address.
    pub url: String,
    pub env: TestEnv,
    pub db: PgPool,
    pub bootstrap: String,
    pub mock: MockKafka,
    pub smtp: Smtp,
    pub shutdown: Shutdown,
}

impl Drop for Events {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

pub async fn start(smtp_fails: bool) -> Events {
    launch(prepare(smtp_fails).await, None).await
}

/// Database, SMTP sink and settings, before the service runs.
pub struct Prepared {
    pub env: TestEnv,
    pub smtp: Smtp,
    pub db: PgPool,
}

pub async fn prepare(smtp_fails: bool) -> Prepared {
    let env = TestEnv::new().await;
    let smtp = Smtp::start(smtp_fails).await;
    let db = PgPool::connect(&env.database_url).await.unwrap();
    Prepared { env, smtp, db }
}

/// Start the service; with `brokers`, on those instead of its own embedded cluster.
pub async fn launch(p: Prepared, brokers: Option<MockKafka>) -> Events {
    let Prepared { env, smtp, db } = p;
    let kafka_file = env.keys_dir.path().join("kafka-bootstrap");
    let mut source = env
        .source()
        .set("mail.transport", "smtp")
        .set("mail.smtp_url", format!("smtp://127.0.0.1:{}", smtp.port))
        .set("kafka.max_attempts", 3)
        .set("kafka.bootstrap_file", kafka_file.display());
    if let Some(b) = &brokers {
        source = source.set("kafka.brokers", &b.bootstrap);
    }
    let settings = marquee_platform::Settings::load(&source).expect("settings");
    let shutdown = Shutdown::new();
    let mut app = marquee_events::Application::build_with(settings, shutdown.clone())
        .await
        .expect("events service starts");
    app.mail_backoff = Duration::from_millis(20);
    let bootstrap = app.bootstrap().to_owned();
    let url = format!("http://127.0.0.1:{}", app.port());
    let mock = match brokers {
        Some(b) => b,
        None => {
            let published = std::fs::read_to_string(&kafka_file).unwrap();
            assert_eq!(
                published, bootstrap,
                "address published for other processes"
            );
            app.mock_kafka().expect("embedded mock cluster")
        }
    };
    tokio::spawn(app.run_until_stopped());
    Events {
        url,
        env,
        db,
        bootstrap,
        mock,
        smtp,
        shutdown,
    }
}

/// The PII keys of the test configuration (the notifier's).
pub fn test_pii() -> marquee_platform::pii::Pii {
    let source = marquee_platform::config::Source::for_tests(marquee_testkit::config_dir());
    let settings = marquee_platform::Settings::load(&source).expect("test settings");
    marquee_platform::pii::Pii::from_settings(&settings.pii).expect("test PII keys")
}

impl Events {
    pub async fn confirmed_booking(&self, email: &str) -> String {
        confirmed_booking(&self.db, email).await
    }
}

/// A booking held and then confirmed, as payment settlement does it; its id.
pub async fn confirmed_booking(db: &PgPool, email: &str) -> String {
    let id = format!("r_{}", uuid::Uuid::new_v4().simple());
    let show = "s_events_test";
    sqlx::query(
            "INSERT INTO bookings (id, show_id, event_id, visitor_id, status, seat_ids, total_cents, currency, expires_at)
             VALUES ($1, $2, 'gala', $1, 'held', '{A-1,A-2}', 2400, 'eur', now() + interval '10 minutes')",
        )
        .bind(&id)
        .bind(show)
        .execute(db)
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    sqlx::query("INSERT INTO tickets (code, booking_id, show_id, seat_ids) VALUES ($1, $2, $3, '{A-1,A-2}')")
            .bind(format!("T{id}"))
            .bind(&id)
            .bind(show)
            .execute(&mut *tx)
            .await
            .unwrap();
    // Sealed as checkout seals it, with the test configuration's keys.
    let pii = test_pii();
    sqlx::query(
        "UPDATE bookings SET status = 'confirmed', email_enc = $2, email_hash = $4
         WHERE show_id = $3 AND id = $1",
    )
    .bind(&id)
    .bind(sqlx::types::Json(pii.seal(email)))
    .bind(show)
    .bind(pii.lookup_hash(email))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

impl Events {
    /// A counter's value on the service's `/metrics` (`name` without the `marquee_` prefix; 0
    /// before it first counts).
    pub async fn counter(&self, name: &str) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        marquee_testkit::metric(&text, name).unwrap_or(0)
    }

    pub async fn unpublished(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// Every message on `topic` so far (partitions assigned directly, read from the start).
    pub fn read_topic(&self, topic: &str, expect_at_least: usize) -> Vec<(Value, Option<String>)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..3 {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut idle_since = std::time::Instant::now();
        while std::time::Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    let payload: Value =
                        serde_json::from_slice(m.payload().unwrap_or_default()).unwrap();
                    let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
                    out.push((payload, key));
                    idle_since = std::time::Instant::now();
                }
                _ if out.len() >= expect_at_least
                    && idle_since.elapsed() > Duration::from_millis(800) =>
                {
                    break;
                }
                _ => {}
            }
        }
        out
    }
}

/// A real SMTP server on a loopback port: keeps every message, or refuses every DATA.
/// One SMTP conversation: records each message, or refuses every one with a 451 if `fail`.
async fn converse<S>(stream: S, fail: bool, r: Arc<Mutex<Vec<String>>>, a: Arc<Mutex<u32>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = BufReader::new(read).lines();
    // Every reply flushed: over TLS a write only fills the session's buffer.
    let _ = write.write_all(b"220 sink.test ESMTP\r\n").await;
    let _ = write.flush().await;
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink.test\r\n250 8BITMIME\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
            "DATA" => {
                *a.lock().unwrap() += 1;
                if fail {
                    b"451 4.3.0 try again later\r\n"
                } else {
                    let _ = write.write_all(b"354 go ahead\r\n").await;
                    let _ = write.flush().await;
                    let mut body = String::new();
                    while let Ok(Some(l)) = lines.next_line().await {
                        if l == "." {
                            break;
                        }
                        body.push_str(&l);
                        body.push('\n');
                    }
                    r.lock().unwrap().push(body);
                    b"250 queued\r\n"
                }
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                let _ = write.flush().await;
                return;
            }
            _ => b"502 not implemented\r\n",
        };
        if write.write_all(reply).await.is_err() || write.flush().await.is_err() {
            return;
        }
    }
}

pub struct Smtp {
    pub port: u16,
    pub received: Arc<Mutex<Vec<String>>>,
    pub attempts: Arc<Mutex<u32>>,
}

impl Smtp {
    pub async fn start(fail: bool) -> Self {
        Self::listen(fail, None).await
    }

    /// A sink that speaks only SMTP over TLS (implicit TLS, as on port 465), with the test
    /// CA's certificate for 127.0.0.1 (`marquee_testkit::tls_dir`).
    pub async fn start_tls() -> Self {
        let dir = marquee_testkit::tls_dir();
        let certs = CertificateDer::pem_file_iter(dir.join("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        Self::listen(false, Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn listen(fail: bool, tls: Option<TlsAcceptor>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received: Arc<Mutex<Vec<String>>> = Arc::default();
        let attempts: Arc<Mutex<u32>> = Arc::default();
        let (r, a) = (received.clone(), attempts.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (r, a, tls) = (r.clone(), a.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        // A client that does not complete the handshake in a second (one
                        // waiting for a plain greeting, say) is hung up on.
                        Some(tls) => {
                            let handshake = tls.accept(stream);
                            if let Ok(Ok(stream)) =
                                tokio::time::timeout(Duration::from_secs(1), handshake).await
                            {
                                converse(stream, fail, r, a).await;
                            }
                        }
                        None => converse(stream, fail, r, a).await,
                    }
                });
            }
        });
        Self {
            port,
            received,
            attempts,
        }
    }

    pub fn messages(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}
