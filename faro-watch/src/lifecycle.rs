//! Pod lifecycle records: phase changes (with the time spent in the phase
//! left), container state changes with exit codes and reasons, restarts,
//! deletion with its grace period, and replacement (a pod deleted and a
//! new one of the same owner created soon after, linked both ways).
//!
//! Built from the pod events Faro delivers, against a compact state per
//! pod; the first sight of a pod (a list) reports nothing that already
//! happened.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faro_core::{EventHandler, EventType, MatchedEvent, Record, RecordKind, RecordParts};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;
use serde_json::Value;

use crate::informer::lock;

/// What Faro keeps of a container between two pod updates.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shown {
    Waiting(Box<str>),
    Running,
    Terminated(Box<str>, i64),
    Unknown,
}

#[derive(Debug)]
struct ContainerLife {
    name: Box<str>,
    restarts: u32,
    shown: Shown,
}

#[derive(Debug)]
struct PodLife {
    phase: Box<str>,
    phase_since: jiff::Timestamp,
    containers: Vec<ContainerLife>,
    deleting: bool,
    owner: Option<Box<str>>,
    replaced_by: Option<Box<str>>,
}

#[derive(Default)]
struct State {
    pods: HashMap<Box<str>, PodLife>,
    /// Per owner uid: pods deleted lately, not yet replaced.
    departed: HashMap<Box<str>, VecDeque<Departed>>,
}

impl State {
    /// Remembers a pod of `owner` whose deletion began, for its replacement.
    fn depart(&mut self, owner: &str, name: &str, uid: &str, at: Instant) {
        self.departed
            .entry(owner.into())
            .or_default()
            .push_back(Departed {
                at,
                name: name.into(),
                uid: uid.into(),
            });
    }
}

/// A pod whose deletion began lately, waiting for its replacement.
struct Departed {
    at: Instant,
    name: Box<str>,
    uid: Box<str>,
}

/// Makes lifecycle records of the pods delivered to handlers.
pub(crate) struct Lifecycle {
    window: Duration,
    state: Mutex<State>,
    records: Family<[(&'static str, String); 1], Counter>,
}

/// One lifecycle record's JSON.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    kind: &'static str,
    timestamp: String,
    namespace: &'a str,
    pod: &'a str,
    pod_uid: &'a str,
    event: &'static str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_phase: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds_in_previous_phase: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restart_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grace_period_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replaces: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced_by: Option<&'a str>,
    narrative: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation: Option<&'a str>,
}

impl<'a> Line<'a> {
    fn new(pod: &'a PodRef<'a>, event: &'static str, reason: &'a str) -> Self {
        Self {
            kind: "lifecycle",
            timestamp: pod.at.to_string(),
            namespace: pod.namespace,
            pod: pod.name,
            pod_uid: pod.uid,
            event,
            reason,
            container: None,
            phase: None,
            previous_phase: None,
            seconds_in_previous_phase: None,
            exit_code: None,
            restart_count: None,
            message: None,
            grace_period_seconds: None,
            replaces: None,
            replaced_by: None,
            narrative: "",
            correlation: pod.correlation.as_deref(),
        }
    }
}

struct PodRef<'a> {
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
    at: jiff::Timestamp,
    correlation: Option<Arc<str>>,
    cluster: Option<Arc<str>>,
}

/// Reasons a waiting container is worth a record for.
const WAITING_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
];

impl Lifecycle {
    pub fn new(window: Duration, records: Family<[(&'static str, String); 1], Counter>) -> Self {
        Self {
            window,
            state: Mutex::default(),
            records,
        }
    }

    /// Makes the records `event` (of a pod) brings and hands them to `handlers`.
    pub async fn observe(&self, event: &MatchedEvent, handlers: &[Arc<dyn EventHandler>]) {
        let records = self.records_of(event);
        for record in records {
            self.records
                .get_or_create(&[("reason", record.reason().to_owned())])
                .inc();
            for handler in handlers {
                if let Err(e) = handler.on_record(&record).await {
                    tracing::warn!(handler = handler.name(), "handler failed: {e}");
                }
            }
        }
    }

    fn records_of(&self, event: &MatchedEvent) -> Vec<Record> {
        let object = event.object();
        let meta = &object.metadata;
        let (Some(namespace), Some(name), Some(uid)) = (
            meta.namespace.as_deref(),
            meta.name.as_deref(),
            meta.uid.as_deref(),
        ) else {
            return Vec::new();
        };
        let pod = PodRef {
            namespace,
            name,
            uid,
            at: event.observed_at(),
            correlation: event.correlation().cloned(),
            cluster: event.cluster().cloned(),
        };
        let status = &object.data["status"];
        let phase = status["phase"].as_str().unwrap_or("Pending");
        let containers = container_states(status);
        let owner = meta.owner_references.as_ref().and_then(|refs| {
            refs.iter()
                .find(|r| r.controller == Some(true))
                .map(|r| Box::<str>::from(r.uid.as_str()))
        });
        let mut out = Vec::new();
        let mut s = lock(&self.state);
        let now = Instant::now();
        let window = self.window;
        for list in s.departed.values_mut() {
            while list
                .front()
                .is_some_and(|d| now.duration_since(d.at) > window)
            {
                list.pop_front();
            }
        }
        s.departed.retain(|_, list| !list.is_empty());

        if event.event_type() == EventType::Deleted {
            let Some(life) = s.pods.remove(uid) else {
                return out;
            };
            if !life.deleting
                && let Some(owner) = &life.owner
            {
                s.depart(owner, name, uid, now);
            }
            drop(s);
            let mut line = Line::new(&pod, "Deleted", "Deleted");
            line.phase = Some(&life.phase);
            line.replaced_by = life.replaced_by.as_deref();
            let narrative = match &life.replaced_by {
                Some(by) => format!("Pod {namespace}/{name}: deleted (replaced by {by})"),
                None => format!("Pod {namespace}/{name}: deleted"),
            };
            out.push(make(&pod, line, "Normal", &narrative));
            return out;
        }

        let Some(mut life) = s.pods.remove(uid) else {
            // First sight: remember; link to a pod of the same owner deleted lately.
            let mut life = PodLife {
                phase: phase.into(),
                phase_since: pod.at,
                containers: containers
                    .iter()
                    .map(|(n, restarts, shown)| ContainerLife {
                        name: (*n).into(),
                        restarts: *restarts,
                        shown: shown.clone(),
                    })
                    .collect(),
                deleting: meta.deletion_timestamp.is_some(),
                owner: owner.clone(),
                replaced_by: None,
            };
            let replaced = owner.as_ref().and_then(|o| {
                let list = s.departed.get_mut(o)?;
                list.pop_front()
            });
            if let Some(Departed {
                name: old_name,
                uid: old_uid,
                ..
            }) = replaced
            {
                if let Some(old) = s.pods.get_mut(&old_uid) {
                    old.replaced_by = Some(name.into());
                }
                life.phase_since = pod.at;
                s.pods.insert(uid.into(), life);
                drop(s);
                let mut line = Line::new(&pod, "Replaced", "Replaced");
                line.replaces = Some(&old_name);
                let narrative = format!("Pod {namespace}/{name}: replaces {namespace}/{old_name}");
                out.push(make(&pod, line, "Normal", &narrative));
            } else {
                s.pods.insert(uid.into(), life);
            }
            return out;
        };

        // Deletion requested.
        if !life.deleting && meta.deletion_timestamp.is_some() {
            life.deleting = true;
            if let Some(owner) = &life.owner {
                s.depart(owner, name, uid, now);
            }
            let grace = meta.deletion_grace_period_seconds;
            let mut line = Line::new(&pod, "Deleting", "Deleting");
            line.grace_period_seconds = grace;
            let narrative = match grace {
                Some(g) => format!("Pod {namespace}/{name}: deleting, grace period {g}s"),
                None => format!("Pod {namespace}/{name}: deleting"),
            };
            out.push(make(&pod, line, "Normal", &narrative));
        }

        // Containers.
        for (cname, restarts, shown) in &containers {
            let known = life.containers.iter_mut().find(|c| &*c.name == *cname);
            let Some(known) = known else {
                life.containers.push(ContainerLife {
                    name: (*cname).into(),
                    restarts: *restarts,
                    shown: shown.clone(),
                });
                continue;
            };
            if *restarts > known.restarts {
                let last = last_termination(status, cname);
                let mut line = Line::new(&pod, "ContainerRestarted", "Restarted");
                line.container = Some(cname);
                line.restart_count = Some(*restarts);
                line.exit_code = last.as_ref().map(|(_, code)| *code);
                line.message = last.as_ref().map(|(reason, _)| reason.as_str());
                let narrative = match &last {
                    Some((reason, code)) => format!(
                        "Pod {namespace}/{name}: container {cname} restarted ({restarts} restarts; last exit {code} {reason})"
                    ),
                    None => format!(
                        "Pod {namespace}/{name}: container {cname} restarted ({restarts} restarts)"
                    ),
                };
                out.push(make(&pod, line, "Warning", &narrative));
                known.restarts = *restarts;
            }
            if *shown != known.shown {
                match shown {
                    Shown::Terminated(reason, code) => {
                        let mut line = Line::new(&pod, "ContainerTerminated", reason);
                        line.container = Some(cname);
                        line.exit_code = Some(*code);
                        line.restart_count = Some(*restarts);
                        let severity = if *code == 0 { "Normal" } else { "Warning" };
                        let narrative = format!(
                            "Pod {namespace}/{name}: container {cname} terminated: {reason} (exit code {code})"
                        );
                        out.push(make(&pod, line, severity, &narrative));
                    }
                    Shown::Waiting(reason) if WAITING_REASONS.contains(&&**reason) => {
                        let message = waiting_message(status, cname);
                        let mut line = Line::new(&pod, "ContainerWaiting", reason);
                        line.container = Some(cname);
                        line.restart_count = Some(*restarts);
                        line.message = message.as_deref();
                        let narrative =
                            format!("Pod {namespace}/{name}: container {cname} waiting: {reason}");
                        out.push(make(&pod, line, "Warning", &narrative));
                    }
                    Shown::Running => {
                        let mut line = Line::new(&pod, "ContainerStarted", "Started");
                        line.container = Some(cname);
                        line.restart_count = Some(*restarts);
                        let narrative =
                            format!("Pod {namespace}/{name}: container {cname} started");
                        out.push(make(&pod, line, "Normal", &narrative));
                    }
                    Shown::Waiting(_) | Shown::Unknown => {}
                }
                known.shown = shown.clone();
            }
        }

        // Phase.
        if *life.phase != *phase {
            let seconds =
                (pod.at.as_millisecond() - life.phase_since.as_millisecond()) as f64 / 1000.0;
            let seconds = seconds.max(0.0);
            let mut line = Line::new(&pod, "PhaseChanged", phase);
            line.phase = Some(phase);
            line.previous_phase = Some(&life.phase);
            line.seconds_in_previous_phase = Some(seconds);
            let severity = if phase == "Failed" {
                "Warning"
            } else {
                "Normal"
            };
            let narrative = format!(
                "Pod {namespace}/{name}: {} → {phase} after {seconds:.1}s",
                life.phase
            );
            out.push(make(&pod, line, severity, &narrative));
            life.phase = phase.into();
            life.phase_since = pod.at;
        }
        s.pods.insert(uid.into(), life);
        out
    }
}

fn make<'a>(
    pod: &PodRef<'_>,
    mut line: Line<'a>,
    severity: &'static str,
    narrative: &'a str,
) -> Record {
    line.narrative = narrative;
    let json = serde_json::to_string(&line).unwrap_or_default();
    let reason = line.reason.to_owned();
    Record::new(
        RecordParts {
            kind: RecordKind::Lifecycle,
            subject: format!("{}/{}", pod.namespace, pod.name),
            severity,
            reason,
            narrative: narrative.to_owned(),
            correlation: pod.correlation.clone(),
            observed_at: pod.at,
            cluster: pod.cluster.clone(),
        },
        json,
    )
}

fn statuses(status: &Value) -> impl Iterator<Item = &Value> {
    [
        "initContainerStatuses",
        "containerStatuses",
        "ephemeralContainerStatuses",
    ]
    .into_iter()
    .filter_map(|k| status[k].as_array())
    .flatten()
}

/// Each container's name, restart count and state.
fn container_states(status: &Value) -> Vec<(&str, u32, Shown)> {
    statuses(status)
        .filter_map(|c| {
            let name = c["name"].as_str()?;
            let restarts = u32::try_from(c["restartCount"].as_u64().unwrap_or(0)).unwrap_or(0);
            let state = &c["state"];
            let shown = if state["running"].is_object() {
                Shown::Running
            } else if let Some(t) = state["terminated"].as_object() {
                Shown::Terminated(
                    t.get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or("Terminated")
                        .into(),
                    t.get("exitCode").and_then(Value::as_i64).unwrap_or(0),
                )
            } else if let Some(w) = state["waiting"].as_object() {
                Shown::Waiting(w.get("reason").and_then(Value::as_str).unwrap_or("").into())
            } else {
                Shown::Unknown
            };
            Some((name, restarts, shown))
        })
        .collect()
}

fn find<'a>(status: &'a Value, container: &str) -> Option<&'a Value> {
    statuses(status).find(|c| c["name"].as_str() == Some(container))
}

/// The reason and exit code of a container's last terminated instance.
fn last_termination(status: &Value, container: &str) -> Option<(String, i64)> {
    let t = find(status, container)?["lastState"]["terminated"].as_object()?;
    Some((
        t.get("reason")
            .and_then(Value::as_str)
            .unwrap_or("Terminated")
            .to_owned(),
        t.get("exitCode").and_then(Value::as_i64).unwrap_or(0),
    ))
}

fn waiting_message(status: &Value, container: &str) -> Option<String> {
    find(status, container)?["state"]["waiting"]["message"]
        .as_str()
        .map(str::to_owned)
}
