//! Replicas sharing the work through a Lease (`ha.enabled`): the leader
//! writes; a standby keeps its watches warm and holds what it sees until
//! the progress the leader publishes in the Lease covers it; a standby that
//! takes over writes, in order, what it holds and the leader had not
//! written, then everything it sees.
//!
//! Progress is, per watch, the highest resourceVersion handed to the
//! sinks before a flush that made it durable (a watch's events come in
//! resourceVersion order), published with every renewal and with the
//! release. A leader that dies leaves its last published progress: what it
//! wrote after it is written again by the new leader (counted); one that
//! stops releases with its final progress, so nothing is written twice.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use faro_core::config::HaConfig;
use faro_core::{DurableMark, EventHandler, HandlerError, LogRecord, MatchedEvent, Record};
use faro_dispatch::Dispatcher;
use faro_watch::{ElectionConfig, LeaderElector, LeaseProgress};
use tokio::sync::{Mutex, watch};

/// Events a standby holds at most; beyond, the oldest go (counted).
const HELD_MAX: usize = 1_000_000;

/// The identity of this replica: `ha.identity`, else `POD_NAME`, else the
/// host name.
pub fn identity(ha: &HaConfig) -> String {
    ha.identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| format!("faro-{}", std::process::id()))
}

/// The Leases' namespace: `ha.lease_namespace`, else `POD_NAMESPACE`, else `default`.
pub fn lease_namespace(ha: &HaConfig) -> String {
    ha.lease_namespace
        .clone()
        .or_else(|| {
            std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "default".to_owned())
}

/// Stands between the watches and the dispatcher.
pub struct Gate {
    inner: Dispatcher,
    state: Mutex<GateState>,
    /// Held events dropped past [`HELD_MAX`].
    pub dropped: AtomicU64,
    /// Held events written at a takeover.
    pub replayed: AtomicU64,
}

#[derive(Default)]
struct GateState {
    leading: bool,
    held: VecDeque<MatchedEvent>,
    /// Per watch, the highest resourceVersion handed on while leading.
    forwarded: BTreeMap<String, u64>,
    /// Per watch, what the leader last published as written.
    progress: BTreeMap<String, u64>,
}

fn rv(event: &MatchedEvent) -> Option<u64> {
    event.resource_version().parse().ok()
}

/// Whether the published progress covers `event`.
fn covered(progress: &BTreeMap<String, u64>, event: &MatchedEvent) -> bool {
    match (event.informer(), rv(event)) {
        (Some(informer), Some(rv)) => progress.get(&**informer).is_some_and(|p| rv <= *p),
        _ => false,
    }
}

impl Gate {
    pub fn new(inner: Dispatcher) -> Self {
        Self {
            inner,
            state: Mutex::default(),
            dropped: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
        }
    }

    async fn forward(&self, s: &mut GateState, event: &MatchedEvent) -> Result<(), HandlerError> {
        if let (Some(informer), Some(rv)) = (event.informer(), rv(event)) {
            let at = s.forwarded.entry(informer.to_string()).or_default();
            *at = (*at).max(rv);
        }
        self.inner.on_matched(event).await
    }

    /// Takes over: writes what is held and not covered, then passes everything on.
    pub async fn lead(&self) {
        let mut s = self.state.lock().await;
        let held = std::mem::take(&mut s.held);
        for event in held {
            if covered(&s.progress, &event) {
                continue;
            }
            self.replayed.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.forward(&mut s, &event).await {
                tracing::warn!("handing over a held event failed: {e}");
            }
        }
        s.leading = true;
    }

    /// Stops writing: from now on events are held.
    pub async fn follow(&self) {
        self.state.lock().await.leading = false;
    }

    /// The leader's published progress: held events it covers are let go.
    pub async fn set_progress(&self, progress: BTreeMap<String, u64>) {
        let mut s = self.state.lock().await;
        s.held.retain(|e| !covered(&progress, e));
        s.progress = progress;
    }

    /// What to publish: the progress before this replica led, raised by
    /// what it handed on since. Only durable after a flush that follows.
    pub async fn progress(&self) -> BTreeMap<String, u64> {
        let s = self.state.lock().await;
        let mut out = s.progress.clone();
        for (k, v) in &s.forwarded {
            let at = out.entry(k.clone()).or_default();
            *at = (*at).max(*v);
        }
        out
    }
}

#[async_trait::async_trait]
impl EventHandler for Gate {
    fn name(&self) -> &str {
        "ha-gate"
    }

    async fn on_matched(&self, event: &MatchedEvent) -> Result<(), HandlerError> {
        let mut s = self.state.lock().await;
        if s.leading {
            return self.forward(&mut s, event).await;
        }
        if !covered(&s.progress, event) {
            if s.held.len() >= HELD_MAX {
                s.held.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            s.held.push_back(event.clone());
        }
        Ok(())
    }

    async fn on_log(&self, record: &LogRecord) -> Result<(), HandlerError> {
        if self.state.lock().await.leading {
            return self.inner.on_log(record).await;
        }
        Ok(())
    }

    async fn on_logs(&self, records: &[LogRecord]) -> Result<(), HandlerError> {
        if self.state.lock().await.leading {
            return self.inner.on_logs(records).await;
        }
        Ok(())
    }

    async fn on_record(&self, record: &Record) -> Result<(), HandlerError> {
        if self.state.lock().await.leading {
            return self.inner.on_record(record).await;
        }
        Ok(())
    }

    async fn flush(&self) -> Result<Vec<DurableMark>, HandlerError> {
        EventHandler::flush(&self.inner).await
    }
}

/// The running election of one replica.
pub struct Ha {
    pub gate: Arc<Gate>,
    progress: LeaseProgress,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    elector: tokio::task::JoinHandle<()>,
}

impl Ha {
    /// Starts electing; prints `FARO_HA: leading` / `FARO_HA: following`
    /// as this replica's role changes.
    /// Progress is published only once `ready` (every initial list handed
    /// on), since a list's events do not come in resourceVersion order.
    pub fn start(
        client: kube::Client,
        ha: &HaConfig,
        gate: Arc<Gate>,
        dispatcher: Dispatcher,
        ready: Arc<std::sync::atomic::AtomicBool>,
    ) -> Ha {
        let config = ElectionConfig {
            namespace: lease_namespace(ha),
            name: ha.lease_name.clone(),
            identity: identity(ha),
            lease_duration: ha.lease_duration,
            renew_deadline: ha.renew_deadline,
            retry_period: ha.retry_period,
        };
        let elector = LeaderElector::new(client, config);
        let progress = elector.progress();
        let mut leading = elector.leading();
        let (stop, stop_rx) = watch::channel(false);
        let elector = tokio::spawn(elector.run(stop_rx));
        let mut tasks = Vec::new();
        let g = gate.clone();
        tasks.push(tokio::spawn(async move {
            println!("FARO_HA: following");
            while leading.changed().await.is_ok() {
                if *leading.borrow_and_update() {
                    g.lead().await;
                    println!("FARO_HA: leading");
                } else {
                    g.follow().await;
                    println!("FARO_HA: following");
                }
            }
        }));
        let g = gate.clone();
        let mut observed = progress.observed();
        tasks.push(tokio::spawn(async move {
            while observed.changed().await.is_ok() {
                let text = observed.borrow_and_update().clone();
                let parsed: BTreeMap<String, u64> = text
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default();
                g.set_progress(parsed).await;
            }
        }));
        let g = gate.clone();
        let p = progress.clone();
        let retry = ha.retry_period;
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(retry).await;
                if !ready.load(Ordering::SeqCst) || !g.state.lock().await.leading {
                    continue;
                }
                // Taken before the flush: what was handed on is durable after it.
                let snapshot = g.progress().await;
                if dispatcher.flush().await.is_ok() {
                    publish(&p, &snapshot);
                }
            }
        }));
        Ha {
            gate,
            progress,
            stop,
            tasks,
            elector,
        }
    }

    /// After the watches stopped and the dispatcher drained: publishes the
    /// final progress and releases the Lease (bounded in time).
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        if self.gate.state.lock().await.leading {
            publish(&self.progress, &self.gate.progress().await);
        }
        self.stop.send_replace(true);
        if tokio::time::timeout(Duration::from_secs(5), self.elector)
            .await
            .is_err()
        {
            tracing::warn!("the Lease was not released within 5 s");
        }
    }
}

fn publish(progress: &LeaseProgress, snapshot: &BTreeMap<String, u64>) {
    if let Ok(text) = serde_json::to_string(snapshot) {
        progress.publish(text);
    }
}
