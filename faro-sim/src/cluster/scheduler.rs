//! Nodes and the scheduler: `--nodes N` Ready nodes registered at start, and
//! pods bound to a node that fits their `nodeSelector` (and, for DaemonSet
//! pods, their node affinity), or left Pending with `FailedScheduling`.

use std::time::Duration;

use serde_json::{Value, json};

use super::events::Occurrence;
use super::{Api, Key, Manager, NODES, PODS, Source, deleting, now_rfc3339};

/// How often a pod that fits no node is tried again (simulated time).
const RETRY_UNSCHEDULABLE: Duration = Duration::from_secs(10);

fn node_object(name: &str, index: usize) -> Value {
    let now = now_rfc3339();
    let condition = |t: &str, s: &str, reason: &str, message: &str| {
        json!({ "type": t, "status": s, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": now })
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "faro-sim.standard-4",
                "topology.kubernetes.io/zone": format!("zone-{}", (index - 1) % 3 + 1),
            },
            "annotations": { "node.alpha.kubernetes.io/ttl": "0" },
        },
        "spec": { "podCIDR": format!("10.244.{index}.0/24"), "podCIDRs": [format!("10.244.{index}.0/24")] },
        "status": {
            "capacity": { "cpu": "4", "memory": "16331404Ki", "pods": "110", "ephemeral-storage": "102626232Ki" },
            "allocatable": { "cpu": "4", "memory": "16229004Ki", "pods": "110", "ephemeral-storage": "94580335255" },
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                { "type": "InternalIP", "address": format!("10.0.0.{}", index + 1) },
                { "type": "Hostname", "address": name },
            ],
            "daemonEndpoints": { "kubeletEndpoint": { "Port": 10250 } },
            "nodeInfo": {
                "machineID": format!("{:032x}", index), "systemUUID": format!("{:032x}", index * 7919),
                "bootID": format!("{:032x}", index * 104_729),
                "kernelVersion": "6.12.0-faro-sim", "osImage": "Debian GNU/Linux 13 (trixie)",
                "containerRuntimeVersion": "containerd://2.0.0", "kubeletVersion": "v1.33.0",
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64",
            },
        },
    })
}

/// Registers the simulated nodes, with the events a kubelet and the node
/// controller record when a node joins.
pub(crate) fn register_nodes(m: &mut Manager, api: &Api<'_>) {
    for index in 1..=m.config.nodes {
        let name = format!("node-{index}");
        if api.get(NODES, "", &name).is_some() {
            continue;
        }
        let Some(node) = api.create(NODES, "", node_object(&name, index)) else {
            continue;
        };
        let kubelet = Source {
            component: "kubelet",
            host: Some(&name),
        };
        let mut note = |source: Source<'_>, reason: &str, message: String| {
            m.recorder.record(
                api,
                source,
                Occurrence {
                    involved: &node.value,
                    field_path: None,
                    warning: false,
                    reason,
                    message,
                    action: "",
                },
            );
        };
        note(kubelet, "Starting", "Starting kubelet.".into());
        for (reason, what) in [
            ("NodeHasSufficientMemory", "NodeHasSufficientMemory"),
            ("NodeHasNoDiskPressure", "NodeHasNoDiskPressure"),
            ("NodeHasSufficientPID", "NodeHasSufficientPID"),
        ] {
            note(
                kubelet,
                reason,
                format!("Node {name} status is now: {what}"),
            );
        }
        note(
            kubelet,
            "NodeReady",
            format!("Node {name} status is now: NodeReady"),
        );
        note(
            Source::NODE_CONTROLLER,
            "RegisteredNode",
            format!("Node {name} event: Registered Node {name} in Controller"),
        );
    }
}

fn ready(node: &Value) -> bool {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
        && node["spec"]["unschedulable"].as_bool() != Some(true)
}

pub(crate) fn fits(pod: &Value, node: &Value) -> bool {
    let labels = &node["metadata"]["labels"];
    let selector_ok = pod["spec"]["nodeSelector"]
        .as_object()
        .is_none_or(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)));
    // The node affinity a DaemonSet controller sets: metadata.name In [node].
    let affinity_ok = pod["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        .as_array()
        .is_none_or(|terms| {
            terms.iter().any(|t| {
                t["matchFields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(t["matchExpressions"].as_array().into_iter().flatten())
                    .all(|e| {
                        let key = e["key"].as_str().unwrap_or_default();
                        let actual = if key == "metadata.name" {
                            node["metadata"]["name"].as_str()
                        } else {
                            labels[key].as_str()
                        };
                        let values: Vec<&str> = e["values"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        match e["operator"].as_str() {
                            Some("In") => actual.is_some_and(|a| values.contains(&a)),
                            Some("NotIn") => actual.is_none_or(|a| !values.contains(&a)),
                            Some("Exists") => actual.is_some(),
                            Some("DoesNotExist") => actual.is_none(),
                            _ => true,
                        }
                    })
            })
        });
    selector_ok && affinity_ok
}

/// Binds the pod `ns/name` if it waits for a node.
pub(crate) fn schedule(m: &mut Manager, api: &Api<'_>, ns: &str, name: &str) {
    let Some(pod) = api.get(PODS, ns, name) else {
        return;
    };
    let spec = &pod.value["spec"];
    if spec["nodeName"].as_str().is_some_and(|n| !n.is_empty())
        || deleting(&pod.value)
        || spec["schedulerName"]
            .as_str()
            .is_some_and(|s| s != "default-scheduler")
    {
        return;
    }
    let nodes = api.list(NODES, None);
    let candidates: Vec<&str> = nodes
        .iter()
        .filter(|n| ready(&n.value) && fits(&pod.value, &n.value))
        .map(|n| n.name.as_str())
        .collect();
    let now = now_rfc3339();
    if candidates.is_empty() {
        let total = nodes.len();
        let unready = nodes.iter().filter(|n| !ready(&n.value)).count();
        let mut reasons = Vec::new();
        if total - unready > 0 {
            reasons.push(format!(
                "{} node(s) didn't match Pod's node affinity/selector",
                total - unready
            ));
        }
        if unready > 0 {
            reasons.push(format!("{unready} node(s) were unschedulable"));
        }
        let message = format!(
            "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling.",
            reasons.join(", ")
        );
        let written = api.modify_status(&pod, PODS, |p| {
            p["status"]["phase"] = json!("Pending");
            set_condition(
                &mut p["status"],
                "PodScheduled",
                "False",
                Some(("Unschedulable", &message)),
                &now,
            );
        });
        let involved = written.as_ref().map_or(&pod.value, |w| &w.value);
        m.recorder.record(
            api,
            Source::SCHEDULER,
            Occurrence {
                involved,
                field_path: None,
                warning: true,
                reason: "FailedScheduling",
                message,
                action: "Scheduling",
            },
        );
        m.wake_after(
            RETRY_UNSCHEDULABLE,
            Key::Pod(ns.to_string(), name.to_string()),
        );
        return;
    }
    // Spread: the candidate after the last one chosen.
    m.kubelet.round_robin = m.kubelet.round_robin.wrapping_add(1);
    let node = candidates[m.kubelet.round_robin % candidates.len()].to_string();
    let Some(bound) = api.bind(&pod, &node, &now) else {
        return;
    };
    m.recorder.record(
        api,
        Source::SCHEDULER,
        Occurrence {
            involved: &bound.value,
            field_path: None,
            warning: false,
            reason: "Scheduled",
            message: format!("Successfully assigned {ns}/{name} to {node}"),
            action: "Binding",
        },
    );
}

/// Tries every pod that waits for a node again (after a node changed).
pub(crate) fn retry_all(m: &mut Manager, api: &Api<'_>) {
    let waiting: Vec<(String, String)> = api
        .list(PODS, None)
        .iter()
        .filter(|p| {
            p.value["spec"]["nodeName"]
                .as_str()
                .is_none_or(str::is_empty)
        })
        .map(|p| (p.namespace.clone().unwrap_or_default(), p.name.clone()))
        .collect();
    for (ns, name) in waiting {
        m.enqueue(Key::Pod(ns, name));
    }
}

/// Sets a condition, keeping its transition time when its status did not change.
pub(crate) fn set_condition(
    status: &mut Value,
    kind: &str,
    value: &str,
    reason: Option<(&str, &str)>,
    now: &str,
) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let Some(conditions) = status["conditions"].as_array_mut() else {
        return;
    };
    let mut condition =
        json!({ "type": kind, "status": value, "lastProbeTime": null, "lastTransitionTime": now });
    if let Some((reason, message)) = reason {
        condition["reason"] = json!(reason);
        if !message.is_empty() {
            condition["message"] = json!(message);
        }
    }
    match conditions.iter_mut().find(|c| c["type"] == kind) {
        Some(existing) => {
            if existing["status"] == value {
                condition["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            }
            *existing = condition;
        }
        None => conditions.push(condition),
    }
}

impl Api<'_> {
    /// Binds a pod to a node: `spec.nodeName` and the `PodScheduled`
    /// condition in one write, as the binding subresource does.
    fn bind(
        &self,
        pod: &crate::store::Stored,
        node: &str,
        now: &str,
    ) -> Option<std::sync::Arc<crate::store::Stored>> {
        self.write(pod, PODS, Some("binding"), |p| {
            p["spec"]["nodeName"] = json!(node);
            set_condition(&mut p["status"], "PodScheduled", "True", None, now);
        })
    }
}
