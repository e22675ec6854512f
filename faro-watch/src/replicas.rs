//! Replicas sharing the work through Leases (`ha:`): events are split into
//! `shards` by a stable hash of (GVR, namespace); each shard has a Lease,
//! and only its holder writes the shard's events. Every replica keeps its
//! watches warm and holds the events of the shards it does not lead until
//! the progress their leader publishes in the Lease covers them; a replica
//! that takes a shard over writes, in order, what it holds and the leader
//! had not written, then everything of that shard it sees.
//!
//! Progress is, per shard and watch, the highest resourceVersion handed to
//! the sinks before a flush that made it durable (a watch's events come in
//! resourceVersion order), published with every renewal and with the
//! release. A leader that dies leaves its last published progress: what it
//! wrote after it is written again by the new leader (counted); one that
//! stops releases with its final progress, so nothing is written twice.
//!
//! With several shards, each replica also renews a membership Lease, so
//! that the live replicas are known: a replica takes a free shard only
//! while it holds fewer than ⌈shards / replicas⌉ (and, when some replica
//! holds fewer than ⌊shards / replicas⌋, only if it does too), and the
//! replica holding the most hands one over while another has too few.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use faro_core::config::HaConfig;
use faro_core::{DurableMark, EventHandler, HandlerError, LogRecord, MatchedEvent, Record};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams};
use tokio::sync::{Mutex, watch};

use crate::informer::lock;
use crate::lease::{AcquirePolicy, ElectionConfig, LeaderElector, LeaseProgress, StepDown};

/// Events a standby holds at most; beyond, the oldest go (counted).
const HELD_MAX: usize = 1_000_000;

/// The label that groups the Leases of one `ha.lease_name`.
const GROUP: &str = "faro.io/lease-group";

/// The identity of this replica: `ha.identity`, else `POD_NAME`, else the
/// host name.
pub fn default_identity(ha: &HaConfig) -> String {
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
pub fn default_lease_namespace(ha: &HaConfig) -> String {
    ha.lease_namespace
        .clone()
        .or_else(|| {
            std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "default".to_owned())
}

/// The Lease of `shard`: `lease_name` alone with one shard.
fn shard_lease(ha: &HaConfig, shard: u32) -> String {
    if ha.shards <= 1 {
        ha.lease_name.clone()
    } else {
        format!("{}-{shard}", ha.lease_name)
    }
}

/// Stands between the watches and the handler that writes (a dispatcher):
/// passes on the events of the shards this replica leads, holds the others.
pub struct Gate {
    inner: Arc<dyn EventHandler>,
    shards: Vec<Mutex<ShardState>>,
    /// Held events dropped past [`HELD_MAX`].
    dropped: AtomicU64,
    /// Held events written at a takeover.
    replayed: AtomicU64,
}

#[derive(Default)]
struct ShardState {
    leading: bool,
    held: VecDeque<MatchedEvent>,
    /// Per watch, the highest resourceVersion handed on while leading.
    forwarded: BTreeMap<String, u64>,
    /// Per watch, what the shard's leader last published as written.
    progress: BTreeMap<String, u64>,
    /// What this replica last published for the shard: publishing never
    /// goes back (a periodic round and a handover may cross).
    published: BTreeMap<String, u64>,
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
    /// A gate in front of `inner` for `shards` shards, leading none yet.
    pub fn new(inner: Arc<dyn EventHandler>, shards: u32) -> Self {
        Self {
            inner,
            shards: (0..shards.max(1)).map(|_| Mutex::default()).collect(),
            dropped: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
        }
    }

    fn shard(&self, event: &MatchedEvent) -> &Mutex<ShardState> {
        let i = event.shard().unwrap_or(0) as usize;
        &self.shards[i.min(self.shards.len() - 1)]
    }

    async fn forward(&self, s: &mut ShardState, event: &MatchedEvent) -> Result<(), HandlerError> {
        if let (Some(informer), Some(rv)) = (event.informer(), rv(event)) {
            let at = s.forwarded.entry(informer.to_string()).or_default();
            *at = (*at).max(rv);
        }
        self.inner.on_matched(event).await
    }

    /// Takes `shard` over: writes what is held and not covered, then passes
    /// its events on.
    pub(crate) async fn lead(&self, shard: u32) {
        let mut s = self.shards[shard as usize].lock().await;
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

    /// Stops writing `shard`: from now on its events are held.
    pub(crate) async fn follow(&self, shard: u32) {
        self.shards[shard as usize].lock().await.leading = false;
    }

    /// The published progress of `shard`: held events it covers are let go.
    pub(crate) async fn set_progress(&self, shard: u32, progress: BTreeMap<String, u64>) {
        let mut s = self.shards[shard as usize].lock().await;
        s.held.retain(|e| !covered(&progress, e));
        s.progress = progress;
    }

    /// What to publish for `shard`: the progress before this replica led
    /// it, raised by what it handed on since. Durable after a flush that
    /// follows.
    pub(crate) async fn progress(&self, shard: u32) -> Option<BTreeMap<String, u64>> {
        if !self.shards[shard as usize].lock().await.leading {
            return None;
        }
        Some(self.written(shard).await)
    }

    /// [`Gate::progress`] whether or not `shard` is led now (for a handover,
    /// after it stopped being written).
    pub(crate) async fn written(&self, shard: u32) -> BTreeMap<String, u64> {
        let s = self.shards[shard as usize].lock().await;
        let mut out = s.progress.clone();
        for (k, v) in &s.forwarded {
            let at = out.entry(k.clone()).or_default();
            *at = (*at).max(*v);
        }
        out
    }

    /// Held events written at takeovers, and held events dropped past the bound.
    pub fn handed_over(&self) -> (u64, u64) {
        (
            self.replayed.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    /// `snapshot` raised to what was published before for `shard`, kept as
    /// the last published: what to publish now.
    pub(crate) async fn to_publish(
        &self,
        shard: u32,
        snapshot: BTreeMap<String, u64>,
    ) -> BTreeMap<String, u64> {
        let mut s = self.shards[shard as usize].lock().await;
        for (k, v) in snapshot {
            let at = s.published.entry(k).or_default();
            *at = (*at).max(v);
        }
        s.published.clone()
    }

    /// Whether this replica leads the shard of (`gvr`, `namespace`): log
    /// lines and lifecycle records go with their pod's shard, Event records
    /// with the Event's. They are not held: a takeover writes them from then on.
    async fn leads(&self, gvr: &str, namespace: Option<&str>) -> bool {
        let shard = faro_core::config::shard_of(gvr, namespace, self.shards.len() as u32);
        self.shards[shard as usize].lock().await.leading
    }

    async fn leads_record(&self, record: &Record) -> bool {
        let namespace = record.subject().split_once('/').map(|(ns, _)| ns);
        let gvr = match record.kind() {
            faro_core::RecordKind::K8sEvent => "v1/events",
            _ => "v1/pods",
        };
        self.leads(gvr, namespace).await
    }
}

#[async_trait::async_trait]
impl EventHandler for Gate {
    fn name(&self) -> &str {
        "ha-gate"
    }

    async fn on_matched(&self, event: &MatchedEvent) -> Result<(), HandlerError> {
        let mut s = self.shard(event).lock().await;
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
        if self
            .leads("v1/pods", Some(&record.source().namespace))
            .await
        {
            return self.inner.on_log(record).await;
        }
        Ok(())
    }

    async fn on_logs(&self, records: &[LogRecord]) -> Result<(), HandlerError> {
        // One batch is one container's lines.
        let Some(first) = records.first() else {
            return Ok(());
        };
        if self.leads("v1/pods", Some(&first.source().namespace)).await {
            return self.inner.on_logs(records).await;
        }
        Ok(())
    }

    async fn on_record(&self, record: &Record) -> Result<(), HandlerError> {
        if self.leads_record(record).await {
            return self.inner.on_record(record).await;
        }
        Ok(())
    }

    async fn flush(&self) -> Result<Vec<DurableMark>, HandlerError> {
        self.inner.flush().await
    }
}

/// How many shards this replica may lead, from the Leases it sees.
#[derive(Debug, Clone, Copy, Default)]
struct Share {
    /// ⌈shards / live replicas⌉.
    most: usize,
    /// ⌊shards / live replicas⌋.
    least: usize,
    /// Shards this replica leads.
    mine: usize,
    /// Some live replica leads fewer than `least`.
    someone_short: bool,
}

/// One replica's elections: a Lease per shard (and a membership Lease with
/// several), the progress published and read, the share balanced.
///
/// ```no_run
/// # async fn run(client: kube::Client, ha: faro_core::config::HaConfig, writer: std::sync::Arc<dyn faro_core::EventHandler>, controller: faro_watch::Controller) {
/// use std::sync::{Arc, atomic::AtomicBool};
/// let gate = Arc::new(faro_watch::Gate::new(writer, ha.shards));
/// controller.add_handler(gate.clone());
/// let ready = Arc::new(AtomicBool::new(false));
/// let replicas = faro_watch::Replicas::start(client, &ha, "replica-a", "faro", gate, ready);
/// // … controller.ready(), ready.store(true), run …
/// replicas.stop().await; // after the watches stopped and the writer drained
/// # }
/// ```
pub struct Replicas {
    gate: Arc<Gate>,
    roles: watch::Receiver<Vec<bool>>,
    progress: Vec<LeaseProgress>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    electors: Vec<tokio::task::JoinHandle<()>>,
}

impl Replicas {
    /// Starts electing as `identity`, with the Leases in `namespace`.
    /// Progress is published only once `ready` (every initial list handed
    /// on), since a list's events do not come in resourceVersion order.
    pub fn start(
        client: kube::Client,
        ha: &HaConfig,
        identity: &str,
        namespace: &str,
        gate: Arc<Gate>,
        ready: Arc<AtomicBool>,
    ) -> Replicas {
        let namespace = namespace.to_owned();
        let me = identity.to_owned();
        let sharded = ha.shards > 1;
        let writer = gate.inner.clone();
        let (roles_tx, roles) = watch::channel(vec![false; ha.shards.max(1) as usize]);
        let roles_tx = Arc::new(roles_tx);
        let labels: BTreeMap<String, String> = [(GROUP.to_owned(), ha.lease_name.clone())].into();
        let share = Arc::new(StdMutex::new(Share::default()));
        let may_take: AcquirePolicy = {
            let share = share.clone();
            Arc::new(move || {
                let s = *lock(&share);
                s.mine < s.most && (s.mine < s.least || !s.someone_short)
            })
        };
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut electors = Vec::new();
        let mut progress = Vec::new();
        let mut step_downs: Vec<StepDown> = Vec::new();
        let mut leading_all = Vec::new();
        for shard in 0..ha.shards.max(1) {
            let mut elector = LeaderElector::new(
                client.clone(),
                ElectionConfig {
                    namespace: namespace.clone(),
                    name: shard_lease(ha, shard),
                    identity: me.clone(),
                    lease_duration: ha.lease_duration,
                    renew_deadline: ha.renew_deadline,
                    retry_period: ha.retry_period,
                    labels: labels.clone(),
                },
            );
            if sharded {
                elector = elector.with_policy(may_take.clone());
            }
            let p = elector.progress();
            progress.push(p.clone());
            step_downs.push(elector.step_down());
            let mut leading = elector.leading();
            leading_all.push(elector.leading());
            electors.push(tokio::spawn(elector.run(stop_rx.clone())));
            let g = gate.clone();
            let roles_tx = roles_tx.clone();
            tasks.push(tokio::spawn(async move {
                while leading.changed().await.is_ok() {
                    let now = *leading.borrow_and_update();
                    if now {
                        g.lead(shard).await;
                    } else {
                        g.follow(shard).await;
                    }
                    roles_tx.send_modify(|r| r[shard as usize] = now);
                }
            }));
            let g = gate.clone();
            let mut observed = p.observed();
            tasks.push(tokio::spawn(async move {
                while observed.changed().await.is_ok() {
                    let text = observed.borrow_and_update().clone();
                    let parsed: BTreeMap<String, u64> = text
                        .and_then(|t| serde_json::from_str(&t).ok())
                        .unwrap_or_default();
                    g.set_progress(shard, parsed).await;
                }
            }));
        }
        let g = gate.clone();
        let publishers = progress.clone();
        let retry = ha.retry_period;
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(retry).await;
                if !ready.load(Ordering::SeqCst) {
                    continue;
                }
                // Taken before the flush: what was handed on is durable after it.
                let mut snapshots = Vec::new();
                for (shard, p) in publishers.iter().enumerate() {
                    if let Some(s) = g.progress(shard as u32).await {
                        snapshots.push((shard as u32, p, s));
                    }
                }
                if !snapshots.is_empty() && writer.flush().await.is_ok() {
                    for (shard, p, s) in snapshots {
                        let s = g.to_publish(shard, s).await;
                        publish(p, &s);
                    }
                }
            }
        }));
        if sharded {
            // This replica's membership, and the share it may lead.
            let member = LeaderElector::new(
                client.clone(),
                ElectionConfig {
                    namespace: namespace.clone(),
                    name: format!("{}-member-{}", ha.lease_name, lease_suffix(&me)),
                    identity: me.clone(),
                    lease_duration: ha.lease_duration,
                    renew_deadline: ha.renew_deadline,
                    retry_period: ha.retry_period,
                    labels: [
                        (GROUP.to_owned(), ha.lease_name.clone()),
                        ("faro.io/member".to_owned(), "true".to_owned()),
                    ]
                    .into(),
                },
            );
            electors.push(tokio::spawn(member.run(stop_rx.clone())));
            tasks.push(tokio::spawn(balance(
                Api::namespaced(client, &namespace),
                ha.clone(),
                me,
                share,
                leading_all,
                Handover {
                    gate: gate.clone(),
                    step_downs,
                    progress: progress.clone(),
                },
            )));
        }
        Replicas {
            gate,
            roles,
            progress,
            stop,
            tasks,
            electors,
        }
    }

    /// Which shards this replica leads; changes as that does.
    pub fn roles(&self) -> watch::Receiver<Vec<bool>> {
        self.roles.clone()
    }

    /// After the watches stopped and the writer drained: publishes the
    /// final progress and releases the Leases (bounded in time).
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        for (shard, p) in self.progress.iter().enumerate() {
            if let Some(s) = self.gate.progress(shard as u32).await {
                let s = self.gate.to_publish(shard as u32, s).await;
                publish(p, &s);
            }
        }
        self.stop.send_replace(true);
        for e in self.electors {
            if tokio::time::timeout(Duration::from_secs(5), e)
                .await
                .is_err()
            {
                tracing::warn!("a Lease was not released within 5 s");
            }
        }
    }
}

/// A Lease name part from an identity: lowercase, other characters as `-`.
fn lease_suffix(identity: &str) -> String {
    let s: String = identity
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '.') => c,
            _ => '-',
        })
        .collect();
    s.trim_matches(|c| c == '-' || c == '.')
        .chars()
        .take(200)
        .collect()
}

/// Every retry period: counts the live replicas (valid membership Leases)
/// and who leads how many shards, sets this replica's share, and hands a
/// shard over when this replica leads the most while another is short.
/// What a replica needs to hand a shard over without writing anything twice.
struct Handover {
    gate: Arc<Gate>,
    step_downs: Vec<StepDown>,
    progress: Vec<LeaseProgress>,
}

impl Handover {
    /// Stops writing `shard`, makes what was written durable, publishes
    /// exactly how far that is, then releases the shard's Lease.
    async fn give(&self, shard: usize) {
        let s = shard as u32;
        self.gate.follow(s).await;
        let written = self.gate.written(s).await;
        if self.gate.inner.flush().await.is_ok() {
            let text = self.gate.to_publish(s, written).await;
            publish(&self.progress[shard], &text);
        }
        self.step_downs[shard].request();
    }
}

async fn balance(
    api: Api<Lease>,
    ha: HaConfig,
    me: String,
    share: Arc<StdMutex<Share>>,
    leading: Vec<watch::Receiver<bool>>,
    handover: Handover,
) {
    let shards = ha.shards as usize;
    let mut last_give = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(ha.retry_period).await;
        let Ok(list) = api
            .list(&ListParams::default().labels(&format!("{GROUP}={}", ha.lease_name)))
            .await
        else {
            continue;
        };
        let now = jiff::Timestamp::now();
        let valid = |l: &Lease| -> Option<String> {
            let spec = l.spec.as_ref()?;
            let holder = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
            let renew = spec.renew_time.as_ref()?.0;
            let duration = jiff::SignedDuration::from_secs(i64::from(
                spec.lease_duration_seconds.unwrap_or(0),
            ));
            (renew + duration > now).then_some(holder)
        };
        let is_member = |l: &Lease| {
            l.metadata
                .labels
                .as_ref()
                .is_some_and(|m| m.contains_key("faro.io/member"))
        };
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for l in list.items.iter().filter(|l| is_member(l)) {
            if let Some(h) = valid(l) {
                counts.entry(h).or_default();
            }
        }
        counts.entry(me.clone()).or_default();
        for l in list.items.iter().filter(|l| !is_member(l)) {
            if let Some(h) = valid(l)
                && let Some(n) = counts.get_mut(&h)
            {
                *n += 1;
            }
        }
        let mine = leading.iter().filter(|l| *l.borrow()).count();
        counts.insert(me.clone(), mine);
        let live = counts.len().max(1);
        let least = shards / live;
        let most = shards.div_ceil(live);
        let someone_short = counts.values().any(|n| *n < least);
        // The replica leading the most (the highest identity among equals)
        // gives one shard at a time while another is short.
        let top = counts
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)))
            .map(|(k, _)| k.clone());
        let give_one = someone_short && mine > least && top.as_deref() == Some(me.as_str());
        *lock(&share) = Share {
            most,
            least,
            mine,
            someone_short,
        };
        if (give_one || mine > most)
            && last_give.elapsed() >= ha.lease_duration
            && let Some(i) = (0..leading.len()).rev().find(|i| *leading[*i].borrow())
        {
            tracing::info!(shard = i, "handing a shard over to balance the replicas");
            handover.give(i).await;
            last_give = tokio::time::Instant::now();
        }
    }
}

fn publish(progress: &LeaseProgress, snapshot: &BTreeMap<String, u64>) {
    if let Ok(text) = serde_json::to_string(snapshot) {
        progress.publish(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faro_core::{ContainerRef, ContainerType, Gvr, RecordKind, RecordParts};
    use serde_json::json;

    /// Remembers what it was handed, as short strings.
    #[derive(Default)]
    struct Seen(StdMutex<Vec<String>>);

    impl Seen {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    #[async_trait::async_trait]
    impl EventHandler for Seen {
        fn name(&self) -> &str {
            "seen"
        }
        async fn on_matched(&self, e: &MatchedEvent) -> Result<(), HandlerError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("event {} {}", e.key(), e.resource_version()));
            Ok(())
        }
        async fn on_log(&self, r: &LogRecord) -> Result<(), HandlerError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("log {}", r.source().namespace));
            Ok(())
        }
        async fn on_record(&self, r: &Record) -> Result<(), HandlerError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("record {}", r.subject()));
            Ok(())
        }
    }

    const SHARDS: u32 = 4;

    /// A namespace of `shard` for `gvr`.
    fn namespace_of(gvr: &str, shard: u32) -> String {
        (0..)
            .map(|i| format!("ns-{i}"))
            .find(|ns| faro_core::config::shard_of(gvr, Some(ns), SHARDS) == shard)
            .unwrap()
    }

    fn event(ns: &str, name: &str, rv: u64) -> MatchedEvent {
        let object = serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": rv.to_string()}}))
        .unwrap();
        MatchedEvent::builder(
            faro_core::EventType::Updated,
            Arc::new(Gvr::parse("v1/configmaps").unwrap()),
            Arc::new(object),
        )
        .informer(Some(Arc::from("v1/configmaps")))
        .writer(
            Some(Arc::from("me")),
            Some(faro_core::config::shard_of(
                "v1/configmaps",
                Some(ns),
                SHARDS,
            )),
        )
        .build()
    }

    #[tokio::test]
    async fn held_events_covered_by_the_leader_s_progress_are_let_go_the_rest_written_on_takeover()
    {
        let seen = Arc::new(Seen::default());
        let gate = Gate::new(seen.clone(), SHARDS);
        let ns = namespace_of("v1/configmaps", 1);
        for rv in [10, 11, 12, 13] {
            gate.on_matched(&event(&ns, "a", rv)).await.unwrap();
        }
        assert!(seen.take().is_empty(), "a follower writes nothing");
        gate.set_progress(1, [("v1/configmaps".to_owned(), 11)].into())
            .await;
        // Another shard's progress covers nothing of this one.
        gate.set_progress(2, [("v1/configmaps".to_owned(), 99)].into())
            .await;
        gate.lead(1).await;
        assert_eq!(
            seen.take(),
            [format!("event {ns}/a 12"), format!("event {ns}/a 13")]
        );
        assert_eq!(gate.handed_over(), (2, 0));
        gate.on_matched(&event(&ns, "a", 14)).await.unwrap();
        assert_eq!(seen.take(), [format!("event {ns}/a 14")]);
        assert_eq!(
            gate.progress(1).await,
            Some([("v1/configmaps".to_owned(), 14)].into())
        );
        assert_eq!(gate.progress(2).await, None, "not led, nothing to publish");
        gate.follow(1).await;
        gate.on_matched(&event(&ns, "a", 15)).await.unwrap();
        assert!(seen.take().is_empty());
    }

    #[tokio::test]
    async fn log_lines_and_records_go_with_their_namespace_s_shard() {
        let seen = Arc::new(Seen::default());
        let gate = Gate::new(seen.clone(), SHARDS);
        gate.lead(3).await;
        let (mine, other) = (namespace_of("v1/pods", 3), namespace_of("v1/pods", 0));
        for ns in [&mine, &other] {
            let source = Arc::new(ContainerRef {
                namespace: Arc::from(ns.as_str()),
                pod: Arc::from("p"),
                pod_uid: Arc::from("u"),
                container: Arc::from("c"),
                container_type: ContainerType::Regular,
                correlation: None,
                cluster: None,
            });
            let line = LogRecord::builder(source, 0, "2026-12-01T10:00:00Z", "hello").build();
            gate.on_log(&line).await.unwrap();
            let record = Record::new(
                RecordParts {
                    kind: RecordKind::Lifecycle,
                    subject: format!("{ns}/p"),
                    severity: "Normal",
                    reason: "Started".into(),
                    narrative: "started".into(),
                    correlation: None,
                    observed_at: jiff::Timestamp::UNIX_EPOCH,
                    cluster: None,
                },
                "{}".into(),
            );
            gate.on_record(&record).await.unwrap();
        }
        assert_eq!(
            seen.take(),
            [format!("log {mine}"), format!("record {mine}/p")]
        );
    }
}
