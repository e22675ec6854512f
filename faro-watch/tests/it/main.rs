//! Integration tests of faro-watch against faro-sim, linked as one binary.

mod discovery;
mod faults;
mod fleet;
mod lease;
mod logs;
mod readiness;
mod runtime;
mod shapes;
mod story;
mod workload;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faro_core::{Config, EventHandler, HandlerError, MatchedEvent};
use faro_sim::{Sim, SimConfig};
use faro_watch::{Controller, WatchOptions};
use serde_json::{Value, json};

/// A faro-sim with fast bookmarks.
pub async fn sim() -> Sim {
    sim_with(SimConfig::default()).await
}

pub async fn sim_with(config: SimConfig) -> Sim {
    Sim::start(SimConfig {
        bookmark_interval: Duration::from_millis(200),
        ..config
    })
    .await
    .expect("faro-sim starts")
}

pub fn client(sim: &Sim) -> kube::Client {
    let config = kube::Config::new(sim.url().parse().expect("sim URL"));
    kube::Client::try_from(config).expect("client")
}

/// Options with short delays, so that recovery happens within a test.
pub fn fast() -> WatchOptions {
    WatchOptions {
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(300),
        stall_timeout: Duration::from_secs(2),
        rediscovery_interval: Duration::from_secs(5),
        ..WatchOptions::default()
    }
}

pub fn config(yaml: &str) -> Config {
    Config::from_yaml(yaml, "test.yaml").unwrap_or_else(|e| panic!("config: {e}"))
}

/// One delivered event, as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub event_type: &'static str,
    pub gvr: String,
    pub key: String,
    pub uid: String,
    pub rv: String,
    pub inferred: bool,
    pub workload: Option<String>,
}

impl Seen {
    /// `TYPE gvr key`, the short form most assertions use.
    pub fn short(&self) -> String {
        format!("{} {} {}", self.event_type, self.gvr, self.key)
    }
}

/// A handler that records everything it is given.
#[derive(Default)]
pub struct Recorder {
    seen: Mutex<Vec<Seen>>,
    delay: Option<Duration>,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A recorder that sleeps for `delay` on every 50th event.
    pub fn slow(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            seen: Mutex::default(),
            delay: Some(delay),
        })
    }

    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// The short forms of every event, in delivery order.
    pub fn shorts(&self) -> Vec<String> {
        self.all().iter().map(Seen::short).collect()
    }

    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }

    /// Waits up to 10 s for `done` to hold over the recorded events.
    pub async fn wait(&self, what: &str, done: impl Fn(&[Seen]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if done(&self.seen.lock().unwrap()) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; seen: {:#?}", self.shorts());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the short forms include every one of `expected`.
    pub async fn wait_for(&self, expected: &[&str]) {
        self.wait(&format!("{expected:?}"), |seen| {
            expected
                .iter()
                .all(|e| seen.iter().any(|s| s.short() == *e))
        })
        .await;
    }
}

#[async_trait::async_trait]
impl EventHandler for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    async fn on_matched(&self, event: &MatchedEvent) -> Result<(), HandlerError> {
        // A slow handler pauses on every 50th event.
        if let Some(delay) = self.delay
            && self.count().is_multiple_of(50)
        {
            tokio::time::sleep(delay).await;
        }
        let meta = &event.object().metadata;
        self.seen.lock().unwrap().push(Seen {
            event_type: event.event_type().as_str(),
            gvr: event.gvr().to_string(),
            key: event.key().to_string(),
            uid: meta.uid.clone().unwrap_or_default(),
            rv: event.resource_version().to_owned(),
            inferred: event.is_inferred(),
            workload: event.workload().map(str::to_owned),
        });
        Ok(())
    }
}

/// A started controller over `config` with a recorder, ready.
pub async fn watch(sim: &Sim, config: &Config) -> (Controller, Arc<Recorder>) {
    let controller = Controller::with_options(client(sim), config, fast());
    let recorder = Recorder::new();
    controller.add_handler(recorder.clone());
    controller.start().await.expect("controller starts");
    tokio::time::timeout(Duration::from_secs(10), controller.ready())
        .await
        .expect("controller becomes ready");
    (controller, recorder)
}

/// The open watches as `path ?selectors`, sorted: what the server was asked.
pub fn watches(sim: &Sim) -> Vec<String> {
    let mut out: Vec<String> = sim
        .watches()
        .iter()
        .map(|w| {
            let selectors: Vec<String> = w
                .query
                .split('&')
                .filter(|p| p.starts_with("labelSelector=") || p.starts_with("fieldSelector="))
                .map(decode)
                .collect();
            if selectors.is_empty() {
                w.path.clone()
            } else {
                format!("{} ?{}", w.path, selectors.join("&"))
            }
        })
        .collect();
    out.sort();
    out
}

fn decode(text: &str) -> String {
    let text = text.replace('+', " ");
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let hex = (b == b'%')
            .then(|| tail.get(..2))
            .flatten()
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                rest = &tail[2..];
            }
            None => {
                out.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8 query")
}

/// Waits until the sim's open watches are exactly `expected`.
pub async fn wait_watches(sim: &Sim, expected: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = watches(sim);
        if now == expected {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            assert_eq!(now, expected, "open watches");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn namespace(name: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } })
}

pub fn namespace_labelled(name: &str, labels: &BTreeMap<&str, &str>) -> Value {
    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name, "labels": labels } })
}

pub fn configmap(ns: &str, name: &str, labels: &[(&str, &str)]) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": ns, "labels": labels },
        "data": { "k": "v" }
    })
}

pub fn object(
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
    name: &str,
    labels: &[(&str, &str)],
) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let mut metadata = json!({ "name": name, "labels": labels });
    if let Some(ns) = ns {
        metadata["namespace"] = json!(ns);
    }
    json!({ "apiVersion": api_version, "kind": kind, "metadata": metadata })
}

/// Creates through the sim's API, panicking with the server's message.
pub fn create(sim: &Sim, object: Value) -> Value {
    sim.create(object).unwrap_or_else(|e| panic!("create: {e}"))
}
