//! The object store: one global resourceVersion, current objects per
//! resource, and a bounded window of history that watches replay from.
//!
//! Every write takes the next resourceVersion and appends exactly one history
//! entry, so the entry of version `rv` is at index `rv - first`: a watch
//! finds its place in constant time. Snapshots at an older version are
//! rebuilt by undoing history, which is how consistent paged lists and
//! `resourceVersionMatch=Exact` are served.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use axum::body::Bytes;
use faro_filter::{Fields, Labels};
use serde_json::Value;

/// One stored object, serialised once.
#[derive(Debug)]
pub struct Stored {
    /// The object, `metadata.resourceVersion` included.
    pub value: Value,
    /// `value` as JSON.
    pub json: Bytes,
    /// Its resourceVersion.
    pub rv: u64,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
}

impl Stored {
    /// Stamps `rv` into `value` and serialises it.
    pub fn new(mut value: Value, rv: u64) -> Self {
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let meta = &value["metadata"];
        let namespace = meta["namespace"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        let labels = meta["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let mut json = serde_json::to_vec(&value).unwrap_or_default();
        // The serialiser's buffer grows by doubling; keep only what is used.
        json.shrink_to_fit();
        let json = Bytes::from(json);
        Self {
            value,
            json,
            rv,
            namespace,
            name,
            labels,
        }
    }

    /// The object's JSON as `def`'s API shows it: the stored bytes, or for
    /// `events.k8s.io` the view of the stored core Event.
    pub fn json_for(&self, def: &crate::resources::ResourceDef) -> Bytes {
        if def.is_events_v1() {
            let view = crate::cluster::to_events_v1(&self.value);
            return Bytes::from(serde_json::to_vec(&view).unwrap_or_default());
        }
        self.json.clone()
    }

    /// The same object at another resourceVersion.
    pub fn at_rv(&self, rv: u64) -> Stored {
        Stored::new(self.value.clone(), rv)
    }

    /// `(namespace, name)`, the order lists are returned in.
    pub fn key(&self) -> (String, String) {
        (
            self.namespace.clone().unwrap_or_default(),
            self.name.clone(),
        )
    }
}

impl Labels for Stored {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

impl Fields for Stored {
    fn field(&self, path: &str) -> Option<&str> {
        match path {
            "metadata.name" => Some(&self.name),
            "metadata.namespace" => Some(self.namespace.as_deref().unwrap_or("")),
            _ => path
                .split('.')
                .try_fold(&self.value, |v, part| v.get(part))
                .and_then(Value::as_str),
        }
    }
}

/// What a history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
}

/// One write.
#[derive(Debug)]
pub struct HistoryEntry {
    /// Its resourceVersion.
    pub rv: u64,
    /// The resource's storage key (`group/plural`).
    pub storage: Arc<str>,
    /// Created, updated or deleted.
    pub change: Change,
    /// The object after the write; for a delete, its last state at the delete's version.
    pub object: Arc<Stored>,
    /// The object before the write.
    pub prev: Option<Arc<Stored>>,
}

/// A version older than the history window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The oldest version still served.
    pub oldest: u64,
}

type Objects = BTreeMap<(String, String), Arc<Stored>>;

/// Objects and history.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    objects: HashMap<Arc<str>, Objects>,
    history: VecDeque<Arc<HistoryEntry>>,
    /// Watches and snapshots from a version below this are expired.
    compacted: u64,
    window: usize,
    /// What the history holds in bytes of serialised objects, and the most it may.
    history_bytes: usize,
    max_history_bytes: usize,
}

impl Store {
    /// An empty store keeping at most `window` history entries and about
    /// `max_bytes` of resident memory for them.
    pub fn new(window: usize, max_bytes: usize) -> Self {
        Self {
            rv: 1,
            objects: HashMap::new(),
            history: VecDeque::new(),
            compacted: 1,
            window: window.max(1),
            history_bytes: 0,
            max_history_bytes: max_bytes,
        }
    }

    /// What the history holds now, in counted bytes.
    pub fn history_bytes(&self) -> usize {
        self.history_bytes
    }

    fn entry_bytes(entry: &HistoryEntry) -> usize {
        // Measured: an entry costs about four times its object's JSON in
        // resident memory (the JSON, the parsed `Value`, the allocator's share).
        entry.object.json.len() * 4 + 128
    }

    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// How many objects are stored.
    pub fn len(&self) -> usize {
        self.objects.values().map(BTreeMap::len).sum()
    }

    fn storage(&mut self, storage: &str) -> (Arc<str>, &mut Objects) {
        let key: Arc<str> = match self.objects.get_key_value(storage) {
            Some((k, _)) => k.clone(),
            None => Arc::from(storage),
        };
        (key.clone(), self.objects.entry(key).or_default())
    }

    /// The object `namespace/name` of `storage`.
    pub fn get(&self, storage: &str, namespace: &str, name: &str) -> Option<Arc<Stored>> {
        self.objects
            .get(storage)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Current objects of `storage`, in one namespace or all, ordered by key.
    pub fn list(&self, storage: &str, namespace: Option<&str>) -> Vec<Arc<Stored>> {
        let Some(objects) = self.objects.get(storage) else {
            return Vec::new();
        };
        match namespace {
            Some(ns) => objects
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, o)| o.clone())
                .collect(),
            None => objects.values().cloned().collect(),
        }
    }

    /// Objects of `storage` as they were at version `rv`.
    pub fn snapshot(
        &self,
        storage: &str,
        namespace: Option<&str>,
        rv: u64,
    ) -> Result<Vec<Arc<Stored>>, Expired> {
        if rv >= self.rv {
            return Ok(self.list(storage, namespace));
        }
        if rv < self.compacted {
            return Err(Expired {
                oldest: self.compacted,
            });
        }
        let mut objects: Objects = self.objects.get(storage).cloned().unwrap_or_default();
        for entry in self.history.iter().rev().take_while(|e| e.rv > rv) {
            if &*entry.storage != storage {
                continue;
            }
            let key = entry.object.key();
            match &entry.prev {
                Some(prev) => {
                    objects.insert(key, prev.clone());
                }
                None => {
                    objects.remove(&key);
                }
            }
        }
        Ok(objects
            .into_values()
            .filter(|o| namespace.is_none_or(|ns| o.namespace.as_deref() == Some(ns)))
            .collect())
    }

    /// Creates or replaces an object, taking the next resourceVersion.
    pub fn put(&mut self, storage: &str, value: Value) -> Arc<Stored> {
        self.rv += 1;
        let rv = self.rv;
        let stored = Arc::new(Stored::new(value, rv));
        let (key, objects) = self.storage(storage);
        let prev = objects.insert(stored.key(), stored.clone());
        let change = if prev.is_some() {
            Change::Modified
        } else {
            Change::Added
        };
        self.record(key, change, stored.clone(), prev);
        stored
    }

    /// Deletes an object, taking the next resourceVersion. Returns its last
    /// state, stamped with the delete's version as watchers see it.
    pub fn remove(&mut self, storage: &str, namespace: &str, name: &str) -> Option<Arc<Stored>> {
        let (key, objects) = self.storage(storage);
        let prev = objects.remove(&(namespace.to_string(), name.to_string()))?;
        self.rv += 1;
        let last = Arc::new(prev.at_rv(self.rv));
        self.record(key, Change::Deleted, last.clone(), Some(prev));
        Some(last)
    }

    /// Deletes every object of `storage` (in one namespace or all), each
    /// with its own version and DELETED history entry.
    pub fn remove_all(&mut self, storage: &str, namespace: Option<&str>) {
        for object in self.list(storage, namespace) {
            let (ns, name) = object.key();
            self.remove(storage, &ns, &name);
        }
    }

    fn record(
        &mut self,
        storage: Arc<str>,
        change: Change,
        object: Arc<Stored>,
        prev: Option<Arc<Stored>>,
    ) {
        let entry = Arc::new(HistoryEntry {
            rv: self.rv,
            storage,
            change,
            object,
            prev,
        });
        self.history_bytes += Self::entry_bytes(&entry);
        self.history.push_back(entry);
        while self.history.len() > self.window
            || (self.history_bytes > self.max_history_bytes && self.history.len() > 1)
        {
            if let Some(old) = self.history.pop_front() {
                self.history_bytes -= Self::entry_bytes(&old);
                self.compacted = old.rv;
            }
        }
    }

    /// Up to `max` entries after version `after`, oldest first.
    pub fn events_after(&self, after: u64, max: usize) -> Result<Vec<Arc<HistoryEntry>>, Expired> {
        if after < self.compacted {
            return Err(Expired {
                oldest: self.compacted,
            });
        }
        let Some(first) = self.history.front().map(|e| e.rv) else {
            return Ok(Vec::new());
        };
        let start = usize::try_from((after + 1).saturating_sub(first)).unwrap_or(usize::MAX);
        Ok(self.history.iter().skip(start).take(max).cloned().collect())
    }

    /// Forgets all history: a watch from any older version is now expired.
    pub fn compact(&mut self) -> u64 {
        self.history.clear();
        self.history_bytes = 0;
        self.compacted = self.rv;
        self.rv
    }
}
