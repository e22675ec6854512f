//! The verbs: get, list, create, update, patch, delete, deletecollection —
//! and what a real cluster's controllers do after them (namespace defaults
//! and termination, CRD establishment, pod status).

use std::sync::Arc;

use faro_filter::{FieldSelector, LabelSelector, is_dns_label, is_dns_subdomain};
use serde_json::{Map, Value, json};

use crate::resources::ResourceDef;
use crate::shared::{ContainerLog, Shared};
use crate::status::{ApiError, qualified};
use crate::store::{Store, Stored};

/// The object or collection a request addresses.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub def: ResourceDef,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

const NAMESPACES: &str = "/namespaces";
const CRDS: &str = "apiextensions.k8s.io/customresourcedefinitions";

/// Label and field selectors of a list, watch or deletecollection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selection {
    pub fn parse(
        def: &ResourceDef,
        labels: Option<&str>,
        fields: Option<&str>,
    ) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(labels.unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(fields.unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
        for term in fields.terms() {
            if !field_supported(def, term.field()) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {}",
                    term.field()
                )));
            }
        }
        Ok(Self { labels, fields })
    }

    pub fn matches(&self, object: &Stored) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

/// The fields each resource supports in a field selector, as the real server does.
fn field_supported(def: &ResourceDef, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    let extra: &[&str] = match (def.group.as_str(), def.plural.as_str()) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "events") | ("events.k8s.io", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "regarding.kind",
            "regarding.name",
            "regarding.namespace",
        ],
        ("batch", "jobs") => &["status.successful"],
        _ => &[],
    };
    extra.contains(&field)
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

fn uid() -> String {
    let hex = |n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
            .collect()
    };
    format!("{}-{}-4{}-a{}-{}", hex(8), hex(4), hex(3), hex(3), hex(12))
}

fn has_generation(def: &ResourceDef) -> bool {
    !def.group.is_empty() && def.group != "events.k8s.io" && def.group != "coordination.k8s.io"
}

fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

fn name_error(def: &ResourceDef, name: &str) -> Option<ApiError> {
    let (ok, rule) = if def.plural == "namespaces" {
        (
            is_dns_label(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        )
    } else {
        (
            is_dns_subdomain(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )
    };
    (!ok).then(|| {
        ApiError::invalid(
            &def.kind,
            name,
            format!("metadata.name: Invalid value: \"{name}\": {rule}"),
        )
    })
}

/// Checks `kind`/`apiVersion` of a body and fills them in.
fn check_type(def: &ResourceDef, object: &mut Value) -> Result<(), ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    let api_version = def.api_version();
    if let Some(v) = object.get("apiVersion").and_then(Value::as_str) {
        let group_of = |v: &str| v.rsplit_once('/').map_or("", |(g, _)| g).to_string();
        if group_of(v) != def.group {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    if let Some(k) = object.get("kind").and_then(Value::as_str)
        && k != def.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            def.kind
        )));
    }
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(def.kind);
    Ok(())
}

fn namespace_check(store: &Store, def: &ResourceDef, ns: &str, name: &str) -> Result<(), ApiError> {
    let Some(namespace) = store.get(NAMESPACES, "", ns) else {
        return Err(ApiError::not_found("", "namespaces", ns));
    };
    if namespace.value["metadata"]
        .get("deletionTimestamp")
        .is_some()
    {
        return Err(ApiError::forbidden(format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            qualified(&def.group, &def.plural)
        )));
    }
    Ok(())
}

pub(crate) fn get(shared: &Shared, t: &Target) -> Result<Arc<Stored>, ApiError> {
    let name = t.name.as_deref().unwrap_or_default();
    shared
        .store()
        .get(
            &t.def.storage_key(),
            t.namespace.as_deref().unwrap_or(""),
            name,
        )
        .ok_or_else(|| ApiError::not_found(&t.def.group, &t.def.plural, name))
}

/// Creates an object, then runs the controllers that react to it.
pub(crate) fn create(
    shared: &Shared,
    t: &Target,
    mut object: Value,
) -> Result<Arc<Stored>, ApiError> {
    let def = &t.def;
    check_type(def, &mut object)?;
    let url_ns = t.namespace.clone();
    let meta = meta_mut(&mut object);
    if def.namespaced {
        let Some(ns) = url_ns.as_deref() else {
            return Err(ApiError::no_route(&def.plural));
        };
        match meta.get("namespace").and_then(Value::as_str) {
            Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta.insert("namespace".into(), json!(ns));
            }
        }
    } else {
        meta.remove("namespace");
    }
    let name = match meta.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => match meta.get("generateName").and_then(Value::as_str) {
            Some(prefix) if !prefix.is_empty() => {
                let suffix: String = (0..5)
                    .map(|_| char::from(b"bcdfghjklmnpqrstvwxz2456789"[fastrand::usize(..27)]))
                    .collect();
                format!("{prefix}{suffix}")
            }
            _ => {
                return Err(ApiError::invalid(
                    &def.kind,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
        },
    };
    if let Some(e) = name_error(def, &name) {
        return Err(e);
    }
    meta.insert("name".into(), json!(name));
    meta.insert("uid".into(), json!(uid()));
    meta.insert("creationTimestamp".into(), json!(now()));
    meta.remove("deletionTimestamp");
    meta.remove("resourceVersion");
    meta.remove("managedFields");
    if has_generation(def) {
        meta.insert("generation".into(), json!(1));
    }
    defaults_on_create(def, &mut object)?;
    crate::defaults::apply(def, &mut object, shared.next_id());

    let stored = {
        let mut store = shared.store();
        if let Some(ns) = url_ns.as_deref().filter(|_| def.namespaced) {
            namespace_check(&store, def, ns, &name)?;
        }
        let ns = if def.namespaced {
            url_ns.as_deref().unwrap_or("")
        } else {
            ""
        };
        if store.get(&def.storage_key(), ns, &name).is_some() {
            return Err(ApiError::already_exists(&def.group, &def.plural, &name));
        }
        store.put(&def.storage_key(), object)
    };
    shared.notify(stored.rv);
    after_create(shared, def, &stored)?;
    Ok(stored)
}

fn defaults_on_create(def: &ResourceDef, object: &mut Value) -> Result<(), ApiError> {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            object["spec"] = json!({ "finalizers": ["kubernetes"] });
            object["status"] = json!({ "phase": "Active" });
        }
        ("", "pods")
            if object["spec"]["containers"]
                .as_array()
                .is_none_or(Vec::is_empty) =>
        {
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            return Err(ApiError::invalid(
                "Pod",
                &name,
                "spec.containers: Required value",
            ));
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            crd_defs(object)?;
        }
        _ => {}
    }
    Ok(())
}

/// The resource definitions a CRD object declares.
fn crd_defs(crd: &Value) -> Result<Vec<ResourceDef>, ApiError> {
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    let spec = &crd["spec"];
    let invalid = |m: &str| ApiError::invalid("CustomResourceDefinition", name, m.to_string());
    let group = spec["group"]
        .as_str()
        .ok_or_else(|| invalid("spec.group: Required value"))?;
    let names = &spec["names"];
    let plural = names["plural"]
        .as_str()
        .ok_or_else(|| invalid("spec.names.plural: Required value"))?;
    let kind = names["kind"]
        .as_str()
        .ok_or_else(|| invalid("spec.names.kind: Required value"))?;
    if name != format!("{plural}.{group}") {
        return Err(invalid(&format!(
            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
        )));
    }
    let namespaced = match spec["scope"].as_str() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => {
            return Err(invalid(
                "spec.scope: Unsupported value: must be Namespaced or Cluster",
            ));
        }
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = spec["versions"]
        .as_array()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid("spec.versions: Invalid value: must have exactly one version marked as storage version"))?;
    Ok(versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .filter_map(|v| {
            let mut subresources = Vec::new();
            if v["subresources"].get("status").is_some() {
                subresources.push("status".to_string());
            }
            if v["subresources"].get("scale").is_some() {
                subresources.push("scale".to_string());
            }
            Some(ResourceDef {
                group: group.to_string(),
                version: v["name"].as_str()?.to_string(),
                plural: plural.to_string(),
                singular: names["singular"]
                    .as_str()
                    .map_or_else(|| kind.to_ascii_lowercase(), str::to_string),
                kind: kind.to_string(),
                namespaced,
                verbs: [
                    "delete",
                    "deletecollection",
                    "get",
                    "list",
                    "patch",
                    "create",
                    "update",
                    "watch",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                subresources,
                custom: true,
            })
        })
        .collect())
}

fn after_create(shared: &Shared, def: &ResourceDef, stored: &Arc<Stored>) -> Result<(), ApiError> {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") if shared.config.cluster_controllers => {
            let ns = stored.name.clone();
            let registry = shared.registry().clone();
            let target = |plural: &str| Target {
                def: registry
                    .find("", "v1", plural)
                    .cloned()
                    .expect("built-in resource"),
                namespace: Some(ns.clone()),
                name: None,
                subresource: None,
            };
            create(
                shared,
                &target("configmaps"),
                json!({
                    "metadata": { "name": "kube-root-ca.crt",
                        "annotations": { "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters." } },
                    "data": { "ca.crt": "-----BEGIN CERTIFICATE-----\nMIIBfaroSimulatedCertificate\n-----END CERTIFICATE-----\n" },
                }),
            )?;
            create(
                shared,
                &target("serviceaccounts"),
                json!({ "metadata": { "name": "default" } }),
            )?;
        }
        ("", "pods") => {
            let ns = stored.namespace.clone().unwrap_or_default();
            let uid = stored.value["metadata"]["uid"].as_str().unwrap_or_default();
            let mut logs = shared.logs();
            for list in ["initContainers", "containers", "ephemeralContainers"] {
                for c in stored.value["spec"][list].as_array().into_iter().flatten() {
                    if let Some(container) = c["name"].as_str() {
                        logs.insert(
                            (ns.clone(), stored.name.clone(), container.to_string()),
                            ContainerLog::for_pod(uid),
                        );
                    }
                }
            }
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            let defs = crd_defs(&stored.value)?;
            let mut established = stored.value.clone();
            let names = established["spec"]["names"].clone();
            let storage_version = established["spec"]["versions"]
                .as_array()
                .and_then(|vs| vs.iter().find(|v| v["storage"].as_bool() == Some(true)))
                .and_then(|v| v["name"].as_str())
                .unwrap_or_default()
                .to_string();
            let at = now();
            established["status"] = json!({
                "conditions": [
                    { "type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                      "message": "no conflicts found", "lastTransitionTime": at },
                    { "type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                      "message": "the initial names have been accepted", "lastTransitionTime": at },
                ],
                "acceptedNames": names,
                "storedVersions": [storage_version],
            });
            shared.registry_mut().add_custom(defs);
            let updated = shared.store().put(CRDS, established);
            shared.notify(updated.rv);
        }
        _ => {}
    }
    Ok(())
}

/// A status-less view of an object for "did anything change" comparisons.
fn comparable(value: &Value) -> Value {
    let mut v = value.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    v
}

/// Replaces an object (PUT), or its status with `/status`.
pub(crate) fn update(
    shared: &Shared,
    t: &Target,
    mut object: Value,
) -> Result<Arc<Stored>, ApiError> {
    let def = &t.def;
    check_type(def, &mut object)?;
    let name = t.name.clone().unwrap_or_default();
    let ns = if def.namespaced {
        t.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    if let Some(body_name) = object["metadata"]["name"].as_str()
        && body_name != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let result = {
        let mut store = shared.store();
        let Some(existing) = store.get(&def.storage_key(), &ns, &name) else {
            return Err(ApiError::not_found(&def.group, &def.plural, &name));
        };
        if let Some(rv) = object["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && rv != existing.rv.to_string()
        {
            return Err(ApiError::conflict(&def.group, &def.plural, &name));
        }
        let old = &existing.value;
        let mut new = if t.subresource.as_deref() == Some("status") {
            let mut v = old.clone();
            v["status"] = object.get("status").cloned().unwrap_or(Value::Null);
            v
        } else if t.subresource.as_deref() == Some("ephemeralcontainers") {
            let mut v = old.clone();
            v["spec"]["ephemeralContainers"] = object["spec"]["ephemeralContainers"].clone();
            v
        } else if t.subresource.as_deref() == Some("binding") {
            // Spec and status in one write, as a binding does.
            object
        } else {
            if def.subresources.iter().any(|s| s == "status") {
                match old.get("status") {
                    Some(status) => object["status"] = status.clone(),
                    None => {
                        if let Some(o) = object.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            object
        };
        {
            let meta = meta_mut(&mut new);
            for key in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "generation",
            ] {
                match old["metadata"].get(key) {
                    Some(v) => meta.insert(key.into(), v.clone()),
                    None => meta.remove(key),
                };
            }
            if def.namespaced {
                meta.insert("namespace".into(), json!(ns));
            } else {
                meta.remove("namespace");
            }
            meta.remove("managedFields");
        }
        if has_generation(def) && new.get("spec") != old.get("spec") {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            new["metadata"]["generation"] = json!(generation);
        }
        if comparable(&new) == comparable(old) {
            return Ok(existing);
        }
        let finalizers_done = new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        // As the API server's ShouldDeleteDuringUpdate: a deleting object
        // goes when its last finalizer does, unless a grace period still
        // runs (a pod being stopped by its kubelet).
        let grace_running = new["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .is_some_and(|g| g > 0);
        if new["metadata"].get("deletionTimestamp").is_some()
            && finalizers_done
            && !grace_running
            && def.plural != "namespaces"
        {
            store
                .remove(&def.storage_key(), &ns, &name)
                .unwrap_or(existing)
        } else {
            store.put(&def.storage_key(), new)
        }
    };
    shared.notify(result.rv);
    Ok(result)
}

/// Applies a merge, strategic-merge or JSON patch to `doc`; returns the
/// resourceVersion the patch itself names, if any (which makes it conditional).
pub(crate) fn apply_patch(
    doc: &mut Value,
    t: &Target,
    content_type: &str,
    body: &[u8],
) -> Result<Option<String>, ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let parse = |b: &[u8]| -> Result<Value, ApiError> {
        serde_json::from_slice(b)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
    };
    let named_rv = |p: &Value| {
        p["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string)
    };
    match media {
        "application/merge-patch+json" => {
            let p = parse(body)?;
            json_patch::merge(doc, &p);
            Ok(named_rv(&p))
        }
        "application/strategic-merge-patch+json" => {
            if t.def.custom {
                return Err(ApiError::unsupported_media_type(media));
            }
            let p = parse(body)?;
            crate::strategic::apply(doc, &p);
            Ok(named_rv(&p))
        }
        "application/json-patch+json" => {
            let p: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(doc, &p).map_err(|e| {
                ApiError::invalid(&t.def.kind, t.name.as_deref().unwrap_or(""), e.to_string())
            })?;
            Ok(None)
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// Patches an object as the client sees it through `view` (the stored form
/// for most resources); `finish` checks the result and converts it back.
pub(crate) fn patch_view(
    shared: &Shared,
    t: &Target,
    content_type: &str,
    body: &[u8],
    view: fn(&Value) -> Value,
    finish: impl FnOnce(&mut Value) -> Result<Value, ApiError>,
) -> Result<Arc<Stored>, ApiError> {
    let existing = get(shared, t)?;
    let mut doc = view(&existing.value);
    let set_rv = apply_patch(&mut doc, t, content_type, body)?;
    let mut doc = finish(&mut doc)?;
    // A patch is conditional only when it names a resourceVersion itself.
    let rv = set_rv.unwrap_or_else(|| existing.rv.to_string());
    meta_mut(&mut doc).insert("resourceVersion".into(), json!(rv));
    update(shared, t, doc)
}

/// How dependents are treated when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    /// The owner goes now; the garbage collector deletes the dependents after.
    Background,
    /// The owner waits (with the `foregroundDeletion` finalizer) for its dependents.
    Foreground,
    /// The dependents lose their owner reference and stay.
    Orphan,
}

/// `DeleteOptions`, from the body or the query string.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOptions {
    pub propagation: Option<Propagation>,
    pub grace_period: Option<i64>,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (JSON) and the query parameters.
    pub fn parse(
        body: &[u8],
        propagation: Option<&str>,
        grace: Option<&str>,
    ) -> Result<Self, ApiError> {
        let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("the body of the request is not valid JSON: {e}"))
            })?
        };
        let mut policy = body["propagationPolicy"].as_str().or(propagation);
        if body["orphanDependents"].as_bool() == Some(true) {
            policy = Some("Orphan");
        }
        let propagation = match policy {
            None | Some("") => None,
            Some("Background") => Some(Propagation::Background),
            Some("Foreground") => Some(Propagation::Foreground),
            Some("Orphan") => Some(Propagation::Orphan),
            Some(other) => {
                return Err(ApiError::invalid(
                    "DeleteOptions",
                    "",
                    format!(
                        "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                    ),
                ));
            }
        };
        let grace_period = match body["gracePeriodSeconds"].as_i64() {
            Some(g) => Some(g),
            None => grace
                .map(|g| {
                    g.parse::<i64>().map_err(|_| {
                        ApiError::bad_request(format!("gracePeriodSeconds: invalid value {g:?}"))
                    })
                })
                .transpose()?,
        };
        Ok(Self {
            propagation,
            grace_period: grace_period.map(|g| g.max(0)),
        })
    }
}

/// Deletes an object. Namespaces pass through Terminating; objects with
/// finalizers only get a deletionTimestamp; a CRD takes its resources with
/// it; a running pod is stopped by its kubelet within its grace period;
/// foreground and orphaning deletes wait for the garbage collector.
pub(crate) fn delete(
    shared: &Shared,
    t: &Target,
    options: &DeleteOptions,
) -> Result<Arc<Stored>, ApiError> {
    let def = &t.def;
    let name = t.name.clone().unwrap_or_default();
    let ns = if def.namespaced {
        t.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let existing = get(shared, t)?;
    let has_finalizers = existing.value["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    let controllers = shared.config.cluster_controllers;

    if def.storage_key() == NAMESPACES {
        if !controllers {
            finish_namespace(shared, &name);
            return Ok(existing);
        }
        let Some(stored) = mark_deleting(shared, NAMESPACES, &existing, |ns| {
            ns["status"]["phase"] = json!("Terminating");
        }) else {
            return Ok(existing);
        };
        let shared_ns = name.clone();
        let handle = shared.self_handle();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if let Some(shared) = handle.upgrade() {
                finish_namespace(&shared, &shared_ns);
            }
        });
        return Ok(stored);
    }
    let policy_finalizer = match options.propagation {
        Some(Propagation::Foreground) if controllers => Some("foregroundDeletion"),
        Some(Propagation::Orphan) if controllers => Some("orphan"),
        _ => None,
    };
    if let Some(finalizer) = policy_finalizer {
        let add = |o: &mut Value| {
            let list = &mut o["metadata"]["finalizers"];
            if !list.is_array() {
                *list = json!([]);
            }
            if let Some(list) = list.as_array_mut()
                && !list.iter().any(|f| f == finalizer)
            {
                list.push(json!(finalizer));
            }
        };
        let stored = match mark_deleting(shared, &def.storage_key(), &existing, add) {
            Some(stored) => stored,
            None => {
                let mut value = existing.value.clone();
                add(&mut value);
                if value == existing.value {
                    return Ok(existing);
                }
                let stored = shared.store().put(&def.storage_key(), value);
                shared.notify(stored.rv);
                stored
            }
        };
        return Ok(stored);
    }
    if has_finalizers {
        return Ok(mark_deleting(shared, &def.storage_key(), &existing, |_| {}).unwrap_or(existing));
    }
    if def.storage_key() == "/pods" && controllers {
        let bound = existing.value["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
        let finished = matches!(
            existing.value["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        );
        let grace = options.grace_period.unwrap_or_else(|| {
            existing.value["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30)
        });
        let current = existing.value["metadata"]["deletionGracePeriodSeconds"].as_i64();
        if bound && !finished && grace > 0 && current.is_none_or(|c| grace < c) {
            let until = jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(grace))
                .unwrap_or_else(|_| jiff::Timestamp::now());
            let mut marked = existing.value.clone();
            marked["metadata"]["deletionTimestamp"] =
                json!(until.round(jiff::Unit::Second).unwrap_or(until).to_string());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            let stored = shared.store().put(&def.storage_key(), marked);
            shared.notify(stored.rv);
            return Ok(stored);
        }
        if current.is_some() && grace > 0 {
            // Already terminating with a shorter grace period: the kubelet finishes it.
            return Ok(existing);
        }
    }
    if def.storage_key() == CRDS {
        let group = existing.value["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let plural = existing.value["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let storage = format!("{group}/{plural}");
        let rv = {
            let mut store = shared.store();
            store.remove_all(&storage, None);
            store.rv()
        };
        // Objects first, as the CRD finalizer does; then the resource stops being served.
        shared.registry_mut().remove_custom(&group, &plural);
        shared.notify(rv);
    }
    let last = shared
        .store()
        .remove(&def.storage_key(), &ns, &name)
        .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, &name))?;
    shared.notify(last.rv);
    if def.storage_key() == "/pods" && !controllers {
        forget_pod_logs(shared, &ns, &name);
    }
    Ok(last)
}

/// Sets `deletionTimestamp` (and whatever `also` changes) once; `None` when already set.
fn mark_deleting(
    shared: &Shared,
    storage: &str,
    existing: &Stored,
    also: impl FnOnce(&mut Value),
) -> Option<Arc<Stored>> {
    if existing.value["metadata"]
        .get("deletionTimestamp")
        .is_some()
    {
        return None;
    }
    let mut marked = existing.value.clone();
    marked["metadata"]["deletionTimestamp"] = json!(now());
    also(&mut marked);
    let stored = shared.store().put(storage, marked);
    shared.notify(stored.rv);
    Some(stored)
}

fn forget_pod_logs(shared: &Shared, ns: &str, pod: &str) {
    shared.logs().retain(|(n, p, _), _| !(n == ns && p == pod));
    shared.logs_tx.send_modify(|g| *g += 1);
}

/// Deletes everything in a namespace, each with its own DELETED event, then the namespace.
pub(crate) fn finish_namespace(shared: &Shared, ns: &str) {
    let storages: Vec<String> = {
        let registry = shared.registry();
        let mut keys: Vec<String> = registry
            .all()
            .iter()
            .filter(|d| d.namespaced)
            .map(ResourceDef::storage_key)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    };
    let mut store = shared.store();
    for storage in &storages {
        store.remove_all(storage, Some(ns));
    }
    store.remove(NAMESPACES, "", ns);
    let rv = store.rv();
    drop(store);
    shared.notify(rv);
    shared.logs().retain(|(n, _, _), _| n != ns);
    shared.logs_tx.send_modify(|g| *g += 1);
}

/// Deletes every object of a collection that matches the selectors.
pub(crate) fn delete_collection(
    shared: &Shared,
    t: &Target,
    selection: &Selection,
    options: &DeleteOptions,
) -> Result<usize, ApiError> {
    let objects = shared
        .store()
        .list(&t.def.storage_key(), t.namespace.as_deref());
    let mut deleted = 0;
    for object in objects.iter().filter(|o| selection.matches(o)) {
        let target = Target {
            name: Some(object.name.clone()),
            namespace: object.namespace.clone(),
            ..t.clone()
        };
        if delete(shared, &target, options).is_ok() {
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// The page of a list.
pub(crate) struct ListPage {
    pub items: Vec<Arc<Stored>>,
    pub rv: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

/// List options, as the query string carries them.
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

const CONTINUE_TOO_OLD: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn encode_continue(rv: u64, key: &(String, String)) -> String {
    let raw = format!("{rv}\u{0}{}\u{0}{}", key.0, key.1);
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Option<(u64, (String, String))> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.split('\u{0}');
    let rv = parts.next()?.parse().ok()?;
    Some((rv, (parts.next()?.to_string(), parts.next()?.to_string())))
}

/// Lists with `resourceVersion` / `resourceVersionMatch` semantics as documented
/// for the real server, `limit` + `continue` paging over a consistent snapshot.
pub(crate) fn list(
    shared: &Shared,
    t: &Target,
    q: &ListQuery,
    selection: &Selection,
) -> Result<ListPage, ApiError> {
    let storage = t.def.storage_key();
    let store = shared.store();
    let current = store.rv();
    let parse_rv = |text: &str| -> Result<u64, ApiError> {
        text.parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {text:?}")))
    };
    let rv_param = q.resource_version.as_deref().filter(|s| !s.is_empty());
    let (snapshot_rv, start_after) = if let Some(token) = &q.continue_token {
        if rv_param.is_some() {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (rv, key) = decode_continue(token)
            .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
        (rv, Some(key))
    } else {
        match (q.resource_version_match.as_deref(), rv_param) {
            (Some(m), None) if !m.is_empty() => {
                return Err(ApiError::invalid(
                    "ListOptions",
                    "",
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            (_, None) | (_, Some("0")) => (current, None),
            (Some("Exact"), Some(rv)) => (parse_rv(rv)?, None),
            (Some("NotOlderThan"), Some(rv)) => {
                let rv = parse_rv(rv)?;
                if rv > current {
                    return Err(ApiError::timeout(format!(
                        "Too large resource version: {rv}, current: {current}"
                    )));
                }
                (current, None)
            }
            (Some(other), Some(_)) if !other.is_empty() => {
                return Err(ApiError::invalid(
                    "ListOptions",
                    "",
                    format!(
                        "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                    ),
                ));
            }
            // Legacy: a version with a limit is exact, without one it is "not older than".
            (_, Some(rv)) => {
                let rv = parse_rv(rv)?;
                if rv > current {
                    return Err(ApiError::timeout(format!(
                        "Too large resource version: {rv}, current: {current}"
                    )));
                }
                if q.limit.is_some_and(|l| l > 0) {
                    (rv, None)
                } else {
                    (current, None)
                }
            }
        }
    };
    if snapshot_rv > current {
        return Err(ApiError::timeout(format!(
            "Too large resource version: {snapshot_rv}, current: {current}"
        )));
    }
    let objects = store
        .snapshot(&storage, t.namespace.as_deref(), snapshot_rv)
        .map_err(|_| {
            if start_after.is_some() {
                ApiError::expired(CONTINUE_TOO_OLD)
            } else {
                ApiError::expired(format!("resourceVersion: {snapshot_rv} is too old"))
            }
        })?;
    drop(store);
    let matching = objects
        .into_iter()
        .filter(|o| selection.matches(o))
        .filter(|o| start_after.as_ref().is_none_or(|after| &o.key() > after));
    let limit = q.limit.filter(|l| *l > 0);
    let mut items: Vec<Arc<Stored>> = Vec::new();
    let mut remaining = 0usize;
    for object in matching {
        if limit.is_some_and(|l| items.len() >= l) {
            remaining += 1;
        } else {
            items.push(object);
        }
    }
    let continue_token = (remaining > 0)
        .then(|| items.last().map(|o| encode_continue(snapshot_rv, &o.key())))
        .flatten();
    Ok(ListPage {
        items,
        rv: snapshot_rv,
        remaining: continue_token.as_ref().map(|_| remaining),
        continue_token,
    })
}
