//! Which Kafka to talk to: the configured brokers, or an embedded mock cluster (the real wire
//! protocol, in process) whose address is written to `[kafka] bootstrap_file` for others.

use std::time::Duration;

use marquee_platform::Settings;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::FutureProducer;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// An embedded mock cluster. librdkafka's mock cluster is not `Send`, so it lives on a
/// thread of its own; this handle controls it from anywhere.
#[derive(Clone)]
pub struct MockKafka {
    pub bootstrap: String,
    control: std::sync::mpsc::Sender<(MockCommand, std::sync::mpsc::Sender<()>)>,
}

/// What a test does to the mock cluster; each is answered once done.
enum MockCommand {
    /// Every broker down, or up again.
    Brokers(bool),
    /// Every broker answers each request this much later (zero: at once).
    RoundTrip(Duration),
    /// The next `n` produce requests fail with a retriable error (`n` zero: none does).
    FailProduce(usize),
}

impl MockKafka {
    /// Start a 3-broker mock cluster with `topics` (3 partitions each).
    pub fn start(topics: &[&str]) -> anyhow::Result<Self> {
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (control, commands) =
            std::sync::mpsc::channel::<(MockCommand, std::sync::mpsc::Sender<()>)>();
        std::thread::Builder::new()
            .name("kafka-mock".into())
            .spawn(move || {
                let cluster = match MockCluster::new(3) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                for t in &topics {
                    if let Err(e) = cluster.create_topic(t, 3, 3) {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Lives until every handle is dropped.
                while let Ok((command, reply)) = commands.recv() {
                    match command {
                        MockCommand::Brokers(up) => {
                            for id in 1..=3 {
                                let _ = if up {
                                    cluster.broker_up(id)
                                } else {
                                    cluster.broker_down(id)
                                };
                            }
                        }
                        MockCommand::RoundTrip(delay) => {
                            for id in 1..=3 {
                                let _ = cluster.broker_round_trip_time(id, delay);
                            }
                        }
                        MockCommand::FailProduce(0) => {
                            cluster.clear_request_errors(RDKafkaApiKey::Produce);
                        }
                        MockCommand::FailProduce(n) => cluster.request_errors(
                            RDKafkaApiKey::Produce,
                            &vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; n],
                        ),
                    }
                    let _: Result<(), _> = reply.send(());
                }
            })?;
        let bootstrap = ready_rx
            .recv()?
            .map_err(|e| anyhow::anyhow!("mock cluster: {e}"))?;
        Ok(Self { bootstrap, control })
    }

    /// Take every broker down (or bring them back): Kafka unavailable, for failure tests.
    pub fn set_brokers_up(&self, up: bool) {
        self.command(MockCommand::Brokers(up));
    }

    /// Every broker answers each request `delay` late: reachable but silent, for failure
    /// tests (zero: at once again).
    pub fn set_round_trip(&self, delay: Duration) {
        self.command(MockCommand::RoundTrip(delay));
    }

    /// The next `n` produce requests fail (a retriable error), for failure tests; zero clears.
    pub fn fail_produce(&self, n: usize) {
        self.command(MockCommand::FailProduce(n));
    }

    fn command(&self, command: MockCommand) {
        let (reply, done) = std::sync::mpsc::channel();
        if self.control.send((command, reply)).is_ok() {
            let _ = done.recv();
        }
    }
}

/// The brokers in use; holds the mock cluster alive when there is one.
pub struct Brokers {
    pub bootstrap: String,
    pub mock: Option<MockKafka>,
}

impl Brokers {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        if !settings.kafka.brokers.is_empty() {
            return Ok(Self {
                bootstrap: settings.kafka.brokers.clone(),
                mock: None,
            });
        }
        let mock = MockKafka::start(&[&settings.kafka.topic, &settings.kafka.dead_letter_topic])?;
        let file = &settings.kafka.bootstrap_file;
        if let Some(dir) = file.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(file, &mock.bootstrap)?;
        tracing::info!(bootstrap = %mock.bootstrap, file = %file.display(), "embedded Kafka mock cluster started");
        Ok(Self {
            bootstrap: mock.bootstrap.clone(),
            mock: Some(mock),
        })
    }
}

/// The idempotent producer: `acks=all`, exactly-once per partition per producer session; a
/// message the brokers have not acknowledged after `message_timeout_ms` (`[kafka]`) fails.
pub fn producer(bootstrap: &str, message_timeout_ms: u64) -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", message_timeout_ms.to_string())
        // A request in flight is only given up on when it times out itself: a silent broker
        // would otherwise hold the message for the defaults' 30–60 s whatever the above says.
        .set("request.timeout.ms", message_timeout_ms.to_string())
        .set("socket.timeout.ms", message_timeout_ms.to_string())
        .create()?)
}

/// A consumer in `group` that commits only by hand, after the work is done.
pub fn consumer(bootstrap: &str, group: &str, topic: &str) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

pub const SEND_TIMEOUT: Duration = Duration::from_secs(15);
