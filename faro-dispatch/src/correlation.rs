//! One complete JSON document per correlation: every record of a workload
//! (resource events, container log lines, Kubernetes Event occurrences,
//! lifecycle records) kept in arrival order, and written at once —
//! temporary file, fsync, rename, fsync of the directory — when the top
//! owner is deleted, when the correlation has been idle, and at shutdown.
//! A reader sees no file or a complete one, never a part.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faro_core::{CorrelationOutputConfig, EventType, LogRecord, MatchedEvent, Record, RecordKind};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::envelope::json_line;
use crate::worker::{Handles, ResourceWorker, WorkerError};

/// The correlation sink's metrics.
#[derive(Debug, Clone, Default)]
pub struct CorrelationMetrics {
    /// Correlations by state: `open` (in memory) and `written` (closed
    /// into a file since the start).
    pub correlations: Family<[(&'static str, String); 1], Gauge>,
    /// Bytes of records held in memory.
    pub bytes: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Documents written.
    pub files_written: Counter,
    /// Records dropped from memory past a correlation's byte budget.
    pub spilled: Counter,
    /// Documents that could not be written.
    pub write_failures: Counter<u64, AtomicU64>,
}

impl CorrelationMetrics {
    /// Registers every metric on `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "faro_correlations",
            "Correlations by state (open in memory, written to a file)",
            self.correlations.clone(),
        );
        registry.register(
            "faro_correlation_bytes",
            "Bytes of correlation records held in memory",
            self.bytes.clone(),
        );
        registry.register(
            "faro_correlation_files_written",
            "Correlation documents written",
            self.files_written.clone(),
        );
        registry.register(
            "faro_correlation_spilled",
            "Records dropped from memory past a correlation's byte budget",
            self.spilled.clone(),
        );
        registry.register(
            "faro_correlation_write_failures",
            "Correlation documents that could not be written",
            self.write_failures.clone(),
        );
    }
}

/// Counts of one correlation's records, by kind.
#[derive(Debug, Default, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
struct Counts {
    events: u64,
    logs: u64,
    k8s_events: u64,
    lifecycle: u64,
}

struct Open {
    first_seen: jiff::Timestamp,
    last_seen: jiff::Timestamp,
    last_at: Instant,
    records: VecDeque<Box<[u8]>>,
    bytes: u64,
    counts: Counts,
    spilled: u64,
}

#[derive(Default)]
struct State {
    open: HashMap<Arc<str>, Open>,
    written: u64,
}

/// Writes one JSON document per correlation into a directory. Register it
/// with one lane, so that records keep their arrival order.
pub struct CorrelationSink {
    directory: PathBuf,
    budget: u64,
    close_after_idle: Duration,
    state: Mutex<State>,
    metrics: CorrelationMetrics,
}

impl std::fmt::Debug for CorrelationSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorrelationSink")
            .field("directory", &self.directory)
            .finish_non_exhaustive()
    }
}

/// The header of a document; `records` follows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Header<'a> {
    correlation: &'a str,
    first_seen: String,
    last_seen: String,
    counts: Counts,
    spilled: u64,
}

impl CorrelationSink {
    /// The worker name.
    pub const NAME: &'static str = "correlations";

    /// A sink writing into `directory`, which is created and checked for
    /// writing now; stale temporary files of an earlier run are removed.
    pub fn create(directory: &Path, config: &CorrelationOutputConfig) -> io::Result<Self> {
        std::fs::create_dir_all(directory)?;
        let probe = directory.join(".faro-write-check");
        File::create(&probe)?.write_all(b"ok")?;
        std::fs::remove_file(&probe)?;
        for entry in std::fs::read_dir(directory)?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let metrics = CorrelationMetrics::default();
        for state in ["open", "written"] {
            metrics
                .correlations
                .get_or_create(&[("state", state.to_owned())])
                .set(0);
        }
        Ok(Self {
            directory: directory.to_path_buf(),
            budget: config.max_bytes_per_correlation,
            close_after_idle: config.close_after_idle,
            state: Mutex::default(),
            metrics,
        })
    }

    /// Where the documents go.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The sink's metrics.
    pub fn metrics(&self) -> &CorrelationMetrics {
        &self.metrics
    }

    /// Correlations held in memory now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds one record's JSON to its correlation, and writes the document
    /// now when `close` says the top owner is gone.
    fn add(
        &self,
        correlation: &Arc<str>,
        json: Box<[u8]>,
        kind: usize,
        at: jiff::Timestamp,
        close: bool,
    ) {
        let mut s = self.lock();
        let open = s.open.entry(correlation.clone()).or_insert_with(|| Open {
            first_seen: at,
            last_seen: at,
            last_at: Instant::now(),
            records: VecDeque::new(),
            bytes: 0,
            counts: Counts::default(),
            spilled: 0,
        });
        open.last_seen = at;
        open.last_at = Instant::now();
        match kind {
            0 => open.counts.events += 1,
            1 => open.counts.logs += 1,
            2 => open.counts.k8s_events += 1,
            _ => open.counts.lifecycle += 1,
        }
        let len = json.len() as u64;
        open.bytes += len;
        open.records.push_back(json);
        let mut freed = 0u64;
        while open.bytes > self.budget && open.records.len() > 1 {
            if let Some(old) = open.records.pop_front() {
                open.bytes -= old.len() as u64;
                freed += old.len() as u64;
                open.spilled += 1;
                self.metrics.spilled.inc();
            }
        }
        self.metrics.bytes.inc_by(i64::try_from(len).unwrap_or(0));
        self.metrics.bytes.dec_by(i64::try_from(freed).unwrap_or(0));
        let done = if close {
            s.open.remove(correlation)
        } else {
            None
        };
        self.publish(&s);
        drop(s);
        if let Some(done) = done {
            self.write(correlation, &done);
        }
    }

    fn publish(&self, s: &State) {
        let c = &self.metrics.correlations;
        c.get_or_create(&[("state", "open".to_owned())])
            .set(i64::try_from(s.open.len()).unwrap_or(i64::MAX));
        c.get_or_create(&[("state", "written".to_owned())])
            .set(i64::try_from(s.written).unwrap_or(i64::MAX));
    }

    /// Writes the correlations idle for `close_after_idle` (all with `all`).
    fn close_idle(&self, all: bool) {
        let now = Instant::now();
        let done: Vec<(Arc<str>, Open)> = {
            let mut s = self.lock();
            let ids: Vec<Arc<str>> = s
                .open
                .iter()
                .filter(|(_, o)| all || now.duration_since(o.last_at) >= self.close_after_idle)
                .map(|(id, _)| id.clone())
                .collect();
            let done = ids
                .into_iter()
                .filter_map(|id| s.open.remove(&id).map(|o| (id, o)))
                .collect();
            self.publish(&s);
            done
        };
        for (id, open) in done {
            self.write(&id, &open);
        }
    }

    /// Writes one document atomically; a failure leaves no file behind.
    fn write(&self, id: &str, open: &Open) {
        self.metrics
            .bytes
            .dec_by(i64::try_from(open.bytes).unwrap_or(0));
        let result = self.write_file(id, open);
        let mut s = self.lock();
        match result {
            Ok(path) => {
                s.written += 1;
                self.metrics.files_written.inc();
                tracing::debug!(correlation = id, path = %path.display(), "correlation written");
            }
            Err(e) => {
                self.metrics.write_failures.inc();
                tracing::warn!(
                    correlation = id,
                    "writing the correlation document failed: {e}; its records stay in the JSON lines files"
                );
            }
        }
        self.publish(&s);
    }

    fn write_file(&self, id: &str, open: &Open) -> io::Result<PathBuf> {
        let safe = safe_name(id);
        let mut body = Vec::with_capacity(usize::try_from(open.bytes).unwrap_or(0) + 256);
        let header = Header {
            correlation: id,
            first_seen: open.first_seen.to_string(),
            last_seen: open.last_seen.to_string(),
            counts: open.counts,
            spilled: open.spilled,
        };
        serde_json::to_writer(&mut body, &header).map_err(io::Error::other)?;
        body.pop(); // the header's closing brace
        body.extend_from_slice(b",\"records\":[");
        for (i, record) in open.records.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(record);
        }
        body.extend_from_slice(b"]}\n");
        let tmp = self.directory.join(format!(".{safe}.json.tmp"));
        let written = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(&body)?;
            file.sync_all()?;
            let target = self.free_name(&safe);
            std::fs::rename(&tmp, &target)?;
            File::open(&self.directory)?.sync_all()?;
            Ok(target)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// `<safe>.json`, or `<safe>.N.json` for the first N from 2 not taken:
    /// a correlation that comes back never overwrites its earlier document.
    fn free_name(&self, safe: &str) -> PathBuf {
        let first = self.directory.join(format!("{safe}.json"));
        if !first.exists() {
            return first;
        }
        (2u32..)
            .map(|n| self.directory.join(format!("{safe}.{n}.json")))
            .find(|p| !p.exists())
            .unwrap_or(first)
    }
}

/// A file name for a correlation id: letters, digits, `.`, `-` and `_`
/// kept, anything else `_` (`Deployment/shop/web` → `Deployment_shop_web`).
pub(crate) fn safe_name(id: &str) -> String {
    let name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    match name.trim_start_matches('.') {
        "" => "_".to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

/// Whether `event` is the deletion of its correlation's top owner.
fn closes(event: &MatchedEvent, correlation: &str) -> bool {
    if event.event_type() != EventType::Deleted {
        return false;
    }
    let Some(kind) = event.object().types.as_ref().map(|t| t.kind.as_str()) else {
        return false;
    };
    let key = event.key();
    let Some(rest) = correlation
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return false;
    };
    match &key.namespace {
        Some(ns) => {
            rest.strip_prefix(ns.as_str())
                .and_then(|r| r.strip_prefix('/'))
                == Some(key.name.as_str())
        }
        None => rest == key.name,
    }
}

#[async_trait::async_trait]
impl ResourceWorker for CorrelationSink {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn handles(&self) -> Handles {
        Handles::All
    }

    async fn handle(&self, event: &MatchedEvent) -> Result<(), WorkerError> {
        let Some(correlation) = event.correlation() else {
            return Ok(());
        };
        let mut line = Vec::with_capacity(512);
        json_line(event, &mut line);
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let close = closes(event, correlation);
        self.add(
            correlation,
            line.into_boxed_slice(),
            0,
            event.observed_at(),
            close,
        );
        Ok(())
    }

    fn wants_logs(&self) -> bool {
        true
    }

    async fn handle_log(&self, record: &LogRecord) -> Result<(), WorkerError> {
        let Some(correlation) = record.source().correlation.as_ref() else {
            return Ok(());
        };
        let mut line = Vec::with_capacity(256);
        record.write_json(&mut line);
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        self.add(
            correlation,
            line.into_boxed_slice(),
            1,
            record.observed_at(),
            false,
        );
        Ok(())
    }

    fn wants_records(&self, _kind: RecordKind) -> bool {
        true
    }

    async fn handle_record(&self, record: &Record) -> Result<(), WorkerError> {
        let Some(correlation) = record.correlation() else {
            return Ok(());
        };
        let kind = match record.kind() {
            RecordKind::K8sEvent => 2,
            RecordKind::Lifecycle => 3,
        };
        self.add(
            correlation,
            record.json().as_bytes().into(),
            kind,
            record.observed_at(),
            false,
        );
        Ok(())
    }

    async fn idle(&self) {
        self.close_idle(false);
    }

    /// True while correlations are open: their idle time is checked again.
    fn unfinished(&self) -> bool {
        !self.lock().open.is_empty()
    }

    async fn shutdown(&self) -> Result<(), WorkerError> {
        self.close_idle(true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::safe_name;

    #[test]
    fn ids_become_plain_file_names() {
        assert_eq!(safe_name("Deployment/shop/web"), "Deployment_shop_web");
        assert_eq!(safe_name("../etc/passwd"), "_etc_passwd");
        assert_eq!(safe_name("toda-1 x"), "toda-1_x");
        assert_eq!(safe_name(""), "_");
    }
}
