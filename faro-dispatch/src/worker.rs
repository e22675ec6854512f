//! What a resource worker is: the trait every consumer of matched events
//! implements, linked in or loaded as a plugin.

use faro_core::{Gvr, LogRecord, MatchedEvent, Record, RecordKind};

/// Which GVRs a worker handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handles {
    /// Every GVR.
    All,
    /// Only these.
    Only(Vec<Gvr>),
}

/// Why a worker could not handle an event.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct WorkerError {
    message: String,
    panicked: bool,
}

impl WorkerError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            panicked: false,
        }
    }

    /// A panic caught inside the worker (a plugin reports these as a status code).
    pub fn panicked(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            panicked: true,
        }
    }

    /// Whether this is a caught panic rather than an ordinary failure.
    pub fn is_panic(&self) -> bool {
        self.panicked
    }
}

/// A consumer of matched events for some GVRs, and of container log lines
/// when it asks for them.
///
/// The dispatcher calls `handle` for one object's events one at a time, in
/// order; events of different objects may be handled concurrently (one
/// call per lane). A panic in `handle` is caught and counted.
#[async_trait::async_trait]
pub trait ResourceWorker: Send + Sync + 'static {
    /// Unique among the dispatcher's workers; used in metrics and logs.
    fn name(&self) -> &str;

    /// The GVRs it wants. Read once, when the worker is registered.
    fn handles(&self) -> Handles;

    /// Handles one event.
    async fn handle(&self, event: &MatchedEvent) -> Result<(), WorkerError>;

    /// How many queued events a lane may hand over in one `handle_batch`
    /// call. 1 (the default) means `handle`, one event at a time; a worker
    /// whose every call crosses to another thread (a plugin) takes more, so
    /// one round trip carries many events.
    fn max_batch(&self) -> usize {
        1
    }

    /// Handles events that were queued together, in order, and returns the
    /// result of each handled one: a prefix of `events` (at least one result),
    /// so a worker may stop early — after a panic, say — and the lane hands
    /// over the rest again, or skips them once the worker is quarantined. By
    /// default, `handle` for each.
    async fn handle_batch(&self, events: &[MatchedEvent]) -> Vec<Result<(), WorkerError>> {
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            results.push(self.handle(event).await);
        }
        results
    }

    /// Whether it wants container log lines (`handle_log`). Read once, when
    /// the worker is registered.
    fn wants_logs(&self) -> bool {
        false
    }

    /// Handles one container log line; lines of one container arrive in
    /// order, in one lane.
    async fn handle_log(&self, record: &LogRecord) -> Result<(), WorkerError> {
        let _ = record;
        Ok(())
    }

    /// Handles lines of one container that arrived together, in order. By
    /// default, `handle_log` for each, stopping at the first error.
    async fn handle_logs(&self, records: &[LogRecord]) -> Result<(), WorkerError> {
        for record in records {
            self.handle_log(record).await?;
        }
        Ok(())
    }

    /// Whether it wants records of `kind` (Kubernetes Event occurrences,
    /// lifecycle records) through `handle_record`. Read once per kind,
    /// when the worker is registered.
    fn wants_records(&self, kind: RecordKind) -> bool {
        let _ = kind;
        false
    }

    /// Handles one record; records about one object arrive in order, in
    /// one lane.
    async fn handle_record(&self, record: &Record) -> Result<(), WorkerError> {
        let _ = record;
        Ok(())
    }

    /// Called when a lane of this worker has nothing queued: a good moment
    /// to flush buffers.
    async fn idle(&self) {}

    /// True while the worker holds work it could not finish (a sink whose
    /// disk is full): its idle lanes call `idle` again every 500 ms until
    /// it is done.
    fn unfinished(&self) -> bool {
        false
    }

    /// Called when every event queued for this worker before a checkpoint
    /// was handled: write what is buffered durably (an error means progress
    /// is not durable yet, and the checkpoint waits), and return the mark of
    /// the events file written, if this worker writes one. By default,
    /// `idle` and no mark.
    async fn flush(&self) -> Result<Option<faro_core::DurableMark>, WorkerError> {
        self.idle().await;
        Ok(None)
    }

    /// Called once, after every queued event was handled, at shutdown.
    async fn shutdown(&self) -> Result<(), WorkerError> {
        Ok(())
    }
}
