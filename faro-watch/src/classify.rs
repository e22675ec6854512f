//! Turning watch and list observations into ADDED / UPDATED / DELETED.
//!
//! Each informer keeps a compact record per object it has seen — its uid,
//! its last resourceVersion, whether the last state passed the client-side
//! filter, and the relist generation it was last seen in — never the
//! object itself. Everything here is synchronous and free of I/O, so the
//! rules can be tested on their own.

use std::collections::HashMap;
use std::sync::Arc;

use faro_core::{DynamicObject, EventType};

/// One classified observation, ready to be handed on when `deliver` is set.
#[derive(Debug, Clone)]
pub struct Classified {
    /// ADDED, UPDATED or DELETED.
    pub event_type: EventType,
    /// The object as it was in this event; for an inferred DELETED, a
    /// skeleton with the name, namespace, uid and last resourceVersion seen.
    pub object: Arc<DynamicObject>,
    /// `Some(last resourceVersion)` when the DELETED was inferred from a relist.
    pub inferred: Option<String>,
    /// Whether the client-side filter lets it through.
    pub deliver: bool,
}

/// What the watch stream or a list said about one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// Present: ADDED or MODIFIED on a watch, or an item of a (re)list.
    Present,
    /// DELETED on a watch.
    Deleted,
}

#[derive(Debug)]
struct Known {
    uid: Box<str>,
    resource_version: Box<str>,
    /// Handlers have been told of this object (some state of it passed the
    /// filter), so its changes and its DELETED reach them too.
    delivered: bool,
    generation: u32,
}

/// The compact known state of one informer: key → (uid, resourceVersion).
#[derive(Debug, Default)]
pub struct KnownState {
    objects: HashMap<Box<str>, Known>,
    generation: u32,
    relisting: bool,
    /// Set while a watch resumed from a checkpoint replays what happened
    /// after it: an object's older versions and the objects deleted since
    /// (`tombstones`, key → (uid, last resourceVersion)) are not news.
    resumed: bool,
    tombstones: HashMap<Box<str>, (Box<str>, Box<str>)>,
    /// The newest resourceVersion the resumed state knows of: a watch event
    /// past it is news, and the replay is over.
    replay_until: u64,
}

/// One object of a known state, as a checkpoint keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownEntry {
    /// `namespace/name` or `name`.
    pub key: String,
    /// `metadata.uid`.
    pub uid: String,
    /// The last resourceVersion seen.
    pub resource_version: String,
    /// Whether handlers have been told of it.
    pub delivered: bool,
}

/// Whether `rv` is older than or as old as `known` (both numeric, as every
/// API server's are in practice; when either is not, only equality counts).
fn not_newer(rv: &str, known: &str) -> bool {
    match (rv.parse::<u64>(), known.parse::<u64>()) {
        (Ok(a), Ok(b)) => a <= b,
        _ => rv == known,
    }
}

impl KnownState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many objects are tracked.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Starts a relist: objects not observed before [`finish_relist`](Self::finish_relist) are gone.
    pub fn begin_relist(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.relisting = true;
        self.resumed = false;
        self.tombstones.clear();
    }

    /// The state as a checkpoint keeps it, sorted by key.
    pub fn entries(&self) -> Vec<KnownEntry> {
        let mut out: Vec<KnownEntry> = self
            .objects
            .iter()
            .map(|(key, k)| KnownEntry {
                key: key.to_string(),
                uid: k.uid.to_string(),
                resource_version: k.resource_version.to_string(),
                delivered: k.delivered,
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// A state loaded from a checkpoint, about to follow a watch resumed
    /// from it: replayed versions are recognised and not reported again.
    pub fn resume(
        entries: impl IntoIterator<Item = KnownEntry>,
        tombstones: impl IntoIterator<Item = (String, String, String)>,
    ) -> Self {
        let mut state = Self {
            resumed: true,
            ..Self::default()
        };
        for (key, uid, rv) in tombstones {
            state.note(&rv);
            state.tombstones.insert(
                key.into_boxed_str(),
                (uid.into_boxed_str(), rv.into_boxed_str()),
            );
        }
        for e in entries {
            state.note(&e.resource_version);
            state.objects.insert(
                e.key.into_boxed_str(),
                Known {
                    uid: e.uid.into_boxed_str(),
                    resource_version: e.resource_version.into_boxed_str(),
                    delivered: e.delivered,
                    generation: 0,
                },
            );
        }
        state
    }

    fn note(&mut self, rv: &str) {
        if let Ok(n) = rv.parse::<u64>() {
            self.replay_until = self.replay_until.max(n);
        }
    }

    /// While a resumed watch replays: the objects deleted since the
    /// checkpoint, `(key, uid, last resourceVersion)`, which a checkpoint
    /// taken meanwhile keeps too.
    pub fn tombstones(&self) -> Vec<(String, String, String)> {
        if !self.resumed {
            return Vec::new();
        }
        let mut out: Vec<_> = self
            .tombstones
            .iter()
            .map(|(k, (u, r))| (k.to_string(), u.to_string(), r.to_string()))
            .collect();
        out.sort();
        out
    }

    /// Applies an event that handlers already wrote (read back from the
    /// output after the checkpoint), so that it is not delivered again.
    pub fn apply_written(&mut self, event_type: EventType, key: &str, uid: &str, rv: &str) {
        self.note(rv);
        match event_type {
            EventType::Deleted => {
                if let Some(known) = self.objects.remove(key) {
                    let rv = if not_newer(rv, &known.resource_version) {
                        known.resource_version
                    } else {
                        rv.into()
                    };
                    self.tombstones.insert(key.into(), (known.uid, rv));
                } else {
                    self.tombstones.insert(key.into(), (uid.into(), rv.into()));
                }
            }
            EventType::Added | EventType::Updated => {
                if let Some(known) = self.objects.get_mut(key)
                    && *known.uid == *uid
                    && not_newer(rv, &known.resource_version)
                {
                    known.delivered = true;
                    return;
                }
                self.tombstones.remove(key);
                self.objects.insert(
                    key.into(),
                    Known {
                        uid: uid.into(),
                        resource_version: rv.into(),
                        delivered: true,
                        generation: self.generation,
                    },
                );
            }
        }
    }

    /// Whether a resumed watch is replaying `uid` at `rv`, which was
    /// already reported (or deleted since).
    fn replayed(&self, key: &str, uid: &str, rv: &str) -> bool {
        if !self.resumed {
            return false;
        }
        if let Some(known) = self.objects.get(key)
            && *known.uid == *uid
        {
            return not_newer(rv, &known.resource_version);
        }
        self.tombstones
            .get(key)
            .is_some_and(|(u, last)| **u == *uid && not_newer(rv, last))
    }

    /// Ends a relist: every known object that the list did not contain is
    /// DELETED, marked inferred and carrying the last resourceVersion seen.
    pub fn finish_relist(&mut self, out: &mut Vec<Classified>) {
        if !self.relisting {
            return;
        }
        self.relisting = false;
        let generation = self.generation;
        let mut gone: Vec<(Box<str>, Known)> = Vec::new();
        self.objects.retain(|key, known| {
            if known.generation == generation {
                true
            } else {
                gone.push((key.clone(), std::mem::replace(known, Known::placeholder())));
                false
            }
        });
        gone.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, known) in gone {
            out.push(inferred_delete(&key, known));
        }
    }

    /// Classifies one observation of `object`; `passes` is the client-side filter.
    pub fn observe(
        &mut self,
        observation: Observation,
        object: Arc<DynamicObject>,
        passes: impl Fn(&DynamicObject) -> bool,
        out: &mut Vec<Classified>,
    ) {
        let meta = &object.metadata;
        let key = object_key(
            meta.namespace.as_deref(),
            meta.name.as_deref().unwrap_or(""),
        );
        let uid = meta.uid.as_deref().unwrap_or("");
        let rv = meta.resource_version.as_deref().unwrap_or("");
        let generation = self.generation;
        if self.resumed && rv.parse::<u64>().is_ok_and(|n| n > self.replay_until) {
            // Past everything already reported: the replay is over.
            self.resumed = false;
            self.tombstones.clear();
        }
        if self.replayed(&key, uid, rv) {
            return;
        }
        match observation {
            Observation::Deleted => {
                let Some(known) = self.objects.remove(key.as_str()) else {
                    // Never delivered, so nobody downstream knows it.
                    return;
                };
                if *known.uid != *uid {
                    // The one we knew went away unseen; this one was never seen.
                    out.push(inferred_delete(&key, known));
                    return;
                }
                let deliver = known.delivered || passes(&object);
                out.push(Classified {
                    event_type: EventType::Deleted,
                    object,
                    inferred: None,
                    deliver,
                });
            }
            Observation::Present => {
                let deliver = passes(&object);
                if let Some(known) = self.objects.get_mut(key.as_str()) {
                    known.generation = generation;
                    if *known.uid == *uid {
                        let changed = *known.resource_version != *rv;
                        let first = deliver && !known.delivered;
                        if !changed && !first {
                            // A replay after a relist or a resumed watch: nothing changed.
                            return;
                        }
                        if changed {
                            known.resource_version = rv.into();
                        }
                        // Handlers hear of an object first as ADDED, whenever
                        // it first passes the filter; later changes are UPDATED.
                        let event_type = if known.delivered {
                            EventType::Updated
                        } else {
                            EventType::Added
                        };
                        known.delivered |= deliver;
                        out.push(Classified {
                            event_type,
                            object,
                            inferred: None,
                            deliver,
                        });
                        return;
                    }
                    // Same key, new uid: the old object was deleted and recreated.
                    let old = std::mem::replace(
                        known,
                        Known {
                            uid: uid.into(),
                            resource_version: rv.into(),
                            delivered: deliver,
                            generation,
                        },
                    );
                    out.push(inferred_delete(&key, old));
                } else {
                    self.objects.insert(
                        key.into_boxed_str(),
                        Known {
                            uid: uid.into(),
                            resource_version: rv.into(),
                            delivered: deliver,
                            generation,
                        },
                    );
                }
                out.push(Classified {
                    event_type: EventType::Added,
                    object,
                    inferred: None,
                    deliver,
                });
            }
        }
    }
}

impl Known {
    fn placeholder() -> Self {
        Self {
            uid: Box::from(""),
            resource_version: Box::from(""),
            delivered: false,
            generation: 0,
        }
    }
}

fn object_key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => {
            let mut key = String::with_capacity(ns.len() + 1 + name.len());
            key.push_str(ns);
            key.push('/');
            key.push_str(name);
            key
        }
        _ => name.to_owned(),
    }
}

fn inferred_delete(key: &str, known: Known) -> Classified {
    let (namespace, name) = match key.split_once('/') {
        Some((ns, name)) => (Some(ns.to_owned()), name.to_owned()),
        None => (None, key.to_owned()),
    };
    let mut object = DynamicObject {
        types: None,
        metadata: Default::default(),
        data: serde_json::Value::Object(Default::default()),
    };
    object.metadata.namespace = namespace;
    object.metadata.name = Some(name);
    object.metadata.uid = Some(known.uid.into());
    object.metadata.resource_version = Some(known.resource_version.to_string());
    Classified {
        event_type: EventType::Deleted,
        object: Arc::new(object),
        inferred: Some(known.resource_version.into()),
        deliver: known.delivered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(name: &str, uid: &str, rv: &str) -> Arc<DynamicObject> {
        let mut o = DynamicObject {
            types: None,
            metadata: Default::default(),
            data: serde_json::json!({}),
        };
        o.metadata.namespace = Some("ns".into());
        o.metadata.name = Some(name.into());
        o.metadata.uid = Some(uid.into());
        o.metadata.resource_version = Some(rv.into());
        Arc::new(o)
    }

    fn run(state: &mut KnownState, steps: &[(Observation, Arc<DynamicObject>)]) -> Vec<String> {
        let mut out = Vec::new();
        for (o, object) in steps {
            state.observe(*o, object.clone(), |_| true, &mut out);
        }
        render(&out)
    }

    fn render(out: &[Classified]) -> Vec<String> {
        out.iter()
            .map(|c| {
                format!(
                    "{} {} {}{}",
                    c.event_type.as_str(),
                    c.object.metadata.name.as_deref().unwrap_or(""),
                    c.object.metadata.resource_version.as_deref().unwrap_or(""),
                    if c.inferred.is_some() {
                        " inferred"
                    } else {
                        ""
                    }
                )
            })
            .collect()
    }

    use Observation::{Deleted, Present};

    #[test]
    fn watch_events_become_added_updated_deleted() {
        let mut s = KnownState::new();
        let got = run(
            &mut s,
            &[
                (Present, obj("a", "u1", "1")),
                (Present, obj("a", "u1", "2")),
                (Present, obj("a", "u1", "2")),
                (Deleted, obj("a", "u1", "3")),
                (Deleted, obj("b", "u2", "4")),
            ],
        );
        assert_eq!(got, ["ADDED a 1", "UPDATED a 2", "DELETED a 3"]);
        assert!(s.is_empty());
    }

    #[test]
    fn relist_replays_nothing_and_infers_missing_deletes() {
        let mut s = KnownState::new();
        run(
            &mut s,
            &[
                (Present, obj("a", "u1", "1")),
                (Present, obj("b", "u2", "2")),
            ],
        );
        s.begin_relist();
        let mut got = run(
            &mut s,
            &[
                (Present, obj("a", "u1", "1")),
                (Present, obj("c", "u3", "5")),
            ],
        );
        let mut out = Vec::new();
        s.finish_relist(&mut out);
        got.extend(render(&out));
        assert_eq!(got, ["ADDED c 5", "DELETED b 2 inferred"]);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_new_uid_under_a_known_key_is_delete_then_add() {
        let mut s = KnownState::new();
        run(&mut s, &[(Present, obj("a", "u1", "1"))]);
        s.begin_relist();
        let got = run(&mut s, &[(Present, obj("a", "u9", "7"))]);
        assert_eq!(got, ["DELETED a 1 inferred", "ADDED a 7"]);
    }

    #[test]
    fn filter_decides_delivery_and_a_delivered_object_gets_its_delete() {
        let mut s = KnownState::new();
        let mut out = Vec::new();
        s.observe(Present, obj("a", "u1", "1"), |_| true, &mut out);
        s.observe(Present, obj("a", "u1", "2"), |_| false, &mut out);
        s.observe(Present, obj("b", "u2", "3"), |_| false, &mut out);
        s.observe(Deleted, obj("b", "u2", "4"), |_| false, &mut out);
        let delivered: Vec<bool> = out.iter().map(|c| c.deliver).collect();
        assert_eq!(delivered, [true, false, false, false]);
        out.clear();
        s.observe(Present, obj("a", "u1", "5"), |_| true, &mut out);
        s.observe(Deleted, obj("a", "u1", "6"), |_| false, &mut out);
        assert_eq!(render(&out), ["UPDATED a 5", "DELETED a 6"]);
        assert!(out.iter().all(|c| c.deliver));
    }

    #[test]
    fn an_object_first_passing_the_filter_is_added_even_when_unchanged() {
        let mut s = KnownState::new();
        let mut out = Vec::new();
        s.observe(Present, obj("a", "u1", "1"), |_| false, &mut out);
        // A relist after the filter widened: same version, now passing.
        s.begin_relist();
        s.observe(Present, obj("a", "u1", "1"), |_| true, &mut out);
        s.observe(Present, obj("a", "u1", "1"), |_| true, &mut out);
        s.observe(Present, obj("a", "u1", "2"), |_| true, &mut out);
        s.finish_relist(&mut out);
        let delivered: Vec<String> = render(&out);
        assert_eq!(delivered, ["ADDED a 1", "ADDED a 1", "UPDATED a 2"]);
        assert_eq!(
            out.iter().map(|c| c.deliver).collect::<Vec<_>>(),
            [false, true, true]
        );
    }
}
