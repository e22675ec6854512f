//! Faro's performance monitor, usable without the CLI: [`PerformanceMonitor`]
//! takes [`Snapshot`]s of the process (uptime, start-up and shutdown time,
//! resident memory, CPU, open files, tokio tasks) and of whatever
//! [`Source`]s report (informers, tracked objects, queues, errors), calls
//! hooks on named events (`startup_complete`, `metrics_collection`,
//! `shutdown`, and any [`PerformanceMonitor::record_event`]), counts those
//! events and times operations into Prometheus families.
//!
//! ```
//! # async fn run() {
//! let monitor = faro_monitor::PerformanceMonitor::new();
//! monitor.add_hook(|event, snapshot| {
//!     if event == "metrics_collection" {
//!         println!("{} bytes resident", snapshot.resident_bytes);
//!     }
//! });
//! let periodic = monitor.start_periodic(std::time::Duration::from_secs(60));
//! monitor.startup_complete();
//! let listed: Result<u32, std::io::Error> = monitor.profile("list", async { Ok(3) }).await;
//! monitor.record_event("relist");
//! periodic.abort();
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub mod cpu;
mod latency;
pub mod process;
mod push;
mod thresholds;

pub use latency::{LATENCY_BUCKETS, LatencyCounts, LatencyHistogram};
pub use push::{PushCredentials, PushError, PushTarget, Pusher, to_prometheus_text};
pub use thresholds::{THRESHOLD_NAMES, Thresholds, Transition};

/// What the monitor saw at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Since the monitor was made (at process start, in Faro).
    pub uptime: Duration,
    /// From the monitor's making to [`PerformanceMonitor::startup_complete`].
    pub startup: Option<Duration>,
    /// How long the last shutdown took, once known.
    pub shutdown: Option<Duration>,
    /// Resident set size.
    pub resident_bytes: u64,
    /// User and system CPU time.
    pub cpu_seconds: f64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Tokio tasks alive, inside a runtime.
    pub tasks_alive: Option<usize>,
    /// Informers by state (`watching`, `listing`, `backoff`, `parked`).
    pub informers: BTreeMap<String, usize>,
    /// Objects the informers track.
    pub tracked_objects: u64,
    /// Events handed to handlers.
    pub events_handled: u64,
    /// Handler and worker errors.
    pub errors: u64,
    /// Queue depth per worker.
    pub queue_depths: BTreeMap<String, usize>,
    /// Container log streams open, when logs are followed.
    pub log_streams_open: Option<usize>,
    /// `faro_event_latency_seconds` of every worker and sink, added up.
    pub event_latency: LatencyCounts,
    /// Informers out of the watching state (listing, backing off), by
    /// informer, with how long they have been.
    pub unwatched: BTreeMap<String, Duration>,
    /// Thresholds exceeded at this snapshot, with their figures.
    pub exceeded: BTreeMap<String, f64>,
    /// In a `threshold_exceeded` or `threshold_cleared` hook call: which.
    pub threshold: Option<String>,
}

/// Something that adds its figures to a snapshot (the watches, the
/// dispatcher, …).
pub trait Source: Send + Sync {
    fn fill(&self, snapshot: &mut Snapshot);
}

impl<F: Fn(&mut Snapshot) + Send + Sync> Source for F {
    fn fill(&self, snapshot: &mut Snapshot) {
        self(snapshot);
    }
}

type Hook = Arc<dyn Fn(&str, &Snapshot) + Send + Sync>;

/// The performance monitor. Cloning shares it.
#[derive(Clone)]
pub struct PerformanceMonitor {
    inner: Arc<Inner>,
}

struct Inner {
    made: Instant,
    startup: Mutex<Option<Duration>>,
    shutdown: Mutex<Option<Duration>>,
    sources: RwLock<Vec<Arc<dyn Source>>>,
    hooks: RwLock<Vec<Hook>>,
    /// Some hook was added (checked without a lock on every recorded event).
    hooked: AtomicBool,
    /// The last periodic snapshot, handed to hooks of recorded events.
    last: RwLock<Arc<Snapshot>>,
    events: Family<[(&'static str, String); 1], Counter>,
    /// Counters by event name, found without allocating.
    event_counters: RwLock<HashMap<Box<str>, Counter, foldhash::fast::RandomState>>,
    durations: Family<[(&'static str, String); 1], Histogram>,
    errors: Family<[(&'static str, String); 1], Counter>,
    watchdog: Mutex<Option<thresholds::Watchdog>>,
    /// 1 while a threshold is exceeded.
    exceeded: Family<[(&'static str, String); 1], Gauge>,
    /// Violations started, by threshold.
    violations: Family<[(&'static str, String); 1], Counter>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Default for PerformanceMonitor {
    fn default() -> Self {
        Self::new()
    }
}

impl PerformanceMonitor {
    /// A monitor whose uptime starts now.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                made: Instant::now(),
                startup: Mutex::default(),
                shutdown: Mutex::default(),
                sources: RwLock::default(),
                hooks: RwLock::default(),
                hooked: AtomicBool::new(false),
                last: RwLock::default(),
                events: Family::default(),
                event_counters: RwLock::default(),
                // 100 µs to about 13 s.
                durations: Family::new_with_constructor(|| {
                    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
                }),
                errors: Family::default(),
                watchdog: Mutex::default(),
                exceeded: Family::default(),
                violations: Family::default(),
            }),
        }
    }

    /// Adds figures to every snapshot.
    pub fn add_source(&self, source: impl Source + 'static) {
        write(&self.inner.sources).push(Arc::new(source));
    }

    /// Calls `hook(event, snapshot)` on every named event: recorded ones,
    /// `metrics_collection` (each periodic snapshot), `startup_complete`,
    /// `shutdown`, and threshold violations.
    pub fn add_hook(&self, hook: impl Fn(&str, &Snapshot) + Send + Sync + 'static) {
        write(&self.inner.hooks).push(Arc::new(hook));
        self.inner.hooked.store(true, Ordering::Relaxed);
    }

    /// A snapshot taken now.
    pub fn snapshot(&self) -> Snapshot {
        let i = &self.inner;
        let mut s = Snapshot {
            uptime: i.made.elapsed(),
            startup: *lock(&i.startup),
            shutdown: *lock(&i.shutdown),
            resident_bytes: process::resident_bytes(),
            cpu_seconds: process::cpu_seconds(),
            open_fds: process::open_fds(),
            tasks_alive: tokio::runtime::Handle::try_current()
                .ok()
                .map(|h| h.metrics().num_alive_tasks()),
            ..Snapshot::default()
        };
        for source in read(&i.sources).iter() {
            source.fill(&mut s);
        }
        s
    }

    /// The last periodic snapshot (empty before the first).
    pub fn last_snapshot(&self) -> Arc<Snapshot> {
        read(&self.inner.last).clone()
    }

    fn call_hooks(&self, event: &str, snapshot: &Snapshot) {
        let hooks: Vec<Hook> = read(&self.inner.hooks).clone();
        for hook in hooks {
            hook(event, snapshot);
        }
    }

    /// Counts `name` in `faro_monitor_events_total{event}` and calls the
    /// hooks with the last periodic snapshot (no snapshot is taken here:
    /// recording stays cheap enough for a hot path).
    pub fn record_event(&self, name: &str) {
        let counted = read(&self.inner.event_counters)
            .get(name)
            .map(Counter::inc)
            .is_some();
        if !counted {
            // The first time: the counter is made once.
            let c = self
                .inner
                .events
                .get_or_create(&[("event", name.to_owned())])
                .clone();
            c.inc();
            write(&self.inner.event_counters).insert(name.into(), c);
        }
        if self.inner.hooked.load(Ordering::Relaxed) {
            let last = self.last_snapshot();
            self.call_hooks(name, &last);
        }
    }

    /// Start-up is done (every initial list delivered, in Faro): records
    /// the start-up time and calls the hooks with `startup_complete`.
    pub fn startup_complete(&self) {
        *lock(&self.inner.startup) = Some(self.inner.made.elapsed());
        let s = self.snapshot();
        self.call_hooks("startup_complete", &s);
    }

    /// The shutdown took `took`: recorded, and the hooks called with `shutdown`.
    pub fn shutdown(&self, took: Duration) {
        *lock(&self.inner.shutdown) = Some(took);
        let s = self.snapshot();
        self.call_hooks("shutdown", &s);
    }

    /// Times `operation` into `faro_operation_duration_seconds{operation}`
    /// and counts its failures in `faro_operation_errors_total{operation}`.
    pub async fn profile<T, E>(
        &self,
        operation: &str,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let t = Instant::now();
        let out = work.await;
        self.timed(operation, t.elapsed(), out.is_err());
        out
    }

    /// [`PerformanceMonitor::profile`] for work that does not wait.
    pub fn profile_sync<T, E>(
        &self,
        operation: &str,
        work: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let t = Instant::now();
        let out = work();
        self.timed(operation, t.elapsed(), out.is_err());
        out
    }

    fn timed(&self, operation: &str, took: Duration, failed: bool) {
        let label = [("operation", operation.to_owned())];
        self.inner
            .durations
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        if failed {
            self.inner.errors.get_or_create(&label).inc();
        }
    }

    /// Checks every snapshot of the periodic collection against
    /// `thresholds` (replacing any set before).
    pub fn set_thresholds(&self, thresholds: Thresholds) {
        for name in thresholds.names() {
            self.inner
                .exceeded
                .get_or_create(&[("threshold", name.to_owned())])
                .set(0);
            let _ = self
                .inner
                .violations
                .get_or_create(&[("threshold", name.to_owned())]);
        }
        *lock(&self.inner.watchdog) = Some(thresholds::Watchdog::new(thresholds));
    }

    /// The thresholds set, if any.
    pub fn thresholds(&self) -> Option<Thresholds> {
        lock(&self.inner.watchdog)
            .as_ref()
            .map(|w| w.thresholds().clone())
    }

    /// Whether some threshold is exceeded (at the last collection).
    pub fn violating(&self) -> bool {
        !self.last_snapshot().exceeded.is_empty()
    }

    /// One collection, as the periodic task makes it: a snapshot, checked
    /// against the thresholds (a warning, the metrics and the hooks for
    /// each violation that starts or ends), kept as the last one, and the
    /// hooks called with `metrics_collection`.
    pub fn collect(&self) -> Arc<Snapshot> {
        let mut s = self.snapshot();
        let transitions = match lock(&self.inner.watchdog).as_mut() {
            Some(w) => {
                let t = w.check(Instant::now(), &s);
                s.exceeded = w.exceeded();
                t
            }
            None => Vec::new(),
        };
        let s = Arc::new(s);
        *write(&self.inner.last) = s.clone();
        for t in transitions {
            let label = [("threshold", t.threshold.to_owned())];
            let about = t
                .subject
                .as_deref()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            let (state, event, how) = if t.started {
                self.inner.violations.get_or_create(&label).inc();
                (1, "threshold_exceeded", ("exceeded", "is over"))
            } else {
                (
                    0,
                    "threshold_cleared",
                    ("back within its limit", "is not over"),
                )
            };
            self.inner.exceeded.get_or_create(&label).set(state);
            tracing::warn!(
                threshold = t.threshold,
                value = t.value,
                limit = t.limit,
                "threshold {} {}: {}{about} {} {}",
                t.threshold,
                how.0,
                figure(t.value),
                how.1,
                figure(t.limit),
            );
            let mut told = (*s).clone();
            told.threshold = Some(t.threshold.to_owned());
            self.call_hooks(event, &told);
        }
        self.call_hooks("metrics_collection", &s);
        s
    }

    /// Collects (see [`PerformanceMonitor::collect`]) every `interval`,
    /// the first at once, until the returned task is aborted.
    pub fn start_periodic(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.collect();
            }
        })
    }

    /// Registers `faro_monitor_events_total{event}`,
    /// `faro_operation_duration_seconds{operation}` and
    /// `faro_operation_errors_total{operation}`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "faro_monitor_events",
            "Events recorded by the performance monitor",
            self.inner.events.clone(),
        );
        registry.register(
            "faro_operation_duration_seconds",
            "How long profiled operations took",
            self.inner.durations.clone(),
        );
        registry.register(
            "faro_operation_errors",
            "Profiled operations that failed",
            self.inner.errors.clone(),
        );
        registry.register(
            "faro_threshold_exceeded",
            "1 while a threshold of the monitor is exceeded",
            self.inner.exceeded.clone(),
        );
        registry.register(
            "faro_threshold_violations",
            "Violations of a threshold of the monitor that started",
            self.inner.violations.clone(),
        );
        registry.register_collector(Box::new(SnapshotCollector(self.clone())));
    }
}

/// A figure for a warning line: whole numbers without decimals.
fn figure(v: f64) -> String {
    if v.is_infinite() {
        "infinity".to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// The snapshot's figures as gauges, read at each scrape.
struct SnapshotCollector(PerformanceMonitor);

impl std::fmt::Debug for SnapshotCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotCollector")
    }
}

impl prometheus_client::collector::Collector for SnapshotCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::gauge::ConstGauge;
        let s = self.0.snapshot();
        let mut gauge = |name: &str, help: &str, value: f64| {
            let g = ConstGauge::new(value);
            let e = encoder.encode_descriptor(name, help, None, g.metric_type())?;
            g.encode(e)
        };
        gauge(
            "faro_monitor_uptime_seconds",
            "Since the process started",
            s.uptime.as_secs_f64(),
        )?;
        if let Some(startup) = s.startup {
            gauge(
                "faro_monitor_startup_seconds",
                "From process start to ready (every initial list delivered)",
                startup.as_secs_f64(),
            )?;
        }
        if let Some(tasks) = s.tasks_alive {
            gauge(
                "faro_monitor_tasks_alive",
                "Tokio tasks alive",
                tasks as f64,
            )?;
        }
        gauge(
            "faro_monitor_tracked_objects",
            "Objects the informers track",
            s.tracked_objects as f64,
        )?;
        gauge(
            "faro_monitor_events_handled",
            "Events handed to handlers so far",
            s.events_handled as f64,
        )?;
        gauge(
            "faro_monitor_errors",
            "Handler and worker errors so far",
            s.errors as f64,
        )?;
        gauge(
            "faro_monitor_queue_depth_max",
            "The deepest worker queue",
            s.queue_depths.values().max().copied().unwrap_or(0) as f64,
        )?;
        if let Some(open) = s.log_streams_open {
            gauge(
                "faro_monitor_log_streams_open",
                "Container log streams open",
                open as f64,
            )?;
        }
        gauge(
            "faro_monitor_informers_unwatched",
            "Informers out of the watching state (listing, backing off)",
            s.unwatched.len() as f64,
        )?;
        Ok(())
    }
}
