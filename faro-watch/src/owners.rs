//! Correlation ids: the top owner of every object, found by following
//! `ownerReferences` through a compact index (uid → owner uid, kind,
//! namespace, name) that watches of the owner kinds keep current. A kind
//! is indexed the first time a chain needs it, through the shared
//! informers (so an index watch and a rule's watch of the same resource
//! are one watch); no object is ever fetched on its own.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use faro_core::{DynamicObject, EventType, WorkloadConfig};
use tokio::sync::watch;

use crate::controller::{Inner, Subscription};
use crate::informer::{InformerKey, InformerState, InternalSink, lock};

/// How long a chain waits for an owner kind's first list.
const SYNC_WAIT: Duration = Duration::from_secs(5);
/// How long a chain waits for an owner that its index has not seen yet
/// (created a moment ago; its watch event is on its way).
const OWNER_WAIT: Duration = Duration::from_secs(3);
/// How long at most a chain waits for an owner when it knows how far the
/// owner's index must read (the referring object's resourceVersion).
const OWNER_WAIT_BY_RV: Duration = Duration::from_secs(10);
/// How often a waiting chain looks how far the index has read.
const RV_POLL: Duration = Duration::from_millis(50);
/// Only a reference this recent waits for a missing object: an object
/// created, or an Event last seen, longer ago names an owner that is gone
/// rather than on its way (a startup list of old orphans never waits).
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(30);
/// An owner not found after waiting is not waited for again this long.
const MISSING_FOR: Duration = Duration::from_secs(60);
/// A deleted object stays in the index this long, so that the events of
/// its children that follow (their deletion) still find their top owner.
const TOMBSTONE_FOR: Duration = Duration::from_secs(300);

/// A uid in 16 bytes (a UUID's bits, or a hash of another string).
type Uid = [u64; 2];

const NO_OWNER: Uid = [0, 0];

fn uid_of(text: &str) -> Uid {
    // A UUID's 32 hex digits, read without allocating.
    let mut bits: u128 = 0;
    let mut digits = 0;
    let mut hex = true;
    for b in text.bytes() {
        let v = match b {
            b'-' => continue,
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => {
                hex = false;
                break;
            }
        };
        digits += 1;
        if digits > 32 {
            hex = false;
            break;
        }
        bits = (bits << 4) | u128::from(v);
    }
    let uid = [(bits >> 64) as u64, bits as u64];
    if hex && digits == 32 && uid != NO_OWNER {
        return uid;
    }
    use std::hash::{BuildHasher, Hasher};
    let state =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
    let mut a = state.build_hasher();
    a.write(text.as_bytes());
    let mut b = state.build_hasher();
    b.write_u8(0xfa);
    b.write(text.as_bytes());
    [a.finish(), b.finish() | 1]
}

/// One indexed object: 40 bytes plus its name.
struct Entry {
    owner: Uid,
    name: Box<str>,
    namespace: u32,
    /// Index into `State::kinds`.
    kind: u16,
    /// Known only as some object's owner; its own object has not been seen.
    placeholder: bool,
}

/// An owner reference, or an object's own identity.
#[derive(Debug, Clone)]
pub(crate) struct ObjectRef<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub uid: Option<&'a str>,
    /// The reference was made lately (see [`FRESH_FOR`]): a missing
    /// object is waited for.
    pub fresh: bool,
    /// The resourceVersion of the object that makes the reference: once the
    /// index of the referenced kind has seen that far, an object it does
    /// not know is not coming.
    pub seen_at: Option<u64>,
}

/// Whether `at` (RFC 3339) is within [`FRESH_FOR`] of now; false when absent.
pub(crate) fn is_fresh(at: Option<&str>) -> bool {
    at.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .is_some_and(is_fresh_at)
}

fn is_fresh_at(at: jiff::Timestamp) -> bool {
    jiff::Timestamp::now()
        .duration_since(at)
        .unsigned_abs()
        .lt(&FRESH_FOR)
}

impl<'a> ObjectRef<'a> {
    /// The controlling owner of `object` (else its first owner).
    pub fn owner_of(object: &'a DynamicObject) -> Option<Self> {
        let refs = object.metadata.owner_references.as_ref()?;
        let r = refs
            .iter()
            .find(|r| r.controller == Some(true))
            .or_else(|| refs.first())?;
        Some(Self {
            api_version: &r.api_version,
            kind: &r.kind,
            namespace: object.metadata.namespace.as_deref(),
            name: &r.name,
            uid: Some(&r.uid),
            fresh: object
                .metadata
                .creation_timestamp
                .as_ref()
                .is_some_and(|t| is_fresh_at(t.0)),
            seen_at: object
                .metadata
                .resource_version
                .as_deref()
                .and_then(|rv| rv.parse().ok()),
        })
    }

    fn id(&self) -> Arc<str> {
        id(self.kind, self.namespace, self.name)
    }
}

fn id(kind: &str, namespace: Option<&str>, name: &str) -> Arc<str> {
    let mut s = String::with_capacity(kind.len() + name.len() + 2 + namespace.map_or(0, str::len));
    s.push_str(kind);
    s.push('/');
    if let Some(ns) = namespace.filter(|ns| !ns.is_empty()) {
        s.push_str(ns);
        s.push('/');
    }
    s.push_str(name);
    Arc::from(s)
}

/// Where an owner kind's index is.
#[derive(Clone)]
enum KindIndex {
    /// Subscribed; its informer's key, to look at its state.
    Watching(InformerKey),
    /// The server serves no such kind, or it could not be subscribed.
    Unavailable,
}

/// Uids are random bits already: a fast hash is enough.
type UidMap<V> = HashMap<Uid, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct State {
    entries: UidMap<Entry>,
    /// `apiVersion`, `kind` of each kind id.
    kinds: Vec<(Arc<str>, Arc<str>)>,
    namespaces: Vec<Arc<str>>,
    namespace_ids: HashMap<Arc<str>, u32>,
    /// Ids of top owners, made once.
    tops: UidMap<Arc<str>>,
    missing: UidMap<Instant>,
    tombstones: VecDeque<(Instant, Uid)>,
    indexes: HashMap<(Arc<str>, Arc<str>), KindIndex>,
    subscriptions: Vec<Subscription>,
}

impl State {
    fn kind_id(&mut self, api_version: &str, kind: &str) -> u16 {
        if let Some(i) = self
            .kinds
            .iter()
            .position(|(a, k)| &**a == api_version && &**k == kind)
        {
            return u16::try_from(i).unwrap_or(u16::MAX);
        }
        self.kinds.push((Arc::from(api_version), Arc::from(kind)));
        u16::try_from(self.kinds.len() - 1).unwrap_or(u16::MAX)
    }

    fn namespace_id(&mut self, namespace: Option<&str>) -> u32 {
        let ns = namespace.unwrap_or("");
        if let Some(i) = self.namespace_ids.get(ns) {
            return *i;
        }
        let ns: Arc<str> = Arc::from(ns);
        let i = u32::try_from(self.namespaces.len()).unwrap_or(u32::MAX);
        self.namespaces.push(ns.clone());
        self.namespace_ids.insert(ns, i);
        i
    }

    fn entry_id(&self, e: &Entry) -> Arc<str> {
        let kind = self.kinds.get(usize::from(e.kind)).map_or("", |(_, k)| k);
        let ns = self
            .namespaces
            .get(e.namespace as usize)
            .map(|n| &**n)
            .filter(|n| !n.is_empty());
        id(kind, ns, &e.name)
    }

    fn purge(&mut self, now: Instant) {
        while let Some((at, uid)) = self.tombstones.front().copied() {
            if now.duration_since(at) < TOMBSTONE_FOR {
                break;
            }
            self.tombstones.pop_front();
            self.entries.remove(&uid);
            self.tops.remove(&uid);
        }
    }
}

/// What one step of a chain found.
enum Step {
    Done(Arc<str>),
    /// The kind must be indexed (or its list finish) before going on.
    NeedKind(Arc<str>, Arc<str>, Arc<str>),
    /// The owner was not seen yet; wait for the index to change.
    NeedOwner(Uid, Arc<str>, InformerKey),
}

/// The owner index and the correlation ids it gives.
pub(crate) struct Owners {
    controller: OnceLock<Weak<Inner>>,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    workload: Option<WorkloadConfig>,
    lookups: AtomicU64,
}

impl Owners {
    pub fn new(workload: Option<WorkloadConfig>) -> Self {
        Self {
            controller: OnceLock::new(),
            state: Mutex::default(),
            changed: watch::Sender::new(0),
            workload,
            lookups: AtomicU64::new(0),
        }
    }

    pub fn attach(&self, controller: Weak<Inner>) {
        let _ = self.controller.set(controller);
    }

    /// Objects in the index (owners and the objects whose owners they are).
    pub fn tracked(&self) -> usize {
        lock(&self.state).entries.len()
    }

    /// Drops the index watches (at stop).
    pub fn close(&self) {
        let subs = std::mem::take(&mut lock(&self.state).subscriptions);
        drop(subs);
    }

    /// The workload id of `namespace`, when workload detection is on.
    fn workload_of(&self, namespace: Option<&str>) -> Option<Arc<str>> {
        let w = self.workload.as_ref()?;
        w.namespace_workload(namespace?).map(Arc::from)
    }

    /// The correlation id of `object`: its workload's id, else its top
    /// owner's `Kind/namespace/name`, else its own.
    pub async fn of_object(&self, object: &DynamicObject) -> Arc<str> {
        if let Some(w) = self.workload_of(object.metadata.namespace.as_deref()) {
            return w;
        }
        match ObjectRef::owner_of(object) {
            Some(owner) => self.of_ref(&owner).await,
            None => {
                let kind = object.types.as_ref().map_or("", |t| t.kind.as_str());
                id(
                    kind,
                    object.metadata.namespace.as_deref(),
                    object.metadata.name.as_deref().unwrap_or(""),
                )
            }
        }
    }

    /// The correlation id of the object `r` names (an owner reference, or
    /// an Event's involved object).
    pub async fn of_ref(&self, r: &ObjectRef<'_>) -> Arc<str> {
        if let Some(w) = self.workload_of(r.namespace) {
            return w;
        }
        let Some(uid) = r.uid.filter(|u| !u.is_empty()).map(uid_of) else {
            return r.id();
        };
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let mut rx = self.changed.subscribe();
        let mut waited_kind = false;
        let mut owner_deadline: Option<tokio::time::Instant> = None;
        loop {
            let step = self.step(uid, r);
            match step {
                Step::Done(id) => return id,
                Step::NeedKind(api_version, kind, fallback) => {
                    if waited_kind || !self.index_kind(&api_version, &kind).await {
                        return fallback;
                    }
                    if !self.wait_synced(&api_version, &kind).await {
                        return fallback;
                    }
                    waited_kind = true;
                }
                Step::NeedOwner(missing, fallback, key) => {
                    if !r.fresh {
                        return fallback;
                    }
                    // With the referring object's resourceVersion, wait while
                    // the kind's index has not seen that far (a loaded
                    // machine may lag by seconds); without it, a short while.
                    let caught_up = |me: &Self| {
                        r.seen_at
                            .is_some_and(|at| me.seen_rv(&key).is_some_and(|seen| seen >= at))
                    };
                    let wait = if r.seen_at.is_some() {
                        OWNER_WAIT_BY_RV
                    } else {
                        OWNER_WAIT
                    };
                    let deadline =
                        *owner_deadline.get_or_insert_with(|| tokio::time::Instant::now() + wait);
                    rx.mark_unchanged();
                    // Looked again after subscribing: nothing is missed.
                    if let Step::NeedOwner(..) = self.step(uid, r) {
                        if caught_up(self) {
                            lock(&self.state).missing.insert(missing, Instant::now());
                            return fallback;
                        }
                        // Woken by the index, or every moment to see how
                        // far its watch has read.
                        let poll = (tokio::time::Instant::now() + RV_POLL).min(deadline);
                        let woke = tokio::time::timeout_at(poll, rx.changed()).await;
                        let expired = tokio::time::Instant::now() >= deadline;
                        if matches!(woke, Ok(Err(_))) || (woke.is_err() && expired) {
                            lock(&self.state).missing.insert(missing, Instant::now());
                            return fallback;
                        }
                    }
                }
            }
        }
    }

    /// Walks the chain from `uid` as far as the index knows it.
    fn step(&self, start: Uid, r: &ObjectRef<'_>) -> Step {
        let mut s = lock(&self.state);
        let mut uid = start;
        // The id to fall back on: the last object of the chain known by
        // name (made only when needed).
        let mut last: Option<Uid> = None;
        let fallback = |s: &State, last: Option<Uid>| {
            last.and_then(|u| s.entries.get(&u))
                .map_or_else(|| r.id(), |e| s.entry_id(e))
        };
        for _ in 0..32 {
            // Top owners are few: their small map answers before the big one.
            if let Some(top) = s.tops.get(&uid) {
                return Step::Done(top.clone());
            }
            let Some(e) = s.entries.get(&uid) else {
                let fallback = fallback(&s, last);
                if uid == start {
                    return match s
                        .indexes
                        .get(&(Arc::from(r.api_version), Arc::from(r.kind)))
                    {
                        None => {
                            Step::NeedKind(Arc::from(r.api_version), Arc::from(r.kind), fallback)
                        }
                        Some(index) => self.missing_owner(&s, index, uid, fallback),
                    };
                }
                return Step::Done(fallback);
            };
            if e.placeholder {
                let (api_version, kind) = s.kinds[usize::from(e.kind)].clone();
                let fallback = s.entry_id(e);
                return match s.indexes.get(&(api_version.clone(), kind.clone())) {
                    None => Step::NeedKind(api_version, kind, fallback),
                    Some(index) => self.missing_owner(&s, index, uid, fallback),
                };
            }
            if e.owner == NO_OWNER {
                let top = s.entry_id(e);
                s.tops.insert(uid, top.clone());
                return Step::Done(top);
            }
            last = Some(uid);
            uid = e.owner;
        }
        Step::Done(fallback(&s, last))
    }

    /// An owner of an indexed kind is not in the index: wait for it while
    /// its kind's watch is healthy and it was not waited for lately.
    fn missing_owner(&self, s: &State, index: &KindIndex, uid: Uid, fallback: Arc<str>) -> Step {
        let KindIndex::Watching(key) = index else {
            return Step::Done(fallback);
        };
        if s.missing
            .get(&uid)
            .is_some_and(|at| at.elapsed() < MISSING_FOR)
        {
            return Step::Done(fallback);
        }
        match self.informer_state(key) {
            Some((InformerState::Watching | InformerState::Listing, _)) => {
                Step::NeedOwner(uid, fallback, key.clone())
            }
            _ => Step::Done(fallback),
        }
    }

    /// How far (resourceVersion) the informer of `key` has read and handed on.
    fn seen_rv(&self, key: &InformerKey) -> Option<u64> {
        let inner = self.controller.get()?.upgrade()?;
        inner.informer_seen_rv(key)
    }

    fn informer_state(&self, key: &InformerKey) -> Option<(InformerState, bool)> {
        let inner = self.controller.get()?.upgrade()?;
        inner.informer_status(key).map(|s| (s.state, s.synced))
    }

    /// Starts indexing a kind; false when it cannot be.
    pub(crate) async fn index_kind(&self, api_version: &Arc<str>, kind: &Arc<str>) -> bool {
        let k = (api_version.clone(), kind.clone());
        if let Some(index) = lock(&self.state).indexes.get(&k) {
            return matches!(index, KindIndex::Watching(_));
        }
        let Some(inner) = self.controller.get().and_then(Weak::upgrade) else {
            return false;
        };
        let resource = match inner.env.discovery.resolve_kind(api_version, kind).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                lock(&self.state).indexes.insert(k, KindIndex::Unavailable);
                return false;
            }
            Err(e) => {
                tracing::debug!("owner kind {api_version} {kind} cannot be resolved: {e}");
                return false;
            }
        };
        let key = InformerKey {
            gvr: (*resource.gvr).clone(),
            namespace: None,
            label_selector: String::new(),
            field_selector: String::new(),
        };
        let mut s = lock(&self.state);
        if let Some(index) = s.indexes.get(&k) {
            return matches!(index, KindIndex::Watching(_));
        }
        let scope = resource.scope;
        let sink: Arc<dyn InternalSink> = Arc::new(IndexSink {
            owners: inner.owners_weak(),
        });
        let sub = inner.subscribe(
            key.clone(),
            Some(scope),
            Some(resource),
            Arc::new(faro_filter::FilterSet::default()),
            None,
            Some(sink),
        );
        tracing::debug!(informer = %key, "indexing owners of kind {kind}");
        s.subscriptions.push(sub);
        s.indexes.insert(k, KindIndex::Watching(key));
        drop(s);
        true
    }

    /// Waits for a kind's first list; false when it is not coming soon.
    async fn wait_synced(&self, api_version: &Arc<str>, kind: &Arc<str>) -> bool {
        let key = match lock(&self.state)
            .indexes
            .get(&(api_version.clone(), kind.clone()))
        {
            Some(KindIndex::Watching(key)) => key.clone(),
            _ => return false,
        };
        let Some(inner) = self.controller.get().and_then(Weak::upgrade) else {
            return false;
        };
        let mut changed = inner.env.sync_changed.subscribe();
        let deadline = tokio::time::Instant::now() + SYNC_WAIT;
        loop {
            changed.mark_unchanged();
            match inner.informer_status(&key) {
                Some(s) if s.synced => return true,
                Some(s) if s.state == InformerState::Listing => {}
                _ => return false,
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                _ => return inner.informer_status(&key).is_some_and(|s| s.synced),
            }
        }
    }

    fn record(&self, object: &DynamicObject) {
        let Some(uid) = object.metadata.uid.as_deref() else {
            return;
        };
        let uid = uid_of(uid);
        let Some(types) = object.types.as_ref() else {
            return;
        };
        let namespace = object.metadata.namespace.as_deref();
        let mut s = lock(&self.state);
        let owner = match ObjectRef::owner_of(object) {
            Some(o) => {
                let owner_uid = o.uid.map_or(NO_OWNER, uid_of);
                if owner_uid != NO_OWNER && !s.entries.contains_key(&owner_uid) {
                    let kind = s.kind_id(o.api_version, o.kind);
                    let ns = s.namespace_id(namespace);
                    s.entries.insert(
                        owner_uid,
                        Entry {
                            owner: NO_OWNER,
                            name: o.name.into(),
                            namespace: ns,
                            kind,
                            placeholder: true,
                        },
                    );
                }
                owner_uid
            }
            None => NO_OWNER,
        };
        let kind = s.kind_id(&types.api_version, &types.kind);
        let ns = s.namespace_id(namespace);
        let name = object.metadata.name.as_deref().unwrap_or("");
        let unchanged = s
            .entries
            .get(&uid)
            .is_some_and(|e| !e.placeholder && e.owner == owner);
        if unchanged {
            return;
        }
        s.tops.remove(&uid);
        s.missing.remove(&uid);
        s.entries.insert(
            uid,
            Entry {
                owner,
                name: name.into(),
                namespace: ns,
                kind,
                placeholder: false,
            },
        );
        drop(s);
        self.changed.send_modify(|n| *n += 1);
    }

    fn forget(&self, object: &DynamicObject) {
        let Some(uid) = object.metadata.uid.as_deref() else {
            return;
        };
        let now = Instant::now();
        let mut s = lock(&self.state);
        s.tombstones.push_back((now, uid_of(uid)));
        s.purge(now);
    }
}

/// The owner index on its own: objects recorded by the caller, correlation
/// ids read from what was recorded (no watch, no wait). For programs that
/// keep objects themselves, and for measuring the index. The controller's
/// own index is the same structure, fed by its informers.
pub struct OwnerIndex(Owners);

impl Default for OwnerIndex {
    fn default() -> Self {
        Self(Owners::new(None))
    }
}

impl OwnerIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an object (added or changed): its uid, name and owner.
    pub fn record(&self, object: &DynamicObject) {
        self.0.record(object);
    }

    /// Forgets a deleted object (after a while, so that its children's
    /// deletions still find their top owner).
    pub fn forget(&self, object: &DynamicObject) {
        self.0.forget(object);
    }

    /// Objects in the index.
    pub fn tracked(&self) -> usize {
        self.0.tracked()
    }

    /// The correlation id of `object`: `<Kind>/<namespace>/<name>` of the
    /// top of its owner chain as far as the index knows it.
    pub fn correlation_of(&self, object: &DynamicObject) -> Arc<str> {
        let Some(owner) = ObjectRef::owner_of(object) else {
            let kind = object.types.as_ref().map_or("", |t| t.kind.as_str());
            return id(
                kind,
                object.metadata.namespace.as_deref(),
                object.metadata.name.as_deref().unwrap_or(""),
            );
        };
        let Some(uid) = owner.uid.filter(|u| !u.is_empty()).map(uid_of) else {
            return owner.id();
        };
        match self.0.step(uid, &owner) {
            Step::Done(id) | Step::NeedKind(_, _, id) | Step::NeedOwner(_, id, _) => id,
        }
    }
}

/// Keeps the index current from one owner kind's informer.
struct IndexSink {
    owners: Weak<Owners>,
}

#[async_trait::async_trait]
impl InternalSink for IndexSink {
    async fn on_event(&self, event_type: EventType, object: &Arc<DynamicObject>) {
        let Some(owners) = self.owners.upgrade() else {
            return;
        };
        match event_type {
            EventType::Added | EventType::Updated => owners.record(object),
            EventType::Deleted => owners.forget(object),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_kept_in_16_bytes_and_other_uids_hashed_apart() {
        let a = uid_of("6f1c1f3e-8a52-4b7c-9d1e-2f3a4b5c6d7e");
        assert_eq!(a, [0x6f1c_1f3e_8a52_4b7c, 0x9d1e_2f3a_4b5c_6d7e]);
        assert_ne!(uid_of("uid-1"), uid_of("uid-2"));
        assert_ne!(uid_of("uid-1"), NO_OWNER);
        assert_eq!(uid_of("uid-1"), uid_of("uid-1"));
    }

    #[test]
    fn ids_name_kind_namespace_and_name() {
        assert_eq!(
            &*id("Deployment", Some("shop"), "web"),
            "Deployment/shop/web"
        );
        assert_eq!(&*id("Node", None, "node-1"), "Node/node-1");
        assert_eq!(std::mem::size_of::<Entry>(), 40);
    }

    fn object(
        kind: &str,
        name: &str,
        uid: &str,
        owner: Option<(&str, &str, &str)>,
    ) -> DynamicObject {
        let mut meta = serde_json::json!({ "name": name, "namespace": "shop", "uid": uid });
        if let Some((kind, name, uid)) = owner {
            meta["ownerReferences"] = serde_json::json!([
                { "apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true }
            ]);
        }
        serde_json::from_value(
            serde_json::json!({ "apiVersion": "apps/v1", "kind": kind, "metadata": meta }),
        )
        .unwrap()
    }

    #[test]
    fn a_chain_leads_to_its_top_owner_as_far_as_it_is_known() {
        let index = OwnerIndex::new();
        let pod = object(
            "Pod",
            "web-1-x",
            "u-pod",
            Some(("ReplicaSet", "web-1", "u-rs")),
        );
        // Nothing known: the pod's owner is the last link known by name.
        assert_eq!(&*index.correlation_of(&pod), "ReplicaSet/shop/web-1");
        index.record(&object(
            "ReplicaSet",
            "web-1",
            "u-rs",
            Some(("Deployment", "web", "u-d")),
        ));
        // The Deployment is known only as the ReplicaSet's owner.
        assert_eq!(&*index.correlation_of(&pod), "Deployment/shop/web");
        index.record(&object("Deployment", "web", "u-d", None));
        assert_eq!(&*index.correlation_of(&pod), "Deployment/shop/web");
        assert_eq!(index.tracked(), 2);
        // An object without owners is its own id.
        assert_eq!(
            &*index.correlation_of(&object("Deployment", "web", "u-d", None)),
            "Deployment/shop/web"
        );
    }
}
