//! Records that tell what happened around the objects: Kubernetes Event
//! occurrences and pod lifecycle changes. Each is built once, with its
//! JSON line made at construction, and shared by every handler.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Which kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    /// One or more occurrences of a Kubernetes Event (`{"kind":"k8s-event"}`).
    K8sEvent,
    /// A pod's phase, container state, restart, deletion or replacement
    /// (`{"kind":"lifecycle"}`).
    Lifecycle,
}

impl RecordKind {
    /// Every kind, in a fixed order (usable as an index).
    pub const ALL: [RecordKind; 2] = [RecordKind::K8sEvent, RecordKind::Lifecycle];

    /// `k8s-event` or `lifecycle`, as in the records' `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::K8sEvent => "k8s-event",
            RecordKind::Lifecycle => "lifecycle",
        }
    }

    /// The position of this kind in [`RecordKind::ALL`].
    pub fn index(self) -> usize {
        match self {
            RecordKind::K8sEvent => 0,
            RecordKind::Lifecycle => 1,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Kubernetes Event occurrence or a lifecycle record. Cloning is one
/// reference-count increment; the JSON line was made when it was built.
#[derive(Debug, Clone)]
pub struct Record(Arc<RecordData>);

#[derive(Debug)]
struct RecordData {
    kind: RecordKind,
    subject: Box<str>,
    severity: Box<str>,
    reason: Box<str>,
    narrative: Box<str>,
    correlation: Option<Arc<str>>,
    observed_at: jiff::Timestamp,
    json: Box<str>,
}

/// The parts of a [`Record`] besides its JSON.
#[derive(Debug, Clone)]
pub struct RecordParts {
    /// Which kind.
    pub kind: RecordKind,
    /// The object it is about, `namespace/name` (or `name`): records of
    /// one object keep their order.
    pub subject: String,
    /// `Normal` or `Warning`.
    pub severity: &'static str,
    /// The Event's reason or the lifecycle change (`Scheduled`, `OOMKilled`).
    pub reason: String,
    /// One readable sentence.
    pub narrative: String,
    /// The top owner's id (or workload id).
    pub correlation: Option<Arc<str>>,
    /// When Faro observed it.
    pub observed_at: jiff::Timestamp,
    /// The cluster it comes from, when Faro watches clusters by name; it
    /// leads the JSON object as `"cluster"`.
    pub cluster: Option<Arc<str>>,
}

impl Record {
    /// A record with `json`, its complete JSON object (one line, no
    /// newline), made by whoever knows its fields.
    pub fn new(parts: RecordParts, json: String) -> Self {
        let json = match (&parts.cluster, json.strip_prefix('{')) {
            (Some(cluster), Some(rest)) => {
                let name = serde_json::to_string(&**cluster).unwrap_or_default();
                let comma = if rest.starts_with('}') { "" } else { "," };
                format!("{{\"cluster\":{name}{comma}{rest}")
            }
            _ => json,
        };
        Record(Arc::new(RecordData {
            kind: parts.kind,
            subject: parts.subject.into_boxed_str(),
            severity: parts.severity.into(),
            reason: parts.reason.into_boxed_str(),
            narrative: parts.narrative.into_boxed_str(),
            correlation: parts.correlation,
            observed_at: parts.observed_at,
            json: json.into_boxed_str(),
        }))
    }

    /// Which kind.
    pub fn kind(&self) -> RecordKind {
        self.0.kind
    }

    /// The object it is about, `namespace/name` or `name`.
    pub fn subject(&self) -> &str {
        &self.0.subject
    }

    /// `Normal` or `Warning`.
    pub fn severity(&self) -> &str {
        &self.0.severity
    }

    /// The Event's reason, or the lifecycle change.
    pub fn reason(&self) -> &str {
        &self.0.reason
    }

    /// One readable sentence.
    pub fn narrative(&self) -> &str {
        &self.0.narrative
    }

    /// The id of the workload the record belongs to.
    pub fn correlation(&self) -> Option<&Arc<str>> {
        self.0.correlation.as_ref()
    }

    /// When Faro observed it.
    pub fn observed_at(&self) -> jiff::Timestamp {
        self.0.observed_at
    }

    /// The JSON object, one line without its newline.
    pub fn json(&self) -> &str {
        &self.0.json
    }

    /// Appends the JSON line with its newline.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.json.as_bytes());
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(cluster: Option<&str>) -> RecordParts {
        RecordParts {
            kind: RecordKind::Lifecycle,
            subject: "shop/web-1".into(),
            severity: "Normal",
            reason: "Started".into(),
            narrative: "started".into(),
            correlation: None,
            observed_at: jiff::Timestamp::UNIX_EPOCH,
            cluster: cluster.map(Arc::from),
        }
    }

    #[test]
    fn a_named_cluster_leads_the_json_object() {
        let r = Record::new(
            parts(Some("prod \"eu\"")),
            r#"{"kind":"lifecycle","a":1}"#.into(),
        );
        assert_eq!(
            r.json(),
            r#"{"cluster":"prod \"eu\"","kind":"lifecycle","a":1}"#
        );
        let empty = Record::new(parts(Some("eu")), "{}".into());
        assert_eq!(empty.json(), r#"{"cluster":"eu"}"#);
        let unnamed = Record::new(parts(None), r#"{"kind":"lifecycle"}"#.into());
        assert_eq!(unnamed.json(), r#"{"kind":"lifecycle"}"#);
        for r in [r, empty, unnamed] {
            serde_json::from_str::<serde_json::Value>(r.json()).expect("valid JSON");
        }
    }
}
