//! Workload detection: namespaces labelled as workloads, and namespace-scoped
//! watches in every namespace that belongs to one.
//!
//! A namespace declares a workload when its `detection_label` value matches
//! `workload_pattern`; the workload id is that pattern's first capture (or
//! the whole match). Every namespace whose name's `namespace_pattern`
//! capture equals a declared id gets one subscription per configured GVR,
//! tagged with the id; it is dropped when the namespace goes away or the
//! id is no longer declared.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};

use faro_core::{DynamicObject, EventType, Gvr, Scope, WorkloadConfig};
use faro_filter::{ClientFilter, FilterSet};

use crate::controller::{Inner, Subscription};
use crate::discovery::Resolution;
use crate::informer::{InformerKey, InternalSink, lock};

#[derive(Default)]
struct State {
    /// Every namespace, with the workload id its labels declare, if any.
    namespaces: BTreeMap<String, Option<String>>,
    /// Workload namespaces being watched: id and subscriptions.
    active: HashMap<String, (Arc<str>, Vec<Subscription>)>,
}

pub(crate) struct WorkloadSink {
    inner: Weak<Inner>,
    config: WorkloadConfig,
    resources: HashMap<Gvr, Resolution>,
    state: Mutex<State>,
}

impl WorkloadSink {
    pub(crate) fn new(
        inner: Weak<Inner>,
        config: WorkloadConfig,
        resources: HashMap<Gvr, Resolution>,
    ) -> Self {
        Self {
            inner,
            config,
            resources,
            state: Mutex::default(),
        }
    }

    fn subscribe(&self, inner: &Inner, namespace: &str, id: &Arc<str>) -> Vec<Subscription> {
        self.config
            .gvrs
            .iter()
            .map(|gvr| {
                let key = InformerKey {
                    gvr: gvr.clone(),
                    namespace: Some(namespace.to_owned()),
                    label_selector: String::new(),
                    field_selector: String::new(),
                };
                let resource = match self.resources.get(gvr) {
                    Some(Resolution::Served(r)) => Some(r.clone()),
                    _ => None,
                };
                inner.subscribe(
                    key,
                    Some(Scope::Namespaced),
                    resource,
                    Arc::new(FilterSet::new(vec![ClientFilter::default()])),
                    Some(id.clone()),
                    None,
                )
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl InternalSink for WorkloadSink {
    async fn on_event(&self, event_type: EventType, object: &Arc<DynamicObject>) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let Some(name) = object.metadata.name.clone() else {
            return;
        };
        let mut state = lock(&self.state);
        match event_type {
            EventType::Deleted => {
                state.namespaces.remove(&name);
            }
            EventType::Added | EventType::Updated => {
                let declared = self
                    .config
                    .workload_of(object.metadata.labels.as_ref())
                    .map(str::to_owned);
                state.namespaces.insert(name, declared);
            }
        }
        let ids: std::collections::HashSet<&str> = state
            .namespaces
            .values()
            .flatten()
            .map(String::as_str)
            .collect();
        let wanted: BTreeMap<String, String> = state
            .namespaces
            .keys()
            .filter_map(|ns| {
                let id = self.config.namespace_workload(ns)?;
                ids.contains(id).then(|| (ns.clone(), id.to_owned()))
            })
            .collect();
        let mut dropped = Vec::new();
        state.active.retain(|ns, (id, subs)| {
            let keep = wanted.get(ns).is_some_and(|w| **w == **id);
            if !keep {
                tracing::info!(namespace = %ns, workload = %id, "workload namespace gone; its watches stop");
                dropped.push(std::mem::take(subs));
            }
            keep
        });
        for (ns, id) in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = state.active.entry(ns) {
                tracing::info!(namespace = %slot.key(), workload = %id, "workload namespace found; watching it");
                let id: Arc<str> = Arc::from(id);
                let subs = self.subscribe(&inner, slot.key(), &id);
                slot.insert((id, subs));
            }
        }
        drop(state);
        drop(dropped);
    }
}
