//! Strategic merge patch, as the API server applies it to built-in kinds:
//! lists with a merge key (containers by `name`, container ports by
//! `containerPort`, …) are merged item by item, `$patch: delete|replace`,
//! `$retainKeys` and `$deleteFromPrimitiveList` directives are honoured,
//! `$setElementOrder` is read as ordering only; other lists are replaced.

use serde_json::{Map, Value};

/// The merge key of a list field, by the field's name (and its items).
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "readinessGates" => match field {
            "readinessGates" => "conditionType",
            _ => "name",
        },
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Primitive lists merged as sets rather than replaced.
fn merges_primitives(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Applies `patch` to `doc`.
pub(crate) fn apply(doc: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch.clone();
        replacement.remove("$patch");
        *doc = Value::Object(replacement);
        return;
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Some(target) = doc.as_object_mut() else {
        return;
    };
    if let Some(retain) = patch.get("$retainKeys").and_then(Value::as_array) {
        target.retain(|k, _| retain.iter().any(|r| r == k.as_str()));
    }
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(gone)) = (
                target.get_mut(field).and_then(Value::as_array_mut),
                value.as_array(),
            ) {
                list.retain(|v| !gone.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            target.remove(key);
            continue;
        }
        match (target.get_mut(key), value) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) => apply(existing, value),
            (Some(Value::Array(existing)), Value::Array(items)) => {
                merge_list(key, existing, items);
            }
            _ => {
                let mut fresh = Value::Null;
                apply_fresh(&mut fresh, value);
                target.insert(key.clone(), fresh);
            }
        }
    }
}

/// A value that had nothing to merge into, without its directives.
fn apply_fresh(doc: &mut Value, patch: &Value) {
    match patch {
        Value::Object(_) => apply(doc, patch),
        Value::Array(items) => {
            *doc = Value::Array(
                items
                    .iter()
                    .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("delete"))
                    .map(|i| {
                        let mut v = Value::Null;
                        apply_fresh(&mut v, i);
                        v
                    })
                    .collect(),
            );
        }
        other => *doc = other.clone(),
    }
}

fn merge_list(field: &str, existing: &mut Vec<Value>, items: &[Value]) {
    if merges_primitives(field) && items.iter().all(|i| !i.is_object()) {
        for item in items {
            if !existing.contains(item) {
                existing.push(item.clone());
            }
        }
        return;
    }
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *existing = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        return;
    }
    let Some(key) = merge_key(field, items).filter(|_| items.iter().all(Value::is_object)) else {
        let mut fresh = Value::Null;
        apply_fresh(&mut fresh, &Value::Array(items.to_vec()));
        if let Value::Array(list) = fresh {
            *existing = list;
        }
        return;
    };
    for item in items {
        let id = &item[key];
        let position = existing.iter().position(|e| &e[key] == id);
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = position {
                existing.remove(i);
            }
            continue;
        }
        match position {
            Some(i) => apply(&mut existing[i], item),
            None => {
                let mut fresh = Value::Null;
                apply_fresh(&mut fresh, item);
                existing.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::apply;

    #[test]
    fn containers_merge_by_name_and_keep_other_fields() {
        let mut doc = json!({"spec": {"containers": [
            {"name": "app", "image": "nginx:1", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "busybox"},
        ]}});
        apply(
            &mut doc,
            &json!({"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
                "containers": [{"name": "app", "image": "nginx:2"}]}}),
        );
        assert_eq!(
            doc,
            json!({"spec": {"containers": [
                {"name": "app", "image": "nginx:2", "ports": [{"containerPort": 80}]},
                {"name": "side", "image": "busybox"},
            ]}})
        );
    }

    #[test]
    fn directives_delete_replace_and_primitive_lists() {
        let mut doc = json!({"metadata": {"finalizers": ["a"]},
            "spec": {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "tolerations": [{"key": "x"}]}});
        apply(
            &mut doc,
            &json!({"metadata": {"finalizers": ["b"]},
                "spec": {"env": [{"name": "A", "$patch": "delete"}], "tolerations": [{"key": "y"}]}}),
        );
        assert_eq!(
            doc,
            json!({"metadata": {"finalizers": ["a", "b"]},
                "spec": {"env": [{"name": "B", "value": "2"}], "tolerations": [{"key": "y"}]}})
        );
        apply(
            &mut doc,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(doc["metadata"]["finalizers"], json!(["b"]));
        apply(
            &mut doc,
            &json!({"spec": {"$patch": "replace", "replicas": 2}}),
        );
        assert_eq!(doc["spec"], json!({"replicas": 2}));
    }
}
