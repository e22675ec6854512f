//! The garbage collector: dependents of a deleted owner are deleted
//! (background), an owner deleted in the foreground waits for its
//! dependents, and an orphaning delete strips the owner references first.

use serde_json::Value;

use super::{Api, Manager, deleting, storage_of_kind, uid_of};
use crate::ops::{DeleteOptions, Propagation};

/// True when the object an owner reference names still exists with that uid.
fn owner_exists(api: &Api<'_>, reference: &Value, ns: &str) -> bool {
    let (Some(kind), Some(name), Some(uid)) = (
        reference["kind"].as_str(),
        reference["name"].as_str(),
        reference["uid"].as_str(),
    ) else {
        return false;
    };
    let api_version = reference["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let storage = match storage_of_kind(kind) {
        Some(s) => s.to_string(),
        None => {
            let registry = api.shared.registry();
            match registry
                .all()
                .iter()
                .find(|d| d.group == group && d.version == version && d.kind == kind)
            {
                Some(def) => def.storage_key(),
                None => return false,
            }
        }
    };
    let namespaced = api
        .shared
        .registry()
        .all()
        .iter()
        .find(|d| d.storage_key() == storage)
        .is_some_and(|d| d.namespaced);
    let ns = if namespaced { ns } else { "" };
    api.get(&storage, ns, name)
        .is_some_and(|o| uid_of(&o.value) == uid)
}

fn without_owner(object: &mut Value, owner_uid: &str) {
    if let Some(refs) = object["metadata"]["ownerReferences"].as_array_mut() {
        refs.retain(|r| r["uid"] != owner_uid);
        if refs.is_empty()
            && let Some(meta) = object["metadata"].as_object_mut()
        {
            meta.remove("ownerReferences");
        }
    }
}

/// The dependents of a deleted owner: deleted unless another owner remains.
pub(crate) fn orphans(m: &mut Manager, api: &Api<'_>, owner_uid: &str) {
    let Some(dependents) = m.owners.get(owner_uid).cloned() else {
        return;
    };
    for dep in dependents {
        let Some(object) = api.get(&dep.storage, &dep.namespace, &dep.name) else {
            continue;
        };
        let refs = object.value["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !refs.iter().any(|r| r["uid"] == owner_uid) {
            continue;
        }
        let others_alive = refs
            .iter()
            .filter(|r| r["uid"] != owner_uid)
            .any(|r| owner_exists(api, r, &dep.namespace));
        if others_alive {
            api.modify(&object, &dep.storage, |o| without_owner(o, owner_uid));
        } else if !deleting(&object.value) {
            let background = DeleteOptions {
                propagation: Some(Propagation::Background),
                ..DeleteOptions::default()
            };
            api.delete(&dep.storage, &dep.namespace, &dep.name, &background);
        }
    }
}

/// An owner deleted in the foreground or with orphaning: its finalizer goes
/// once its dependents are gone (foreground) or released (orphan).
pub(crate) fn finalize(m: &mut Manager, api: &Api<'_>, storage: &str, ns: &str, name: &str) {
    let Some(owner) = api.get(storage, ns, name) else {
        return;
    };
    if !deleting(&owner.value) {
        return;
    }
    let finalizers: Vec<String> = owner.value["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    let uid = uid_of(&owner.value).to_string();
    let dependents = m.owners.get(&uid).cloned().unwrap_or_default();
    let mut done = Vec::new();
    if finalizers.iter().any(|f| f == "orphan") {
        for dep in &dependents {
            if let Some(object) = api.get(&dep.storage, &dep.namespace, &dep.name) {
                api.modify(&object, &dep.storage, |o| without_owner(o, &uid));
            }
        }
        done.push("orphan");
    }
    if finalizers.iter().any(|f| f == "foregroundDeletion") {
        let mut remaining = 0;
        for dep in &dependents {
            let Some(object) = api.get(&dep.storage, &dep.namespace, &dep.name) else {
                continue;
            };
            remaining += 1;
            if !deleting(&object.value) {
                let foreground = DeleteOptions {
                    propagation: Some(Propagation::Foreground),
                    ..DeleteOptions::default()
                };
                api.delete(&dep.storage, &dep.namespace, &dep.name, &foreground);
            }
        }
        if remaining == 0 {
            done.push("foregroundDeletion");
        }
    }
    if !done.is_empty() {
        api.modify(&owner, storage, |o| {
            if let Some(list) = o["metadata"]["finalizers"].as_array_mut() {
                list.retain(|f| f.as_str().is_none_or(|f| !done.contains(&f)));
            }
        });
    }
}
