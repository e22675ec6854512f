//! The built-in sinks: the JSON lines event file of the output contract, a
//! human-readable text log (both resource workers for every GVR), the
//! container-logs file of log lines, and the k8s-events and lifecycle
//! files of records.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faro_core::{EventType, LogRecord, MatchedEvent, Record, RecordKind};

use crate::envelope::json_line;
use crate::worker::{Handles, ResourceWorker, WorkerError};

/// Lines are flushed at least this often while events keep coming.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Lines are written once this many bytes wait, whatever the time.
const FLUSH_BYTES: usize = 1 << 20;

/// Past this many bytes waiting while the disk refuses them, a sink stops
/// taking events until it can write again (backpressure reaches the queue).
const MAX_UNWRITTEN: usize = 8 << 20;

struct Buffered {
    file: File,
    buffer: Vec<u8>,
    /// Lines in `buffer`, by ADDED, UPDATED, DELETED.
    buffered: [u64; 3],
    /// The file's length after the last whole write.
    committed: u64,
    last_flush: Instant,
    /// Writing fails now (one warning when it starts, one when it ends).
    failing: bool,
}

impl Buffered {
    /// Writes every buffered line or none: a short write (a full disk) is
    /// cut back to the last whole line, and the lines stay buffered.
    fn flush(&mut self) -> io::Result<[u64; 3]> {
        self.last_flush = Instant::now();
        if self.buffer.is_empty() {
            return Ok([0; 3]);
        }
        if let Err(e) = self.file.write_all(&self.buffer) {
            let _ = self.file.set_len(self.committed);
            return Err(e);
        }
        self.committed += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(std::mem::take(&mut self.buffered))
    }
}

/// An append-only file of whole lines: buffered, written when a lane goes
/// idle or every 100 ms, never left with a partial line, and holding its
/// lines in memory while the disk refuses them.
struct LineFile {
    path: PathBuf,
    state: Mutex<Buffered>,
    /// Lines in the file, by ADDED, UPDATED, DELETED.
    written: [AtomicU64; 3],
    /// Writes that failed (each attempt).
    failures: AtomicU64,
    healthy: AtomicBool,
}

/// The length of `file` up to and including its last newline.
fn whole_lines_len(file: &File) -> io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let mut reader = file;
    let mut end = len;
    let mut chunk = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let n = usize::try_from(end - start).unwrap_or(0);
        reader.seek(SeekFrom::Start(start))?;
        reader.read_exact(&mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// `<output_dir>/logs/<prefix>-YYYYMMDD-HHMMSS.json`, creating `logs/`.
pub(crate) fn dated(output_dir: &Path, prefix: &str) -> io::Result<PathBuf> {
    let logs = output_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    Ok(logs.join(format!("{prefix}-{}.json", now.strftime("%Y%m%d-%H%M%S"))))
}

fn index_of(event: &MatchedEvent) -> usize {
    match event.event_type() {
        EventType::Added => 0,
        EventType::Updated => 1,
        EventType::Deleted => 2,
    }
}

impl LineFile {
    fn open(path: PathBuf) -> io::Result<Self> {
        let file = File::options()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)?;
        let committed = whole_lines_len(&file)?;
        if committed != file.metadata()?.len() {
            // A process killed mid-write left part of a line: cut it, so
            // that the lines appended now stay whole.
            file.set_len(committed)?;
        }
        Ok(Self {
            path,
            state: Mutex::new(Buffered {
                file,
                buffer: Vec::with_capacity(64 * 1024),
                buffered: [0; 3],
                committed,
                last_flush: Instant::now(),
                failing: false,
            }),
            written: Default::default(),
            failures: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Buffered) -> T) -> T {
        f(&mut self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Flushes, counting what reached the file and reporting a change of health once.
    fn flush_now(&self, b: &mut Buffered) -> io::Result<()> {
        match b.flush() {
            Ok(done) => {
                for (count, n) in self.written.iter().zip(done) {
                    count.fetch_add(n, Ordering::Relaxed);
                }
                if b.failing {
                    b.failing = false;
                    self.healthy.store(true, Ordering::Relaxed);
                    tracing::warn!(path = %self.path.display(), "writing works again; the lines that waited are written");
                }
                Ok(())
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if !b.failing {
                    b.failing = true;
                    self.healthy.store(false, Ordering::Relaxed);
                    tracing::warn!(
                        path = %self.path.display(),
                        "writing fails: {e}; lines wait in memory (whole lines only) and are written when it works again"
                    );
                }
                Err(e)
            }
        }
    }

    /// Buffers one line (written by `write`) counted under `index`,
    /// flushing when due.
    async fn push(&self, index: usize, write: impl FnOnce(&mut Vec<u8>)) {
        self.push_many(index, 1, write).await;
    }

    /// Buffers `lines` whole lines (written by `write`) counted under
    /// `index`, flushing when due.
    async fn push_many(&self, index: usize, lines: u64, write: impl FnOnce(&mut Vec<u8>)) {
        let stuck = self.with(|b| {
            write(&mut b.buffer);
            b.buffered[index] += lines;
            if b.buffer.len() >= FLUSH_BYTES || b.last_flush.elapsed() >= FLUSH_INTERVAL {
                // A failure is reported once by `flush_now`, not per event.
                let _ = self.flush_now(b);
            }
            b.failing && b.buffer.len() > MAX_UNWRITTEN
        });
        if stuck {
            // Take no more until the disk takes what waits: the queue fills
            // and the worker's full-queue policy applies.
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if self.with(|b| self.flush_now(b)).is_ok() {
                    break;
                }
            }
        }
    }

    fn idle(&self) {
        let _ = self.with(|b| self.flush_now(b));
    }

    fn unfinished(&self) -> bool {
        self.with(|b| !b.buffer.is_empty())
    }

    /// Writes what waits and syncs it to disk; returns the file's length.
    fn sync(&self) -> Result<u64, WorkerError> {
        self.with(|b| {
            self.flush_now(b)?;
            b.file.sync_data()?;
            Ok(b.committed)
        })
        .map_err(|e: io::Error| WorkerError::new(format!("writing {}: {e}", self.path.display())))
    }

    fn shutdown(&self) -> Result<(), WorkerError> {
        self.with(|b| {
            self.flush_now(b)?;
            b.file.sync_data()
        })
        .map_err(|e| WorkerError::new(format!("writing {}: {e}", self.path.display())))
    }
}

/// `<output_dir>/logs/events-YYYYMMDD-HHMMSS.json`: one JSON object per
/// event. Lines are buffered and written when the queue goes idle, at least
/// every 100 ms, and at shutdown; only whole lines ever reach the file, and
/// while the disk refuses them they wait (see [`JsonLinesSink::healthy`]).
/// Register it with one lane so that lines keep the order of events.
pub struct JsonLinesSink {
    file: LineFile,
}

impl std::fmt::Debug for JsonLinesSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesSink")
            .field("path", &self.file.path)
            .finish()
    }
}

impl JsonLinesSink {
    /// The worker name.
    pub const NAME: &'static str = "json-lines";

    /// Creates `<output_dir>/logs/` and a new event file named after the current time.
    pub fn create(output_dir: &Path) -> io::Result<Self> {
        Self::at(dated(output_dir, "events")?)
    }

    /// Appends to the file at `path`, creating it.
    pub fn at(path: PathBuf) -> io::Result<Self> {
        Ok(Self {
            file: LineFile::open(path)?,
        })
    }

    /// Lines in the file so far: (ADDED, UPDATED, DELETED).
    pub fn written(&self) -> (u64, u64, u64) {
        let [a, u, d] = &self.file.written;
        (
            a.load(Ordering::Relaxed),
            u.load(Ordering::Relaxed),
            d.load(Ordering::Relaxed),
        )
    }

    /// Where the lines go.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// False while writing the file fails (a full disk); lines wait in memory.
    pub fn healthy(&self) -> bool {
        self.file.healthy.load(Ordering::Relaxed)
    }

    /// Write attempts that failed so far.
    pub fn write_failures(&self) -> u64 {
        self.file.failures.load(Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl ResourceWorker for JsonLinesSink {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn handles(&self) -> Handles {
        Handles::All
    }

    async fn handle(&self, event: &MatchedEvent) -> Result<(), WorkerError> {
        self.file
            .push(index_of(event), |buf| json_line(event, buf))
            .await;
        Ok(())
    }

    async fn idle(&self) {
        self.file.idle();
    }

    fn unfinished(&self) -> bool {
        self.file.unfinished()
    }

    async fn flush(&self) -> Result<Option<faro_core::DurableMark>, WorkerError> {
        let offset = self.file.sync()?;
        Ok(Some(faro_core::DurableMark {
            path: self.file.path.clone(),
            offset,
        }))
    }

    async fn shutdown(&self) -> Result<(), WorkerError> {
        self.file.shutdown()
    }
}

/// `<output_dir>/logs/container-logs-YYYYMMDD-HHMMSS.json`: one JSON record
/// per container log line (`{"kind":"log",…}`), written like the event file
/// (whole lines, buffered, flushed when the queue goes idle). It takes no
/// resource events. Register it with lanes as you like: one container's
/// lines always share a lane, so they keep their order.
pub struct ContainerLogsSink {
    file: LineFile,
}

impl std::fmt::Debug for ContainerLogsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerLogsSink")
            .field("path", &self.file.path)
            .finish()
    }
}

impl ContainerLogsSink {
    /// The worker name.
    pub const NAME: &'static str = "container-logs";

    /// Creates `<output_dir>/logs/` and a new file named after the current time.
    pub fn create(output_dir: &Path) -> io::Result<Self> {
        Self::at(dated(output_dir, "container-logs")?)
    }

    /// Appends to the file at `path`, creating it.
    pub fn at(path: PathBuf) -> io::Result<Self> {
        Ok(Self {
            file: LineFile::open(path)?,
        })
    }

    /// Lines in the file so far.
    pub fn written(&self) -> u64 {
        self.file.written[0].load(Ordering::Relaxed)
    }

    /// Where the lines go.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// False while writing the file fails (a full disk); lines wait in memory.
    pub fn healthy(&self) -> bool {
        self.file.healthy.load(Ordering::Relaxed)
    }

    /// Write attempts that failed so far.
    pub fn write_failures(&self) -> u64 {
        self.file.failures.load(Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl ResourceWorker for ContainerLogsSink {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn handles(&self) -> Handles {
        Handles::Only(Vec::new())
    }

    async fn handle(&self, _event: &MatchedEvent) -> Result<(), WorkerError> {
        Ok(())
    }

    fn wants_logs(&self) -> bool {
        true
    }

    async fn handle_log(&self, record: &LogRecord) -> Result<(), WorkerError> {
        self.file.push(0, |buf| record.write_json(buf)).await;
        Ok(())
    }

    async fn handle_logs(&self, records: &[LogRecord]) -> Result<(), WorkerError> {
        self.file
            .push_many(0, records.len() as u64, |buf| {
                for record in records {
                    record.write_json(buf);
                }
            })
            .await;
        Ok(())
    }

    async fn idle(&self) {
        self.file.idle();
    }

    fn unfinished(&self) -> bool {
        self.file.unfinished()
    }

    async fn shutdown(&self) -> Result<(), WorkerError> {
        self.file.shutdown()
    }
}

/// `<output_dir>/logs/k8s-events-YYYYMMDD-HHMMSS.json` or
/// `lifecycle-YYYYMMDD-HHMMSS.json`: one JSON record per Kubernetes Event
/// occurrence (`{"kind":"k8s-event",…}`) or lifecycle change
/// (`{"kind":"lifecycle",…}`), written like the event file (whole lines,
/// buffered, flushed when the queue goes idle). It takes records of its
/// one kind only.
pub struct RecordsSink {
    kind: RecordKind,
    file: LineFile,
}

impl std::fmt::Debug for RecordsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordsSink")
            .field("kind", &self.kind)
            .field("path", &self.file.path)
            .finish()
    }
}

impl RecordsSink {
    /// The worker name for records of `kind`: `k8s-events` or `lifecycle`,
    /// also the file name's prefix.
    pub fn name_for(kind: RecordKind) -> &'static str {
        match kind {
            RecordKind::K8sEvent => "k8s-events",
            RecordKind::Lifecycle => "lifecycle",
        }
    }

    /// Creates `<output_dir>/logs/` and a new file named after the kind and the current time.
    pub fn create(output_dir: &Path, kind: RecordKind) -> io::Result<Self> {
        Self::at(dated(output_dir, Self::name_for(kind))?, kind)
    }

    /// Appends records of `kind` to the file at `path`, creating it.
    pub fn at(path: PathBuf, kind: RecordKind) -> io::Result<Self> {
        Ok(Self {
            kind,
            file: LineFile::open(path)?,
        })
    }

    /// Records in the file so far.
    pub fn written(&self) -> u64 {
        self.file.written[0].load(Ordering::Relaxed)
    }

    /// Where the records go.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// False while writing the file fails (a full disk); records wait in memory.
    pub fn healthy(&self) -> bool {
        self.file.healthy.load(Ordering::Relaxed)
    }

    /// Write attempts that failed so far.
    pub fn write_failures(&self) -> u64 {
        self.file.failures.load(Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl ResourceWorker for RecordsSink {
    fn name(&self) -> &str {
        Self::name_for(self.kind)
    }

    fn handles(&self) -> Handles {
        Handles::Only(Vec::new())
    }

    async fn handle(&self, _event: &MatchedEvent) -> Result<(), WorkerError> {
        Ok(())
    }

    fn wants_records(&self, kind: RecordKind) -> bool {
        kind == self.kind
    }

    async fn handle_record(&self, record: &Record) -> Result<(), WorkerError> {
        self.file.push(0, |buf| record.write_json(buf)).await;
        Ok(())
    }

    async fn idle(&self) {
        self.file.idle();
    }

    fn unfinished(&self) -> bool {
        self.file.unfinished()
    }

    async fn shutdown(&self) -> Result<(), WorkerError> {
        self.file.shutdown()
    }
}

/// One human-readable line per event:
/// `2026-11-24T10:00:00Z ADDED   v1/configmaps default/app rv=42`.
/// To a file (whole lines only, as the JSON lines sink) or to a writer
/// such as standard output.
pub struct TextLogSink {
    out: TextOut,
}

enum TextOut {
    File(LineFile),
    Writer(Mutex<Box<dyn Write + Send>>),
}

impl std::fmt::Debug for TextLogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextLogSink").finish_non_exhaustive()
    }
}

impl TextLogSink {
    /// The worker name.
    pub const NAME: &'static str = "text-log";

    /// Writes to `out` (standard output, a pipe).
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: TextOut::Writer(Mutex::new(out)),
        }
    }

    /// Appends to the file at `path`, creating it.
    pub fn at(path: PathBuf) -> io::Result<Self> {
        Ok(Self {
            out: TextOut::File(LineFile::open(path)?),
        })
    }

    fn writer(
        out: &Mutex<Box<dyn Write + Send>>,
    ) -> std::sync::MutexGuard<'_, Box<dyn Write + Send>> {
        out.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The line for `event`, without its newline.
    pub fn line(event: &MatchedEvent) -> String {
        let mut line = Vec::with_capacity(128);
        Self::write_line(event, &mut line);
        String::from_utf8(line).unwrap_or_default()
    }

    /// Appends the line of `event` (without its newline) to `out`.
    fn write_line(event: &MatchedEvent, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            "{} {:<7} {} {} rv={}",
            event.observed_at(),
            event.event_type().as_str(),
            event.gvr(),
            event.key(),
            event.resource_version()
        );
        if event.is_inferred() {
            out.extend_from_slice(b" inferred");
        }
        if let Some(w) = event.workload() {
            out.extend_from_slice(b" workload=");
            out.extend_from_slice(w.as_bytes());
        }
    }
}

#[async_trait::async_trait]
impl ResourceWorker for TextLogSink {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn handles(&self) -> Handles {
        Handles::All
    }

    async fn handle(&self, event: &MatchedEvent) -> Result<(), WorkerError> {
        match &self.out {
            TextOut::File(file) => {
                file.push(index_of(event), |buf| {
                    Self::write_line(event, buf);
                    buf.push(b'\n');
                })
                .await;
                Ok(())
            }
            TextOut::Writer(out) => writeln!(Self::writer(out), "{}", Self::line(event))
                .map_err(|e| WorkerError::new(format!("text log: {e}"))),
        }
    }

    async fn idle(&self) {
        match &self.out {
            TextOut::File(file) => file.idle(),
            TextOut::Writer(out) => {
                let _ = Self::writer(out).flush();
            }
        }
    }

    fn unfinished(&self) -> bool {
        match &self.out {
            TextOut::File(file) => file.unfinished(),
            TextOut::Writer(_) => false,
        }
    }

    async fn shutdown(&self) -> Result<(), WorkerError> {
        match &self.out {
            TextOut::File(file) => file.shutdown(),
            TextOut::Writer(out) => Self::writer(out)
                .flush()
                .map_err(|e| WorkerError::new(format!("text log: {e}"))),
        }
    }
}
