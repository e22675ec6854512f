//! Container log lines as Faro hands them to handlers, beside resource events.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

/// Which kind of container in the pod spec wrote a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerType {
    /// `spec.initContainers` that run to completion before the others.
    Init,
    /// `spec.containers`.
    Regular,
    /// `spec.initContainers` with `restartPolicy: Always`, which keep running.
    Sidecar,
    /// `spec.ephemeralContainers` (`kubectl debug`).
    Ephemeral,
}

impl ContainerType {
    /// `init`, `regular`, `sidecar` or `ephemeral`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerType::Init => "init",
            ContainerType::Regular => "regular",
            ContainerType::Sidecar => "sidecar",
            ContainerType::Ephemeral => "ephemeral",
        }
    }
}

impl fmt::Display for ContainerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One container of one pod: shared by every line it writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerRef {
    /// The pod's namespace.
    pub namespace: Arc<str>,
    /// The pod's name.
    pub pod: Arc<str>,
    /// The pod's uid: a pod of the same name later is another pod.
    pub pod_uid: Arc<str>,
    /// The container's name.
    pub container: Arc<str>,
    /// Where in the pod spec it is declared.
    pub container_type: ContainerType,
    /// The id of the workload the pod belongs to (its top owner).
    pub correlation: Option<Arc<str>>,
    /// The cluster the pod runs in, when Faro watches clusters by name.
    pub cluster: Option<Arc<str>>,
}

impl fmt::Display for ContainerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.namespace, self.pod, self.container)
    }
}

/// One line a container wrote, built once and shared by every handler.
/// Cloning is one reference-count increment.
#[derive(Debug, Clone)]
pub struct LogRecord(Arc<LogData>);

#[derive(Debug)]
struct LogData {
    source: Arc<ContainerRef>,
    restart_count: u32,
    /// `timestamp line`, in one allocation: the timestamp ends at `split`.
    text: Box<str>,
    split: usize,
    observed_at: jiff::Timestamp,
    previous: bool,
    truncated: bool,
    serialized: OnceLock<Arc<[u8]>>,
}

impl LogRecord {
    /// A line written by instance `restart_count` of `source` at the
    /// kubelet's `timestamp` (RFC 3339, as the log endpoint gave it).
    pub fn builder(
        source: Arc<ContainerRef>,
        restart_count: u32,
        timestamp: &str,
        line: &str,
    ) -> LogRecordBuilder {
        let mut text = String::with_capacity(timestamp.len() + 1 + line.len());
        text.push_str(timestamp);
        text.push(' ');
        text.push_str(line);
        Self::from_line(
            source,
            restart_count,
            text.into_boxed_str(),
            timestamp.len(),
        )
    }

    /// A line as the log endpoint gives it with `timestamps=true`:
    /// `text[..split]` is the timestamp, `text[split + 1..]` the line (or
    /// nothing when `split` is the end). No copy is made.
    pub fn from_line(
        source: Arc<ContainerRef>,
        restart_count: u32,
        text: Box<str>,
        split: usize,
    ) -> LogRecordBuilder {
        let split = if text.is_char_boundary(split) {
            split.min(text.len())
        } else {
            0
        };
        LogRecordBuilder {
            data: LogData {
                source,
                restart_count,
                text,
                split,
                observed_at: jiff::Timestamp::now(),
                previous: false,
                truncated: false,
                serialized: OnceLock::new(),
            },
        }
    }

    /// The container that wrote the line.
    pub fn source(&self) -> &Arc<ContainerRef> {
        &self.0.source
    }

    /// The container instance: the pod status's `restartCount` when it ran.
    pub fn restart_count(&self) -> u32 {
        self.0.restart_count
    }

    /// When the kubelet received the line (RFC 3339 with nanoseconds).
    pub fn timestamp(&self) -> &str {
        &self.0.text[..self.0.split]
    }

    /// When Faro read it.
    pub fn observed_at(&self) -> jiff::Timestamp {
        self.0.observed_at
    }

    /// The line, without its newline (cut at `max_line_bytes`).
    pub fn line(&self) -> &str {
        self.0.text.get(self.0.split + 1..).unwrap_or_default()
    }

    /// True when read from a terminated instance (`previous=true`).
    pub fn is_previous(&self) -> bool {
        self.0.previous
    }

    /// True when the line was longer than allowed and was cut.
    pub fn is_truncated(&self) -> bool {
        self.0.truncated
    }

    /// The record's serialised form: `make` runs on the first call only.
    pub fn serialized(&self, make: impl FnOnce(&LogRecord) -> Vec<u8>) -> Arc<[u8]> {
        self.0
            .serialized
            .get_or_init(|| Arc::from(make(self)))
            .clone()
    }

    /// The JSON record of the container-logs file, with its newline:
    /// `{"kind":"log","timestamp",…,"line"}`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Line<'a> {
            kind: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            cluster: Option<&'a str>,
            timestamp: &'a str,
            observed: AsText<jiff::Timestamp>,
            namespace: &'a str,
            pod: &'a str,
            pod_uid: &'a str,
            container: &'a str,
            container_type: ContainerType,
            restart_count: u32,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            previous: bool,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            truncated: bool,
            line: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            correlation: Option<&'a str>,
        }
        let d = &self.0;
        let s = &d.source;
        let line = Line {
            kind: "log",
            cluster: s.cluster.as_deref(),
            timestamp: self.timestamp(),
            observed: AsText(d.observed_at),
            namespace: &s.namespace,
            pod: &s.pod,
            pod_uid: &s.pod_uid,
            container: &s.container,
            container_type: s.container_type,
            restart_count: d.restart_count,
            previous: d.previous,
            truncated: d.truncated,
            line: self.line(),
            correlation: s.correlation.as_deref(),
        };
        if serde_json::to_writer(&mut *out, &line).is_ok() {
            out.push(b'\n');
        }
    }
}

/// Serialises a value through its `Display`, without an intermediate string.
struct AsText<T>(T);

impl<T: fmt::Display> Serialize for AsText<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// Sets the less common parts of a [`LogRecord`].
#[derive(Debug)]
pub struct LogRecordBuilder {
    data: LogData,
}

impl LogRecordBuilder {
    /// When Faro read the line.
    #[must_use]
    pub fn observed_at(mut self, at: jiff::Timestamp) -> Self {
        self.data.observed_at = at;
        self
    }

    /// Read from a terminated instance.
    #[must_use]
    pub fn previous(mut self, previous: bool) -> Self {
        self.data.previous = previous;
        self
    }

    /// Cut at the configured length.
    #[must_use]
    pub fn truncated(mut self, truncated: bool) -> Self {
        self.data.truncated = truncated;
        self
    }

    /// The finished, shareable record.
    pub fn build(self) -> LogRecord {
        LogRecord(Arc::new(self.data))
    }
}
