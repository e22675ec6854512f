//! Container logs: a stream per container of every followed pod, read with
//! the kubelet's timestamps, resumed after any drop without a gap or a
//! duplicate, and handed to the handlers as `LogRecord`s.
//!
//! Pods come from the shared pod informers (an internal subscriber, so one
//! pod watch serves every consumer). A manager task turns each pod update
//! into per-container views; a task per container follows its log:
//!
//! - while the container runs, a follow stream (`follow=true`), opened again
//!   after a drop with `sinceTime` = the last delivered line's second, the
//!   lines already delivered skipped (earlier timestamps, and at the same
//!   timestamp the same content, counted);
//! - when its `restartCount` goes up, the terminated instance's remaining
//!   lines from `previous=true`, then the new instance from its start;
//! - when it terminates or its pod is deleted, one last read to its end.
//!
//! At most `max_streams` streams are open; the others wait in a fair queue
//! (round robin over namespaces, then pods), and an open stream yields its
//! turn after a time slice while others wait.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use faro_core::config::LogSince;
use faro_core::{
    ContainerRef, ContainerType, DynamicObject, EventHandler, EventType, LogRecord, LogsConfig,
};
use futures_util::io::{AsyncBufRead, AsyncBufReadExt};
use kube::api::{Api, LogParams};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use crate::informer::{Env, InternalSink, lock};
use crate::options::Backoff;

/// How the log follower reads.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Follow streams as lines come (`false`: read each container once).
    pub follow: bool,
    /// Read only each container's previous (terminated) instance, once.
    pub previous_only: bool,
    /// An open stream hands its turn to a waiting container after this long.
    pub time_slice: Duration,
    /// After a stream ends while its container still runs, wait this long
    /// (or for the next status change) before opening it again.
    pub reopen_delay: Duration,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            follow: true,
            previous_only: false,
            time_slice: Duration::from_secs(10),
            reopen_delay: Duration::from_millis(250),
        }
    }
}

/// Open, waiting and backing-off streams, as the stats line shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStreamCounts {
    /// Streams reading now.
    pub open: usize,
    /// Containers waiting for a turn (over `max_streams`).
    pub waiting: usize,
    /// Containers waiting to retry after a failure.
    pub backoff: usize,
    /// Containers known (followed or to be followed).
    pub containers: usize,
}

/// How long a yielded turn waits before it passes on.
const HANDOVER: Duration = Duration::from_millis(100);

/// What one container's task needs to know about its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct ContainerView {
    restart_count: u32,
    running: bool,
    /// The current instance has exited (terminated, or waiting after a
    /// termination).
    ended: bool,
    /// The pod was deleted: read what is left, then stop.
    pod_gone: bool,
}

/// What every container task shares.
pub(crate) struct LogCtx {
    env: Arc<Env>,
    config: LogsConfig,
    options: LogOptions,
    budget: Arc<Budget>,
    /// Lines before this were written before the configured start point.
    floor: Option<jiff::Timestamp>,
    counts: Counts,
    /// Namespaces already warned about a forbidden `pods/log`.
    forbidden: Mutex<std::collections::HashSet<Arc<str>>>,
}

#[derive(Default)]
struct Counts {
    backoff: AtomicUsize,
    containers: AtomicUsize,
    /// Pod updates not yet turned into container views.
    queued: Arc<AtomicUsize>,
}

/// Starts following logs: returns the internal sink to subscribe to pod
/// informers and the shared state for counts.
pub(crate) fn start(
    env: Arc<Env>,
    config: LogsConfig,
    options: LogOptions,
) -> (Arc<LogSink>, Arc<LogCtx>) {
    let now = jiff::Timestamp::now();
    let floor = match config.since {
        LogSince::Start => None,
        LogSince::Now => Some(now),
        LogSince::Last(d) => now.checked_sub(d).ok(),
    };
    let owners = env.owners.clone();
    let ctx = Arc::new(LogCtx {
        budget: Budget::new(config.max_streams, env.metrics.clone()),
        env,
        config,
        options,
        floor,
        counts: Counts::default(),
        forbidden: Mutex::default(),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(manage(Arc::downgrade(&ctx), rx));
    let queued = ctx.counts.queued.clone();
    (Arc::new(LogSink { tx, queued, owners }), ctx)
}

impl LogCtx {
    pub(crate) fn counts(&self) -> LogStreamCounts {
        let b = lock(&self.budget.state);
        LogStreamCounts {
            open: b.open,
            waiting: b.waiting_count,
            backoff: self.counts.backoff.load(Ordering::Relaxed),
            containers: self.counts.containers.load(Ordering::Relaxed),
        }
    }

    /// Counts a container starting (`1`) or ending (`-1`) a back-off.
    fn backoff(&self, delta: isize) {
        let n = if delta > 0 {
            self.counts.backoff.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.counts.backoff.fetch_sub(1, Ordering::Relaxed) - 1
        };
        self.env
            .metrics
            .log_streams
            .get_or_create(&[("state", "backoff".to_owned())])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Every pod update seen so far has been handled and no container is
    /// followed: with `follow: false`, everything was read.
    pub(crate) fn settled(&self) -> bool {
        self.counts.queued.load(Ordering::SeqCst) == 0
            && self.counts.containers.load(Ordering::SeqCst) == 0
    }
}

/// The pod informers' internal subscriber: hands pod updates to the manager.
pub(crate) struct LogSink {
    tx: mpsc::UnboundedSender<PodUpdate>,
    queued: Arc<AtomicUsize>,
    owners: Arc<crate::owners::Owners>,
}

/// A pod update and the pod's correlation id.
type PodUpdate = (EventType, Arc<DynamicObject>, Arc<str>);

#[async_trait::async_trait]
impl InternalSink for LogSink {
    async fn on_event(&self, event_type: EventType, object: &Arc<DynamicObject>) {
        let correlation = self.owners.of_object(object).await;
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self
            .tx
            .send((event_type, object.clone(), correlation))
            .is_err()
        {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

struct PodEntry {
    containers: HashMap<Arc<str>, watch::Sender<ContainerView>>,
}

/// Turns pod updates into container views and starts a task per new container.
async fn manage(ctx: Weak<LogCtx>, mut rx: mpsc::UnboundedReceiver<PodUpdate>) {
    let mut pods: HashMap<String, PodEntry> = HashMap::new();
    while let Some((event_type, pod, correlation)) = rx.recv().await {
        let Some(ctx) = ctx.upgrade() else { return };
        handle_pod(&ctx, &mut pods, event_type, &pod, &correlation);
        ctx.counts.queued.fetch_sub(1, Ordering::SeqCst);
    }
}

fn handle_pod(
    ctx: &Arc<LogCtx>,
    pods: &mut HashMap<String, PodEntry>,
    event_type: EventType,
    pod: &DynamicObject,
    correlation: &Arc<str>,
) {
    {
        let meta = &pod.metadata;
        let (Some(ns), Some(name), Some(uid)) = (&meta.namespace, &meta.name, &meta.uid) else {
            return;
        };
        if !ctx.config.pod_matches(ns, name) {
            return;
        }
        let gone = event_type == EventType::Deleted;
        let entry = pods.entry(uid.clone()).or_insert_with(|| PodEntry {
            containers: HashMap::new(),
        });
        let (ns, name, uid): (Arc<str>, Arc<str>, Arc<str>) = (
            Arc::from(ns.as_str()),
            Arc::from(name.as_str()),
            Arc::from(uid.as_str()),
        );
        for (container, kind, view) in container_views(&pod.data, gone) {
            if (kind == ContainerType::Init && !ctx.config.include_init_containers)
                || !ctx.config.container_matches(&container)
            {
                continue;
            }
            match entry.containers.get(container.as_str()) {
                Some(tx) => {
                    tx.send_if_modified(|v| {
                        let changed = *v != view;
                        *v = view;
                        changed
                    });
                }
                None if gone && !view.running && !view.ended => {}
                None => {
                    let source = Arc::new(ContainerRef {
                        namespace: ns.clone(),
                        pod: name.clone(),
                        pod_uid: uid.clone(),
                        container: Arc::from(container.as_str()),
                        container_type: kind,
                        correlation: Some(correlation.clone()),
                        cluster: ctx.env.options.cluster.clone(),
                    });
                    let (tx, rx) = watch::channel(view);
                    entry.containers.insert(source.container.clone(), tx);
                    ctx.counts.containers.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(follow_container(ctx.clone(), source, rx));
                }
            }
        }
        if gone {
            // Dropping the senders lets each task read what is left and end.
            pods.remove(uid.as_ref());
        }
    }
}

/// Every container of a pod with its type and its view.
fn container_views(pod: &Value, gone: bool) -> Vec<(String, ContainerType, ContainerView)> {
    let spec = &pod["spec"];
    let status = &pod["status"];
    let mut out = Vec::new();
    let lists = [
        ("initContainers", "initContainerStatuses"),
        ("containers", "containerStatuses"),
        ("ephemeralContainers", "ephemeralContainerStatuses"),
    ];
    for (i, (spec_key, status_key)) in lists.into_iter().enumerate() {
        let Some(containers) = spec[spec_key].as_array() else {
            continue;
        };
        for c in containers {
            let Some(name) = c["name"].as_str() else {
                continue;
            };
            let kind = match i {
                0 if c["restartPolicy"] == "Always" => ContainerType::Sidecar,
                0 => ContainerType::Init,
                1 => ContainerType::Regular,
                _ => ContainerType::Ephemeral,
            };
            let st = status[status_key]
                .as_array()
                .and_then(|list| list.iter().find(|s| s["name"] == name));
            let mut view = ContainerView {
                pod_gone: gone,
                ..ContainerView::default()
            };
            if let Some(st) = st {
                view.restart_count =
                    u32::try_from(st["restartCount"].as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
                let state = &st["state"];
                view.running = state.get("running").is_some();
                view.ended = state.get("terminated").is_some()
                    || (state.get("waiting").is_some()
                        && st["lastState"].get("terminated").is_some());
            }
            out.push((name.to_owned(), kind, view));
        }
    }
    out
}

/// Where a container's delivered lines end: the last timestamp, and the
/// lines delivered at exactly that timestamp (by content hash).
#[derive(Debug, Clone, Default)]
struct Position {
    at: Option<jiff::Timestamp>,
    at_last: Vec<u64>,
}

impl Position {
    fn since(&self) -> Option<jiff::Timestamp> {
        // The log endpoint's `sinceTime` is whole seconds (the API server
        // passes it on in RFC 3339 without fractions): ask from the second
        // the last line was in, and skip what was delivered.
        self.at
            .and_then(|t| jiff::Timestamp::from_second(t.as_second()).ok())
    }
}

/// How one read ended.
enum ReadEnd {
    /// The server ended the stream.
    Ended,
    /// The stream yielded its turn to a waiting container.
    Yielded,
    /// The controller is stopping.
    Stopped,
    /// The request failed.
    Failed(kube::Error),
}

/// One container's task: follows its log across restarts until its pod is gone.
async fn follow_container(
    ctx: Arc<LogCtx>,
    source: Arc<ContainerRef>,
    mut views: watch::Receiver<ContainerView>,
) {
    let mut c = Follower {
        api: Api::namespaced(ctx.env.client.clone(), &source.namespace),
        ctx: ctx.clone(),
        source,
        instance: None,
        finished: false,
        pos: Position {
            at: ctx.floor,
            at_last: Vec::new(),
        },
        backoff: Backoff::new(&ctx.env.options),
        reported: None,
        done_once: false,
        last_after: After::Change,
        gap: None,
        window: None,
        saw_window: false,
        views: views.clone(),
    };
    loop {
        if *ctx.env.stop.borrow() {
            break;
        }
        let view = *views.borrow_and_update();
        let alive = c.step(view).await;
        if !alive {
            break;
        }
        let (wait, backoff) = match c.last_after {
            After::Change => (None, false),
            After::Retry(d) => (Some(d), false),
            After::Backoff(d) => (Some(d), true),
        };
        if backoff {
            ctx.backoff(1);
        }
        let gone = tokio::select! {
            changed = views.changed() => Some(changed.is_err()),
            () = sleep_or_forever(wait) => Some(false),
            () = stopped(&ctx.env) => None,
        };
        if backoff {
            ctx.backoff(-1);
        }
        let Some(gone) = gone else { break };
        if gone {
            // The pod is gone: whatever the last view said, read what is
            // left once more, then end.
            let mut last = *views.borrow();
            last.pod_gone = true;
            c.step(last).await;
            break;
        }
    }
    ctx.counts.containers.fetch_sub(1, Ordering::SeqCst);
}

async fn sleep_or_forever(delay: Option<Duration>) {
    match delay {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

struct Follower {
    ctx: Arc<LogCtx>,
    api: Api<k8s_openapi::api::core::v1::Pod>,
    source: Arc<ContainerRef>,
    /// The instance (restartCount) `pos` belongs to.
    instance: Option<u32>,
    /// That instance has been read to its end.
    finished: bool,
    pos: Position,
    backoff: Backoff,
    /// The last failure logged, so that a repeated one is not.
    reported: Option<u16>,
    /// For one-shot reads: done.
    done_once: bool,
    /// What the task loop waits for after the last step.
    last_after: After,
    /// A reopened stream did not begin with the last line delivered: the
    /// container may have restarted unseen. Where it was, and the first
    /// time the reopened stream gave.
    gap: Option<(Position, jiff::Timestamp)>,
    /// While reading `previous` after such a gap: lines from the first time
    /// to the position reached are already delivered.
    window: Option<(jiff::Timestamp, Position)>,
    /// That read met lines in the window: the reopened stream was the same
    /// instance after all (its log was rotated past the position).
    saw_window: bool,
    /// The container's views, watched during a read only after a gap.
    views: watch::Receiver<ContainerView>,
}

/// What the container task does after a step.
enum After {
    /// Wait for the next view change.
    Change,
    /// Wait for a change or this long.
    Retry(Duration),
    /// As `Retry`, after a failure: counted as backing off.
    Backoff(Duration),
}

impl Follower {
    /// Does whatever `view` calls for; false when the task should end.
    async fn step(&mut self, view: ContainerView) -> bool {
        let ctx = self.ctx.clone();
        let opts = &ctx.options;
        if !opts.follow || opts.previous_only {
            return self.step_once(view).await;
        }
        self.last_after = After::Change;
        // An instance we were reading is over: read what is left of it.
        if let Some(i) = self.instance
            && view.restart_count > i
        {
            let gap = self.gap.take();
            if let Some((before, from)) = gap.filter(|_| view.restart_count == i + 1) {
                // Since the gap the stream may have been the new instance's.
                // Read the old one from where it was; lines from the gap on
                // are delivered already if they are the same instance's.
                let reached = std::mem::replace(&mut self.pos, before);
                self.instance = Some(i);
                self.window = Some((from, reached.clone()));
                self.saw_window = false;
                let end = if self.ctx.config.previous_on_restart {
                    self.read(false, true).await
                } else {
                    ReadEnd::Ended
                };
                self.window = None;
                if let ReadEnd::Stopped = end {
                    return false;
                }
                self.finished = false;
                if self.saw_window {
                    // The same instance: the new one starts afresh.
                    self.instance = None;
                    self.pos = self.start_position();
                } else {
                    // The new instance, read up to `reached` already.
                    self.instance = Some(view.restart_count);
                    self.pos = reached;
                }
            } else if self.ctx.config.previous_on_restart {
                if view.restart_count > i + 1 {
                    // The instances in between are gone; the last one is
                    // new to us, from its start.
                    self.pos = self.start_position();
                    self.finished = false;
                }
                if !self.finished {
                    self.instance = Some(view.restart_count - 1);
                    if let ReadEnd::Stopped = self.read(false, true).await {
                        return false;
                    }
                }
                self.instance = None;
                self.finished = false;
                self.pos = self.start_position();
            } else {
                self.instance = None;
                self.finished = false;
                self.pos = self.start_position();
            }
        }
        if view.pod_gone || view.ended {
            // The instance has exited: read it to its end, once.
            if !self.finished {
                self.instance.get_or_insert(view.restart_count);
                match self.read(false, false).await {
                    ReadEnd::Stopped => return false,
                    ReadEnd::Failed(e) if !is_final(&e) && !view.pod_gone => {
                        self.last_after = self.failed(&e);
                        return true;
                    }
                    _ => self.finished = true,
                }
            }
            return !view.pod_gone;
        }
        if view.running {
            self.instance.get_or_insert(view.restart_count);
            self.last_after = match self.read(true, false).await {
                ReadEnd::Ended => {
                    self.metric_restart("ended");
                    After::Retry(opts.reopen_delay)
                }
                ReadEnd::Yielded => {
                    self.metric_restart("yield");
                    After::Retry(Duration::ZERO)
                }
                ReadEnd::Stopped => return false,
                ReadEnd::Failed(e) => self.failed(&e),
            };
        }
        true
    }

    /// `--no-follow` and `--previous`: each container read once.
    async fn step_once(&mut self, view: ContainerView) -> bool {
        self.last_after = After::Change;
        if self.done_once {
            return false;
        }
        let previous = self.ctx.options.previous_only;
        if previous && view.restart_count == 0 {
            return false;
        }
        if !previous && !view.running && !view.ended {
            // Not started: nothing to read once.
            return false;
        }
        let instance = if previous {
            view.restart_count - 1
        } else {
            view.restart_count
        };
        self.instance = Some(instance);
        match self.read(false, previous).await {
            ReadEnd::Failed(e) if !is_final(&e) && !view.pod_gone => {
                self.last_after = self.failed(&e);
                true
            }
            _ => {
                self.done_once = true;
                false
            }
        }
    }

    fn start_position(&self) -> Position {
        Position {
            at: self.ctx.floor,
            at_last: Vec::new(),
        }
    }

    fn metric_restart(&self, reason: &str) {
        self.ctx
            .env
            .metrics
            .log_restarts
            .get_or_create(&[("reason", reason.to_owned())])
            .inc();
    }

    /// Logs a failure once (per kind), and says when to try again.
    fn failed(&mut self, error: &kube::Error) -> After {
        let code = match error {
            kube::Error::Api(s) => s.code,
            _ => 0,
        };
        match code {
            403 => {
                self.metric_restart("forbidden");
                let ns = self.source.namespace.clone();
                self.ctx
                    .env
                    .metrics
                    .log_forbidden
                    .get_or_create(&[("namespace", ns.to_string())])
                    .inc();
                if lock(&self.ctx.forbidden).insert(ns.clone()) {
                    tracing::warn!(
                        namespace = %ns,
                        "reading container logs is forbidden: {}; grant get on pods/log to follow logs in this namespace",
                        message(error)
                    );
                }
                // Tried again on the container's next change, not in a loop.
                After::Change
            }
            400 | 404 => {
                if self.reported != Some(code) {
                    self.reported = Some(code);
                    tracing::info!(container = %self.source, "log not readable now: {}", message(error));
                }
                After::Change
            }
            _ => {
                self.metric_restart("error");
                if self.reported != Some(code) {
                    self.reported = Some(code);
                    tracing::warn!(container = %self.source, "log stream failed: {}", message(error));
                }
                After::Backoff(self.backoff.next_delay())
            }
        }
    }

    /// One request for the container's log from `pos`: a follow stream, or
    /// a read to the end. Delivers each new line.
    async fn read(&mut self, follow: bool, previous: bool) -> ReadEnd {
        let ctx = self.ctx.clone();
        let permit = tokio::select! {
            p = ctx.budget.acquire(&self.source) => p,
            () = stopped(&ctx.env) => return ReadEnd::Stopped,
        };
        let params = LogParams {
            container: Some(self.source.container.to_string()),
            follow,
            previous,
            since_time: self.pos.since(),
            timestamps: true,
            ..LogParams::default()
        };
        let stream = tokio::select! {
            s = self.api.log_stream(&self.source.pod, &params) => s,
            () = stopped(&ctx.env) => return ReadEnd::Stopped,
        };
        let reader = match stream {
            Ok(r) => r,
            Err(e) => return ReadEnd::Failed(e),
        };
        self.reported = None;
        // Lines read after the instance ended come from a terminated container.
        let dead = previous || !follow;
        let end = self.consume(reader, dead, follow).await;
        if let ReadEnd::Yielded = end {
            // The stream is closed from this side; the turn passes on once
            // the server has had a moment to see it go, so that the server
            // never holds more than `max_streams` of ours.
            tokio::time::sleep(HANDOVER).await;
        }
        drop(permit);
        end
    }

    async fn consume(
        &mut self,
        reader: impl AsyncBufRead,
        previous: bool,
        follow: bool,
    ) -> ReadEnd {
        let ctx = self.ctx.clone();
        let max = ctx.config.max_line_bytes;
        let mut reader = std::pin::pin!(reader);
        let mut line = Vec::with_capacity(256);
        let mut to_skip = self.pos.at_last.clone();
        // A reopened stream of the same instance begins with the last line
        // delivered (`sinceTime` is inclusive); one that does not may be a
        // new instance.
        let mut verify = !to_skip.is_empty() && !previous;
        let mut window_skip = self
            .window
            .as_ref()
            .map(|(_, reached)| reached.at_last.clone())
            .unwrap_or_default();
        // Turns of different streams end at different times.
        let slice = ctx.options.time_slice.mul_f64(1.0 + fastrand::f64() / 2.0);
        let turn = tokio::time::sleep(slice);
        let mut turn = std::pin::pin!(turn);
        let mut stop = ctx.env.stop.subscribe();
        if *stop.borrow_and_update() {
            return ReadEnd::Stopped;
        }
        let restart = self.instance.unwrap_or(0);
        let metrics = &ctx.env.metrics;
        let duplicate = metrics
            .log_skipped
            .get_or_create(&[("reason", "duplicate".to_owned())])
            .clone();
        let excluded = metrics
            .log_skipped
            .get_or_create(&[("reason", "excluded".to_owned())])
            .clone();
        // Handlers added while a stream is open see its lines from its next turn.
        let handlers = ctx.env.handlers();
        let mut views = self.views.clone();
        views.mark_unchanged();
        // Lines already read (the position is past them) go to the
        // handlers together: when nothing more is waiting in the stream,
        // when the batch is full, and before this function returns.
        let mut batch: Vec<LogRecord> = Vec::new();
        let end = loop {
            if !batch.is_empty() && (batch.len() >= MAX_BATCH || !buffered(&mut reader)) {
                deliver(&ctx.env, &handlers, &batch).await;
                batch.clear();
            }
            line.clear();
            let read = tokio::select! {
                r = read_line(&mut reader, &mut line, max) => r,
                _ = stop.changed() => break ReadEnd::Stopped,
                // After a gap this stream may be a new instance: when the
                // status says so, stop, so that the old one is read.
                changed = views.changed(), if follow && self.gap.is_some() => {
                    if changed.is_err() || views.borrow().restart_count > restart {
                        break ReadEnd::Ended;
                    }
                    continue;
                }
                () = &mut turn, if follow => {
                    if ctx.budget.has_waiters() {
                        break ReadEnd::Yielded;
                    }
                    turn.as_mut().reset(tokio::time::Instant::now() + slice);
                    continue;
                }
            };
            let truncated = match read {
                Ok(Some(t)) => t,
                Ok(None) => break ReadEnd::Ended,
                Err(e) => break ReadEnd::Failed(kube::Error::ReadEvents(e)),
            };
            self.backoff.reset();
            let Some((at, split)) = split_line(&line) else {
                continue;
            };
            let text = line.get(split + 1..).unwrap_or_default();
            let hash = content_hash(text);
            if verify {
                verify = false;
                if let Some(last) = self.pos.at
                    && at > last
                {
                    tracing::debug!(container = %self.source, "the reopened log does not begin where it was left");
                    self.gap = Some((self.pos.clone(), at));
                }
            }
            if let Some((from, reached)) = &self.window
                && at >= *from
            {
                self.saw_window = true;
                let seen = match reached.at {
                    Some(r) if at < r => true,
                    Some(r) if at == r => match window_skip.iter().position(|h| *h == hash) {
                        Some(i) => {
                            window_skip.swap_remove(i);
                            true
                        }
                        None => false,
                    },
                    _ => false,
                };
                if seen {
                    duplicate.inc();
                    continue;
                }
            }
            match self.pos.at {
                Some(last) if at < last => {
                    duplicate.inc();
                    continue;
                }
                Some(last) if at == last => {
                    if let Some(i) = to_skip.iter().position(|h| *h == hash) {
                        to_skip.swap_remove(i);
                        duplicate.inc();
                        continue;
                    }
                    self.pos.at_last.push(hash);
                }
                _ => {
                    self.pos.at = Some(at);
                    self.pos.at_last.clear();
                    self.pos.at_last.push(hash);
                    to_skip.clear();
                }
            }
            // Valid UTF-8 is taken as it is; anything else is repaired.
            let whole: Box<str> = match std::str::from_utf8(&line) {
                Ok(s) => Box::from(s),
                Err(_) => String::from_utf8_lossy(&line).into_owned().into_boxed_str(),
            };
            let line_text = whole.get(split + 1..).unwrap_or_default();
            if !ctx.config.line_matches(line_text) {
                excluded.inc();
                continue;
            }
            metrics.log_lines.inc();
            metrics.log_bytes.inc_by(line_text.len() as u64);
            batch.push(
                LogRecord::from_line(self.source.clone(), restart, whole, split)
                    .previous(previous)
                    .truncated(truncated)
                    .build(),
            );
        };
        if !batch.is_empty() {
            deliver(&ctx.env, &handlers, &batch).await;
        }
        end
    }
}

/// At most this many lines go to the handlers in one call.
const MAX_BATCH: usize = 256;

/// Whether more of the stream is already here (read without waiting).
fn buffered<R: AsyncBufRead + Unpin + ?Sized>(reader: &mut R) -> bool {
    matches!(
        futures_util::FutureExt::now_or_never(reader.fill_buf()),
        Some(Ok(b)) if !b.is_empty()
    )
}

/// Whether a failed read will fail the same way until something changes.
fn is_final(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if matches!(s.code, 400 | 403 | 404))
}

fn message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

async fn stopped(env: &Env) {
    let mut stop = env.stop.subscribe();
    let _ = stop.wait_for(|s| *s).await;
}

/// Hands lines of one container to every handler, in order.
async fn deliver(env: &Env, handlers: &[Arc<dyn EventHandler>], records: &[LogRecord]) {
    let Some(first) = records.first() else {
        return;
    };
    for handler in handlers {
        if let Err(e) = handler.on_logs(records).await {
            tracing::warn!(handler = handler.name(), container = %first.source(), "handler failed: {e}");
            env.metrics
                .handler_errors
                .get_or_create(&[("handler", handler.name().to_owned())])
                .inc();
        }
    }
}

fn content_hash(text: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// `2026-12-01T10:00:00.123456789Z text` → (time, where the time ends).
fn split_line(line: &[u8]) -> Option<(jiff::Timestamp, usize)> {
    let end = line.iter().position(|b| *b == b' ').unwrap_or(line.len());
    let stamp = std::str::from_utf8(&line[..end]).ok()?;
    let at = stamp.parse::<jiff::Timestamp>().ok()?;
    Some((at, end))
}

/// Reads one line into `out` (without its newline), keeping at most `max`
/// bytes of its text after the timestamp. `Ok(None)` at the end of the
/// stream; `Ok(Some(true))` when the line was cut. A last line without a
/// newline is a line.
async fn read_line<R: AsyncBufRead + Unpin + ?Sized>(
    reader: &mut R,
    out: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    let mut truncated = false;
    let mut any = false;
    // Room for the timestamp and its space (RFC 3339 with nanoseconds is 30 bytes).
    let limit = max.saturating_add(40);
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(any.then_some(truncated));
        }
        any = true;
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        let room = limit.saturating_sub(out.len());
        if chunk.len() > room {
            truncated = true;
        }
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(buf.len());
        reader.consume_unpin(used);
        if done.is_some() {
            if truncated {
                cut(out, max);
            }
            return Ok(Some(truncated));
        }
    }
}

/// Cuts the text after the timestamp to `max` bytes, on a character boundary.
fn cut(line: &mut Vec<u8>, max: usize) {
    let start = line.iter().position(|b| *b == b' ').map_or(0, |i| i + 1);
    let mut end = (start + max).min(line.len());
    while end > start && (line[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    line.truncate(end);
}

/// The stream budget: at most `max` open, granted in turn over namespaces,
/// then pods, then containers.
pub(crate) struct Budget {
    max: usize,
    metrics: crate::metrics::WatchMetrics,
    state: Mutex<BudgetState>,
    waiters: AtomicUsize,
}

type PodQueue = VecDeque<(Arc<str>, VecDeque<oneshot::Sender<Permit>>)>;

#[derive(Default)]
struct BudgetState {
    open: usize,
    waiting_count: usize,
    /// Namespaces in turn; each with its pods in turn; each with its waiters.
    queue: VecDeque<(Arc<str>, PodQueue)>,
}

/// A turn to hold a stream open; handed to the next waiter when dropped.
pub(crate) struct Permit {
    budget: Option<Arc<Budget>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(budget) = self.budget.take() {
            Budget::release(&budget);
        }
    }
}

impl Budget {
    fn new(max: usize, metrics: crate::metrics::WatchMetrics) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            metrics,
            state: Mutex::default(),
            waiters: AtomicUsize::new(0),
        })
    }

    fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::Relaxed) > 0
    }

    fn publish(&self, s: &BudgetState) {
        self.waiters.store(s.waiting_count, Ordering::Relaxed);
        for (state, n) in [("open", s.open), ("waiting", s.waiting_count)] {
            self.metrics
                .log_streams
                .get_or_create(&[("state", state.to_owned())])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Waits for a turn. Fair: a container waits behind every namespace
    /// and pod that asked before it, one container of each at a time.
    async fn acquire(self: &Arc<Self>, source: &ContainerRef) -> Permit {
        let rx = {
            let mut s = lock(&self.state);
            if s.open < self.max && s.waiting_count == 0 {
                s.open += 1;
                self.publish(&s);
                return Permit {
                    budget: Some(self.clone()),
                };
            }
            let (tx, rx) = oneshot::channel();
            let at = match s.queue.iter().position(|(n, _)| *n == source.namespace) {
                Some(i) => i,
                None => {
                    s.queue
                        .push_back((source.namespace.clone(), VecDeque::new()));
                    s.queue.len() - 1
                }
            };
            let pods = &mut s.queue[at].1;
            match pods.iter_mut().find(|(p, _)| *p == source.pod) {
                Some(pod) => pod.1.push_back(tx),
                None => pods.push_back((source.pod.clone(), VecDeque::from([tx]))),
            }
            s.waiting_count += 1;
            self.publish(&s);
            rx
        };
        match rx.await {
            Ok(permit) => permit,
            // Not reached: a waiter's sender is dropped only after a permit
            // went through it. Counted as a turn all the same.
            Err(_) => {
                let mut s = lock(&self.state);
                s.open += 1;
                self.publish(&s);
                Permit {
                    budget: Some(self.clone()),
                }
            }
        }
    }

    /// A stream closed: its turn goes to the next waiter, if any.
    fn release(self: &Arc<Self>) {
        loop {
            let next = {
                let mut s = lock(&self.state);
                let next = next_waiter(&mut s);
                match &next {
                    Some(_) => s.waiting_count -= 1,
                    None => s.open = s.open.saturating_sub(1),
                }
                self.publish(&s);
                next
            };
            let Some(tx) = next else { return };
            let permit = Permit {
                budget: Some(self.clone()),
            };
            match tx.send(permit) {
                Ok(()) => return,
                // The waiter is gone: the turn goes to the next one.
                Err(mut permit) => {
                    permit.budget = None;
                }
            }
        }
    }
}

/// Pops the next waiter in turn: the first namespace's first pod's first
/// container; that pod and namespace then go to the back of their queues.
fn next_waiter(s: &mut BudgetState) -> Option<oneshot::Sender<Permit>> {
    loop {
        let (ns, mut pods) = s.queue.pop_front()?;
        let Some((pod, mut waiters)) = pods.pop_front() else {
            continue;
        };
        let tx = waiters.pop_front();
        if !waiters.is_empty() {
            pods.push_back((pod, waiters));
        }
        if !pods.is_empty() {
            s.queue.push_back((ns, pods));
        }
        if tx.is_some() {
            return tx;
        }
    }
}
