//! One readable sentence per Kubernetes Event: rules for the common
//! reasons of the scheduler, the kubelet and the workload controllers,
//! and a plain fallback (`<Kind> <ns>/<name>: <reason> — <note>`).

use std::fmt::Write;

/// What a narrative is made of.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Said<'a> {
    pub kind: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub reason: &'a str,
    pub note: &'a str,
    pub reporting: &'a str,
    pub count: u64,
}

/// The text between the first pair of double quotes, else `None`.
fn quoted(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once('"')?;
    let (inner, _) = rest.split_once('"')?;
    Some(inner)
}

/// The note with `prefix` taken off its start (and a `: ` after it).
fn after<'a>(note: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = note.strip_prefix(prefix)?;
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    Some(rest.trim())
}

/// The note with its first letter in lower case, for use after a colon.
fn lowered(note: &str) -> String {
    let mut chars = note.chars();
    match chars.next() {
        Some(first) if !note.starts_with("Pod") && !note.starts_with("Node") => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => note.to_owned(),
    }
}

/// The sentence for an Event.
pub(crate) fn narrate(s: &Said<'_>) -> String {
    let mut out = String::with_capacity(64 + s.note.len());
    out.push_str(s.kind);
    out.push(' ');
    if let Some(ns) = s.namespace.filter(|ns| !ns.is_empty()) {
        out.push_str(ns);
        out.push('/');
    }
    out.push_str(s.name);
    out.push_str(": ");
    let by = if s.reporting.is_empty() {
        String::new()
    } else {
        format!(" by {}", s.reporting)
    };
    let times = if s.count > 1 {
        format!(" ({} times)", s.count)
    } else {
        String::new()
    };
    let note = s.note.trim();
    let rule: Option<String> = match (s.kind, s.reason) {
        (_, "Scheduled") => note
            .rsplit_once(" to ")
            .map(|(_, node)| format!("scheduled to {node}{by}")),
        (_, "FailedScheduling") => Some(format!("could not be scheduled{times} — {note}")),
        (_, "Pulling") => quoted(note).map(|image| format!("pulling image {image}")),
        (_, "Pulled") => quoted(note).map(|image| {
            if note.contains("already present") {
                format!("image {image} already present on the node")
            } else {
                format!("pulled image {image}")
            }
        }),
        (_, "Failed") if note.contains("image") => Some(format!("image pull failed — {note}")),
        (_, "Created") => {
            after(note, "Created container").map(|c| format!("created container {c}"))
        }
        (_, "Started") => {
            after(note, "Started container").map(|c| format!("started container {c}"))
        }
        (_, "Killing") => {
            after(note, "Stopping container").map(|c| format!("stopping container {c}"))
        }
        (_, "BackOff") => {
            if let Some(rest) = after(note, "Back-off restarting failed container") {
                let container = rest.split_whitespace().next().unwrap_or(rest);
                Some(format!(
                    "back-off restarting failed container {container}{times}"
                ))
            } else {
                quoted(note).map(|image| format!("back-off pulling image {image}{times}"))
            }
        }
        (_, "Unhealthy") => Some(format!("probe failed{times} — {note}")),
        (_, "ScalingReplicaSet") => Some(lowered(note)),
        (_, "SuccessfulCreate") => after(note, "Created pod")
            .map(|p| format!("created pod {p}"))
            .or_else(|| after(note, "Created job").map(|j| format!("created job {j}"))),
        (_, "SuccessfulDelete") => after(note, "Deleted pod")
            .map(|p| format!("deleted pod {p}"))
            .or_else(|| after(note, "Deleted job").map(|j| format!("deleted job {j}"))),
        ("Job", "Completed") => Some("completed".to_owned()),
        ("Job", "BackoffLimitExceeded") => {
            Some("failed: the back-off limit was reached".to_owned())
        }
        (_, "SawCompletedJob") => Some(lowered(note)),
        ("Node", "RegisteredNode") => Some(format!("registered{by}")),
        ("Node", _) if note.contains("status is now: ") => note
            .split_once("status is now: ")
            .map(|(_, what)| format!("status is now {what}")),
        _ => None,
    };
    match rule {
        Some(text) => out.push_str(&text),
        None if note.is_empty() => out.push_str(s.reason),
        None => {
            let _ = write!(out, "{} — {note}", s.reason);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said<'a>(kind: &'a str, name: &'a str, reason: &'a str, note: &'a str) -> Said<'a> {
        Said {
            kind,
            namespace: Some("shop"),
            name,
            reason,
            note,
            reporting: "",
            count: 1,
        }
    }

    #[test]
    fn pods() {
        let mut s = said(
            "Pod",
            "web-7d9f-x2k",
            "Scheduled",
            "Successfully assigned shop/web-7d9f-x2k to node-3",
        );
        s.reporting = "default-scheduler";
        assert_eq!(
            narrate(&s),
            "Pod shop/web-7d9f-x2k: scheduled to node-3 by default-scheduler"
        );
        let mut s = said(
            "Pod",
            "web-7d9f-x2k",
            "BackOff",
            "Back-off restarting failed container app in pod web-7d9f-x2k_shop(1234)",
        );
        s.count = 5;
        assert_eq!(
            narrate(&s),
            "Pod shop/web-7d9f-x2k: back-off restarting failed container app (5 times)"
        );
        assert_eq!(
            narrate(&said(
                "Pod",
                "p",
                "FailedScheduling",
                "0/3 nodes are available: 3 Insufficient cpu."
            )),
            "Pod shop/p: could not be scheduled — 0/3 nodes are available: 3 Insufficient cpu."
        );
        assert_eq!(
            narrate(&said(
                "Pod",
                "p",
                "Pulled",
                "Container image \"nginx:1.27\" already present on machine"
            )),
            "Pod shop/p: image nginx:1.27 already present on the node"
        );
        assert_eq!(
            narrate(&said(
                "Pod",
                "p",
                "Pulled",
                "Successfully pulled image \"nginx:1.27\" in 1.2s"
            )),
            "Pod shop/p: pulled image nginx:1.27"
        );
        assert_eq!(
            narrate(&said("Pod", "p", "Killing", "Stopping container app")),
            "Pod shop/p: stopping container app"
        );
        assert_eq!(
            narrate(&said("Pod", "p", "Created", "Created container: app")),
            "Pod shop/p: created container app"
        );
        assert_eq!(
            narrate(&said("Pod", "p", "Started", "Started container app")),
            "Pod shop/p: started container app"
        );
    }

    #[test]
    fn workloads_and_nodes() {
        assert_eq!(
            narrate(&said(
                "Deployment",
                "web",
                "ScalingReplicaSet",
                "Scaled up replica set web-7d9f to 3"
            )),
            "Deployment shop/web: scaled up replica set web-7d9f to 3"
        );
        assert_eq!(
            narrate(&said(
                "ReplicaSet",
                "web-7d9f",
                "SuccessfulCreate",
                "Created pod: web-7d9f-x2k"
            )),
            "ReplicaSet shop/web-7d9f: created pod web-7d9f-x2k"
        );
        assert_eq!(
            narrate(&said("Job", "backup", "Completed", "Job completed")),
            "Job shop/backup: completed"
        );
        let node = Said {
            namespace: None,
            ..said(
                "Node",
                "node-1",
                "NodeReady",
                "Node node-1 status is now: NodeReady",
            )
        };
        assert_eq!(narrate(&node), "Node node-1: status is now NodeReady");
    }

    #[test]
    fn anything_else_has_the_plain_form() {
        assert_eq!(
            narrate(&said(
                "Service",
                "web",
                "EnsuringLoadBalancer",
                "Ensuring load balancer"
            )),
            "Service shop/web: EnsuringLoadBalancer — Ensuring load balancer"
        );
        assert_eq!(
            narrate(&said("Pod", "p", "Scheduled", "")),
            "Pod shop/p: Scheduled"
        );
    }
}
