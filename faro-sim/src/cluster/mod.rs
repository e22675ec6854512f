//! What a cluster does after the API server has stored a write: the
//! workload controllers, the garbage collector, the scheduler and a kubelet
//! stand-in per node, each recording Kubernetes Events as the real component
//! does.
//!
//! One task runs them all. It reads the store's history after the last
//! version it has seen (as an informer would), queues the objects each write
//! concerns, reconciles them level-triggered, and keeps timers for what
//! happens later (a container exiting, a back-off ending, a CronJob's next
//! run). Every write goes through the same verbs as a client's, so watches
//! see exactly what they would see on a real cluster.

mod apps;
mod batch;
mod events;
mod gc;
mod kubelet;
mod scheduler;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

pub(crate) use events::{Recorder, Source, from_events_v1, to_events_v1};

use crate::ops::{self, DeleteOptions, Target};
use crate::shared::Shared;
use crate::store::{Change, HistoryEntry, Stored};

pub(crate) const PODS: &str = "/pods";
pub(crate) const NODES: &str = "/nodes";
pub(crate) const REPLICASETS: &str = "apps/replicasets";
pub(crate) const DEPLOYMENTS: &str = "apps/deployments";
pub(crate) const STATEFULSETS: &str = "apps/statefulsets";
pub(crate) const DAEMONSETS: &str = "apps/daemonsets";
pub(crate) const JOBS: &str = "batch/jobs";
pub(crate) const CRONJOBS: &str = "batch/cronjobs";

/// Simulated time: durations the cluster waits are divided by the scale,
/// so a test can run a five-minute back-off in seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    scale: f64,
    origin: Instant,
    wall_origin: jiff::Timestamp,
}

impl Clock {
    pub fn new(scale: f64) -> Self {
        Self {
            scale: if scale.is_finite() && scale > 0.0 {
                scale
            } else {
                1.0
            },
            origin: Instant::now(),
            wall_origin: jiff::Timestamp::now(),
        }
    }

    /// The real time a simulated duration takes.
    pub fn real(&self, simulated: Duration) -> Duration {
        simulated.div_f64(self.scale)
    }

    /// When a simulated duration from now ends.
    pub fn after(&self, simulated: Duration) -> Instant {
        Instant::now() + self.real(simulated)
    }

    /// The simulated wall clock (runs `scale` times faster than the real one).
    pub fn sim_now(&self) -> jiff::Timestamp {
        let elapsed = self.origin.elapsed().mul_f64(self.scale);
        let elapsed = jiff::SignedDuration::try_from(elapsed).unwrap_or_default();
        self.wall_origin
            .checked_add(elapsed)
            .unwrap_or(self.wall_origin)
    }

    /// The real instant at which the simulated clock shows `at`.
    pub fn instant_of(&self, at: jiff::Timestamp) -> Instant {
        let ahead = at.duration_since(self.sim_now());
        let ahead = Duration::try_from(ahead).unwrap_or_default();
        Instant::now() + self.real(ahead)
    }
}

/// What the manager has to look at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Key {
    Pod(String, String),
    ReplicaSet(String, String),
    Deployment(String, String),
    StatefulSet(String, String),
    DaemonSet(String, String),
    Job(String, String),
    CronJob(String, String),
    /// The dependents of a deleted owner (by uid).
    Orphans(String),
    /// An owner being deleted in the foreground or with orphaning.
    Finalize(Arc<str>, String, String),
    /// A deleted pod's logs, forgotten after its grace period.
    ForgetLogs(String, String, String),
    /// Every pod still waiting for a node.
    Unscheduled,
    /// An Event whose time to live may be over.
    ExpireEvent(String, String),
}

impl Key {
    fn of(storage: &str, ns: &str, name: &str) -> Option<Key> {
        let (ns, name) = (ns.to_string(), name.to_string());
        Some(match storage {
            PODS => Key::Pod(ns, name),
            REPLICASETS => Key::ReplicaSet(ns, name),
            DEPLOYMENTS => Key::Deployment(ns, name),
            STATEFULSETS => Key::StatefulSet(ns, name),
            DAEMONSETS => Key::DaemonSet(ns, name),
            JOBS => Key::Job(ns, name),
            CRONJOBS => Key::CronJob(ns, name),
            _ => return None,
        })
    }

    fn of_owner(kind: &str, ns: &str, name: &str) -> Option<Key> {
        Key::of(storage_of_kind(kind)?, ns, name)
    }
}

/// A dependent in the owner index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Dependent {
    pub storage: Arc<str>,
    pub namespace: String,
    pub name: String,
}

/// The cluster's behaviour, tunable per simulated cluster.
#[derive(Debug, Clone)]
pub(crate) struct ClusterConfig {
    pub nodes: usize,
    pub time_scale: f64,
    pub log_lines_per_second: f64,
    pub event_ttl: Duration,
}

/// The controller manager, scheduler and kubelets in one.
pub(crate) struct Manager {
    shared: Weak<Shared>,
    pub clock: Clock,
    pub config: ClusterConfig,
    last_rv: u64,
    queue: VecDeque<Key>,
    queued: HashSet<Key>,
    timers: BTreeSet<(Instant, u64, Key)>,
    /// The earliest timer of each key, so that repeated wakes do not pile up.
    timer_of: HashMap<Key, Instant>,
    timer_seq: u64,
    /// Owner uid → its dependents.
    pub owners: HashMap<String, HashSet<Dependent>>,
    pub recorder: Recorder,
    pub kubelet: kubelet::Kubelet,
    pub cron: batch::CronState,
}

/// The api a controller writes through: the server's own verbs.
pub(crate) struct Api<'a> {
    pub shared: &'a Shared,
}

impl Api<'_> {
    fn target(&self, storage: &str, ns: &str, name: Option<&str>) -> Option<Target> {
        let (group, plural) = storage.split_once('/')?;
        let def = self.shared.registry().find(group, "v1", plural).cloned()?;
        Some(Target {
            namespace: def.namespaced.then(|| ns.to_string()),
            def,
            name: name.map(str::to_string),
            subresource: None,
        })
    }

    pub fn get(&self, storage: &str, ns: &str, name: &str) -> Option<Arc<Stored>> {
        self.shared.store().get(storage, ns, name)
    }

    pub fn list(&self, storage: &str, ns: Option<&str>) -> Vec<Arc<Stored>> {
        self.shared.store().list(storage, ns)
    }

    pub fn create(&self, storage: &str, ns: &str, object: Value) -> Option<Arc<Stored>> {
        let target = self.target(storage, ns, None)?;
        match ops::create(self.shared, &target, object) {
            Ok(stored) => Some(stored),
            Err(e) => {
                tracing::debug!(storage, ns, error = %e, "controller create refused");
                None
            }
        }
    }

    /// Replaces an object with `f` applied; conditional on the version read.
    pub fn modify(
        &self,
        current: &Stored,
        storage: &str,
        f: impl FnOnce(&mut Value),
    ) -> Option<Arc<Stored>> {
        self.write(current, storage, None, f)
    }

    /// Replaces an object's status with `f` applied to the object.
    pub fn modify_status(
        &self,
        current: &Stored,
        storage: &str,
        f: impl FnOnce(&mut Value),
    ) -> Option<Arc<Stored>> {
        self.write(current, storage, Some("status"), f)
    }

    fn write(
        &self,
        current: &Stored,
        storage: &str,
        subresource: Option<&str>,
        f: impl FnOnce(&mut Value),
    ) -> Option<Arc<Stored>> {
        let ns = current.namespace.as_deref().unwrap_or("");
        let mut target = self.target(storage, ns, Some(&current.name))?;
        if subresource.is_some() && target.def.subresources.iter().any(|s| s == "status") {
            target.subresource = subresource.map(str::to_string);
        }
        let mut value = current.value.clone();
        f(&mut value);
        if value == current.value {
            return None;
        }
        match ops::update(self.shared, &target, value) {
            Ok(stored) => Some(stored),
            Err(e) => {
                tracing::debug!(storage, ns, name = %current.name, error = %e, "controller update refused");
                None
            }
        }
    }

    pub fn delete(&self, storage: &str, ns: &str, name: &str, options: &DeleteOptions) -> bool {
        let Some(target) = self.target(storage, ns, Some(name)) else {
            return false;
        };
        ops::delete(self.shared, &target, options).is_ok()
    }
}

/// `metadata.uid` of an object.
pub(crate) fn uid_of(value: &Value) -> &str {
    value["metadata"]["uid"].as_str().unwrap_or_default()
}

/// The owner reference with `controller: true`, as (kind, name, uid).
pub(crate) fn controller_of(value: &Value) -> Option<(&str, &str, &str)> {
    value["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
        .map(|r| {
            (
                r["kind"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default(),
                r["uid"].as_str().unwrap_or_default(),
            )
        })
}

/// An owner reference to `owner` (`controller: true`, `blockOwnerDeletion: true`).
pub(crate) fn owner_ref(owner: &Stored) -> Value {
    json!({
        "apiVersion": owner.value["apiVersion"],
        "kind": owner.value["kind"],
        "name": owner.name,
        "uid": owner.value["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Objects in `storage` whose controller is `owner`, found through the
/// owner index (as of the writes read before this round) rather than by
/// scanning the namespace.
pub(crate) fn owned(m: &Manager, api: &Api<'_>, storage: &str, owner: &Stored) -> Vec<Arc<Stored>> {
    let uid = uid_of(&owner.value);
    let Some(dependents) = m.owners.get(uid) else {
        return Vec::new();
    };
    let mut found: Vec<Arc<Stored>> = dependents
        .iter()
        .filter(|d| &*d.storage == storage)
        .filter_map(|d| api.get(storage, &d.namespace, &d.name))
        .filter(|o| controller_of(&o.value).is_some_and(|(_, _, u)| u == uid))
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// True while an object has a `deletionTimestamp`.
pub(crate) fn deleting(value: &Value) -> bool {
    value["metadata"].get("deletionTimestamp").is_some()
}

/// Seconds as `Duration`, from a JSON number or a duration string (`5s`, `2m`, `1.5`).
pub(crate) fn seconds(value: &Value) -> Option<Duration> {
    let secs = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => {
            let s = s.trim();
            let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
                Some(i) => s.split_at(i),
                None => (s, "s"),
            };
            let n: f64 = number.trim().parse().ok()?;
            match unit {
                "ms" => n / 1000.0,
                "s" => n,
                "m" => n * 60.0,
                "h" => n * 3600.0,
                _ => return None,
            }
        }
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// RFC 3339 at seconds precision, as the API server writes `metav1.Time`.
pub(crate) fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    now.round(jiff::Unit::Second).unwrap_or(now).to_string()
}

impl Manager {
    fn new(shared: &Arc<Shared>, config: ClusterConfig) -> Self {
        Self {
            shared: Arc::downgrade(shared),
            clock: Clock::new(config.time_scale),
            config,
            last_rv: 0,
            queue: VecDeque::new(),
            queued: HashSet::new(),
            timers: BTreeSet::new(),
            timer_of: HashMap::new(),
            timer_seq: 0,
            owners: HashMap::new(),
            recorder: Recorder::default(),
            kubelet: kubelet::Kubelet::default(),
            cron: batch::CronState::default(),
        }
    }

    /// Records an event about `on` from `source`.
    pub fn note(
        &mut self,
        api: &Api<'_>,
        source: Source<'_>,
        on: &Value,
        warning: bool,
        reason: &str,
        message: String,
    ) {
        self.recorder.record(
            api,
            source,
            events::Occurrence {
                involved: on,
                field_path: None,
                warning,
                reason,
                message,
                action: "",
            },
        );
    }

    pub fn enqueue(&mut self, key: Key) {
        if self.queued.insert(key.clone()) {
            self.queue.push_back(key);
        }
    }

    /// Looks at `key` again at `at` (real time).
    pub fn wake_at(&mut self, at: Instant, key: Key) {
        if self.timer_of.get(&key).is_some_and(|t| *t <= at) {
            return;
        }
        self.timer_seq += 1;
        self.timer_of.insert(key.clone(), at);
        self.timers.insert((at, self.timer_seq, key));
    }

    /// Looks at `key` again after a simulated duration.
    pub fn wake_after(&mut self, simulated: Duration, key: Key) {
        let at = self.clock.after(simulated);
        self.wake_at(at, key);
    }

    /// Takes note of one write: the owner index, and what it concerns.
    fn observe(&mut self, entry: &HistoryEntry) {
        let object = &entry.object;
        let ns = object.namespace.as_deref().unwrap_or("");
        self.index_owners(entry);
        if entry.change == Change::Deleted {
            let uid = uid_of(&object.value);
            if self.owners.contains_key(uid) {
                self.enqueue(Key::Orphans(uid.to_string()));
            }
            if &*entry.storage == PODS {
                let grace = object.value["metadata"]["deletionGracePeriodSeconds"]
                    .as_u64()
                    .unwrap_or(0);
                self.wake_after(
                    Duration::from_secs(grace),
                    Key::ForgetLogs(ns.to_string(), object.name.clone(), uid.to_string()),
                );
            }
        } else if deleting(&object.value) {
            let finalizers = &object.value["metadata"]["finalizers"];
            let has = |f: &str| {
                finalizers
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == f))
            };
            if has("foregroundDeletion") || has("orphan") {
                self.enqueue(Key::Finalize(
                    entry.storage.clone(),
                    ns.to_string(),
                    object.name.clone(),
                ));
            }
        }
        if let Some(key) = Key::of(&entry.storage, ns, &object.name) {
            self.enqueue(key);
        }
        if let Some((kind, name, _)) = controller_of(&object.value)
            && let Some(key) = Key::of_owner(kind, ns, name)
        {
            self.enqueue(key);
        }
        if &*entry.storage == NODES {
            self.enqueue(Key::Unscheduled);
            if let Some(shared) = self.shared.upgrade() {
                let daemonsets = shared.store().list(DAEMONSETS, None);
                for ds in daemonsets {
                    let ns = ds.namespace.clone().unwrap_or_default();
                    self.enqueue(Key::DaemonSet(ns, ds.name.clone()));
                }
            }
        }
    }

    fn index_owners(&mut self, entry: &HistoryEntry) {
        let refs = |o: &Stored| -> Vec<String> {
            o.value["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["uid"].as_str().map(str::to_string))
                .collect()
        };
        let dependent = |o: &Stored| Dependent {
            storage: entry.storage.clone(),
            namespace: o.namespace.clone().unwrap_or_default(),
            name: o.name.clone(),
        };
        if let Some(prev) = &entry.prev {
            for owner in refs(prev) {
                if let Some(deps) = self.owners.get_mut(&owner) {
                    deps.remove(&dependent(prev));
                    if deps.is_empty() {
                        self.owners.remove(&owner);
                    }
                }
            }
        }
        if entry.change != Change::Deleted {
            for owner in refs(&entry.object) {
                self.owners
                    .entry(owner)
                    .or_default()
                    .insert(dependent(&entry.object));
            }
        } else {
            // A dependent gone: an owner waiting for its dependents may finish.
            for r in entry.object.value["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let (Some(kind), Some(name)) = (r["kind"].as_str(), r["name"].as_str())
                    && let Some(storage) = storage_of_kind(kind)
                {
                    let ns = entry.object.namespace.clone().unwrap_or_default();
                    self.enqueue(Key::Finalize(Arc::from(storage), ns, name.to_string()));
                }
            }
        }
    }

    /// Rebuilds the owner index from the store and looks at everything again.
    fn resync(&mut self, shared: &Shared) {
        self.owners.clear();
        let storages: Vec<String> = {
            let registry = shared.registry();
            registry.all().iter().map(|d| d.storage_key()).collect()
        };
        let rv = shared.store().rv();
        for storage in storages {
            let storage: Arc<str> = Arc::from(storage.as_str());
            let objects = shared.store().list(&storage, None);
            for object in objects {
                let entry = HistoryEntry {
                    rv,
                    storage: storage.clone(),
                    change: Change::Added,
                    object,
                    prev: None,
                };
                self.observe(&entry);
            }
        }
        self.last_rv = rv;
    }

    fn reconcile(&mut self, shared: &Shared, key: Key) {
        let api = Api { shared };
        match key {
            Key::Pod(ns, name) => {
                scheduler::schedule(self, &api, &ns, &name);
                kubelet::sync(self, &api, &ns, &name);
            }
            Key::ReplicaSet(ns, name) => apps::replicaset(self, &api, &ns, &name),
            Key::Deployment(ns, name) => apps::deployment(self, &api, &ns, &name),
            Key::StatefulSet(ns, name) => apps::statefulset(self, &api, &ns, &name),
            Key::DaemonSet(ns, name) => apps::daemonset(self, &api, &ns, &name),
            Key::Job(ns, name) => batch::job(self, &api, &ns, &name),
            Key::CronJob(ns, name) => batch::cronjob(self, &api, &ns, &name),
            Key::Orphans(uid) => gc::orphans(self, &api, &uid),
            Key::Finalize(storage, ns, name) => gc::finalize(self, &api, &storage, &ns, &name),
            Key::ForgetLogs(ns, pod, uid) => {
                shared
                    .logs()
                    .retain(|(n, p, _), log| !(n == &ns && p == &pod && log.pod_uid == uid));
                shared.logs_tx.send_modify(|g| *g += 1);
            }
            Key::Unscheduled => scheduler::retry_all(self, &api),
            Key::ExpireEvent(ns, name) => events::expire(self, &api, &ns, &name),
        }
        self.schedule_expiry();
    }

    /// Each new Event goes when its time to live is over.
    fn schedule_expiry(&mut self) {
        let created = std::mem::take(&mut self.recorder.created);
        for (ns, name) in created {
            self.wake_after(self.config.event_ttl, Key::ExpireEvent(ns, name));
        }
    }

    async fn run(mut self, start: tokio::sync::oneshot::Receiver<()>) {
        let _ = start.await;
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut rv_rx = shared.rv_tx.subscribe();
        scheduler::register_nodes(&mut self, &Api { shared: &shared });
        self.schedule_expiry();
        self.resync(&shared);
        drop(shared);
        let mut tick = tokio::time::interval(kubelet::LOG_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let Some(shared) = self.shared.upgrade() else {
                return;
            };
            self.step(&shared);
            drop(shared);
            let next_timer = self.timers.first().map(|(at, _, _)| *at);
            rv_rx.mark_unchanged();
            if self
                .shared
                .upgrade()
                .is_some_and(|s| s.store().rv() > self.last_rv)
            {
                continue;
            }
            tokio::select! {
                changed = rv_rx.changed() => if changed.is_err() { return },
                () = async {
                    match next_timer {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {}
                _ = tick.tick() => {
                    if let Some(shared) = self.shared.upgrade() {
                        kubelet::produce_logs(&mut self, &shared);
                    }
                }
            }
        }
    }

    /// Reads new history, fires due timers and works the queue empty.
    fn step(&mut self, shared: &Shared) {
        for _ in 0..64 {
            let batch = shared.store().events_after(self.last_rv, 4096);
            match batch {
                Ok(batch) => {
                    for entry in &batch {
                        self.observe(entry);
                        self.last_rv = entry.rv;
                    }
                }
                Err(_) => self.resync(shared),
            }
            let now = Instant::now();
            while let Some(first) = self.timers.first().cloned() {
                if first.0 > now {
                    break;
                }
                self.timers.remove(&first);
                if self.timer_of.get(&first.2) == Some(&first.0) {
                    self.timer_of.remove(&first.2);
                }
                self.enqueue(first.2);
            }
            if self.queue.is_empty() {
                return;
            }
            // Work what is queued now; writes it makes are read on the next round.
            let work: Vec<Key> = self.queue.drain(..).collect();
            self.queued.clear();
            for key in work {
                self.reconcile(shared, key);
            }
        }
    }
}

/// The storage of a built-in owner kind.
pub(crate) fn storage_of_kind(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Pod" => PODS,
        "ReplicaSet" => REPLICASETS,
        "Deployment" => DEPLOYMENTS,
        "StatefulSet" => STATEFULSETS,
        "DaemonSet" => DAEMONSETS,
        "Job" => JOBS,
        "CronJob" => CRONJOBS,
        "Node" => NODES,
        _ => return None,
    })
}

/// Starts the manager; it begins when `start` fires (after the initial namespaces exist).
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    config: ClusterConfig,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let manager = Manager::new(shared, config);
    (tokio::spawn(manager.run(rx)), tx)
}
