//! The defaults the API server fills in on create, for the kinds whose
//! defaults a client can see: pods and pod templates, the workload kinds,
//! and services (with their cluster IP and node ports).

use serde_json::{Map, Value, json};

use crate::resources::ResourceDef;

fn set_default(object: &mut Map<String, Value>, key: &str, value: Value) {
    if object.get(key).is_none_or(|v| v.is_null() || v == "") {
        object.insert(key.to_string(), value);
    }
}

fn image_pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    let tag = last
        .split_once('@')
        .map_or_else(|| last.split_once(':').map(|(_, t)| t), |_| Some("digest"));
    match tag {
        None | Some("latest") => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn container_defaults(containers: &mut Value) {
    for c in containers.as_array_mut().into_iter().flatten() {
        let Some(c) = c.as_object_mut() else { continue };
        let image = c
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        set_default(c, "imagePullPolicy", json!(image_pull_policy(&image)));
        set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
        set_default(c, "terminationMessagePolicy", json!("File"));
        set_default(c, "resources", json!({}));
        if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                set_default(p, "protocol", json!("TCP"));
            }
        }
    }
}

/// Pod spec defaults, as for a Pod and for every pod template.
pub(crate) fn pod_spec(spec: &mut Value, restart_policy: &str) {
    if !spec.is_object() {
        return;
    }
    container_defaults(&mut spec["initContainers"]);
    container_defaults(&mut spec["containers"]);
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    if s.get("initContainers").is_some_and(Value::is_null) {
        s.remove("initContainers");
    }
    set_default(s, "restartPolicy", json!(restart_policy));
    set_default(s, "terminationGracePeriodSeconds", json!(30));
    set_default(s, "dnsPolicy", json!("ClusterFirst"));
    set_default(s, "securityContext", json!({}));
    set_default(s, "schedulerName", json!("default-scheduler"));
    set_default(s, "enableServiceLinks", json!(true));
    set_default(s, "preemptionPolicy", json!("PreemptLowerPriority"));
    set_default(s, "priority", json!(0));
    set_default(s, "serviceAccountName", json!("default"));
    set_default(s, "serviceAccount", json!("default"));
}

fn template(object: &mut Value, restart_policy: &str) {
    pod_spec(&mut object["spec"]["template"]["spec"], restart_policy);
    if object["spec"]["template"]["metadata"].is_null() {
        object["spec"]["template"]["metadata"] = json!({});
    }
}

fn spec_default(object: &mut Value, key: &str, value: Value) {
    if !object["spec"].is_object() {
        object["spec"] = json!({});
    }
    if let Some(spec) = object["spec"].as_object_mut() {
        set_default(spec, key, value);
    }
}

/// Fills in what the API server defaults for `def`'s kind.
pub(crate) fn apply(def: &ResourceDef, object: &mut Value, seq: u64) {
    let uid = object["metadata"]["uid"].clone();
    let name = object["metadata"]["name"].clone();
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "pods") => {
            pod_spec(&mut object["spec"], "Always");
            object["status"] = json!({ "phase": "Pending", "qosClass": "BestEffort" });
        }
        ("apps", "deployments") => {
            spec_default(object, "replicas", json!(1));
            spec_default(object, "revisionHistoryLimit", json!(10));
            spec_default(object, "progressDeadlineSeconds", json!(600));
            spec_default(
                object,
                "strategy",
                json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" } }),
            );
            template(object, "Always");
        }
        ("apps", "replicasets") => {
            spec_default(object, "replicas", json!(1));
            template(object, "Always");
        }
        ("apps", "statefulsets") => {
            spec_default(object, "replicas", json!(1));
            spec_default(object, "podManagementPolicy", json!("OrderedReady"));
            spec_default(object, "revisionHistoryLimit", json!(10));
            spec_default(
                object,
                "updateStrategy",
                json!({ "type": "RollingUpdate", "rollingUpdate": { "partition": 0 } }),
            );
            template(object, "Always");
        }
        ("apps", "daemonsets") => {
            spec_default(object, "revisionHistoryLimit", json!(10));
            spec_default(
                object,
                "updateStrategy",
                json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 0, "maxUnavailable": 1 } }),
            );
            template(object, "Always");
        }
        ("batch", "jobs") => job_defaults(object, &uid, &name),
        ("batch", "cronjobs") => {
            spec_default(object, "concurrencyPolicy", json!("Allow"));
            spec_default(object, "suspend", json!(false));
            spec_default(object, "successfulJobsHistoryLimit", json!(3));
            spec_default(object, "failedJobsHistoryLimit", json!(1));
            pod_spec(
                &mut object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                "Never",
            );
        }
        ("", "services") => service_defaults(object, seq),
        _ => {}
    }
}

fn job_defaults(object: &mut Value, uid: &Value, name: &Value) {
    let selector_given = object["spec"]["selector"].is_object()
        && object["spec"]["manualSelector"].as_bool() == Some(true);
    let parallel = object["spec"]["parallelism"].is_null();
    spec_default(object, "parallelism", json!(1));
    if parallel && object["spec"]["completions"].is_null() {
        spec_default(object, "completions", json!(1));
    }
    spec_default(object, "backoffLimit", json!(6));
    spec_default(object, "completionMode", json!("NonIndexed"));
    spec_default(object, "suspend", json!(false));
    spec_default(object, "podReplacementPolicy", json!("TerminatingOrFailed"));
    spec_default(object, "manualSelector", json!(false));
    if !selector_given {
        object["spec"]["selector"] =
            json!({ "matchLabels": { "batch.kubernetes.io/controller-uid": uid } });
        let labels = &mut object["spec"]["template"]["metadata"]["labels"];
        if !labels.is_object() {
            *labels = json!({});
        }
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", uid),
            ("batch.kubernetes.io/job-name", name),
            ("controller-uid", uid),
            ("job-name", name),
        ] {
            labels[k] = v.clone();
        }
    }
    template(object, "Never");
}

fn service_defaults(object: &mut Value, seq: u64) {
    let kind = object["spec"]["type"]
        .as_str()
        .unwrap_or("ClusterIP")
        .to_string();
    spec_default(object, "type", json!(kind));
    spec_default(object, "sessionAffinity", json!("None"));
    if kind != "ExternalName" {
        let ip = format!("10.96.{}.{}", (seq / 250) % 250, seq % 250 + 2);
        if object["spec"]["clusterIP"].is_null() || object["spec"]["clusterIP"] == "" {
            object["spec"]["clusterIP"] = json!(ip);
        }
        let cluster_ip = object["spec"]["clusterIP"].clone();
        spec_default(object, "clusterIPs", json!([cluster_ip]));
        spec_default(object, "ipFamilies", json!(["IPv4"]));
        spec_default(object, "ipFamilyPolicy", json!("SingleStack"));
        spec_default(object, "internalTrafficPolicy", json!("Cluster"));
    }
    let node_ports = matches!(kind.as_str(), "NodePort" | "LoadBalancer");
    if node_ports {
        spec_default(object, "externalTrafficPolicy", json!("Cluster"));
    }
    for (i, p) in object["spec"]["ports"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let port = p["port"].clone();
        let Some(p) = p.as_object_mut() else { continue };
        set_default(p, "protocol", json!("TCP"));
        set_default(p, "targetPort", port);
        if node_ports {
            set_default(p, "nodePort", json!(30000 + (seq * 7 + i as u64) % 2768));
        }
    }
    object["status"] = json!({ "loadBalancer": {} });
}
