//! The seam between watching and dispatching: resource events and
//! container log lines go down through the same handlers.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{DurableMark, LogRecord, MatchedEvent, Record};

/// Receives every matched event. `faro-watch` calls it; `faro-dispatch`'s
/// `Dispatcher` and a user's own types implement it.
///
/// Calls for one object arrive in order. A slow handler slows the watch
/// (backpressure) rather than letting memory grow.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// A short name for logs and metrics.
    fn name(&self) -> &str;

    /// Handles one event. An error is logged and counted by the caller; it
    /// does not stop the watch.
    async fn on_matched(&self, event: &MatchedEvent) -> Result<(), HandlerError>;

    /// Handles one container log line (when the configuration follows
    /// logs). Lines of one container arrive in order. By default, ignored.
    async fn on_log(&self, record: &LogRecord) -> Result<(), HandlerError> {
        let _ = record;
        Ok(())
    }

    /// Handles lines of one container that arrived together, in order. By
    /// default, `on_log` for each; the last error is returned after all
    /// were handled.
    async fn on_logs(&self, records: &[LogRecord]) -> Result<(), HandlerError> {
        let mut result = Ok(());
        for record in records {
            if let Err(e) = self.on_log(record).await {
                result = Err(e);
            }
        }
        result
    }

    /// Handles a Kubernetes Event occurrence or a lifecycle record (when
    /// the configuration asks for them). Records about one object arrive
    /// in order. By default, ignored.
    async fn on_record(&self, record: &Record) -> Result<(), HandlerError> {
        let _ = record;
        Ok(())
    }

    /// Returns when everything handed to this handler before the call is
    /// durably written, with the marks of the events files written (so that
    /// a resumed watch can read back what was written after them). A
    /// checkpoint records progress only after every handler's `flush`
    /// succeeded. By default, nothing to wait for and no mark.
    async fn flush(&self) -> Result<Vec<DurableMark>, HandlerError> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl<H: EventHandler + ?Sized> EventHandler for Arc<H> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn on_matched(&self, event: &MatchedEvent) -> Result<(), HandlerError> {
        (**self).on_matched(event).await
    }

    async fn on_log(&self, record: &LogRecord) -> Result<(), HandlerError> {
        (**self).on_log(record).await
    }

    async fn on_logs(&self, records: &[LogRecord]) -> Result<(), HandlerError> {
        (**self).on_logs(records).await
    }

    async fn on_record(&self, record: &Record) -> Result<(), HandlerError> {
        (**self).on_record(record).await
    }

    async fn flush(&self) -> Result<Vec<DurableMark>, HandlerError> {
        (**self).flush().await
    }
}

/// Why a handler could not handle an event.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl HandlerError {
    /// An error described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error described by `message`, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}
