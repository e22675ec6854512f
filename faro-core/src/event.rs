//! Events as Faro hands them to handlers.

use std::fmt;
use std::sync::{Arc, OnceLock};

use kube_core::DynamicObject;
use serde::{Deserialize, Serialize};

use crate::Gvr;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// The object appeared (created, or first seen).
    Added,
    /// The object changed: its resourceVersion moved.
    Updated,
    /// The object is gone.
    Deleted,
}

impl EventType {
    /// `ADDED`, `UPDATED` or `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Updated => "UPDATED",
            EventType::Deleted => "DELETED",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An object's identity within one GVR: `namespace/name`, or `name` when cluster-scoped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectKey {
    /// A key in `namespace`, or cluster-scoped when `namespace` is `None`.
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        Self {
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// The key of `object`, from its metadata.
    pub fn of(object: &DynamicObject) -> Self {
        Self {
            namespace: object.metadata.namespace.clone(),
            name: object.metadata.name.clone().unwrap_or_default(),
        }
    }

    /// Parses `ns/name` or `name`.
    pub fn parse(text: &str) -> Self {
        match text.split_once('/') {
            Some((ns, name)) => Self::new(Some(ns), name),
            None => Self::new(None, text),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One event that passed a watch spec's filters, built once and shared by
/// every handler. Cloning is one reference-count increment.
#[derive(Debug, Clone)]
pub struct MatchedEvent(Arc<EventData>);

#[derive(Debug)]
struct EventData {
    event_type: EventType,
    gvr: Arc<Gvr>,
    key: ObjectKey,
    object: Arc<DynamicObject>,
    observed_at: jiff::Timestamp,
    /// When the event was read off the watch (monotonic, for latency).
    received: std::time::Instant,
    resource_version: String,
    inferred: bool,
    workload: Option<Arc<str>>,
    correlation: Option<Arc<str>>,
    changes: Option<Arc<Changes>>,
    cluster: Option<Arc<str>>,
    informer: Option<Arc<str>>,
    writer: Option<Arc<str>>,
    shard: Option<u32>,
    /// The event's serialised form, made at most once and shared by every
    /// consumer that needs it (the plugin envelope).
    serialized: OnceLock<Arc<[u8]>>,
}

impl MatchedEvent {
    /// An event as seen on the watch, observed now.
    pub fn new(event_type: EventType, gvr: Arc<Gvr>, object: Arc<DynamicObject>) -> Self {
        Self::builder(event_type, gvr, object).build()
    }

    /// Starts an event whose time, inference or workload differ from the defaults.
    pub fn builder(
        event_type: EventType,
        gvr: Arc<Gvr>,
        object: Arc<DynamicObject>,
    ) -> MatchedEventBuilder {
        MatchedEventBuilder {
            data: EventData {
                event_type,
                gvr,
                key: ObjectKey::of(&object),
                resource_version: object.metadata.resource_version.clone().unwrap_or_default(),
                object,
                observed_at: jiff::Timestamp::now(),
                received: std::time::Instant::now(),
                inferred: false,
                workload: None,
                correlation: None,
                changes: None,
                cluster: None,
                informer: None,
                writer: None,
                shard: None,
                serialized: OnceLock::new(),
            },
        }
    }

    /// The same event with another object (a middleware's redacted copy);
    /// type, GVR, key, time, resourceVersion and workload are kept.
    #[must_use]
    pub fn with_object(&self, object: Arc<DynamicObject>) -> Self {
        let d = &self.0;
        MatchedEvent(Arc::new(EventData {
            event_type: d.event_type,
            gvr: d.gvr.clone(),
            key: d.key.clone(),
            object,
            observed_at: d.observed_at,
            received: d.received,
            resource_version: d.resource_version.clone(),
            inferred: d.inferred,
            workload: d.workload.clone(),
            correlation: d.correlation.clone(),
            changes: d.changes.clone(),
            cluster: d.cluster.clone(),
            informer: d.informer.clone(),
            writer: d.writer.clone(),
            shard: d.shard,
            serialized: OnceLock::new(),
        }))
    }

    /// The event's serialised form: `make` runs on the first call only, and
    /// every later call (from any thread) shares its bytes.
    pub fn serialized(&self, make: impl FnOnce(&MatchedEvent) -> Vec<u8>) -> Arc<[u8]> {
        self.0
            .serialized
            .get_or_init(|| Arc::from(make(self)))
            .clone()
    }

    /// ADDED, UPDATED or DELETED.
    pub fn event_type(&self) -> EventType {
        self.0.event_type
    }

    /// The resource type.
    pub fn gvr(&self) -> &Gvr {
        &self.0.gvr
    }

    /// The shared GVR, for handlers that keep it.
    pub fn gvr_arc(&self) -> &Arc<Gvr> {
        &self.0.gvr
    }

    /// `namespace/name`.
    pub fn key(&self) -> &ObjectKey {
        &self.0.key
    }

    /// The object as it was in this event.
    pub fn object(&self) -> &Arc<DynamicObject> {
        &self.0.object
    }

    /// When Faro observed the event (not when the object was created).
    pub fn observed_at(&self) -> jiff::Timestamp {
        self.0.observed_at
    }

    /// When the event was read off the watch stream, on the monotonic
    /// clock: the start of `faro_event_latency_seconds`.
    pub fn received(&self) -> std::time::Instant {
        self.0.received
    }

    /// The event's resourceVersion; for an inferred DELETED, the last one seen.
    pub fn resource_version(&self) -> &str {
        &self.0.resource_version
    }

    /// True for a DELETED inferred because the object was missing from a relist.
    pub fn is_inferred(&self) -> bool {
        self.0.inferred
    }

    /// The workload the object belongs to, when workload detection is on.
    pub fn workload(&self) -> Option<&str> {
        self.0.workload.as_deref()
    }

    /// The id of the workload the object belongs to: its top owner
    /// (`Deployment/shop/web`), or the workload id when workload detection
    /// is on.
    pub fn correlation(&self) -> Option<&Arc<str>> {
        self.0.correlation.as_ref()
    }

    /// What changed, for an UPDATED of a GVR whose policy asks for diffs.
    pub fn changes(&self) -> Option<&Changes> {
        self.0.changes.as_deref()
    }

    /// The name of the cluster it was observed in, when Faro watches
    /// clusters by name (absent for a single unnamed cluster).
    pub fn cluster(&self) -> Option<&Arc<str>> {
        self.0.cluster.as_ref()
    }

    /// The watch that saw it (`v1/configmaps ns=shop …`), for progress kept
    /// per watch; its events come in resourceVersion order.
    pub fn informer(&self) -> Option<&Arc<str>> {
        self.0.informer.as_ref()
    }

    /// The replica that writes it, when replicas share the work.
    pub fn writer(&self) -> Option<&Arc<str>> {
        self.0.writer.as_ref()
    }

    /// The shard it belongs to, when replicas share the work.
    pub fn shard(&self) -> Option<u32> {
        self.0.shard
    }
}

/// What changed in an UPDATED, against the previous state Faro kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// The JSON pointers of what changed, sorted; `None` when the previous
    /// state was not kept (evicted past the diff memory budget).
    pub paths: Option<Vec<String>>,
    /// An RFC 6902 patch from the previous state to this one, when asked for
    /// and known.
    pub patch: Option<serde_json::Value>,
}

/// Sets the less common parts of a [`MatchedEvent`].
#[derive(Debug)]
pub struct MatchedEventBuilder {
    data: EventData,
}

impl MatchedEventBuilder {
    /// When the event was observed.
    #[must_use]
    pub fn observed_at(mut self, at: jiff::Timestamp) -> Self {
        self.data.observed_at = at;
        self
    }

    /// Marks the event as inferred from a relist, carrying the last resourceVersion seen.
    #[must_use]
    pub fn inferred(mut self, last_seen_resource_version: impl Into<String>) -> Self {
        self.data.inferred = true;
        self.data.resource_version = last_seen_resource_version.into();
        self
    }

    /// The workload the object belongs to.
    #[must_use]
    pub fn workload(mut self, workload: Arc<str>) -> Self {
        self.data.workload = Some(workload);
        self
    }

    /// The id of the workload the object belongs to.
    #[must_use]
    pub fn correlation(mut self, correlation: Arc<str>) -> Self {
        self.data.correlation = Some(correlation);
        self
    }

    /// What changed, for an UPDATED.
    #[must_use]
    pub fn changes(mut self, changes: Changes) -> Self {
        self.data.changes = Some(Arc::new(changes));
        self
    }

    /// The cluster it was observed in.
    #[must_use]
    pub fn cluster(mut self, cluster: Option<Arc<str>>) -> Self {
        self.data.cluster = cluster;
        self
    }

    /// The watch that saw it.
    #[must_use]
    pub fn informer(mut self, informer: Option<Arc<str>>) -> Self {
        self.data.informer = informer;
        self
    }

    /// The replica that writes it and its shard.
    #[must_use]
    pub fn writer(mut self, writer: Option<Arc<str>>, shard: Option<u32>) -> Self {
        self.data.writer = writer;
        self.data.shard = shard;
        self
    }

    /// The finished, shareable event.
    pub fn build(self) -> MatchedEvent {
        MatchedEvent(Arc::new(self.data))
    }
}
