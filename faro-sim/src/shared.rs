//! State shared by every connection: the store, the served resources, the
//! faults in force, the open watches and the container logs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::SimConfig;
use crate::resources::Registry;
use crate::status::ApiError;
use crate::store::Store;

/// Error injection, as posted to `/faro-sim/v1/faults/errors`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorFault {
    /// How many requests fail.
    pub count: u64,
    /// 500 or 429 (any 4xx/5xx is served).
    pub status: u16,
    /// `Retry-After` for 429.
    pub retry_after_seconds: u64,
    /// Drop the connection instead of answering.
    pub reset: bool,
    /// Only requests with these verbs (`get`, `list`, `watch`, `create`, …); empty means all.
    pub verbs: Vec<String>,
    /// Only requests whose User-Agent contains this text.
    pub user_agent: Option<String>,
    /// Only requests whose path contains this text (`/log` for pod logs).
    pub path_contains: Option<String>,
}

/// What an injected fault does to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this error.
    Fail(ApiError),
    /// Drop the connection without an answer.
    Reset,
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub errors: Option<ErrorFault>,
    pub latency: Duration,
    pub freeze_until: Option<Instant>,
}

/// One open watch connection, as `/faro-sim/v1/watches` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchInfo {
    /// Request path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// User-Agent header.
    pub user_agent: String,
    /// The last resourceVersion sent on it (event or bookmark).
    pub last_resource_version: String,
}

/// One open log follow, as `/faro-sim/v1/logs/follows` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowInfo {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container followed.
    pub container: String,
    /// The request's query string.
    pub query: String,
}

pub(crate) struct OpenWatch {
    pub path: String,
    pub query: String,
    pub user_agent: String,
    pub last_rv: Arc<AtomicU64>,
}

/// One log line: the kubelet's timestamp and the text.
pub(crate) type LogLine = (jiff::Timestamp, String);

/// One container's log, kept like a kubelet's rotated log file: past a
/// byte budget the oldest lines are dropped.
#[derive(Debug, Default, Clone)]
pub(crate) struct ContainerLog {
    /// The pod's uid: a pod of the same name later has another log.
    pub pod_uid: String,
    pub lines: VecDeque<LogLine>,
    /// Lines dropped from the front so far: line `i` of the whole log is `lines[i - dropped]`.
    pub dropped: u64,
    pub bytes: usize,
    pub previous: Option<Vec<LogLine>>,
    /// Bumped on restart, so that a following reader of the old log stops.
    pub generation: u64,
    /// The current instance has exited: a follower ends once it has read everything.
    pub terminated: bool,
    /// Bumped on every append, so that only this container's followers wake.
    pub appended: Arc<watch::Sender<u64>>,
}

impl ContainerLog {
    pub fn for_pod(uid: &str) -> Self {
        Self {
            pod_uid: uid.to_string(),
            ..Self::default()
        }
    }

    /// Appends a line, dropping the oldest while over `limit` bytes.
    pub fn push(&mut self, at: jiff::Timestamp, line: String, limit: usize) {
        self.bytes += line.len() + 1;
        self.lines.push_back((at, line));
        while self.bytes > limit && self.lines.len() > 1 {
            if let Some((_, old)) = self.lines.pop_front() {
                self.bytes -= old.len() + 1;
                self.dropped += 1;
            }
        }
    }

    /// The current instance ends: its lines become "previous".
    pub fn rotate(&mut self) {
        self.previous = Some(std::mem::take(&mut self.lines).into());
        self.bytes = 0;
        self.dropped = 0;
        self.generation += 1;
        self.terminated = false;
    }

    /// Lines from absolute index `from` on.
    pub fn since(&self, from: u64) -> impl Iterator<Item = &LogLine> {
        let skip = usize::try_from(from.saturating_sub(self.dropped)).unwrap_or(usize::MAX);
        self.lines.iter().skip(skip)
    }

    /// The absolute index after the last line.
    pub fn end(&self) -> u64 {
        self.dropped + self.lines.len() as u64
    }
}

pub(crate) type LogKey = (String, String, String);

pub(crate) struct Shared {
    me: Weak<Shared>,
    pub config: SimConfig,
    store: Mutex<Store>,
    registry: RwLock<Registry>,
    faults: Mutex<Faults>,
    watches: Mutex<BTreeMap<u64, OpenWatch>>,
    follows: Mutex<BTreeMap<u64, FollowInfo>>,
    logs: Mutex<HashMap<LogKey, ContainerLog>>,
    connections: Mutex<HashMap<u64, AbortHandle>>,
    next_id: AtomicU64,
    /// The current resourceVersion, for watches waiting for writes.
    pub rv_tx: watch::Sender<u64>,
    /// Bumped to end every open watch and log follow.
    pub close_tx: watch::Sender<u64>,
    /// Bumped when a log line is appended or a container restarts.
    pub logs_tx: watch::Sender<u64>,
    /// Bumped to end every open log follow (and nothing else).
    pub follows_close_tx: watch::Sender<u64>,
    /// Set to a down time to restart the listener.
    pub restart_tx: watch::Sender<Option<Duration>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub fn new(config: SimConfig) -> Arc<Self> {
        let store = Store::new(config.history_window, config.history_bytes);
        let rv = store.rv();
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            config,
            store: Mutex::new(store),
            registry: RwLock::new(Registry::new()),
            faults: Mutex::new(Faults::default()),
            watches: Mutex::new(BTreeMap::new()),
            follows: Mutex::new(BTreeMap::new()),
            logs: Mutex::new(HashMap::new()),
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            rv_tx: watch::channel(rv).0,
            close_tx: watch::channel(0).0,
            logs_tx: watch::channel(0).0,
            follows_close_tx: watch::channel(0).0,
            restart_tx: watch::channel(None).0,
        })
    }

    /// A handle for work that outlives the request that started it.
    pub fn self_handle(&self) -> Weak<Shared> {
        self.me.clone()
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Wakes watches after a write.
    pub fn notify(&self, rv: u64) {
        self.rv_tx.send_replace(rv);
    }

    pub fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn registry_mut(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub fn logs(&self) -> MutexGuard<'_, HashMap<LogKey, ContainerLog>> {
        lock(&self.logs)
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The fault for a request with `verb` from `user_agent` to `path`, if one is armed.
    pub fn take_fault(&self, verb: &str, user_agent: &str, path: &str) -> Option<FaultAction> {
        let mut faults = self.faults();
        let fault = faults.errors.as_mut()?;
        if fault.count == 0 {
            faults.errors = None;
            return None;
        }
        if !fault.verbs.is_empty() && !fault.verbs.iter().any(|v| v == verb) {
            return None;
        }
        if let Some(ua) = &fault.user_agent
            && !user_agent.contains(ua.as_str())
        {
            return None;
        }
        if let Some(part) = &fault.path_contains
            && !path.contains(part.as_str())
        {
            return None;
        }
        fault.count -= 1;
        let action = if fault.reset {
            FaultAction::Reset
        } else if fault.status == 429 {
            FaultAction::Fail(ApiError::too_many_requests(fault.retry_after_seconds))
        } else {
            let mut e = ApiError::internal("injected fault");
            e.code = fault.status;
            e.reason = match fault.status {
                500 => e.reason,
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "NotFound",
                _ => "ServiceUnavailable",
            };
            FaultAction::Fail(e)
        };
        if fault.count == 0 {
            faults.errors = None;
        }
        Some(action)
    }

    /// When watches may send again, if they are frozen now.
    pub fn frozen_until(&self) -> Option<Instant> {
        self.faults().freeze_until.filter(|t| *t > Instant::now())
    }

    pub fn register_watch(&self, watch: OpenWatch) -> u64 {
        let id = self.next_id();
        lock(&self.watches).insert(id, watch);
        id
    }

    pub fn unregister_watch(&self, id: u64) {
        lock(&self.watches).remove(&id);
    }

    pub fn watch_infos(&self) -> Vec<WatchInfo> {
        lock(&self.watches)
            .values()
            .map(|w| WatchInfo {
                path: w.path.clone(),
                query: w.query.clone(),
                user_agent: w.user_agent.clone(),
                last_resource_version: w.last_rv.load(Ordering::Relaxed).to_string(),
            })
            .collect()
    }

    pub fn register_follow(&self, follow: FollowInfo) -> u64 {
        let id = self.next_id();
        lock(&self.follows).insert(id, follow);
        id
    }

    pub fn unregister_follow(&self, id: u64) {
        lock(&self.follows).remove(&id);
    }

    pub fn follow_infos(&self) -> Vec<FollowInfo> {
        lock(&self.follows).values().cloned().collect()
    }

    pub fn watch_count(&self) -> usize {
        lock(&self.watches).len()
    }

    pub fn add_connection(&self, id: u64, handle: AbortHandle) {
        lock(&self.connections).insert(id, handle);
    }

    pub fn remove_connection(&self, id: u64) {
        lock(&self.connections).remove(&id);
    }

    /// Drops every open connection at once.
    pub fn drop_connections(&self) {
        for (_, handle) in lock(&self.connections).drain() {
            handle.abort();
        }
    }

    /// Drops one connection, for a `reset` fault.
    pub fn drop_connection(&self, id: u64) {
        if let Some(handle) = lock(&self.connections).remove(&id) {
            handle.abort();
        }
    }
}
