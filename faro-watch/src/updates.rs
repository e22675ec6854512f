//! What an UPDATED is worth: the previous state of each delivered object
//! (a compact binary form of its JSON without `managedFields`, kept only for GVRs whose policy
//! needs it, within one memory budget), the JSON pointers that changed, an
//! RFC 6902 patch when asked for, and whether the policy suppresses it.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use faro_core::config::{DiffMode, UpdatePolicy, UpdatesConfig};
use faro_core::{Changes, DynamicObject, EventType, Gvr};
use serde_json::Value;

use crate::metrics::WatchMetrics;

mod view;

use view::{Form, ObjectView, decode, diff, encode};

/// Per-entry bookkeeping counted against the budget besides the bytes.
const ENTRY_OVERHEAD: usize = 48;

/// The `updates:` configuration and the memory budget every informer shares.
#[derive(Clone)]
pub(crate) struct Updates {
    config: Arc<UpdatesConfig>,
    used: Arc<AtomicI64>,
    metrics: WatchMetrics,
}

impl Updates {
    pub fn new(config: UpdatesConfig, metrics: WatchMetrics) -> Self {
        Self {
            config: Arc::new(config),
            used: Arc::new(AtomicI64::new(0)),
            metrics,
        }
    }

    /// The diff state of one informer of `gvr`.
    pub fn for_informer(&self, gvr: &Gvr) -> InformerDiff {
        let policy = self.config.policy(gvr).clone();
        let label = gvr.to_string();
        InformerDiff {
            needs_previous: policy.needs_previous(),
            policy,
            previous: HashMap::new(),
            order: VecDeque::new(),
            tick: 0,
            key: String::new(),
            last_len: 0,
            budget: i64::try_from(self.config.diff_memory_bytes).unwrap_or(i64::MAX),
            used: self.used.clone(),
            mine: 0,
            metrics: self.metrics.clone(),
            label,
        }
    }
}

/// A delivered object's last state, in the compact form of [`encode`].
struct Previous {
    state: Box<[u8]>,
    managed_fields: u64,
    tick: u64,
}

/// The previous-state tracker an informer runs for one GVR, on its own:
/// for programs that keep objects themselves, and for benchmarks.
///
/// ```
/// use faro_core::{Config, EventType, Gvr};
/// let config = Config::from_yaml("updates: {diff: paths}", "x.yaml").unwrap();
/// let mut tracker = faro_watch::UpdateTracker::new(&config.updates, &Gvr::parse("v1/configmaps").unwrap());
/// let object = |v: &str| serde_json::from_value(serde_json::json!({
///     "apiVersion": "v1", "kind": "ConfigMap",
///     "metadata": {"name": "a", "namespace": "ns"}, "data": {"k": v}})).unwrap();
/// tracker.observe(EventType::Added, &object("1"));
/// let (deliver, changes) = tracker.observe(EventType::Updated, &object("2"));
/// assert!(deliver);
/// assert_eq!(changes.unwrap().paths.unwrap(), ["/data/k"]);
/// ```
pub struct UpdateTracker(InformerDiff);

impl UpdateTracker {
    /// A tracker with `config`'s policy for `gvr` and its memory budget.
    pub fn new(config: &UpdatesConfig, gvr: &Gvr) -> Self {
        Self(Updates::new(config.clone(), WatchMetrics::default()).for_informer(gvr))
    }

    /// Whether an event is delivered, and what changed in an UPDATED.
    pub fn observe(
        &mut self,
        event_type: EventType,
        object: &DynamicObject,
    ) -> (bool, Option<Changes>) {
        let d = self.0.decide(event_type, object);
        (d.deliver, d.changes)
    }

    /// Bytes the kept previous states take, bookkeeping included.
    pub fn kept_bytes(&self) -> u64 {
        u64::try_from(self.0.mine).unwrap_or(0)
    }
}

/// What to do with one event.
#[derive(Debug)]
pub(crate) struct Decision {
    /// Hand it to handlers.
    pub deliver: bool,
    /// What changed, for an UPDATED of a GVR that asks for diffs.
    pub changes: Option<Changes>,
}

/// The previous states of one informer's delivered objects.
pub(crate) struct InformerDiff {
    policy: UpdatePolicy,
    needs_previous: bool,
    previous: HashMap<Arc<str>, Previous>,
    /// Insertion order, for evicting the oldest; stale ticks are skipped.
    order: VecDeque<(Arc<str>, u64)>,
    tick: u64,
    /// The key of the event at hand, in a buffer used again.
    key: String,
    /// The size of the last state kept, to size the next buffer right.
    last_len: usize,
    budget: i64,
    used: Arc<AtomicI64>,
    /// Bytes this informer counts in `used`.
    mine: i64,
    metrics: WatchMetrics,
    label: String,
}

impl Drop for InformerDiff {
    fn drop(&mut self) {
        self.used.fetch_sub(self.mine, Ordering::Relaxed);
    }
}

impl InformerDiff {
    /// Decides on a delivered event of `key` and keeps the state it needs.
    pub fn decide(&mut self, event_type: EventType, object: &DynamicObject) -> Decision {
        let wanted = self.policy.delivers(event_type);
        if !wanted {
            self.suppressed("event_type");
        }
        if !self.needs_previous {
            return Decision {
                deliver: wanted,
                changes: None,
            };
        }
        let meta = &object.metadata;
        // The key in a buffer this informer reuses.
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        if let Some(ns) = meta.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            key.push_str(ns);
            key.push('/');
        }
        key.push_str(meta.name.as_deref().unwrap_or(""));
        let decision = match event_type {
            EventType::Deleted => {
                self.forget(&key);
                Decision {
                    deliver: wanted,
                    changes: None,
                }
            }
            EventType::Added => {
                let state = self.encode(object);
                self.keep(&key, state, managed_fields_hash(object));
                Decision {
                    deliver: wanted,
                    changes: None,
                }
            }
            EventType::Updated => self.updated(&key, object),
        };
        self.key = key;
        decision
    }

    /// The kept form of `object`: whole when a patch needs the previous
    /// document, else with long strings as hashes.
    fn encode(&mut self, object: &DynamicObject) -> Vec<u8> {
        let form = if self.policy.diff == DiffMode::Patch {
            Form::Whole
        } else {
            Form::Hashed
        };
        let mut state = Vec::with_capacity(self.last_len.max(64));
        encode(&ObjectView::new(object), form, &mut state);
        self.last_len = state.len() + state.len() / 8;
        state
    }

    fn updated(&mut self, key: &str, object: &DynamicObject) -> Decision {
        let state = self.encode(object);
        let managed = managed_fields_hash(object);
        let Some(previous) = self.previous.get(key) else {
            self.metrics
                .diffs_unknown
                .get_or_create(&[("gvr", self.label.clone())])
                .inc();
            self.keep(key, state, managed);
            return Decision {
                deliver: true,
                changes: (self.policy.diff != DiffMode::None).then_some(Changes {
                    paths: None,
                    patch: None,
                }),
            };
        };
        let managed_before = previous.managed_fields;
        let mut paths = Vec::new();
        let mut patch = None;
        match self.policy.diff {
            DiffMode::Patch => {
                // A patch needs both documents whole.
                let before = decode(&previous.state).unwrap_or(Value::Null);
                let now = decode(&state).unwrap_or(Value::Null);
                changed_paths(&before, &now, &mut String::new(), &mut paths);
                patch = serde_json::to_value(json_patch::diff(&before, &now)).ok();
            }
            DiffMode::Paths | DiffMode::None => {
                if diff(&previous.state, &state, &mut paths).is_err() {
                    // Both forms were written just here: unreachable short of a bug.
                    paths.clear();
                    paths.push("/".to_owned());
                }
            }
        }
        paths.sort();
        let reason = self.suppression(&paths, managed != managed_before);
        let changes = match self.policy.diff {
            DiffMode::None => None,
            DiffMode::Paths | DiffMode::Patch => Some(Changes {
                paths: Some(paths),
                patch,
            }),
        };
        self.keep(key, state, managed);
        if let Some(reason) = reason {
            self.suppressed(reason);
            return Decision {
                deliver: false,
                changes,
            };
        }
        Decision {
            deliver: true,
            changes,
        }
    }

    /// The reason an UPDATED with these changed paths is not delivered, if any.
    fn suppression(&self, paths: &[String], managed_changed: bool) -> Option<&'static str> {
        let s = self.policy.suppress;
        if paths.is_empty() {
            if s.resync && !managed_changed {
                return Some("resync");
            }
            if s.managed_fields_only && managed_changed {
                return Some("managed_fields_only");
            }
            if s.metadata_only {
                return Some("metadata_only");
            }
        } else {
            if s.status_only && paths.iter().all(|p| under(p, "/status")) {
                return Some("status_only");
            }
            if s.metadata_only
                && paths
                    .iter()
                    .all(|p| under(p, "/metadata") && !under(p, "/metadata/generation"))
            {
                return Some("metadata_only");
            }
        }
        let only = &self.policy.only_paths;
        if !only.is_empty()
            && !paths
                .iter()
                .any(|p| only.iter().any(|o| under(p, o) || under(o, p)))
        {
            return Some("paths");
        }
        let ignore = &self.policy.ignore_paths;
        if !ignore.is_empty() && paths.iter().all(|p| ignore.iter().any(|i| under(p, i))) {
            return Some("paths");
        }
        None
    }

    fn suppressed(&self, reason: &'static str) {
        self.metrics
            .updates_suppressed
            .get_or_create(&[("gvr", self.label.clone()), ("reason", reason.to_owned())])
            .inc();
    }

    fn keep(&mut self, key: &str, state: Vec<u8>, managed_fields: u64) {
        self.tick += 1;
        let cost = (state.len() + key.len() + ENTRY_OVERHEAD) as i64;
        let state = Previous {
            state: state.into_boxed_slice(),
            managed_fields,
            tick: self.tick,
        };
        // The map and the eviction order share one allocation of the key.
        let (shared, freed) = match self.previous.get_key_value(key) {
            Some((shared, _)) => {
                let shared = shared.clone();
                let old = self.previous.insert(shared.clone(), state);
                let freed = old.map_or(0, |p| (p.state.len() + key.len() + ENTRY_OVERHEAD) as i64);
                (shared, freed)
            }
            None => {
                let shared: Arc<str> = key.into();
                self.previous.insert(shared.clone(), state);
                (shared, 0)
            }
        };
        self.account(cost - freed);
        self.order.push_back((shared, self.tick));
        // Past the budget, this informer's oldest states go first.
        while self.used.load(Ordering::Relaxed) > self.budget {
            let Some((oldest, tick)) = self.order.pop_front() else {
                break;
            };
            if self.previous.get(&oldest).is_some_and(|p| p.tick == tick) {
                self.forget(&oldest);
            }
        }
        if self.order.len() > 2 * self.previous.len() + 64 {
            let previous = &self.previous;
            self.order
                .retain(|(k, t)| previous.get(k).is_some_and(|p| p.tick == *t));
        }
    }

    fn forget(&mut self, key: &str) {
        if let Some(p) = self.previous.remove(key) {
            self.account(-((p.state.len() + key.len() + ENTRY_OVERHEAD) as i64));
        }
    }

    fn account(&mut self, delta: i64) {
        self.mine += delta;
        let used = self.used.fetch_add(delta, Ordering::Relaxed) + delta;
        self.metrics.diff_bytes.set(used);
    }
}

/// Tells one set of managed fields from another without serialising them.
fn managed_fields_hash(object: &DynamicObject) -> u64 {
    let mut h = foldhash::fast::FixedState::with_seed(0).build_hasher();
    for entry in object.metadata.managed_fields.iter().flatten() {
        entry.manager.hash(&mut h);
        entry.operation.hash(&mut h);
        entry.subresource.hash(&mut h);
        entry.time.as_ref().map(|t| t.0.as_second()).hash(&mut h);
    }
    h.finish()
}

/// Whether pointer `path` is `prefix` or below it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Appends the JSON pointers (below `at`, usually empty) where `a` and `b`
/// differ: leaves that changed, keys and array items added or removed.
/// This is how an UPDATED's `changedPaths` are found (sorted afterwards).
pub fn changed_paths(a: &Value, b: &Value, at: &mut String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let len = at.len();
                push_token(at, k);
                match y.get(k) {
                    Some(vb) => changed_paths(va, vb, at, out),
                    None => out.push(at.clone()),
                }
                at.truncate(len);
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                let len = at.len();
                push_token(at, k);
                out.push(at.clone());
                at.truncate(len);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let len = at.len();
                at.push('/');
                at.push_str(&i.to_string());
                match (x.get(i), y.get(i)) {
                    (Some(va), Some(vb)) => changed_paths(va, vb, at, out),
                    _ => out.push(at.clone()),
                }
                at.truncate(len);
            }
        }
        (x, y) => {
            if x != y {
                out.push(if at.is_empty() {
                    "/".to_owned()
                } else {
                    at.clone()
                });
            }
        }
    }
}

/// Appends `/token`, escaped as RFC 6901 says (`~` → `~0`, `/` → `~1`).
fn push_token(at: &mut String, token: &str) {
    at.push('/');
    for c in token.chars() {
        match c {
            '~' => at.push_str("~0"),
            '/' => at.push_str("~1"),
            c => at.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(a: Value, b: Value) -> Vec<String> {
        let mut out = Vec::new();
        changed_paths(&a, &b, &mut String::new(), &mut out);
        out.sort();
        out
    }

    #[test]
    fn changed_leaves_added_and_removed_keys_and_items_are_named() {
        assert_eq!(
            paths(
                json!({"spec": {"replicas": 1, "x": [1, 2]}, "metadata": {"labels": {"a/b": "1"}}}),
                json!({"spec": {"replicas": 2, "x": [1]}, "metadata": {"labels": {"a/b": "1", "c~": "2"}}}),
            ),
            ["/metadata/labels/c~0", "/spec/replicas", "/spec/x/1"]
        );
        assert!(paths(json!({"a": 1}), json!({"a": 1})).is_empty());
    }

    fn diff_for(yaml: &str) -> InformerDiff {
        let config = faro_core::Config::from_yaml(yaml, "t.yaml").unwrap();
        Updates::new(config.updates, WatchMetrics::default())
            .for_informer(&Gvr::parse("v1/pods").unwrap())
    }

    fn obj(v: Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    /// The object as it is kept, parsed.
    fn compact(o: &DynamicObject) -> Value {
        serde_json::to_value(ObjectView::new(o)).unwrap()
    }

    fn pod(rv: u32, labels: Value, spec: Value, status: Value, mf_time: &str) -> DynamicObject {
        obj(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": rv.to_string(),
                         "generation": 1, "labels": labels,
                         "managedFields": [{"manager": "kubelet", "operation": "Update", "time": mf_time}]},
            "spec": spec, "status": status
        }))
    }

    /// (delivered, changedPaths) of one UPDATED after `before`.
    fn update(
        d: &mut InformerDiff,
        before: &DynamicObject,
        after: &DynamicObject,
    ) -> (bool, Option<Vec<String>>) {
        let _ = d.decide(EventType::Added, before);
        let got = d.decide(EventType::Updated, after);
        (got.deliver, got.changes.and_then(|c| c.paths))
    }

    #[test]
    fn suppression_by_kind_of_change() {
        let t0 = "2026-01-01T00:00:00Z";
        let t1 = "2026-01-01T00:00:01Z";
        let base = pod(
            1,
            json!({"a": "1"}),
            json!({"x": 1}),
            json!({"phase": "Pending"}),
            t0,
        );
        let status = pod(
            2,
            json!({"a": "1"}),
            json!({"x": 1}),
            json!({"phase": "Running"}),
            t0,
        );
        let labels = pod(
            2,
            json!({"a": "2"}),
            json!({"x": 1}),
            json!({"phase": "Pending"}),
            t0,
        );
        let spec = pod(
            2,
            json!({"a": "1"}),
            json!({"x": 2}),
            json!({"phase": "Pending"}),
            t0,
        );
        let same = pod(
            2,
            json!({"a": "1"}),
            json!({"x": 1}),
            json!({"phase": "Pending"}),
            t0,
        );
        let managed = pod(
            2,
            json!({"a": "1"}),
            json!({"x": 1}),
            json!({"phase": "Pending"}),
            t1,
        );

        let mut d = diff_for("updates:\n  suppress: [status_only]\n");
        assert_eq!(
            update(&mut d, &base, &status),
            (false, Some(vec!["/status/phase".into()]))
        );
        assert_eq!(
            update(&mut d, &base, &labels),
            (true, Some(vec!["/metadata/labels/a".into()]))
        );
        assert_eq!(update(&mut d, &base, &same), (true, Some(vec![])));

        let mut d = diff_for("updates:\n  suppress: [metadata_only]\n");
        assert!(!update(&mut d, &base, &labels).0);
        assert!(!update(&mut d, &base, &managed).0);
        assert!(update(&mut d, &base, &status).0);
        assert_eq!(
            update(&mut d, &base, &spec),
            (true, Some(vec!["/spec/x".into()]))
        );

        let mut d = diff_for("updates:\n  suppress: [resync]\n");
        assert!(!update(&mut d, &base, &same).0);
        assert!(update(&mut d, &base, &managed).0);

        let mut d = diff_for("updates:\n  suppress: [managed_fields_only]\n");
        assert!(!update(&mut d, &base, &managed).0);
        assert!(update(&mut d, &base, &same).0);
        assert!(update(&mut d, &base, &labels).0);

        let mut d = diff_for("updates:\n  only_paths: [/spec]\n");
        assert!(update(&mut d, &base, &spec).0);
        assert!(!update(&mut d, &base, &status).0);
        let mut d = diff_for("updates:\n  ignore_paths: [/status, /metadata/labels]\n");
        assert!(!update(&mut d, &base, &status).0);
        assert!(!update(&mut d, &base, &labels).0);
        assert!(update(&mut d, &base, &spec).0);

        let mut d = diff_for("updates:\n  event_types: [ADDED, DELETED]\n");
        assert!(!d.decide(EventType::Updated, &spec).deliver);
        assert!(d.decide(EventType::Added, &spec).deliver);
        assert!(d.decide(EventType::Deleted, &spec).deliver);

        let mut d = diff_for("updates:\n  diff: none\n");
        assert_eq!(update(&mut d, &base, &spec), (true, None));
    }

    #[test]
    fn an_evicted_previous_state_gives_null_paths() {
        // A budget of 0 MiB keeps nothing.
        let mut d = diff_for("updates:\n  diff_memory_mb: 0\n");
        let t0 = "2026-01-01T00:00:00Z";
        let a = pod(1, json!({}), json!({"x": 1}), json!({}), t0);
        let b = pod(2, json!({}), json!({"x": 2}), json!({}), t0);
        let got = update(&mut d, &a, &b);
        assert_eq!(got, (true, None));
        assert!(d.previous.is_empty());
    }

    #[test]
    fn the_patch_turns_the_previous_state_into_the_new_one() {
        let mut d = diff_for("updates:\n  diff: patch\n");
        let mut current = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "1",
                         "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i:1"}], "replicas": 1},
            "status": {"phase": "Pending", "conditions": []}
        });
        let _ = d.decide(EventType::Added, &obj(current.clone()));
        let keys = ["a", "b", "c/d", "e~f"];
        for rv in 2..1002 {
            let before = compact(&obj(current.clone()));
            let key = keys[fastrand::usize(..keys.len())];
            match fastrand::u8(0..6) {
                0 => current["metadata"]["labels"][key] = json!(fastrand::u32(..).to_string()),
                1 => {
                    current["metadata"]["labels"]
                        .as_object_mut()
                        .unwrap()
                        .remove(key);
                }
                2 => current["spec"]["replicas"] = json!(fastrand::u8(..)),
                3 => current["status"]["conditions"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": key, "status": "True"})),
                4 => {
                    current["status"]["conditions"]
                        .as_array_mut()
                        .unwrap()
                        .pop();
                }
                _ => current["spec"]["containers"][0]["image"] = json!(format!("i:{rv}")),
            }
            current["metadata"]["resourceVersion"] = json!(rv.to_string());
            let after = obj(current.clone());
            let decision = d.decide(EventType::Updated, &after);
            let changes = decision.changes.expect("changes");
            let patch: json_patch::Patch =
                serde_json::from_value(changes.patch.expect("a patch")).unwrap();
            let mut doc = before.clone();
            json_patch::patch(&mut doc, &patch).unwrap();
            assert_eq!(doc, compact(&after), "update {rv}");
            let mut expected = Vec::new();
            changed_paths(&before, &compact(&after), &mut String::new(), &mut expected);
            expected.sort();
            assert_eq!(changes.paths, Some(expected));
        }
    }

    #[test]
    fn under_respects_token_boundaries() {
        assert!(under("/status/phase", "/status"));
        assert!(under("/status", "/status"));
        assert!(!under("/statusx", "/status"));
    }
}
