//! Which Kafka to talk to: the configured brokers, or an embedded mock cluster (the real wire
//! protocol, in process) whose address is written to `[kafka] bootstrap_file` for others.

use std::time::Duration;

use marquee_platform::Settings;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::FutureProducer;

/// An embedded mock cluster. librdkafka's mock cluster is not `Send`, so it lives on a
/// thread of its own; this handle controls it from anywhere.
#[derive(Clone)]
pub struct MockKafka {
    pub bootstrap: String,
    control: std::sync::mpsc::Sender<MockCommand>,
}

enum MockCommand {
    Brokers {
        up: bool,
        reply: std::sync::mpsc::Sender<()>,
    },
}

impl MockKafka {
    /// Start a 3-broker mock cluster with `topics` (3 partitions each).
    pub fn start(topics: &[&str]) -> anyhow::Result<Self> {
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (control, commands) = std::sync::mpsc::channel::<MockCommand>();
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
                while let Ok(MockCommand::Brokers { up, reply }) = commands.recv() {
                    for id in 1..=3 {
                        let _ = if up {
                            cluster.broker_up(id)
                        } else {
                            cluster.broker_down(id)
                        };
                    }
                    let _ = reply.send(());
                }
            })?;
        let bootstrap = ready_rx
            .recv()?
            .map_err(|e| anyhow::anyhow!("mock cluster: {e}"))?;
        Ok(Self { bootstrap, control })
    }

    /// Take every broker down (or bring them back): Kafka unavailable, for failure tests.
    pub fn set_brokers_up(&self, up: bool) {
        let (reply, done) = std::sync::mpsc::channel();
        if self
            .control
            .send(MockCommand::Brokers { up, reply })
            .is_ok()
        {
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

/// The idempotent producer: `acks=all`, exactly-once per partition per producer session.
pub fn producer(bootstrap: &str) -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "10000")
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
