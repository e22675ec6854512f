//! `/openapi/v3`: the index of group-version documents and, per group
//! version, a document whose PATCH operations name their kind and accept
//! `fieldValidation`. That is what kubectl reads to leave validation to the
//! server (`fieldValidation=Strict`), which `validation` then does; the
//! documents carry no schemas, so kubectl builds its patches from its own
//! built-in types, as it does when a server publishes none.

use serde_json::{Map, Value, json};

use crate::resources::{Registry, ResourceDef};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// `GET /openapi/v3`.
pub(crate) fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for def in registry.all() {
        let path = gv_path(&def.group, &def.version);
        if paths.contains_key(&path) {
            continue;
        }
        let doc = document(registry, &def.group, &def.version).unwrap_or_default();
        let hash = format!("{:016X}", fnv(&doc.to_string()));
        paths.insert(
            path.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}") }),
        );
    }
    json!({ "paths": paths })
}

fn operation(def: &ResourceDef, action: &str, namespaced_path: bool) -> Value {
    let param = |name: &str, kind: &str| json!({ "name": name, "in": "query", "schema": { "type": kind, "uniqueItems": true } });
    let scope = if namespaced_path { "Namespaced" } else { "" };
    let group = def
        .group
        .split('.')
        .next()
        .map(|g| {
            let mut c = g.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let group = if group.is_empty() {
        "Core".to_string()
    } else {
        group
    };
    let version = def.version.to_uppercase();
    json!({
        "operationId": format!("{action}{group}{version}{scope}{}", def.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": { "group": def.group, "version": def.version, "kind": def.kind },
        "parameters": [
            param("dryRun", "string"),
            param("fieldManager", "string"),
            param("fieldValidation", "string"),
        ],
        "responses": { "200": { "description": "OK" } },
    })
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
pub(crate) fn document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    if !registry.serves(group, version) {
        return None;
    }
    let mut paths = Map::new();
    for def in registry
        .all()
        .iter()
        .filter(|d| d.group == group && d.version == version)
    {
        let base = format!("/{}", gv_path(group, version));
        let item = if def.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", def.plural)
        } else {
            format!("{base}/{}/{{name}}", def.plural)
        };
        let mut ops = Map::new();
        for (verb, action) in [
            ("get", "get"),
            ("put", "put"),
            ("patch", "patch"),
            ("delete", "delete"),
        ] {
            let served = match action {
                "put" => "update",
                other => other,
            };
            if def.verbs.iter().any(|v| v == served) {
                ops.insert(verb.to_string(), operation(def, action, def.namespaced));
            }
        }
        paths.insert(item, Value::Object(ops));
        let collection = if def.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", def.plural)
        } else {
            format!("{base}/{}", def.plural)
        };
        if def.verbs.iter().any(|v| v == "create") {
            paths.insert(
                collection,
                json!({ "post": operation(def, "post", def.namespaced) }),
            );
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.33.0" },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}
