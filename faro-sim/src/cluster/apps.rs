//! The apps/v1 controllers: Deployment → ReplicaSets (pod-template-hash,
//! rolling update or recreate, revisions, history limit), ReplicaSet → Pods,
//! StatefulSet → ordered Pods, DaemonSet → one Pod per fitting Node.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::scheduler::set_condition;
use super::{
    Api, DAEMONSETS, DEPLOYMENTS, Manager, NODES, PODS, REPLICASETS, STATEFULSETS, Source,
    deleting, now_rfc3339, owned, owner_ref,
};
use crate::ops::DeleteOptions;
use crate::store::Stored;

const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

fn replicas(object: &Value) -> i64 {
    object["spec"]["replicas"].as_i64().unwrap_or(1).max(0)
}

fn status_i64(object: &Value, field: &str) -> i64 {
    object["status"][field].as_i64().unwrap_or(0)
}

/// Active pods: not being deleted and not finished.
fn active(pod: &Value) -> bool {
    !deleting(pod)
        && !matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        )
}

/// Deletes one of the owner's pods and records `SuccessfulDelete`.
fn delete_pod(
    m: &mut Manager,
    api: &Api<'_>,
    source: Source<'_>,
    owner: &Stored,
    pod: &str,
    message: String,
) -> bool {
    let ns = owner.namespace.as_deref().unwrap_or_default();
    let deleted = api.delete(PODS, ns, pod, &DeleteOptions::default());
    if deleted {
        m.note(
            api,
            source,
            &owner.value,
            false,
            "SuccessfulDelete",
            message,
        );
    }
    deleted
}

/// The owner's pods that are neither being deleted nor finished.
fn active_pods(m: &Manager, api: &Api<'_>, owner: &Stored) -> Vec<Arc<Stored>> {
    owned(m, api, PODS, owner)
        .into_iter()
        .filter(|p| active(&p.value))
        .collect()
}

pub(crate) fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Kubernetes' `rand.SafeEncodeString` of the template's FNV-32a hash.
pub(crate) fn template_hash(template: &Value) -> String {
    let bytes = serde_json::to_vec(template).unwrap_or_default();
    let hash = bytes.iter().fold(0x811c9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x01000193)
    });
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string()
        .bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// A pod from a template, owned by `owner`.
fn pod_from_template(
    owner: &Stored,
    template: &Value,
    name: Value,
    extra_labels: &Map<String, Value>,
) -> Value {
    let mut metadata = template["metadata"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut labels = metadata
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.extend(extra_labels.clone());
    metadata.insert("labels".into(), Value::Object(labels));
    match name {
        Value::String(n) => {
            metadata.insert("name".into(), json!(n));
        }
        _ => {
            metadata.insert("generateName".into(), json!(format!("{}-", owner.name)));
        }
    }
    metadata.insert("ownerReferences".into(), json!([owner_ref(owner)]));
    metadata.remove("namespace");
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template["spec"],
    })
}

pub(crate) fn replicaset(m: &mut Manager, api: &Api<'_>, ns: &str, name: &str) {
    let Some(rs) = api.get(REPLICASETS, ns, name) else {
        return;
    };
    if deleting(&rs.value) {
        return;
    }
    let mut pods: Vec<Arc<Stored>> = active_pods(m, api, &rs);
    let want = replicas(&rs.value) as usize;
    if pods.len() < want {
        let template = &rs.value["spec"]["template"];
        for _ in pods.len()..want {
            let pod = pod_from_template(&rs, template, Value::Null, &Map::new());
            if let Some(created) = api.create(PODS, ns, pod) {
                m.note(
                    api,
                    Source::REPLICASET,
                    &rs.value,
                    false,
                    "SuccessfulCreate",
                    format!("Created pod: {}", created.name),
                );
            }
        }
    } else if pods.len() > want {
        // Unscheduled first, then not ready, then the newest.
        pods.sort_by_key(|p| {
            let scheduled = p.value["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !n.is_empty());
            (
                scheduled,
                pod_ready(&p.value),
                std::cmp::Reverse(
                    p.value["metadata"]["creationTimestamp"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
            )
        });
        for pod in pods.iter().take(pods.len() - want) {
            delete_pod(
                m,
                api,
                Source::REPLICASET,
                &rs,
                &pod.name,
                format!("Deleted pod: {}", pod.name),
            );
        }
    }
    let pods: Vec<Arc<Stored>> = active_pods(m, api, &rs);
    let ready = pods.iter().filter(|p| pod_ready(&p.value)).count();
    let terminating = owned(m, api, PODS, &rs)
        .iter()
        .filter(|p| deleting(&p.value))
        .count();
    let generation = rs.value["metadata"]["generation"].clone();
    api.modify_status(&rs, REPLICASETS, |r| {
        let mut status = json!({ "replicas": pods.len(), "observedGeneration": generation });
        if !pods.is_empty() {
            status["fullyLabeledReplicas"] = json!(pods.len());
        }
        if ready > 0 {
            status["readyReplicas"] = json!(ready);
            status["availableReplicas"] = json!(ready);
        }
        if terminating > 0 {
            status["terminatingReplicas"] = json!(terminating);
        }
        r["status"] = status;
    });
}

fn resolve(value: &Value, total: i64, round_up: bool, default: &str) -> i64 {
    let value = if value.is_null() {
        json!(default)
    } else {
        value.clone()
    };
    match &value {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            let percent: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            let exact = percent * total as f64 / 100.0;
            if round_up {
                exact.ceil() as i64
            } else {
                exact.floor() as i64
            }
        }
        _ => 0,
    }
}

fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn template_without_hash(rs: &Value) -> Value {
    let mut t = rs["spec"]["template"].clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
    }
    t
}

fn scale_rs(m: &mut Manager, api: &Api<'_>, d: &Stored, rs: &Stored, to: i64) -> bool {
    let from = replicas(&rs.value);
    if from == to {
        return false;
    }
    let d_replicas = replicas(&d.value);
    let surge = resolve(
        &d.value["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        d_replicas,
        true,
        "25%",
    );
    let written = api.modify(rs, REPLICASETS, |r| {
        r["spec"]["replicas"] = json!(to);
        r["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
            json!(d_replicas.to_string());
        r["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] =
            json!((d_replicas + surge).to_string());
    });
    if written.is_some() {
        let direction = if to > from { "up" } else { "down" };
        m.note(
            api,
            Source::DEPLOYMENT,
            &d.value,
            false,
            "ScalingReplicaSet",
            format!(
                "Scaled {direction} replica set {} from {from} to {to}",
                rs.name
            ),
        );
    }
    written.is_some()
}

pub(crate) fn deployment(m: &mut Manager, api: &Api<'_>, ns: &str, name: &str) {
    let Some(d) = api.get(DEPLOYMENTS, ns, name) else {
        return;
    };
    if deleting(&d.value) {
        return;
    }
    let template = d.value["spec"]["template"].clone();
    let mut rss = owned(m, api, REPLICASETS, &d);
    rss.sort_by_key(|rs| revision(&rs.value));
    let want = replicas(&d.value);
    let paused = d.value["spec"]["paused"].as_bool() == Some(true);
    let max_revision = rss.iter().map(|rs| revision(&rs.value)).max().unwrap_or(0);
    let new_rs = rss
        .iter()
        .find(|rs| template_without_hash(&rs.value) == template)
        .cloned();
    let old: Vec<Arc<Stored>> = rss
        .iter()
        .filter(|rs| new_rs.as_ref().is_none_or(|n| n.name != rs.name))
        .cloned()
        .collect();
    let recreate = d.value["spec"]["strategy"]["type"] == "Recreate";
    let surge = if recreate {
        0
    } else {
        resolve(
            &d.value["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
            want,
            true,
            "25%",
        )
    };
    let mut unavailable = if recreate {
        0
    } else {
        resolve(
            &d.value["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
            want,
            false,
            "25%",
        )
    };
    if !recreate && surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    let Some(new_rs) = new_rs else {
        if paused {
            return;
        }
        let hash = template_hash(&template);
        let old_total: i64 = old.iter().map(|rs| replicas(&rs.value)).sum();
        let initial = if recreate {
            if old_total > 0 { 0 } else { want }
        } else if old.is_empty() {
            want
        } else {
            (want + surge - old_total).clamp(0, want)
        };
        let mut rs_template = template.clone();
        rs_template["metadata"]["labels"][HASH_LABEL] = json!(hash);
        let mut selector = d.value["spec"]["selector"].clone();
        selector["matchLabels"][HASH_LABEL] = json!(hash);
        let mut labels = template["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        labels.insert(HASH_LABEL.into(), json!(hash));
        let rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": format!("{name}-{hash}"),
                "labels": labels,
                "annotations": {
                    REVISION: (max_revision + 1).to_string(),
                    "deployment.kubernetes.io/desired-replicas": want.to_string(),
                    "deployment.kubernetes.io/max-replicas": (want + surge).to_string(),
                },
                "ownerReferences": [owner_ref(&d)],
            },
            "spec": { "replicas": initial, "minReadySeconds": d.value["spec"]["minReadySeconds"].as_i64().unwrap_or(0), "selector": selector, "template": rs_template },
        });
        if let Some(created) = api.create(REPLICASETS, ns, rs) {
            if initial > 0 {
                m.note(
                    api,
                    Source::DEPLOYMENT,
                    &d.value,
                    false,
                    "ScalingReplicaSet",
                    format!("Scaled up replica set {} from 0 to {initial}", created.name),
                );
            }
            deployment_status(
                api,
                &d,
                Some(&created),
                &[&old[..], std::slice::from_ref(&created)].concat(),
                want,
                unavailable,
                true,
            );
        }
        return;
    };
    if revision(&new_rs.value) < max_revision {
        // A rollback to an older template: that ReplicaSet gets the next revision.
        api.modify(&new_rs, REPLICASETS, |r| {
            r["metadata"]["annotations"][REVISION] = json!((max_revision + 1).to_string());
        });
        return;
    }
    if !paused {
        let old_total: i64 = old.iter().map(|rs| replicas(&rs.value)).sum();
        let new_replicas = replicas(&new_rs.value);
        if recreate {
            let mut scaled = false;
            for rs in &old {
                scaled |= scale_rs(m, api, &d, rs, 0);
            }
            let old_pods = old
                .iter()
                .map(|rs| owned(m, api, PODS, rs).len())
                .sum::<usize>();
            if !scaled && old_pods == 0 {
                scale_rs(m, api, &d, &new_rs, want);
            }
        } else if new_replicas > want {
            scale_rs(m, api, &d, &new_rs, want);
        } else {
            let mut total = old_total + new_replicas;
            let mut new_target = new_replicas;
            if new_replicas < want && total < want + surge {
                let up = (want + surge - total).min(want - new_replicas);
                if scale_rs(m, api, &d, &new_rs, new_replicas + up) {
                    total += up;
                    new_target += up;
                }
            }
            let new_unavailable =
                (new_target - status_i64(&new_rs.value, "availableReplicas")).max(0);
            let mut budget = total - (want - unavailable) - new_unavailable;
            for rs in &old {
                if budget <= 0 {
                    break;
                }
                let have = replicas(&rs.value);
                if have == 0 {
                    continue;
                }
                // Unavailable old pods go first, at no cost to availability.
                let step = budget.min(have);
                if scale_rs(m, api, &d, rs, have - step) {
                    budget -= step;
                }
            }
        }
    }
    // Revision history: old ReplicaSets at zero beyond the limit go, oldest first.
    let limit = d.value["spec"]["revisionHistoryLimit"]
        .as_i64()
        .unwrap_or(10)
        .max(0) as usize;
    let idle: Vec<&Arc<Stored>> = old
        .iter()
        .filter(|rs| replicas(&rs.value) == 0 && status_i64(&rs.value, "replicas") == 0)
        .collect();
    if idle.len() > limit {
        for rs in idle.iter().take(idle.len() - limit) {
            api.delete(REPLICASETS, ns, &rs.name, &DeleteOptions::default());
        }
    }
    let rss = owned(m, api, REPLICASETS, &d);
    let new_rs = rss.iter().find(|rs| rs.name == new_rs.name).cloned();
    deployment_status(api, &d, new_rs.as_ref(), &rss, want, unavailable, false);
}

fn deployment_status(
    api: &Api<'_>,
    d: &Stored,
    new_rs: Option<&Arc<Stored>>,
    rss: &[Arc<Stored>],
    want: i64,
    max_unavailable: i64,
    created: bool,
) {
    let sum = |f: &str| rss.iter().map(|rs| status_i64(&rs.value, f)).sum::<i64>();
    let total = sum("replicas");
    let ready = sum("readyReplicas");
    let available = sum("availableReplicas");
    let spec_total: i64 = rss.iter().map(|rs| replicas(&rs.value)).sum();
    let updated = new_rs.map_or(0, |rs| status_i64(&rs.value, "replicas"));
    let new_name = new_rs.map_or_else(String::new, |rs| rs.name.clone());
    let complete = updated == want && total == want && available == want;
    let generation = d.value["metadata"]["generation"].clone();
    let now = now_rfc3339();
    api.modify_status(d, DEPLOYMENTS, |v| {
        let mut status = v["status"]
            .as_object()
            .cloned()
            .map(Value::Object)
            .unwrap_or_else(|| json!({}));
        status["observedGeneration"] = generation;
        status["replicas"] = json!(total);
        status["updatedReplicas"] = json!(updated);
        status["readyReplicas"] = json!(ready);
        status["availableReplicas"] = json!(available);
        status["unavailableReplicas"] = json!((spec_total.max(want) - available).max(0));
        if let Some(s) = status.as_object_mut() {
            for zero in [
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
            ] {
                if s.get(zero) == Some(&json!(0)) {
                    s.remove(zero);
                }
            }
        }
        let available_ok = available >= want - max_unavailable;
        let (a_reason, a_message) = if available_ok {
            (
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        } else {
            (
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        };
        set_condition(
            &mut status,
            "Available",
            if available_ok { "True" } else { "False" },
            Some((a_reason, a_message)),
            &now,
        );
        let (p_reason, p_message) = if created {
            (
                "NewReplicaSetCreated",
                format!("Created new replica set \"{new_name}\""),
            )
        } else if complete {
            (
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{new_name}\" has successfully progressed."),
            )
        } else {
            (
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{new_name}\" is progressing."),
            )
        };
        set_condition(
            &mut status,
            "Progressing",
            "True",
            Some((p_reason, &p_message)),
            &now,
        );
        for c in status["conditions"].as_array_mut().into_iter().flatten() {
            if let Some(c) = c.as_object_mut() {
                c.remove("lastProbeTime");
                let previous = v["status"]["conditions"]
                    .as_array()
                    .and_then(|cs| cs.iter().find(|p| p["type"] == c["type"]));
                let unchanged = previous
                    .is_some_and(|p| p["reason"] == c["reason"] && p["message"] == c["message"]);
                let update = match previous {
                    Some(p) if unchanged => p["lastUpdateTime"].clone(),
                    _ => json!(now),
                };
                c.insert("lastUpdateTime".into(), update);
            }
        }
        v["status"] = status;
    });
}

pub(crate) fn statefulset(m: &mut Manager, api: &Api<'_>, ns: &str, name: &str) {
    let Some(sts) = api.get(STATEFULSETS, ns, name) else {
        return;
    };
    if deleting(&sts.value) {
        return;
    }
    let template = &sts.value["spec"]["template"];
    let revision = format!("{name}-{}", template_hash(template));
    let want = replicas(&sts.value);
    let parallel = sts.value["spec"]["podManagementPolicy"] == "Parallel";
    let pods = owned(m, api, PODS, &sts);
    let ordinal =
        |p: &Stored| -> Option<i64> { p.name.strip_prefix(&format!("{name}-"))?.parse().ok() };
    let by_ordinal = |i: i64| pods.iter().find(|p| ordinal(p) == Some(i));
    let mut changed = false;
    for i in 0..want {
        match by_ordinal(i) {
            None => {
                let mut extra = Map::new();
                extra.insert(
                    "statefulset.kubernetes.io/pod-name".into(),
                    json!(format!("{name}-{i}")),
                );
                extra.insert("apps.kubernetes.io/pod-index".into(), json!(i.to_string()));
                extra.insert("controller-revision-hash".into(), json!(revision));
                let mut pod =
                    pod_from_template(&sts, template, json!(format!("{name}-{i}")), &extra);
                pod["spec"]["hostname"] = json!(format!("{name}-{i}"));
                if let Some(service) = sts.value["spec"]["serviceName"].as_str() {
                    pod["spec"]["subdomain"] = json!(service);
                }
                if api.create(PODS, ns, pod).is_some() {
                    m.note(
                        api,
                        Source::STATEFULSET,
                        &sts.value,
                        false,
                        "SuccessfulCreate",
                        format!("create Pod {name}-{i} in StatefulSet {name} successful"),
                    );
                    changed = true;
                }
                if !parallel {
                    break;
                }
            }
            Some(p) if !parallel && (!pod_ready(&p.value) || deleting(&p.value)) => break,
            Some(_) => {}
        }
    }
    if !changed {
        // Scale down from the highest ordinal, one at a time unless Parallel.
        let mut extra: Vec<&Arc<Stored>> = pods
            .iter()
            .filter(|p| ordinal(p).is_none_or(|i| i >= want))
            .collect();
        extra.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
        for p in extra
            .iter()
            .filter(|p| !deleting(&p.value))
            .take(if parallel { usize::MAX } else { 1 })
        {
            let message = format!("delete Pod {} in StatefulSet {name} successful", p.name);
            changed |= delete_pod(m, api, Source::STATEFULSET, &sts, &p.name, message);
        }
    }
    let all_ready = (0..want)
        .all(|i| by_ordinal(i).is_some_and(|p| pod_ready(&p.value) && !deleting(&p.value)));
    if !changed && all_ready {
        // Rolling update: the highest ordinal on an old revision is replaced.
        let stale = (0..want).rev().filter_map(by_ordinal).find(|p| {
            p.value["metadata"]["labels"]["controller-revision-hash"] != revision.as_str()
        });
        if let Some(p) = stale {
            let message = format!("delete Pod {} in StatefulSet {name} successful", p.name);
            delete_pod(m, api, Source::STATEFULSET, &sts, &p.name, message);
        }
    }
    let pods = owned(m, api, PODS, &sts);
    let live: Vec<&Arc<Stored>> = pods.iter().filter(|p| active(&p.value)).collect();
    let ready = live.iter().filter(|p| pod_ready(&p.value)).count();
    let updated = live
        .iter()
        .filter(|p| p.value["metadata"]["labels"]["controller-revision-hash"] == revision.as_str())
        .count();
    let generation = sts.value["metadata"]["generation"].clone();
    api.modify_status(&sts, STATEFULSETS, |s| {
        let current = s["status"]["currentRevision"]
            .as_str()
            .filter(|_| updated < live.len())
            .unwrap_or(&revision)
            .to_string();
        s["status"] = json!({
            "observedGeneration": generation, "replicas": live.len(), "readyReplicas": ready,
            "currentReplicas": if current == revision { updated } else { live.len() - updated },
            "updatedReplicas": updated, "availableReplicas": ready,
            "currentRevision": current, "updateRevision": revision, "collisionCount": 0,
        });
    });
}

/// The node a DaemonSet pod was made for.
fn daemon_node(pod: &Value) -> Option<&str> {
    pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"][0]["values"][0]
        .as_str()
        .or_else(|| pod["spec"]["nodeName"].as_str())
}

pub(crate) fn daemonset(m: &mut Manager, api: &Api<'_>, ns: &str, name: &str) {
    let Some(ds) = api.get(DAEMONSETS, ns, name) else {
        return;
    };
    if deleting(&ds.value) {
        return;
    }
    let template = &ds.value["spec"]["template"];
    let hash = template_hash(template);
    let probe = json!({ "spec": { "nodeSelector": template["spec"]["nodeSelector"] } });
    let nodes: Vec<String> = api
        .list(NODES, None)
        .iter()
        .filter(|n| super::scheduler::fits(&probe, &n.value))
        .map(|n| n.name.clone())
        .collect();
    let pods = owned(m, api, PODS, &ds);
    let mut extra = Map::new();
    extra.insert("controller-revision-hash".into(), json!(hash));
    for node in &nodes {
        if pods
            .iter()
            .any(|p| daemon_node(&p.value) == Some(node.as_str()) && !deleting(&p.value))
        {
            continue;
        }
        let mut pod = pod_from_template(&ds, template, Value::Null, &extra);
        pod["spec"]["affinity"] = json!({ "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{ "matchFields": [{ "key": "metadata.name", "operator": "In", "values": [node] }] }] } } });
        pod["spec"]["tolerations"] = json!([
            { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute" },
            { "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute" },
        ]);
        if let Some(created) = api.create(PODS, ns, pod) {
            m.note(
                api,
                Source::DAEMONSET,
                &ds.value,
                false,
                "SuccessfulCreate",
                format!("Created pod: {}", created.name),
            );
        }
    }
    // Pods on nodes that no longer fit, and one stale pod at a time.
    let all_ready = pods.iter().all(|p| pod_ready(&p.value));
    let mut stale_taken = false;
    for p in pods.iter().filter(|p| !deleting(&p.value)) {
        let misplaced = daemon_node(&p.value).is_none_or(|n| !nodes.iter().any(|have| have == n));
        let stale = p.value["metadata"]["labels"]["controller-revision-hash"] != hash.as_str();
        if misplaced || (stale && all_ready && !stale_taken) {
            stale_taken |= stale;
            delete_pod(
                m,
                api,
                Source::DAEMONSET,
                &ds,
                &p.name,
                format!("Deleted pod: {}", p.name),
            );
        }
    }
    let pods: Vec<Arc<Stored>> = active_pods(m, api, &ds);
    let ready = pods.iter().filter(|p| pod_ready(&p.value)).count();
    let updated = pods
        .iter()
        .filter(|p| p.value["metadata"]["labels"]["controller-revision-hash"] == hash.as_str())
        .count();
    let generation = ds.value["metadata"]["generation"].clone();
    api.modify_status(&ds, DAEMONSETS, |d| {
        d["status"] = json!({
            "observedGeneration": generation,
            "desiredNumberScheduled": nodes.len(), "currentNumberScheduled": pods.len(),
            "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready,
            "updatedNumberScheduled": updated,
        });
        if nodes.len() > ready {
            d["status"]["numberUnavailable"] = json!(nodes.len() - ready);
        }
    });
}
