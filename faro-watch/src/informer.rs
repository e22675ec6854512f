//! One informer: a list and a watch on one (GVR, namespace, label selector,
//! field selector), the known state that classifies what they say, and the
//! delivery of matched events to handlers and internal subscribers.

use std::fmt;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use faro_core::{DynamicObject, EventHandler, EventType, Gvr, MatchedEvent, Scope};
use faro_filter::{FilterSet, ObjectView};
use futures_util::{Stream, StreamExt};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::core::TypeMeta;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;

use crate::classify::{Classified, KnownState, Observation};
use crate::discovery::{Discovery, Resolution, ResolvedResource};
use crate::metrics::WatchMetrics;
use crate::object::WatchedObject;
use crate::options::{Backoff, ListStrategy, WatchOptions};

/// The identity of one watch on the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InformerKey {
    /// The resource type.
    pub gvr: Gvr,
    /// One namespace, or `None` for all namespaces (or a cluster-scoped resource).
    pub namespace: Option<String>,
    /// The canonical label selector sent to the server; empty for everything.
    pub label_selector: String,
    /// The canonical field selector sent to the server; empty for everything.
    pub field_selector: String,
}

impl fmt::Display for InformerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.gvr)?;
        if let Some(ns) = &self.namespace {
            write!(f, " namespace={ns}")?;
        }
        if !self.label_selector.is_empty() {
            write!(f, " labels={:?}", self.label_selector)?;
        }
        if !self.field_selector.is_empty() {
            write!(f, " fields={:?}", self.field_selector)?;
        }
        Ok(())
    }
}

/// Where an informer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InformerState {
    /// Getting the full list (initially or after a 410).
    Listing,
    /// Synced and following the watch.
    Watching,
    /// Waiting to reconnect after a failure.
    Backoff,
    /// The resource is not served; waiting for it to appear.
    Parked,
}

impl InformerState {
    /// The lower-case name used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Listing => "listing",
            Self::Watching => "watching",
            Self::Backoff => "backoff",
            Self::Parked => "parked",
        }
    }
}

/// Receives every classified event of an informer, before client-side
/// filtering; used by the controller's own watchers (CRDs, workload namespaces).
#[async_trait::async_trait]
pub(crate) trait InternalSink: Send + Sync {
    async fn on_event(&self, event_type: EventType, object: &Arc<DynamicObject>);
}

/// One consumer of an informer.
#[derive(Clone)]
pub(crate) struct Subscriber {
    pub id: u64,
    /// Handler deliveries pass when any filter accepts the object.
    pub filters: Arc<FilterSet>,
    /// Tag put on the events this subscriber lets through.
    pub workload: Option<Arc<str>>,
    /// Set for internal subscribers, which see every event and no handler does for them.
    pub internal: Option<Arc<dyn InternalSink>>,
}

impl Subscriber {
    fn accepts(&self, object: &DynamicObject) -> bool {
        if self.internal.is_some() {
            return false;
        }
        let meta = &object.metadata;
        let view = ObjectView {
            namespace: meta.namespace.as_deref(),
            name: meta.name.as_deref().unwrap_or(""),
            labels: meta.labels.as_ref(),
        };
        self.filters.matches(&view)
    }
}

/// What the controller and the informer task share of one informer.
pub(crate) struct InformerShared {
    pub key: InformerKey,
    pub scope: Option<Scope>,
    label: Arc<str>,
    /// The resourceVersion up to which events were read and handed to the
    /// subscribers (0 before the first list ends).
    pub seen_rv: std::sync::atomic::AtomicU64,
    pub subscribers: RwLock<Arc<Vec<Subscriber>>>,
    pub status: Mutex<Status>,
    pub stop: watch::Sender<bool>,
    /// Bumped when a subscriber joins or its filters change: the informer
    /// lists again, so objects now passing are delivered as ADDED.
    pub resync: watch::Sender<u64>,
    /// Bumped to ask for a checkpoint snapshot, taken between two deliveries…
    pub snapshot_request: watch::Sender<u64>,
    /// …which is left here (`None`: nothing changed since the last one)…
    pub snapshot: Mutex<Option<crate::checkpoint::Entry>>,
    /// …and announced by setting this to the request's number.
    pub snapshot_done: watch::Sender<u64>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Status {
    pub state: InformerState,
    pub synced: bool,
    pub tracked: usize,
    /// When `state` last changed.
    pub since: std::time::Instant,
}

impl InformerShared {
    pub fn new(key: InformerKey, scope: Option<Scope>) -> Self {
        Self {
            label: Arc::from(key.to_string()),
            seen_rv: std::sync::atomic::AtomicU64::new(0),
            key,
            scope,
            subscribers: RwLock::new(Arc::new(Vec::new())),
            status: Mutex::new(Status {
                state: InformerState::Listing,
                synced: false,
                tracked: 0,
                since: std::time::Instant::now(),
            }),
            stop: watch::Sender::new(false),
            resync: watch::Sender::new(0),
            snapshot_request: watch::Sender::new(0),
            snapshot: Mutex::new(None),
            snapshot_done: watch::Sender::new(0),
        }
    }

    pub fn status(&self) -> Status {
        *lock(&self.status)
    }

    /// Replaces the subscriber list with what `next` makes of it (copy on
    /// write, so deliveries in progress keep their snapshot). Returns the old
    /// list, which the caller drops outside its own locks, or `None` when
    /// `next` left the list as it was.
    pub fn update_subscribers(
        &self,
        next: impl FnOnce(&[Subscriber]) -> Option<Vec<Subscriber>>,
    ) -> Option<Arc<Vec<Subscriber>>> {
        let mut subs = self
            .subscribers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let list = next(&subs)?;
        Some(std::mem::replace(&mut *subs, Arc::new(list)))
    }

    pub fn subscribers(&self) -> Arc<Vec<Subscriber>> {
        self.subscribers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// What every informer of one controller shares.
pub(crate) struct Env {
    pub client: kube::Client,
    pub discovery: Discovery,
    pub options: WatchOptions,
    pub metrics: WatchMetrics,
    pub handlers: RwLock<Arc<[Arc<dyn EventHandler>]>>,
    /// Set once, by `Controller::stop`.
    pub stop: watch::Sender<bool>,
    /// Bumped whenever a CRD changes, so parked informers look again.
    pub discovery_changed: watch::Sender<u64>,
    /// Bumped whenever an informer syncs or parks, for readiness.
    pub sync_changed: watch::Sender<u64>,
    /// How many informers are parked; the controller watches CRDs while any is.
    pub parked: watch::Sender<usize>,
    /// 0 not known yet, 1 the server serves streaming lists, 2 it refuses them.
    pub streaming: AtomicU8,
    /// Owner chains, for correlation ids.
    pub owners: Arc<crate::owners::Owners>,
    /// Lifecycle records of the pods delivered, when on.
    pub lifecycle: Option<crate::lifecycle::Lifecycle>,
    /// Checkpoints of progress, when on.
    pub checkpoints: Option<Arc<crate::checkpoint::Checkpoints>>,
    /// How UPDATEDs are treated, per GVR.
    pub updates: crate::updates::Updates,
}

impl Env {
    pub(crate) fn handlers(&self) -> Arc<[Arc<dyn EventHandler>]> {
        self.handlers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn use_streaming(&self) -> bool {
        match self.options.list_strategy {
            ListStrategy::Streaming => true,
            ListStrategy::Paged => false,
            ListStrategy::Auto => self.streaming.load(Ordering::Relaxed) != 2,
        }
    }
}

/// At stop, a watch keeps reading what has already arrived until it has
/// been quiet this long…
const DRAIN_QUIET: Duration = Duration::from_millis(200);
/// …or for this long at most.
const DRAIN_MAX: Duration = Duration::from_secs(1);

/// Why a list or watch ended.
enum Next {
    /// Watch again from the last resourceVersion, now.
    Continue,
    /// The history is gone (410): list again.
    Relist,
    /// The server refuses streaming lists: list again with pages.
    NoStreaming,
    /// The subscribers changed: list again.
    Resync,
    /// Something failed: wait, then resume (or list, when nothing was synced).
    Retry(&'static str),
    /// 404: the resource may no longer be served.
    NotFound,
    /// The controller or the last subscriber stopped the informer.
    Stop,
}

/// Cached counters of one informer, so the hot path allocates no label set.
struct Counters {
    added: Counter,
    updated: Counter,
    deleted: Counter,
    tracked: Gauge,
    last_event: Gauge<f64, AtomicU64>,
}

/// The informer task: list, watch, classify, deliver, until stopped.
pub(crate) struct Informer {
    env: Arc<Env>,
    shared: Arc<InformerShared>,
    known: KnownState,
    resource: Option<ResolvedResource>,
    /// The resourceVersion the known state is synced to; `None` until listed.
    rv: Option<String>,
    backoff: Backoff,
    out: Vec<Classified>,
    gvr_label: String,
    counters: Counters,
    stop_rx: watch::Receiver<bool>,
    global_stop_rx: watch::Receiver<bool>,
    resync_rx: watch::Receiver<u64>,
    snapshot_rx: watch::Receiver<u64>,
    /// Something changed since the last checkpoint snapshot.
    dirty: bool,
    /// Previous states and the policy for UPDATEDs of this informer's GVR.
    diff: crate::updates::InformerDiff,
}

impl Informer {
    pub fn new(
        env: Arc<Env>,
        shared: Arc<InformerShared>,
        resource: Option<ResolvedResource>,
    ) -> Self {
        let backoff = Backoff::new(&env.options);
        let stop_rx = shared.stop.subscribe();
        let global_stop_rx = env.stop.subscribe();
        let resync_rx = shared.resync.subscribe();
        let snapshot_rx = shared.snapshot_request.subscribe();
        let diff = env.updates.for_informer(&shared.key.gvr);
        let gvr_label = shared.key.gvr.to_string();
        let m = &env.metrics;
        let event = |t: EventType| {
            m.events
                .get_or_create(&[("gvr", gvr_label.clone()), ("type", t.as_str().to_owned())])
                .clone()
        };
        let informer = [("informer", shared.label.to_string())];
        let counters = Counters {
            added: event(EventType::Added),
            updated: event(EventType::Updated),
            deleted: event(EventType::Deleted),
            tracked: m.tracked.get_or_create(&informer).clone(),
            last_event: m.last_event.get_or_create(&informer).clone(),
        };
        Self {
            gvr_label,
            counters,
            env,
            shared,
            known: KnownState::new(),
            resource,
            rv: None,
            backoff,
            out: Vec::new(),
            stop_rx,
            global_stop_rx,
            resync_rx,
            snapshot_rx,
            dirty: true,
            diff,
        }
    }

    /// What the informer delivers, for checkpoints: its key and the
    /// client-side filters of its handler subscribers; `None` when only
    /// internal subscribers use it (nothing to checkpoint).
    fn fingerprint(&self) -> Option<String> {
        let subscribers = self.shared.subscribers();
        let mut filters: Vec<String> = subscribers
            .iter()
            .filter(|s| s.internal.is_none())
            .map(|s| {
                let f: Vec<String> = s
                    .filters
                    .filters()
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                format!("[{}]", f.join(" OR "))
            })
            .collect();
        if filters.is_empty() {
            return None;
        }
        filters.sort();
        Some(format!(
            "{} filter={}",
            self.shared.label,
            filters.join(" ")
        ))
    }

    /// Loads the checkpoint of this informer, if it has a usable one: the
    /// known state plus what was written after it, and the resourceVersion
    /// to watch from. An informer with internal subscribers (which need
    /// every object) starts afresh.
    fn resume(&mut self) {
        let Some(checkpoints) = self.env.checkpoints.clone() else {
            return;
        };
        if self
            .shared
            .subscribers()
            .iter()
            .any(|s| s.internal.is_some())
        {
            return;
        }
        let Some(fingerprint) = self.fingerprint() else {
            return;
        };
        if let Some(resume) = checkpoints.resume(&self.shared.key, &fingerprint) {
            let mut known = KnownState::resume(resume.known, resume.tombstones);
            crate::checkpoint::apply(&mut known, &resume.written);
            tracing::debug!(
                informer = %self.shared.label,
                objects = known.len(),
                written_since = resume.written.len(),
                resource_version = %resume.resource_version,
                "resuming from the checkpoint"
            );
            self.known = known;
            self.rv = Some(resume.resource_version);
            self.env
                .metrics
                .resumes
                .get_or_create(&[("gvr", self.gvr_label.clone())])
                .inc();
        }
    }

    /// Leaves a checkpoint snapshot for the checkpointer: the known state
    /// and the resourceVersion it is synced to, or `None` when nothing
    /// changed since the last one (or nothing is to be checkpointed).
    fn take_snapshot(&mut self, request: u64) {
        let entry = match (&self.rv, self.dirty, self.fingerprint()) {
            (Some(rv), true, Some(fingerprint)) => {
                self.dirty = false;
                Some(crate::checkpoint::Entry::new(
                    &self.shared.key,
                    fingerprint,
                    rv.clone(),
                    self.known.entries(),
                    self.known.tombstones(),
                ))
            }
            _ => None,
        };
        *lock(&self.shared.snapshot) = entry;
        self.shared.snapshot_done.send_replace(request);
    }

    fn stopping(&self) -> bool {
        *self.stop_rx.borrow() || *self.global_stop_rx.borrow()
    }

    /// Resolves when the informer is told to stop.
    async fn stopped(&self) {
        let mut a = self.stop_rx.clone();
        let mut b = self.global_stop_rx.clone();
        tokio::select! {
            _ = a.wait_for(|s| *s) => {}
            _ = b.wait_for(|s| *s) => {}
        }
    }

    fn set_state(&self, state: InformerState) {
        let mut status = lock(&self.shared.status);
        let before = status.state;
        if before != state {
            status.since = std::time::Instant::now();
        }
        status.state = state;
        drop(status);
        self.env
            .metrics
            .set_state(Some(before.as_str()), Some(state.as_str()));
    }

    pub async fn run(mut self) {
        self.env
            .metrics
            .set_state(None, Some(InformerState::Listing.as_str()));
        self.resume();
        loop {
            if self.stopping() {
                break;
            }
            let resource = match self.resource.clone() {
                Some(r) => r,
                None => match self.park().await {
                    Some(r) => {
                        self.resource = Some(r.clone());
                        self.rv = None;
                        r
                    }
                    None => break,
                },
            };
            let next = match self.rv.clone() {
                None => {
                    self.set_state(InformerState::Listing);
                    if self.env.use_streaming() {
                        self.streaming_list(&resource).await
                    } else {
                        let api =
                            resource.api_as(&self.env.client, self.shared.key.namespace.as_deref());
                        self.paged_list(&api, &resource).await
                    }
                }
                Some(rv) => self.watch(&resource, &rv).await,
            };
            match next {
                Next::Stop => break,
                Next::Continue => {}
                Next::Relist | Next::Resync => {
                    if matches!(next, Next::Relist) {
                        self.env.metrics.restart(&self.gvr_label, "expired");
                    }
                    self.rv = None;
                    self.env
                        .metrics
                        .relists
                        .get_or_create(&[("gvr", self.gvr_label.clone())])
                        .inc();
                }
                Next::NoStreaming => {
                    tracing::info!(
                        informer = %self.shared.label,
                        "the server refuses streaming lists; using paged lists"
                    );
                    self.env.streaming.store(2, Ordering::Relaxed);
                }
                Next::Retry(reason) => {
                    if self.retry(reason).await.is_break() {
                        break;
                    }
                }
                Next::NotFound => {
                    let gvr = &self.shared.key.gvr;
                    self.env.discovery.invalidate(&gvr.api_version());
                    match self.env.discovery.resolve(gvr, self.shared.scope).await {
                        Ok(Resolution::Served(r)) => {
                            self.resource = Some(r);
                            if self.retry("error").await.is_break() {
                                break;
                            }
                        }
                        Ok(Resolution::NotServed)
                        | Err(crate::WatchError::UnknownResource { .. }) => {
                            // The resource went away, and every object of it with it.
                            self.known.begin_relist();
                            self.known.finish_relist(&mut self.out);
                            self.deliver(&resource).await;
                            self.resource = None;
                            self.rv = None;
                        }
                        Err(_) => {
                            if self.retry("error").await.is_break() {
                                break;
                            }
                        }
                    }
                }
            }
        }
        // The last snapshot, for the checkpoint written at stop.
        if lock(&self.shared.status).synced {
            let request = *self.snapshot_rx.borrow();
            self.take_snapshot(request);
        }
        let state = lock(&self.shared.status).state;
        self.env.metrics.set_state(Some(state.as_str()), None);
        let informer = [("informer", self.shared.label.to_string())];
        self.env.metrics.tracked.remove(&informer);
        self.env.metrics.last_event.remove(&informer);
    }

    async fn retry(&mut self, reason: &'static str) -> ControlFlow<()> {
        self.env.metrics.restart(&self.gvr_label, reason);
        self.set_state(InformerState::Backoff);
        let delay = self.backoff.next_delay();
        tracing::debug!(informer = %self.shared.label, ?delay, reason, "watch failed; retrying");
        tokio::select! {
            () = tokio::time::sleep(delay) => ControlFlow::Continue(()),
            () = self.stopped() => ControlFlow::Break(()),
        }
    }

    /// Waits until the resource is served, or the informer is stopped (`None`).
    async fn park(&mut self) -> Option<ResolvedResource> {
        let gvr = self.shared.key.gvr.clone();
        self.set_state(InformerState::Parked);
        lock(&self.shared.status).synced = false;
        self.env.parked.send_modify(|n| *n += 1);
        self.env.sync_changed.send_modify(|n| *n += 1);
        tracing::info!(
            informer = %self.shared.label,
            "{gvr} is not served by the API server; its watch starts when it is"
        );
        let mut changed = self.env.discovery_changed.subscribe();
        let mut warned = false;
        let found = loop {
            self.env.discovery.invalidate(&gvr.api_version());
            match self.env.discovery.resolve(&gvr, self.shared.scope).await {
                Ok(Resolution::Served(r)) => break Some(r),
                Ok(Resolution::NotServed) => {}
                Err(e) => {
                    if !warned {
                        tracing::warn!(informer = %self.shared.label, "{e}");
                        warned = true;
                    }
                }
            }
            tokio::select! {
                _ = changed.changed() => {}
                () = tokio::time::sleep(self.env.options.rediscovery_interval) => {}
                () = self.stopped() => break None,
            }
        };
        self.env.parked.send_modify(|n| *n = n.saturating_sub(1));
        if found.is_some() {
            tracing::info!(informer = %self.shared.label, "{gvr} is served now; watching it");
            self.set_state(InformerState::Listing);
        }
        found
    }

    fn selectors(&self) -> (Option<&str>, Option<&str>) {
        let key = &self.shared.key;
        (
            Some(key.label_selector.as_str()).filter(|s| !s.is_empty()),
            Some(key.field_selector.as_str()).filter(|s| !s.is_empty()),
        )
    }

    fn watch_params(&self) -> WatchParams {
        let (labels, fields) = self.selectors();
        // Spread the watches' ends over the last fifth of the timeout.
        let full = self.env.options.watch_timeout.as_secs().max(1);
        let timeout = full - (full / 5) * fastrand::u64(0..=100) / 100;
        WatchParams {
            label_selector: labels.map(str::to_owned),
            field_selector: fields.map(str::to_owned),
            timeout: Some(u32::try_from(timeout).unwrap_or(u32::MAX)),
            bookmarks: true,
            send_initial_events: false,
        }
    }

    async fn paged_list(&mut self, api: &Api<WatchedObject>, resource: &ResolvedResource) -> Next {
        let (labels, fields) = self.selectors();
        let mut params = ListParams::default().limit(self.env.options.page_size);
        params.label_selector = labels.map(str::to_owned);
        params.field_selector = fields.map(str::to_owned);
        self.known.begin_relist();
        let resource_version = loop {
            let page = tokio::select! {
                r = api.list(&params) => r,
                () = self.stopped() => return Next::Stop,
            };
            let list = match page {
                Ok(list) => list,
                Err(e) => return self.failure(&e, false),
            };
            let subscribers = self.shared.subscribers();
            for item in list.items {
                let object = prepare(item.0, resource);
                self.known.observe(
                    Observation::Present,
                    object,
                    |o| subscribers.iter().any(|s| s.accepts(o)),
                    &mut self.out,
                );
            }
            self.deliver(resource).await;
            match list.metadata.continue_ {
                Some(token) if !token.is_empty() => params.continue_token = Some(token),
                _ => break list.metadata.resource_version.unwrap_or_default(),
            }
        };
        self.synced(resource, resource_version).await;
        Next::Continue
    }

    /// A watch of this informer's resource, read through Faro's decoder.
    async fn open_watch(
        &self,
        resource: &ResolvedResource,
        params: &WatchParams,
        rv: &str,
    ) -> kube::Result<impl Stream<Item = crate::object::Decoded> + use<>> {
        let namespace = resource.request_namespace(self.shared.key.namespace.as_deref());
        crate::object::watch(
            &self.env.client,
            &resource.api_resource,
            namespace,
            params,
            rv,
        )
        .await
    }

    async fn streaming_list(&mut self, resource: &ResolvedResource) -> Next {
        let mut params = self.watch_params();
        params.send_initial_events = true;
        let stream = tokio::select! {
            r = self.open_watch(resource, &params, "") => r,
            () = self.stopped() => return Next::Stop,
        };
        match stream {
            Ok(stream) => {
                self.known.begin_relist();
                self.follow(stream, resource, true).await
            }
            Err(e) => self.failure(&e, true),
        }
    }

    async fn watch(&mut self, resource: &ResolvedResource, rv: &str) -> Next {
        let params = self.watch_params();
        let stream = tokio::select! {
            r = self.open_watch(resource, &params, rv) => r,
            () = self.stopped() => return Next::Stop,
        };
        match stream {
            Ok(stream) => {
                self.set_state(InformerState::Watching);
                // A watch resumed from a checkpoint is synced once it runs.
                self.mark_synced();
                self.follow(stream, resource, false).await
            }
            Err(e) => self.failure(&e, false),
        }
    }

    /// Reads one watch stream; `initial` while a streaming list has not ended.
    async fn follow(
        &mut self,
        stream: impl Stream<Item = kube::Result<WatchEvent<DynamicObject>>>,
        resource: &ResolvedResource,
        mut initial: bool,
    ) -> Next {
        let mut stream = std::pin::pin!(stream);
        let started = Instant::now();
        let mut received = false;
        let stall = self.env.options.stall_timeout;
        let mut drain_until: Option<tokio::time::Instant> = None;
        loop {
            let item = if let Some(deadline) = drain_until {
                // Stopping: take what the server already sent, then end.
                let quiet = tokio::time::Instant::now() + DRAIN_QUIET;
                match tokio::time::timeout_at(quiet.min(deadline), stream.next()).await {
                    Ok(Some(Ok(event))) => Ok(Some(Ok(event))),
                    _ => return Next::Stop,
                }
            } else {
                let mut resync = self.resync_rx.clone();
                let mut snapshot = self.snapshot_rx.clone();
                tokio::select! {
                    biased;
                    () = self.stopped() => {
                        if initial {
                            return Next::Stop;
                        }
                        drain_until = Some(tokio::time::Instant::now() + DRAIN_MAX);
                        continue;
                    }
                    _ = resync.changed(), if !initial => {
                        self.resync_rx.mark_unchanged();
                        return Next::Resync;
                    }
                    _ = snapshot.changed(), if !initial => {
                        let request = *self.snapshot_rx.borrow_and_update();
                        self.take_snapshot(request);
                        continue;
                    }
                    item = tokio::time::timeout(stall, stream.next()) => item,
                }
            };
            let event = match item {
                Err(_) => {
                    self.env
                        .metrics
                        .stalls
                        .get_or_create(&[("gvr", self.gvr_label.clone())])
                        .inc();
                    tracing::warn!(
                        informer = %self.shared.label,
                        "nothing received for {stall:?}, not even a bookmark; restarting the watch"
                    );
                    if initial {
                        return Next::Retry("stall");
                    }
                    self.env.metrics.restart(&self.gvr_label, "stall");
                    return Next::Continue;
                }
                Ok(None) => {
                    if initial || (!received && started.elapsed() < Duration::from_secs(1)) {
                        return Next::Retry("closed");
                    }
                    self.env.metrics.restart(&self.gvr_label, "closed");
                    return Next::Continue;
                }
                Ok(Some(Err(e))) => return self.failure(&e, false),
                Ok(Some(Ok(event))) => event,
            };
            received = true;
            let (observation, object) = match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => (Observation::Present, o),
                WatchEvent::Deleted(o) => (Observation::Deleted, o),
                WatchEvent::Bookmark(bookmark) => {
                    let rv = bookmark.metadata.resource_version;
                    if initial {
                        let end = bookmark
                            .metadata
                            .annotations
                            .get("k8s.io/initial-events-end")
                            .is_some_and(|v| v == "true");
                        if end {
                            initial = false;
                            self.env.streaming.store(1, Ordering::Relaxed);
                            self.synced(resource, rv).await;
                        }
                    } else {
                        self.dirty |= self.rv.as_deref() != Some(rv.as_str());
                        self.rv = Some(rv);
                        self.backoff.reset();
                        self.publish_rv();
                    }
                    continue;
                }
                WatchEvent::Error(status) => {
                    return match status.code {
                        410 => Next::Relist,
                        400 | 422 if initial => Next::NoStreaming,
                        404 => Next::NotFound,
                        _ => {
                            tracing::warn!(
                                informer = %self.shared.label,
                                "watch error {}: {}", status.code, status.message
                            );
                            Next::Retry("error")
                        }
                    };
                }
            };
            let object = prepare(object, resource);
            if !initial {
                self.rv.clone_from(&object.metadata.resource_version);
                self.backoff.reset();
            }
            let subscribers = self.shared.subscribers();
            self.known.observe(
                observation,
                object,
                |o| subscribers.iter().any(|s| s.accepts(o)),
                &mut self.out,
            );
            self.deliver(resource).await;
            if !initial {
                self.publish_rv();
            }
        }
    }

    /// Lets the owner index know how far this watch has read and handed on.
    fn publish_rv(&self) {
        if let Some(rv) = self.rv.as_deref().and_then(|rv| rv.parse::<u64>().ok()) {
            self.shared.seen_rv.fetch_max(rv, Ordering::Release);
        }
    }

    /// The end of a full list: infer the deletes, deliver, and mark the informer synced.
    async fn synced(&mut self, resource: &ResolvedResource, resource_version: String) {
        self.known.finish_relist(&mut self.out);
        self.deliver(resource).await;
        self.rv = Some(resource_version);
        self.publish_rv();
        self.dirty = true;
        self.backoff.reset();
        self.set_state(InformerState::Watching);
        self.mark_synced();
    }

    /// Marks the informer synced (once), for readiness.
    fn mark_synced(&self) {
        let mut status = lock(&self.shared.status);
        let first = !status.synced;
        status.synced = true;
        drop(status);
        if first {
            tracing::debug!(informer = %self.shared.label, objects = self.known.len(), "synced");
            self.env.sync_changed.send_modify(|n| *n += 1);
        }
    }

    fn failure(&self, error: &kube::Error, streaming: bool) -> Next {
        match error {
            kube::Error::Api(status) => match status.code {
                410 => Next::Relist,
                404 => Next::NotFound,
                400 | 422 if streaming => Next::NoStreaming,
                401 | 403 => {
                    tracing::warn!(informer = %self.shared.label, "{}", status.message);
                    Next::Retry("forbidden")
                }
                _ => Next::Retry("error"),
            },
            _ => Next::Retry("connection"),
        }
    }

    /// Hands classified events on: every one to internal subscribers, the
    /// ones the filter passes to every handler, in order, one at a time.
    async fn deliver(&mut self, resource: &ResolvedResource) {
        if self.out.is_empty() {
            return;
        }
        self.dirty = true;
        let mut out = std::mem::take(&mut self.out);
        let subscribers = self.shared.subscribers();
        if subscribers.is_empty() {
            // The last subscriber left; the informer is stopping and nobody
            // is to hear of what it read meanwhile.
            out.clear();
            self.out = out;
            return;
        }
        let handlers = self.env.handlers();
        for c in out.drain(..) {
            for s in subscribers.iter() {
                if let Some(sink) = &s.internal {
                    sink.on_event(c.event_type, &c.object).await;
                }
            }
            if !c.deliver {
                continue;
            }
            let workload = subscribers
                .iter()
                .find(|s| s.workload.is_some() && (c.inferred.is_some() || s.accepts(&c.object)))
                .and_then(|s| s.workload.clone());
            let decision = self.diff.decide(c.event_type, &c.object);
            let correlation = match &workload {
                Some(w) => w.clone(),
                None => self.env.owners.of_object(&c.object).await,
            };
            let writer = self.env.options.writer.as_ref().map(|(w, shards)| {
                let shard = faro_core::config::shard_of(
                    &self.gvr_label,
                    c.object.metadata.namespace.as_deref(),
                    *shards,
                );
                (w.clone(), shard)
            });
            let mut builder = MatchedEvent::builder(c.event_type, resource.gvr.clone(), c.object)
                .correlation(correlation)
                .cluster(self.env.options.cluster.clone())
                .informer(Some(self.shared.label.clone()))
                .writer(
                    writer.as_ref().map(|(w, _)| w.clone()),
                    writer.as_ref().map(|(_, s)| *s),
                );
            if let Some(rv) = c.inferred {
                builder = builder.inferred(rv);
            }
            if let Some(w) = workload {
                builder = builder.workload(w);
            }
            if let Some(changes) = decision.changes {
                builder = builder.changes(changes);
            }
            let event = builder.build();
            // Lifecycle records follow every state, delivered or not.
            if let Some(lifecycle) = &self.env.lifecycle
                && resource.gvr.group().is_empty()
                && resource.gvr.resource() == "pods"
            {
                lifecycle.observe(&event, &handlers).await;
            }
            if !decision.deliver {
                continue;
            }
            match event.event_type() {
                EventType::Added => self.counters.added.inc(),
                EventType::Updated => self.counters.updated.inc(),
                EventType::Deleted => self.counters.deleted.inc(),
            };
            for handler in handlers.iter() {
                if let Err(e) = handler.on_matched(&event).await {
                    tracing::warn!(
                        handler = handler.name(),
                        key = %event.key(),
                        gvr = %event.gvr(),
                        "handler failed: {e}"
                    );
                    self.env
                        .metrics
                        .handler_errors
                        .get_or_create(&[("handler", handler.name().to_owned())])
                        .inc();
                }
            }
        }
        self.out = out;
        let tracked = i64::try_from(self.known.len()).unwrap_or(i64::MAX);
        self.counters.tracked.set(tracked);
        lock(&self.shared.status).tracked = self.known.len();
        let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        self.counters.last_event.set(now);
    }
}

/// Fills in `apiVersion` and `kind`, which list items usually lack.
fn prepare(mut object: DynamicObject, resource: &ResolvedResource) -> Arc<DynamicObject> {
    if object.types.is_none() {
        object.types = Some(TypeMeta {
            api_version: resource.api_resource.api_version.clone(),
            kind: resource.api_resource.kind.clone(),
        });
    }
    Arc::new(object)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
