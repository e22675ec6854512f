//! The `Controller`: the library's entry point. It resolves the
//! configuration's watch specs through discovery, owns the registry of
//! shared informers, and tells when everything has synced.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use faro_core::DynamicObject;
use faro_core::config::NamespaceSelection;
use faro_core::config::normalise;
use faro_core::{
    Config, EventHandler, EventType, Gvr, K8sEventsConfig, LogsConfig, ResourceRule, Scope,
    WatchSpec, WorkloadConfig,
};
use faro_filter::FilterSet;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::discovery::{Discovery, Resolution, ResolvedResource};
use crate::error::WatchError;
use crate::informer::{
    Env, Informer, InformerKey, InformerShared, InformerState, InternalSink, Subscriber, lock,
};
use crate::logs::{LogCtx, LogStreamCounts};
use crate::metrics::WatchMetrics;
use crate::options::WatchOptions;
use crate::workload::WorkloadSink;

/// One informer as `Controller::active_informers` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InformerInfo {
    /// What it watches.
    pub key: InformerKey,
    /// Where it is.
    pub state: InformerState,
    /// Whether its first list has been classified and delivered.
    pub synced: bool,
    /// How many consumers share it.
    pub subscribers: usize,
    /// Objects in its known state.
    pub tracked_objects: usize,
    /// How long it has been in `state`.
    pub in_state_for: std::time::Duration,
}

/// A consumer's hold on a shared informer; dropping the last one stops the watch.
pub struct Subscription {
    inner: Weak<Inner>,
    key: InformerKey,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.unsubscribe(&self.key, self.id);
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subscription({} #{})", self.key, self.id)
    }
}

struct Entry {
    shared: Arc<InformerShared>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct SpecState {
    rules: Vec<ResourceRule>,
    subscriptions: HashMap<InformerKey, Subscription>,
}

pub(crate) struct Inner {
    pub(crate) env: Arc<Env>,
    me: Weak<Inner>,
    informers: Mutex<BTreeMap<InformerKey, Entry>>,
    retired: Mutex<Vec<JoinHandle<()>>>,
    specs: tokio::sync::Mutex<SpecState>,
    workload: Option<WorkloadConfig>,
    workload_subscription: Mutex<Option<Subscription>>,
    crd_subscription: Mutex<Option<Subscription>>,
    logs: Option<LogsConfig>,
    log_ctx: Mutex<Option<Arc<LogCtx>>>,
    log_subscriptions: Mutex<Vec<Subscription>>,
    k8s_events: Option<K8sEventsConfig>,
    k8s_event_subscriptions: Mutex<Vec<Subscription>>,
    started: AtomicBool,
    ready: watch::Sender<bool>,
    on_ready: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    next_id: AtomicU64,
}

/// Watches what a configuration asks for and hands every matched event to
/// the registered handlers.
///
/// ```no_run
/// # async fn run(client: kube::Client, config: faro_core::Config) -> Result<(), faro_watch::WatchError> {
/// let controller = faro_watch::Controller::new(client, &config);
/// // controller.add_handler(my_handler);
/// controller.start().await?;
/// controller.ready().await;
/// // ... later
/// controller.stop().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller for `config`'s rules and workload block, with default options.
    pub fn new(client: kube::Client, config: &Config) -> Self {
        Self::with_options(client, config, WatchOptions::default())
    }

    /// A controller with explicit options.
    pub fn with_options(client: kube::Client, config: &Config, options: WatchOptions) -> Self {
        Self::with_metrics(client, config, options, WatchMetrics::default())
    }

    /// A controller that counts into `metrics`, which outlive it (a
    /// [`crate::Fleet`] keeps one set per cluster across reconnections).
    pub fn with_metrics(
        client: kube::Client,
        config: &Config,
        options: WatchOptions,
        metrics: WatchMetrics,
    ) -> Self {
        let lifecycle = config.lifecycle.enabled.then(|| {
            crate::lifecycle::Lifecycle::new(
                config.lifecycle.replacement_window,
                metrics.lifecycle_records.clone(),
            )
        });
        let checkpoints = options.checkpoint.clone().and_then(|o| {
            let directory = o.directory.clone();
            crate::checkpoint::Checkpoints::open(o, options.cluster.clone())
                .map_err(|e| {
                    tracing::warn!(
                        directory = %directory.display(),
                        "checkpoints are off: the directory cannot be used: {e}"
                    );
                })
                .ok()
                .map(Arc::new)
        });
        let updates = crate::updates::Updates::new(config.updates.clone(), metrics.clone());
        let env = Arc::new(Env {
            checkpoints,
            updates,
            discovery: Discovery::new(client.clone()),
            client,
            options,
            metrics,
            lifecycle,
            handlers: RwLock::new(Arc::from(Vec::new())),
            stop: watch::Sender::new(false),
            discovery_changed: watch::Sender::new(0),
            sync_changed: watch::Sender::new(0),
            parked: watch::Sender::new(0),
            streaming: AtomicU8::new(0),
            owners: Arc::new(crate::owners::Owners::new(config.workload.clone())),
        });
        let inner = Arc::new_cyclic(|me: &Weak<Inner>| {
            env.owners.attach(me.clone());
            Inner {
                env,
                me: me.clone(),
                informers: Mutex::default(),
                retired: Mutex::default(),
                specs: tokio::sync::Mutex::new(SpecState {
                    rules: config.rules.clone(),
                    subscriptions: HashMap::new(),
                }),
                workload: config.workload.clone(),
                workload_subscription: Mutex::new(None),
                crd_subscription: Mutex::new(None),
                logs: config.logs.clone(),
                log_ctx: Mutex::new(None),
                log_subscriptions: Mutex::default(),
                k8s_events: config.k8s_events.clone(),
                k8s_event_subscriptions: Mutex::default(),
                started: AtomicBool::new(false),
                ready: watch::Sender::new(false),
                on_ready: Mutex::default(),
                next_id: AtomicU64::new(1),
            }
        });
        Self { inner }
    }

    /// Adds a handler; every matched event goes to every handler, in the
    /// order they were added. Handlers added after `start` see events from then on.
    pub fn add_handler(&self, handler: impl EventHandler) {
        let mut handlers = self
            .inner
            .env
            .handlers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut list: Vec<Arc<dyn EventHandler>> = handlers.iter().cloned().collect();
        list.push(Arc::new(handler));
        *handlers = Arc::from(list);
    }

    /// The discovery cache the controller resolves GVRs with; checks made
    /// through it before `start` leave the documents cached for it.
    pub fn discovery(&self) -> &Discovery {
        &self.inner.env.discovery
    }

    /// The watch layer's metrics.
    pub fn metrics(&self) -> &WatchMetrics {
        &self.inner.env.metrics
    }

    /// Registers the watch layer's metrics on `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.inner.env.metrics.register(registry);
    }

    /// Resolves every watch spec through discovery and starts the informers.
    ///
    /// Fails, starting nothing, when a GVR is unknown in a served
    /// group/version, cannot be watched, or contradicts its configured scope.
    /// A GVR whose group/version is not served yet is parked, not an error.
    pub async fn start(&self) -> Result<(), WatchError> {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return Err(WatchError::State("already started"));
        }
        let mut workload_resources = HashMap::new();
        if let Some(w) = &self.inner.workload {
            for gvr in &w.gvrs {
                let r = self
                    .inner
                    .env
                    .discovery
                    .resolve(gvr, Some(Scope::Namespaced))
                    .await?;
                workload_resources.insert(gvr.clone(), r);
            }
        }
        {
            let mut specs = self.inner.specs.lock().await;
            let rules = specs.rules.clone();
            self.inner.apply_rules(&mut specs, rules).await?;
        }
        if let Some(w) = self.inner.workload.clone() {
            let namespaces =
                Gvr::parse("v1/namespaces").map_err(|_| WatchError::State("broken"))?;
            let resource = self
                .inner
                .env
                .discovery
                .resolve(&namespaces, Some(Scope::Cluster))
                .await?;
            let sink = Arc::new(WorkloadSink::new(
                self.inner.me.clone(),
                w,
                workload_resources,
            ));
            let key = InformerKey {
                gvr: namespaces,
                namespace: None,
                label_selector: String::new(),
                field_selector: String::new(),
            };
            let sub = self.inner.subscribe(
                key,
                Some(Scope::Cluster),
                served(resource),
                Arc::new(FilterSet::default()),
                None,
                Some(sink),
            );
            *lock(&self.inner.workload_subscription) = Some(sub);
        }
        if let Some(logs) = self.inner.logs.clone() {
            self.start_logs(logs).await?;
        }
        if let Some(events) = self.inner.k8s_events.clone() {
            // Most Events are about pods, and pods come and go: indexed from
            // the start, a pod deleted before its Events are read still
            // gives them its workload's id.
            let _ = self
                .inner
                .env
                .owners
                .index_kind(&Arc::from("v1"), &Arc::from("Pod"))
                .await;
            self.start_k8s_events(events).await?;
        }
        tokio::spawn(readiness(self.inner.clone()));
        tokio::spawn(crd_watcher(self.inner.clone()));
        if let Some(cp) = &self.inner.env.checkpoints {
            tokio::spawn(checkpointer(
                Arc::downgrade(&self.inner),
                cp.options.interval,
            ));
        }
        Ok(())
    }

    /// Follows container logs of the pods the `logs:` block selects, through
    /// the shared pod informers (one per named namespace, else one for all).
    async fn start_logs(&self, logs: LogsConfig) -> Result<(), WatchError> {
        let pods = Gvr::parse("v1/pods").map_err(|_| WatchError::State("broken"))?;
        let resource = served(
            self.inner
                .env
                .discovery
                .resolve(&pods, Some(Scope::Namespaced))
                .await?,
        );
        let namespaces = match &logs.namespaces {
            NamespaceSelection::Names(names) => names.iter().cloned().map(Some).collect(),
            _ => vec![None],
        };
        let label_selector = logs.label_selector.to_string();
        let options = self.inner.env.options.logs.clone();
        let (sink, ctx) = crate::logs::start(self.inner.env.clone(), logs, options);
        let subs = namespaces
            .into_iter()
            .map(|namespace| {
                let key = InformerKey {
                    gvr: pods.clone(),
                    namespace,
                    label_selector: label_selector.clone(),
                    field_selector: String::new(),
                };
                self.inner.subscribe(
                    key,
                    Some(Scope::Namespaced),
                    resource.clone(),
                    Arc::new(FilterSet::default()),
                    None,
                    Some(sink.clone() as Arc<dyn InternalSink>),
                )
            })
            .collect();
        *lock(&self.inner.log_subscriptions) = subs;
        *lock(&self.inner.log_ctx) = Some(ctx);
        Ok(())
    }

    /// Reports Kubernetes Event occurrences through the handlers' `on_record`:
    /// `events.k8s.io/v1` when served, else core `v1/events` (never both).
    async fn start_k8s_events(&self, config: K8sEventsConfig) -> Result<(), WatchError> {
        let discovery = &self.inner.env.discovery;
        let mut chosen = None;
        for text in ["events.k8s.io/v1/events", "v1/events"] {
            let gvr = Gvr::parse(text).map_err(|_| WatchError::State("broken"))?;
            if let Resolution::Served(r) = discovery.resolve(&gvr, Some(Scope::Namespaced)).await? {
                chosen = Some((gvr, r));
                break;
            }
        }
        let Some((gvr, resource)) = chosen else {
            tracing::warn!("the server serves no Events API; k8s_events reports nothing");
            return Ok(());
        };
        let namespaces = match &config.namespaces {
            NamespaceSelection::Names(names) => names.iter().cloned().map(Some).collect(),
            _ => vec![None],
        };
        let sink: Arc<dyn InternalSink> = Arc::new(crate::k8s_events::K8sEventsSink::new(
            self.inner.env.clone(),
            config,
        ));
        let subs = namespaces
            .into_iter()
            .map(|namespace| {
                let key = InformerKey {
                    gvr: gvr.clone(),
                    namespace,
                    label_selector: String::new(),
                    field_selector: String::new(),
                };
                self.inner.subscribe(
                    key,
                    Some(Scope::Namespaced),
                    Some(resource.clone()),
                    Arc::new(FilterSet::default()),
                    None,
                    Some(sink.clone()),
                )
            })
            .collect();
        *lock(&self.inner.k8s_event_subscriptions) = subs;
        Ok(())
    }

    /// Objects in the owner index that gives correlation ids.
    pub fn owner_index_size(&self) -> usize {
        self.inner.env.owners.tracked()
    }

    /// Container log streams by state, when the configuration follows logs.
    pub fn log_streams(&self) -> Option<LogStreamCounts> {
        lock(&self.inner.log_ctx).as_ref().map(|c| c.counts())
    }

    /// True once every pod seen so far has been handled and no container
    /// log is being read: with `follow: false` (`faro logs --no-follow`),
    /// after `ready()`, everything there was to read has been delivered.
    pub fn logs_settled(&self) -> bool {
        lock(&self.inner.log_ctx)
            .as_ref()
            .is_none_or(|c| c.settled())
    }

    /// Resolves once every informer's initial list has been classified and
    /// handed to the handlers (parked informers, whose resource is not
    /// served, do not hold it back). It stays resolved.
    pub fn ready(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.inner.ready.subscribe();
        async move {
            let _ = rx.wait_for(|r| *r).await;
        }
    }

    /// Whether `ready()` has resolved.
    pub fn is_ready(&self) -> bool {
        *self.inner.ready.borrow()
    }

    /// Calls `callback` once, when the controller becomes ready (at once if
    /// it is), before `ready()` resolves. It must be quick and must not call
    /// `on_ready` itself.
    pub fn on_ready(&self, callback: impl FnOnce() + Send + 'static) {
        let mut callbacks = lock(&self.inner.on_ready);
        if self.is_ready() {
            drop(callbacks);
            callback();
        } else {
            callbacks.push(Box::new(callback));
        }
    }

    /// Adds rules at run time. The watch specs are normalised together with
    /// the existing ones, so an equal or covered rule opens no second watch.
    pub async fn add_resources(&self, rules: Vec<ResourceRule>) -> Result<(), WatchError> {
        let mut specs = self.inner.specs.lock().await;
        let mut all = specs.rules.clone();
        all.extend(rules);
        if self.inner.started.load(Ordering::SeqCst) {
            self.inner.apply_rules(&mut specs, all).await
        } else {
            specs.rules = all;
            Ok(())
        }
    }

    /// Removes rules equal to any of `rules`; watches no longer needed stop.
    pub async fn remove_resources(&self, rules: &[ResourceRule]) -> Result<(), WatchError> {
        let mut specs = self.inner.specs.lock().await;
        let kept: Vec<ResourceRule> = specs
            .rules
            .iter()
            .filter(|r| !rules.iter().any(|x| same_rule(x, r)))
            .cloned()
            .collect();
        if self.inner.started.load(Ordering::SeqCst) {
            self.inner.apply_rules(&mut specs, kept).await
        } else {
            specs.rules = kept;
            Ok(())
        }
    }

    /// Subscribes to the informer for `spec` (opening it, or joining the one
    /// already open for the same server-side key); its matched events go to
    /// the handlers like those of the configuration's rules. The watch stops
    /// when the last subscription to it is dropped.
    pub async fn subscribe(&self, spec: &WatchSpec) -> Result<Subscription, WatchError> {
        if *self.inner.env.stop.borrow() {
            return Err(WatchError::State("stopped"));
        }
        let resource = served(
            self.inner
                .env
                .discovery
                .resolve(&spec.gvr, spec.scope)
                .await?,
        );
        Ok(self.inner.subscribe(
            key_of(spec),
            spec.scope,
            resource,
            Arc::new(FilterSet::new(spec.filters.clone())),
            None,
            None,
        ))
    }

    /// Every running informer, in key order.
    pub fn active_informers(&self) -> Vec<InformerInfo> {
        lock(&self.inner.informers)
            .values()
            .map(|e| {
                let status = e.shared.status();
                InformerInfo {
                    key: e.shared.key.clone(),
                    state: status.state,
                    synced: status.synced,
                    subscribers: e.shared.subscribers().len(),
                    tracked_objects: status.tracked,
                    in_state_for: status.since.elapsed(),
                }
            })
            .collect()
    }

    /// Ends every watch and waits for the handler calls in flight.
    pub async fn stop(&self) {
        self.inner.env.stop.send_replace(true);
        let mut tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.inner.retired));
        // Taken out first, so that no informer is dropped under the lock.
        let informers = std::mem::take(&mut *lock(&self.inner.informers));
        let mut shared = Vec::with_capacity(informers.len());
        for entry in informers.into_values() {
            tasks.push(entry.task);
            shared.push(entry.shared);
        }
        for task in tasks {
            let _ = task.await;
        }
        // Every informer delivered all it read; record where each stands.
        crate::checkpoint::round(&self.inner.env, &shared, true).await;
        drop(shared);
        lock(&self.inner.workload_subscription).take();
        lock(&self.inner.crd_subscription).take();
        lock(&self.inner.log_subscriptions).clear();
        lock(&self.inner.k8s_event_subscriptions).clear();
        self.inner.env.owners.close();
        self.inner.specs.lock().await.subscriptions.clear();
    }
}

/// Records progress every `interval` until the controller stops (the
/// last round is at stop).
async fn checkpointer(inner: Weak<Inner>, interval: std::time::Duration) {
    let (mut stop, mut synced) = match inner.upgrade() {
        Some(i) => (i.env.stop.subscribe(), i.env.sync_changed.subscribe()),
        None => return,
    };
    loop {
        // A round at every interval, and one as soon as an informer syncs,
        // so that a crash right after the first list floods nothing.
        let stopping = tokio::select! {
            () = tokio::time::sleep(interval) => false,
            _ = synced.changed() => false,
            r = stop.wait_for(|s| *s) => { drop(r); true }
        };
        if stopping {
            return;
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let shared: Vec<Arc<InformerShared>> = lock(&inner.informers)
            .values()
            .map(|e| e.shared.clone())
            .collect();
        crate::checkpoint::round(&inner.env, &shared, false).await;
    }
}

/// Rules are equal when everything but where they were written is.
fn same_rule(a: &ResourceRule, b: &ResourceRule) -> bool {
    let mut a = a.clone();
    a.origin.clone_from(&b.origin);
    a == *b
}

fn served(resolution: Resolution) -> Option<ResolvedResource> {
    match resolution {
        Resolution::Served(r) => Some(r),
        Resolution::NotServed => None,
    }
}

fn add_subscriber(shared: &InformerShared, subscriber: Subscriber) {
    shared.update_subscribers(|subs| {
        let mut list = subs.to_vec();
        list.push(subscriber);
        Some(list)
    });
}

pub(crate) fn key_of(spec: &WatchSpec) -> InformerKey {
    InformerKey {
        gvr: spec.gvr.clone(),
        namespace: spec.server.namespace.clone(),
        label_selector: spec.server.labels.to_string(),
        field_selector: spec.server.fields.to_string(),
    }
}

impl Inner {
    /// The status of the informer for `key`, if one runs.
    pub(crate) fn informer_status(&self, key: &InformerKey) -> Option<crate::informer::Status> {
        lock(&self.informers).get(key).map(|e| e.shared.status())
    }

    /// How far (resourceVersion) the informer of `key` has read and handed on.
    pub(crate) fn informer_seen_rv(&self, key: &InformerKey) -> Option<u64> {
        lock(&self.informers)
            .get(key)
            .map(|e| e.shared.seen_rv.load(std::sync::atomic::Ordering::Acquire))
    }

    /// The owner index, for the subscribers it starts.
    pub(crate) fn owners_weak(&self) -> Weak<crate::owners::Owners> {
        Arc::downgrade(&self.env.owners)
    }

    /// Opens (or joins) the informer for `key`.
    pub(crate) fn subscribe(
        &self,
        key: InformerKey,
        scope: Option<Scope>,
        resource: Option<ResolvedResource>,
        filters: Arc<FilterSet>,
        workload: Option<Arc<str>>,
        internal: Option<Arc<dyn InternalSink>>,
    ) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let subscriber = Subscriber {
            id,
            filters,
            workload,
            internal,
        };
        let mut informers = lock(&self.informers);
        if let Some(entry) = informers.get(&key) {
            add_subscriber(&entry.shared, subscriber);
            entry.shared.resync.send_modify(|n| *n += 1);
        } else {
            // The subscriber is in place before the task starts, so that
            // nothing it lists can be classified without it.
            let shared = Arc::new(InformerShared::new(key.clone(), scope));
            add_subscriber(&shared, subscriber);
            let task = if *self.env.stop.borrow() {
                tokio::spawn(async {})
            } else {
                tokio::spawn(Informer::new(self.env.clone(), shared.clone(), resource).run())
            };
            informers.insert(key.clone(), Entry { shared, task });
        }
        drop(informers);
        Subscription {
            inner: self.me.clone(),
            key,
            id,
        }
    }

    fn unsubscribe(&self, key: &InformerKey, id: u64) {
        // What is removed is dropped after the lock is released: a removed
        // subscriber may own subscriptions (the workload watcher does), and
        // dropping those unsubscribes in turn.
        let removed_list;
        let mut removed_entry = None;
        {
            let mut informers = lock(&self.informers);
            let Some(entry) = informers.get(key) else {
                return;
            };
            let mut empty = false;
            removed_list = entry.shared.update_subscribers(|subs| {
                let list: Vec<Subscriber> = subs.iter().filter(|s| s.id != id).cloned().collect();
                empty = list.is_empty();
                Some(list)
            });
            if empty && let Some(entry) = informers.remove(key) {
                entry.shared.stop.send_replace(true);
                removed_entry = Some(entry.shared);
                lock(&self.retired).push(entry.task);
                self.env.sync_changed.send_modify(|n| *n += 1);
            }
        }
        drop(removed_list);
        drop(removed_entry);
    }

    fn set_filters(&self, key: &InformerKey, id: u64, filters: Arc<FilterSet>) {
        let informers = lock(&self.informers);
        if let Some(entry) = informers.get(key) {
            let changed = entry.shared.update_subscribers(|subs| {
                if subs.iter().any(|s| s.id == id && s.filters == filters) {
                    return None;
                }
                let mut list = subs.to_vec();
                for s in list.iter_mut().filter(|s| s.id == id) {
                    s.filters = filters.clone();
                }
                Some(list)
            });
            if changed.is_some() {
                entry.shared.resync.send_modify(|n| *n += 1);
            }
        }
    }

    /// Makes the running spec subscriptions match `rules`: new keys are
    /// subscribed, vanished ones dropped, kept ones get their new filters.
    async fn apply_rules(
        &self,
        specs: &mut SpecState,
        rules: Vec<ResourceRule>,
    ) -> Result<(), WatchError> {
        let wanted = normalise(&rules).map_err(|e| WatchError::Config(e.to_string()))?;
        let mut resolved: HashMap<(Gvr, Option<Scope>), Resolution> = HashMap::new();
        for spec in &wanted {
            let k = (spec.gvr.clone(), spec.scope);
            if resolved.contains_key(&k) {
                continue;
            }
            let r = self.env.discovery.resolve(&spec.gvr, spec.scope).await?;
            if let Resolution::Served(res) = &r
                && res.scope == Scope::Cluster
                && spec.server.namespace.is_some()
            {
                return Err(WatchError::ScopeMismatch {
                    gvr: spec.gvr.to_string(),
                    configured: Scope::Namespaced,
                    discovered: Scope::Cluster,
                });
            }
            resolved.insert(k, r);
        }
        let mut next: HashMap<InformerKey, Subscription> = HashMap::new();
        for spec in &wanted {
            let key = key_of(spec);
            let filters: Arc<FilterSet> = Arc::new(FilterSet::new(spec.filters.clone()));
            let sub = match specs.subscriptions.remove(&key) {
                Some(sub) => {
                    self.set_filters(&key, sub.id, filters);
                    sub
                }
                None => {
                    let resource = resolved
                        .get(&(spec.gvr.clone(), spec.scope))
                        .cloned()
                        .and_then(served);
                    self.subscribe(key.clone(), spec.scope, resource, filters, None, None)
                }
            };
            next.insert(key, sub);
        }
        // Whatever is left is no longer wanted; dropping it stops unshared watches.
        specs.subscriptions = next;
        specs.rules = rules;
        Ok(())
    }

    fn all_synced(&self) -> bool {
        lock(&self.informers).values().all(|e| {
            let s = e.shared.status();
            s.synced || s.state == InformerState::Parked
        })
    }
}

/// Latches readiness once every informer has synced.
async fn readiness(inner: Arc<Inner>) {
    let mut changed = inner.env.sync_changed.subscribe();
    let mut stop = inner.env.stop.subscribe();
    loop {
        if inner.all_synced() {
            // Callbacks run before the future resolves; the lock keeps a
            // callback registered meanwhile from being missed.
            let mut callbacks = lock(&inner.on_ready);
            for callback in std::mem::take(&mut *callbacks) {
                callback();
            }
            inner.ready.send_replace(true);
            return;
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Watches CRDs while any informer is parked, so that it starts as soon as
/// its resource is served.
async fn crd_watcher(inner: Arc<Inner>) {
    struct Bump(watch::Sender<u64>);
    #[async_trait::async_trait]
    impl InternalSink for Bump {
        async fn on_event(&self, _: EventType, _: &Arc<DynamicObject>) {
            self.0.send_modify(|n| *n += 1);
        }
    }
    let mut parked = inner.env.parked.subscribe();
    let mut stop = inner.env.stop.subscribe();
    tokio::select! {
        _ = parked.wait_for(|n| *n > 0) => {}
        _ = stop.wait_for(|s| *s) => return,
    }
    let Ok(gvr) = Gvr::parse("apiextensions.k8s.io/v1/customresourcedefinitions") else {
        return;
    };
    let resource = match inner
        .env
        .discovery
        .resolve(&gvr, Some(Scope::Cluster))
        .await
    {
        Ok(Resolution::Served(r)) => Some(r),
        _ => {
            tracing::info!("CRDs cannot be watched; parked watches are retried on an interval");
            return;
        }
    };
    let key = InformerKey {
        gvr,
        namespace: None,
        label_selector: String::new(),
        field_selector: String::new(),
    };
    let sink = Arc::new(Bump(inner.env.discovery_changed.clone()));
    let sub = inner.subscribe(
        key,
        Some(Scope::Cluster),
        resource,
        Arc::new(FilterSet::default()),
        None,
        Some(sink),
    );
    *lock(&inner.crd_subscription) = Some(sub);
}
