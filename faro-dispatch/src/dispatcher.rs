//! The `Dispatcher`: a `faro_core::EventHandler` that runs the middleware
//! and routes each event by GVR to the workers that handle it, through a
//! bounded queue per worker lane.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use faro_core::config::{FullQueuePolicy, MiddlewareConfig, WorkerSettings, WorkersConfig};
use faro_core::{EventHandler, Gvr, HandlerError, LogRecord, MatchedEvent, Record, RecordKind};
use futures_util::FutureExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::metrics::DispatchMetrics;
use crate::middleware::{DropManagedFields, Middleware, RedactSecrets};
use crate::worker::{Handles, ResourceWorker, WorkerError};
use faro_monitor::{LatencyCounts, LatencyHistogram};

/// How the dispatcher treats its workers.
#[derive(Debug, Clone)]
pub struct DispatcherOptions {
    /// Queue size, full-queue policy and lanes, per worker name.
    pub workers: WorkersConfig,
    /// A worker that panics this many times in a row gets no more events.
    pub quarantine_after: u32,
    /// A `drop` worker's full queue is warned about at most this often.
    pub drop_warn_interval: Duration,
    /// Which built-in middleware run.
    pub middleware: MiddlewareConfig,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        Self {
            workers: WorkersConfig::default(),
            quarantine_after: 5,
            drop_warn_interval: Duration::from_secs(10),
            middleware: MiddlewareConfig::default(),
        }
    }
}

/// Why a worker could not be registered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// Another worker has the name.
    #[error("worker {0:?} is already registered; expected unique worker names")]
    Duplicate(String),
    /// The dispatcher was shut down.
    #[error("the dispatcher is shut down")]
    ShutDown,
    /// A worker could not write durably.
    #[error("worker {worker} could not write durably: {message}")]
    Flush {
        /// The worker.
        worker: String,
        /// Why.
        message: String,
    },
}

/// What travels through a lane: every kind of record takes one path.
enum Item {
    Event(MatchedEvent),
    Logs(Arc<[LogRecord]>),
    Record(Record),
    /// Everything before it in the lane is handled: tell the flush waiting.
    Barrier(mpsc::UnboundedSender<()>),
}

/// One registered worker: its lanes and its health.
struct Slot {
    name: String,
    worker: Arc<dyn ResourceWorker>,
    handles: Handles,
    wants_logs: bool,
    /// Per `RecordKind::index`.
    wants_records: [bool; 2],
    policy: FullQueuePolicy,
    /// Emptied at shutdown, which closes the lanes.
    lanes: RwLock<Vec<mpsc::Sender<Item>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    quarantined: AtomicBool,
    consecutive_panics: AtomicU32,
    last_drop_warning: Mutex<Option<Instant>>,
    dropped: Counter,
    /// Read off the watch → handled by this worker.
    latency: LatencyHistogram,
    /// Events accepted into a lane and not yet handled (or skipped).
    pending: AtomicUsize,
}

/// The routing table, rebuilt only when workers are registered or removed.
#[derive(Default)]
struct Routes {
    /// Per GVR named by some worker: its workers plus every "all" worker.
    by_gvr: HashMap<Gvr, Arc<[Arc<Slot>]>>,
    /// For any other GVR: the "all" workers.
    all: Arc<[Arc<Slot>]>,
    /// For container log lines: the workers that want them.
    logs: Arc<[Arc<Slot>]>,
    /// Per `RecordKind::index`: the workers that want records of that kind.
    records: [Arc<[Arc<Slot>]>; 2],
    slots: Vec<Arc<Slot>>,
}

impl Routes {
    fn build(slots: Vec<Arc<Slot>>) -> Self {
        let all: Vec<Arc<Slot>> = slots
            .iter()
            .filter(|s| s.handles == Handles::All)
            .cloned()
            .collect();
        let mut by_gvr: HashMap<Gvr, Vec<Arc<Slot>>> = HashMap::new();
        for slot in &slots {
            if let Handles::Only(gvrs) = &slot.handles {
                for gvr in gvrs {
                    let entry = by_gvr.entry(gvr.clone()).or_default();
                    if !entry.iter().any(|s| Arc::ptr_eq(s, slot)) {
                        entry.push(slot.clone());
                    }
                }
            }
        }
        Self {
            by_gvr: by_gvr
                .into_iter()
                .map(|(gvr, mut list)| {
                    list.extend(all.iter().cloned());
                    (gvr, Arc::from(list))
                })
                .collect(),
            all: Arc::from(all),
            logs: slots.iter().filter(|s| s.wants_logs).cloned().collect(),
            records: RecordKind::ALL.map(|k| {
                slots
                    .iter()
                    .filter(|s| s.wants_records[k.index()])
                    .cloned()
                    .collect()
            }),
            slots,
        }
    }

    fn route(&self, gvr: &Gvr) -> &Arc<[Arc<Slot>]> {
        self.by_gvr.get(gvr).unwrap_or(&self.all)
    }
}

struct Inner {
    routes: RwLock<Arc<Routes>>,
    middleware: Vec<Arc<dyn Middleware>>,
    suppressed: Vec<Counter>,
    metrics: DispatchMetrics,
    options: DispatcherOptions,
    closed: AtomicBool,
}

/// Routes matched events to resource workers; plug it into a controller
/// with `add_handler`. Cloning shares the dispatcher.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("workers", &self.worker_names())
            .finish_non_exhaustive()
    }
}

impl Default for Dispatcher {
    fn default() -> Self {
        Self::new(DispatcherOptions::default())
    }
}

impl Dispatcher {
    /// A dispatcher with the built-in middleware `options.middleware` turns on.
    pub fn new(options: DispatcherOptions) -> Self {
        let mut middleware: Vec<Arc<dyn Middleware>> = Vec::new();
        if options.middleware.drop_managed_fields {
            middleware.push(Arc::new(DropManagedFields));
        }
        if options.middleware.redact_secrets {
            middleware.push(Arc::new(RedactSecrets));
        } else {
            tracing::warn!("Secret redaction is off: Secret values reach every worker and sink");
        }
        Self::with_middleware(options, middleware)
    }

    /// A dispatcher with exactly these middleware, in order.
    pub fn with_middleware(
        options: DispatcherOptions,
        middleware: Vec<Arc<dyn Middleware>>,
    ) -> Self {
        let metrics = DispatchMetrics::default();
        let suppressed = middleware
            .iter()
            .map(|m| {
                metrics
                    .suppressed
                    .get_or_create(&[("middleware", m.name().to_owned())])
                    .clone()
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                routes: RwLock::default(),
                middleware,
                suppressed,
                metrics,
                options,
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// The dispatch metrics.
    pub fn metrics(&self) -> &DispatchMetrics {
        &self.inner.metrics
    }

    /// Registers the dispatch metrics on `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.inner.metrics.register(registry);
    }

    /// Registers a worker with the settings the `workers:` configuration gives its name.
    pub fn register(&self, worker: impl ResourceWorker) -> Result<(), DispatchError> {
        self.register_arc(Arc::new(worker))
    }

    /// Registers a shared worker.
    pub fn register_arc(&self, worker: Arc<dyn ResourceWorker>) -> Result<(), DispatchError> {
        let settings = self.inner.options.workers.for_worker(worker.name());
        self.register_with(worker, settings)
    }

    /// Registers a worker with explicit queue settings.
    pub fn register_with(
        &self,
        worker: Arc<dyn ResourceWorker>,
        settings: WorkerSettings,
    ) -> Result<(), DispatchError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(DispatchError::ShutDown);
        }
        let name = worker.name().to_owned();
        let mut routes = write(&self.inner.routes);
        if routes.slots.iter().any(|s| s.name == name) {
            return Err(DispatchError::Duplicate(name));
        }
        let metrics = &self.inner.metrics;
        metrics
            .quarantined
            .get_or_create(&[("worker", name.clone())])
            .set(0);
        let lanes = settings.lanes.max(1);
        let mut senders = Vec::with_capacity(lanes);
        let mut receivers = Vec::with_capacity(lanes);
        for _ in 0..lanes {
            let (tx, rx) = mpsc::channel(settings.queue_size.max(1));
            senders.push(tx);
            receivers.push(rx);
        }
        let slot = Arc::new(Slot {
            handles: worker.handles(),
            wants_logs: worker.wants_logs(),
            wants_records: RecordKind::ALL.map(|k| worker.wants_records(k)),
            dropped: DispatchMetrics::worker(&metrics.dropped, &name),
            latency: metrics
                .latency
                .get_or_create(&[("worker", name.clone())])
                .clone(),
            name,
            worker,
            policy: settings.full_queue,
            lanes: RwLock::new(senders),
            tasks: Mutex::default(),
            quarantined: AtomicBool::new(false),
            consecutive_panics: AtomicU32::new(0),
            last_drop_warning: Mutex::new(None),
            pending: AtomicUsize::new(0),
        });
        let tasks = receivers
            .into_iter()
            .map(|rx| tokio::spawn(run_lane(self.inner.clone(), slot.clone(), rx)))
            .collect();
        *lock(&slot.tasks) = tasks;
        let mut slots = routes.slots.clone();
        slots.push(slot);
        *routes = Arc::new(Routes::build(slots));
        Ok(())
    }

    /// Removes a worker: it gets no new events, handles what is queued, and shuts down.
    pub async fn remove(&self, name: &str) -> bool {
        let slot = {
            let mut routes = write(&self.inner.routes);
            let Some(slot) = routes.slots.iter().find(|s| s.name == name).cloned() else {
                return false;
            };
            let slots = routes
                .slots
                .iter()
                .filter(|s| !Arc::ptr_eq(s, &slot))
                .cloned()
                .collect();
            *routes = Arc::new(Routes::build(slots));
            slot
        };
        drain(&slot).await;
        true
    }

    /// The registered workers' names, in registration order.
    pub fn worker_names(&self) -> Vec<String> {
        read(&self.inner.routes)
            .slots
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    /// Whether the worker called `name` is quarantined.
    pub fn is_quarantined(&self, name: &str) -> bool {
        read(&self.inner.routes)
            .slots
            .iter()
            .any(|s| s.name == name && s.quarantined.load(Ordering::SeqCst))
    }

    /// Waits until every event accepted so far has been handled, then lets
    /// every worker flush (`idle`): after this, sinks hold everything on disk.
    pub async fn wait_idle(&self) {
        let slots = read(&self.inner.routes).slots.clone();
        while slots.iter().any(|s| s.pending.load(Ordering::SeqCst) > 0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for slot in &slots {
            slot.worker.idle().await;
        }
    }

    /// Waits until every event accepted before the call has been handled by
    /// every worker (a barrier through each lane, so events arriving
    /// meanwhile do not delay it), then lets each worker write durably.
    /// Returns the marks of the events files written.
    pub async fn flush(&self) -> Result<Vec<faro_core::DurableMark>, DispatchError> {
        let slots = read(&self.inner.routes).slots.clone();
        let mut marks = Vec::new();
        for slot in &slots {
            let lanes: Vec<mpsc::Sender<Item>> = read(&slot.lanes).clone();
            let (tx, mut rx) = mpsc::unbounded_channel();
            let mut sent = 0;
            for lane in &lanes {
                if lane.send(Item::Barrier(tx.clone())).await.is_ok() {
                    sent += 1;
                }
            }
            drop(tx);
            for _ in 0..sent {
                if rx.recv().await.is_none() {
                    break;
                }
            }
            if slot.quarantined.load(Ordering::SeqCst) {
                continue;
            }
            match slot.worker.flush().await {
                Ok(Some(mark)) => marks.push(mark),
                Ok(None) => {}
                Err(e) => {
                    return Err(DispatchError::Flush {
                        worker: slot.name.clone(),
                        message: e.to_string(),
                    });
                }
            }
        }
        Ok(marks)
    }

    /// Events waiting or being handled, per worker.
    pub fn queue_depths(&self) -> Vec<(String, usize)> {
        read(&self.inner.routes)
            .slots
            .iter()
            .map(|s| (s.name.clone(), s.pending.load(Ordering::SeqCst)))
            .collect()
    }

    /// `faro_event_latency_seconds` of every worker, added up.
    pub fn latency_counts(&self) -> LatencyCounts {
        let mut out = LatencyCounts::default();
        for s in &read(&self.inner.routes).slots {
            out.add(&s.latency.counts());
        }
        out
    }

    /// Worker calls that failed or panicked, all workers together.
    pub fn errors_total(&self) -> u64 {
        let m = &self.inner.metrics;
        read(&self.inner.routes)
            .slots
            .iter()
            .map(|s| {
                DispatchMetrics::worker(&m.errors, &s.name).get()
                    + DispatchMetrics::worker(&m.panics, &s.name).get()
            })
            .sum()
    }

    /// Events dropped by full queues, all workers together.
    pub fn dropped_total(&self) -> u64 {
        read(&self.inner.routes)
            .slots
            .iter()
            .map(|s| s.dropped.get())
            .sum()
    }

    /// Refuses new events, lets every queue drain, then shuts every worker
    /// down (sinks flush there). No event accepted before is lost.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let slots = read(&self.inner.routes).slots.clone();
        for slot in &slots {
            drain(slot).await;
        }
    }

    /// Runs the middleware, then hands the event to every worker routed to its GVR.
    async fn dispatch(&self, event: &MatchedEvent) -> Result<(), HandlerError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(HandlerError::new("the dispatcher is shut down"));
        }
        let mut event = event.clone();
        for (m, suppressed) in self.inner.middleware.iter().zip(&self.inner.suppressed) {
            match m.apply(event) {
                Some(next) => event = next,
                None => {
                    suppressed.inc();
                    return Ok(());
                }
            }
        }
        let routes = read(&self.inner.routes).clone();
        let slots = routes.route(event.gvr());
        if slots.is_empty() {
            return Ok(());
        }
        let lane_hash = {
            let mut h = std::hash::DefaultHasher::new();
            event.key().hash(&mut h);
            h.finish()
        };
        self.enqueue(slots, lane_hash, || Item::Event(event.clone()))
            .await;
        Ok(())
    }

    /// Runs the middleware, then hands the lines (of one container) to
    /// every worker that wants logs, as one item of one lane.
    async fn dispatch_logs(&self, records: &[LogRecord]) -> Result<(), HandlerError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(HandlerError::new("the dispatcher is shut down"));
        }
        let routes = read(&self.inner.routes).clone();
        if routes.logs.is_empty() || records.is_empty() {
            return Ok(());
        }
        let mut kept: Vec<LogRecord> = Vec::with_capacity(records.len());
        'record: for record in records {
            let mut record = record.clone();
            for (m, suppressed) in self.inner.middleware.iter().zip(&self.inner.suppressed) {
                match m.apply_log(record) {
                    Some(next) => record = next,
                    None => {
                        suppressed.inc();
                        continue 'record;
                    }
                }
            }
            kept.push(record);
        }
        // Lines are grouped by container; a batch spanning several is
        // split, so that each container's lines keep one lane.
        let mut rest: &[LogRecord] = &kept;
        while let Some(first) = rest.first() {
            let n = rest
                .iter()
                .position(|r| !Arc::ptr_eq(r.source(), first.source()))
                .unwrap_or(rest.len());
            let (batch, tail) = rest.split_at(n);
            rest = tail;
            // One container's lines share one `ContainerRef`: its address picks the lane.
            let lane_hash = {
                let mut h = std::hash::DefaultHasher::new();
                std::ptr::hash(Arc::as_ptr(first.source()), &mut h);
                h.finish()
            };
            let batch: Arc<[LogRecord]> = Arc::from(batch);
            self.enqueue(&routes.logs, lane_hash, || Item::Logs(batch.clone()))
                .await;
        }
        Ok(())
    }

    /// Hands a record to every worker that wants its kind, in the lane of
    /// the object it is about.
    async fn dispatch_record(&self, record: &Record) -> Result<(), HandlerError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(HandlerError::new("the dispatcher is shut down"));
        }
        let routes = read(&self.inner.routes).clone();
        let slots = &routes.records[record.kind().index()];
        if slots.is_empty() {
            return Ok(());
        }
        let lane_hash = {
            let mut h = std::hash::DefaultHasher::new();
            record.subject().hash(&mut h);
            h.finish()
        };
        self.enqueue(slots, lane_hash, || Item::Record(record.clone()))
            .await;
        Ok(())
    }

    /// Puts an item into the lane `lane_hash` picks of each slot, by its
    /// full-queue policy.
    async fn enqueue(&self, slots: &[Arc<Slot>], lane_hash: u64, item: impl Fn() -> Item) {
        for slot in slots {
            let tx = {
                let lanes = read(&slot.lanes);
                if lanes.is_empty() {
                    continue;
                }
                let index = usize::try_from(lane_hash % lanes.len() as u64).unwrap_or(0);
                lanes[index].clone()
            };
            slot.pending.fetch_add(1, Ordering::SeqCst);
            let accepted = match slot.policy {
                // A closed lane means the worker is being removed; nothing to do.
                FullQueuePolicy::Block => tx.send(item()).await.is_ok(),
                FullQueuePolicy::Drop => match tx.try_send(item()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        slot.dropped.inc();
                        self.warn_dropped(slot);
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                },
            };
            if !accepted {
                slot.pending.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    fn warn_dropped(&self, slot: &Slot) {
        let mut last = lock(&slot.last_drop_warning);
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= self.inner.options.drop_warn_interval) {
            *last = Some(now);
            tracing::warn!(
                worker = %slot.name,
                dropped_total = slot.dropped.get(),
                "the worker's queue is full; dropping events (full_queue: drop)"
            );
        }
    }
}

#[async_trait::async_trait]
impl EventHandler for Dispatcher {
    fn name(&self) -> &str {
        "dispatcher"
    }

    async fn on_matched(&self, event: &MatchedEvent) -> Result<(), HandlerError> {
        self.dispatch(event).await
    }

    async fn on_log(&self, record: &LogRecord) -> Result<(), HandlerError> {
        self.dispatch_logs(std::slice::from_ref(record)).await
    }

    async fn on_logs(&self, records: &[LogRecord]) -> Result<(), HandlerError> {
        self.dispatch_logs(records).await
    }

    async fn on_record(&self, record: &Record) -> Result<(), HandlerError> {
        self.dispatch_record(record).await
    }

    async fn flush(&self) -> Result<Vec<faro_core::DurableMark>, HandlerError> {
        Dispatcher::flush(self)
            .await
            .map_err(|e| HandlerError::with_source(e.to_string(), e))
    }
}

/// Closes a worker's lanes, waits for them to drain, and shuts it down.
async fn drain(slot: &Slot) {
    write(&slot.lanes).clear();
    let tasks = std::mem::take(&mut *lock(&slot.tasks));
    for task in tasks {
        let _ = task.await;
    }
    if let Err(e) = slot.worker.shutdown().await {
        tracing::warn!(worker = %slot.name, "shutdown failed: {e}");
    }
}

/// How often an idle lane retries a worker's unfinished work.
const IDLE_RETRY: Duration = Duration::from_millis(500);

/// One lane: handles its events in order, tells the worker when it is idle.
async fn run_lane(inner: Arc<Inner>, slot: Arc<Slot>, mut rx: mpsc::Receiver<Item>) {
    let metrics = &inner.metrics;
    let counters = LaneCounters {
        handled: DispatchMetrics::worker(&metrics.handled, &slot.name),
        errors: DispatchMetrics::worker(&metrics.errors, &slot.name),
        panics: DispatchMetrics::worker(&metrics.panics, &slot.name),
    };
    let skipped = DispatchMetrics::worker(&metrics.skipped, &slot.name);
    let max_batch = slot.worker.max_batch().max(1);
    // Events taken off the queue for a batch the worker did not get to.
    let mut carried: VecDeque<Item> = VecDeque::new();
    loop {
        let event = match carried.pop_front().map_or_else(|| rx.try_recv(), Ok) {
            Ok(event) => event,
            Err(mpsc::error::TryRecvError::Empty) => {
                slot.worker.idle().await;
                // A worker with unfinished work is given more chances while idle.
                let next = loop {
                    if !slot.worker.unfinished() {
                        break rx.recv().await;
                    }
                    tokio::select! {
                        event = rx.recv() => break event,
                        () = tokio::time::sleep(IDLE_RETRY) => slot.worker.idle().await,
                    }
                };
                match next {
                    Some(event) => event,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        if let Item::Barrier(done) = &event {
            let _ = done.send(());
            continue;
        }
        if slot.quarantined.load(Ordering::Relaxed) {
            skipped.inc();
            slot.pending.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        if max_batch > 1
            && let Item::Event(first) = event
        {
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match carried.pop_front().or_else(|| rx.try_recv().ok()) {
                    Some(Item::Event(e)) => batch.push(e),
                    Some(other) => {
                        carried.push_front(other);
                        break;
                    }
                    None => break,
                }
            }
            let mut results: Vec<Handled> = match AssertUnwindSafe(slot.worker.handle_batch(&batch))
                .catch_unwind()
                .await
            {
                Ok(results) => results.into_iter().map(Ok).collect(),
                // A panic outside any one event's call: the first is blamed.
                Err(payload) => vec![Err(payload)],
            };
            if results.is_empty() {
                results.push(Ok(Err(WorkerError::new("handle_batch returned no result"))));
            }
            results.truncate(batch.len());
            let done = results.len();
            for (e, result) in batch.iter().zip(results) {
                counters.handled.inc();
                slot.latency.observe(e.received().elapsed());
                settle(&inner, &slot, &counters, &EventName(e), result);
            }
            for e in batch.drain(done..).rev() {
                carried.push_front(Item::Event(e));
            }
            continue;
        }
        counters.handled.inc();
        let result = match &event {
            Item::Event(e) => AssertUnwindSafe(slot.worker.handle(e)).catch_unwind().await,
            Item::Logs(r) => {
                AssertUnwindSafe(slot.worker.handle_logs(r))
                    .catch_unwind()
                    .await
            }
            Item::Record(r) => {
                AssertUnwindSafe(slot.worker.handle_record(r))
                    .catch_unwind()
                    .await
            }
            Item::Barrier(_) => Ok(Ok(())),
        };
        if let Item::Event(e) = &event {
            slot.latency.observe(e.received().elapsed());
        }
        settle(&inner, &slot, &counters, &event, result);
    }
}

/// A worker's answer for one item, or the panic that stood in for it.
type Handled = Result<Result<(), WorkerError>, Box<dyn std::any::Any + Send>>;

struct LaneCounters {
    handled: Counter,
    errors: Counter,
    panics: Counter,
}

struct EventName<'a>(&'a MatchedEvent);

impl std::fmt::Display for EventName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0.gvr(), self.0.key())
    }
}

/// Accounts for one handled item: errors and panics counted and logged,
/// the worker quarantined after too many panics in a row.
fn settle(
    inner: &Inner,
    slot: &Slot,
    counters: &LaneCounters,
    what: &dyn std::fmt::Display,
    result: Handled,
) {
    let panic = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) if e.is_panic() => Some(e.to_string()),
        Ok(Err(e)) => {
            counters.errors.inc();
            tracing::warn!(worker = %slot.name, record = %what, "worker failed: {e}");
            None
        }
        Err(payload) => Some(panic_message(payload.as_ref())),
    };
    slot.pending.fetch_sub(1, Ordering::SeqCst);
    match panic {
        None => slot.consecutive_panics.store(0, Ordering::Relaxed),
        Some(message) => {
            counters.panics.inc();
            let n = slot.consecutive_panics.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(worker = %slot.name, record = %what, "worker panicked: {message}");
            if n >= inner.options.quarantine_after && !slot.quarantined.swap(true, Ordering::SeqCst)
            {
                inner
                    .metrics
                    .quarantined
                    .get_or_create(&[("worker", slot.name.clone())])
                    .set(1);
                tracing::error!(
                    worker = %slot.name,
                    "quarantined after {n} panics in a row; it gets no more events"
                );
            }
        }
    }
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Item::Event(e) => EventName(e).fmt(f),
            Item::Logs(r) => match r.first() {
                Some(first) => write!(f, "log {} ({} lines)", first.source(), r.len()),
                None => f.write_str("log (no lines)"),
            },
            Item::Record(r) => write!(f, "{} {}", r.kind(), r.subject()),
            Item::Barrier(_) => f.write_str("barrier"),
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
