//! Server-side printing: the `Table` kubectl asks for (`as=Table`), with
//! the columns the real server's printers give the built-in kinds, and
//! Name and Created At for everything else.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::resources::ResourceDef;
use crate::store::Stored;

/// `HumanDuration` of apimachinery: 45s, 3m20s, 25m, 5h10m, 2d3h, 40d.
fn human(seconds: i64) -> String {
    if seconds < 0 {
        return "<invalid>".into();
    }
    let (s, m, h) = (seconds, seconds / 60, seconds / 3600);
    let with = |a: i64, ua: &str, b: i64, ub: &str| {
        if b == 0 {
            format!("{a}{ua}")
        } else {
            format!("{a}{ua}{b}{ub}")
        }
    };
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        with(m, "m", s % 60, "s")
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        with(h, "h", m % 60, "m")
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        with(h / 24, "d", h % 24, "h")
    } else if h < 24 * 365 * 2 {
        format!("{}d", h / 24)
    } else {
        with(h / 24 / 365, "y", (h / 24) % 365, "d")
    }
}

fn age(time: &Value) -> String {
    time.as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or_else(
            || "<unknown>".into(),
            |t| human(jiff::Timestamp::now().duration_since(t).as_secs()),
        )
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// Column definitions: names separated by commas, a `*` after a name for a
/// column shown only with `-o wide`. "Created At" is a date (kubectl shows
/// its age).
fn columns(spec: &str) -> Vec<Value> {
    spec.split(',')
        .map(str::trim)
        .map(|name| {
            let (name, priority) = match name.strip_suffix('*') {
                Some(n) => (n, 1),
                None => (name, 0),
            };
            let kind = if name == "Created At" { "date" } else { "string" };
            let format = if name == "Name" { "name" } else { "" };
            json!({ "name": name, "type": kind, "format": format, "description": "", "priority": priority })
        })
        .collect()
}

fn pod_status(pod: &Value) -> String {
    if pod["metadata"].get("deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let status = &pod["status"];
    let mut reason = status["reason"]
        .as_str()
        .or_else(|| status["phase"].as_str())
        .unwrap_or("Pending")
        .to_string();
    for (i, c) in status["initContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if c["state"]["terminated"]["exitCode"] == 0 || c["state"]["running"].is_object() {
            continue;
        }
        let total = status["initContainerStatuses"]
            .as_array()
            .map_or(0, Vec::len);
        return match c["state"]["waiting"]["reason"].as_str() {
            Some(r) if r != "PodInitializing" => format!("Init:{r}"),
            _ => format!("Init:{i}/{total}"),
        };
    }
    for c in status["containerStatuses"].as_array().into_iter().flatten() {
        if let Some(r) = c["state"]["waiting"]["reason"].as_str() {
            reason = r.to_string();
        } else if let Some(r) = c["state"]["terminated"]["reason"].as_str() {
            reason = r.to_string();
        }
    }
    if reason == "Completed"
        && status["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["state"]["running"].is_object())
    {
        reason = "Running".into();
    }
    reason
}

fn cells(def: &ResourceDef, o: &Value) -> (Vec<Value>, Vec<Value>) {
    let meta = &o["metadata"];
    let name = meta["name"].clone();
    let created = age(&meta["creationTimestamp"]);
    let spec = &o["spec"];
    let status = &o["status"];
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "Pod") => {
            let cs = status["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = spec["containers"].as_array().map_or(0, Vec::len);
            let ready = cs.iter().filter(|c| c["ready"] == true).count();
            let restarts: i64 = cs.iter().map(|c| n(&c["restartCount"])).sum();
            (
                columns("Name, Ready, Status, Restarts, Age, IP*, Node*"),
                vec![
                    name,
                    json!(format!("{ready}/{total}")),
                    json!(pod_status(o)),
                    json!(restarts.to_string()),
                    json!(created),
                    json!(status["podIP"].as_str().unwrap_or("<none>")),
                    json!(spec["nodeName"].as_str().unwrap_or("<none>")),
                ],
            )
        }
        ("apps", "Deployment") => (
            columns("Name, Ready, Up-to-date, Available, Age"),
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    n(&status["readyReplicas"]),
                    n(&spec["replicas"])
                )),
                json!(n(&status["updatedReplicas"])),
                json!(n(&status["availableReplicas"])),
                json!(created),
            ],
        ),
        ("apps", "ReplicaSet") => (
            columns("Name, Desired, Current, Ready, Age"),
            vec![
                name,
                json!(n(&spec["replicas"])),
                json!(n(&status["replicas"])),
                json!(n(&status["readyReplicas"])),
                json!(created),
            ],
        ),
        ("apps", "StatefulSet") => (
            columns("Name, Ready, Age"),
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    n(&status["readyReplicas"]),
                    n(&spec["replicas"])
                )),
                json!(created),
            ],
        ),
        ("apps", "DaemonSet") => (
            columns("Name, Desired, Current, Ready, Up-to-date, Available, Age"),
            vec![
                name,
                json!(n(&status["desiredNumberScheduled"])),
                json!(n(&status["currentNumberScheduled"])),
                json!(n(&status["numberReady"])),
                json!(n(&status["updatedNumberScheduled"])),
                json!(n(&status["numberAvailable"])),
                json!(created),
            ],
        ),
        ("batch", "Job") => {
            let done = |t: &str| {
                status["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == t && c["status"] == "True")
            };
            let state = if done("Complete") {
                "Complete"
            } else if done("Failed") {
                "Failed"
            } else {
                "Running"
            };
            (
                columns("Name, Status, Completions, Age"),
                vec![
                    name,
                    json!(state),
                    json!(format!(
                        "{}/{}",
                        n(&status["succeeded"]),
                        spec["completions"].as_i64().unwrap_or(1)
                    )),
                    json!(created),
                ],
            )
        }
        ("batch", "CronJob") => (
            columns("Name, Schedule, Suspend, Active, Last Schedule, Age"),
            vec![
                name,
                spec["schedule"].clone(),
                json!(spec["suspend"].as_bool().unwrap_or(false)),
                json!(status["active"].as_array().map_or(0, Vec::len)),
                json!(if status["lastScheduleTime"].is_null() {
                    "<none>".into()
                } else {
                    age(&status["lastScheduleTime"])
                }),
                json!(created),
            ],
        ),
        ("", "Event") | ("events.k8s.io", "Event") => {
            let last = if o["lastTimestamp"].is_null() {
                &o["eventTime"]
            } else {
                &o["lastTimestamp"]
            };
            let involved = &o["involvedObject"];
            (
                columns(
                    "Last Seen, Type, Reason, Object, Message | Subobject, Source, First Seen, Count, Name",
                ),
                vec![
                    json!(age(last)),
                    o["type"].clone(),
                    o["reason"].clone(),
                    json!(format!(
                        "{}/{}",
                        involved["kind"]
                            .as_str()
                            .unwrap_or_default()
                            .to_ascii_lowercase(),
                        involved["name"].as_str().unwrap_or_default()
                    )),
                    json!(involved["fieldPath"].as_str().unwrap_or("")),
                    json!(match o["source"]["host"].as_str() {
                        Some(h) => format!(
                            "{}, {h}",
                            o["source"]["component"].as_str().unwrap_or_default()
                        ),
                        None => o["source"]["component"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    }),
                    o["message"].clone(),
                    json!(age(&o["firstTimestamp"])),
                    json!(n(&o["count"]).max(1).to_string()),
                    name,
                ],
            )
        }
        ("", "Node") => {
            let ready = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (
                columns("Name, Status, Roles, Age, Version"),
                vec![
                    name,
                    json!(if ready { "Ready" } else { "NotReady" }),
                    json!("<none>"),
                    json!(created),
                    status["nodeInfo"]["kubeletVersion"].clone(),
                ],
            )
        }
        ("", "Namespace") => (
            columns("Name, Status, Age"),
            vec![name, status["phase"].clone(), json!(created)],
        ),
        ("", "Service") => {
            let ports: Vec<String> = spec["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let node = p["nodePort"]
                        .as_i64()
                        .map(|np| format!(":{np}"))
                        .unwrap_or_default();
                    format!(
                        "{}{node}/{}",
                        n(&p["port"]),
                        p["protocol"].as_str().unwrap_or("TCP")
                    )
                })
                .collect();
            (
                columns("Name, Type, Cluster-IP, External-IP, Port(s), Age"),
                vec![
                    name,
                    spec["type"].clone(),
                    json!(spec["clusterIP"].as_str().unwrap_or("<none>")),
                    json!("<none>"),
                    json!(if ports.is_empty() {
                        "<none>".to_string()
                    } else {
                        ports.join(",")
                    }),
                    json!(created),
                ],
            )
        }
        ("coordination.k8s.io", "Lease") => (
            columns("Name, Holder, Age"),
            vec![
                name,
                json!(spec["holderIdentity"].as_str().unwrap_or("")),
                json!(created),
            ],
        ),
        ("", "ConfigMap") => (
            columns("Name, Data, Age"),
            vec![
                name,
                json!(
                    o["data"].as_object().map_or(0, |d| d.len())
                        + o["binaryData"].as_object().map_or(0, |d| d.len())
                ),
                json!(created),
            ],
        ),
        ("", "Secret") => (
            columns("Name, Type, Data, Age"),
            vec![
                name,
                o["type"].clone(),
                json!(o["data"].as_object().map_or(0, |d| d.len())),
                json!(created),
            ],
        ),
        _ => (
            columns("Name, Created At"),
            vec![name, meta["creationTimestamp"].clone()],
        ),
    }
}

/// The `Table` of `items` of `def`'s kind; `page` carries a list's
/// `continue` token and remaining count, so that kubectl's chunked
/// `get` reads every page.
pub(crate) fn table(
    def: &ResourceDef,
    items: &[Arc<Stored>],
    rv: u64,
    page: Option<(&str, usize)>,
) -> Value {
    let mut columns = None;
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let view = if def.is_events_v1() {
                crate::cluster::to_events_v1(&o.value)
            } else {
                o.value.clone()
            };
            let (cols, cells) = cells(def, &o.value);
            columns.get_or_insert(cols);
            json!({
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": view["metadata"],
                },
            })
        })
        .collect();
    let columns = columns.unwrap_or_else(|| cells(def, &json!({})).0);
    let mut metadata = json!({ "resourceVersion": rv.to_string() });
    if let Some((token, remaining)) = page {
        metadata["continue"] = json!(token);
        metadata["remainingItemCount"] = json!(remaining);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}
