//! Everything after a match: routing `MatchedEvent`s by GVR to resource
//! workers over bounded, per-object-ordered queues, the middleware every
//! event goes through first, the built-in sinks (JSON lines, text log,
//! container logs, Kubernetes Events, lifecycle, one document per
//! correlation) and the loader of plugins speaking `faro-plugin-abi`.
//! Container log lines (`LogRecord`) and records (`Record`) take the same
//! path to the workers that ask for them.
//!
//! It meets `faro-watch` only through `faro_core::EventHandler`: a
//! [`Dispatcher`] is a handler, so a binary plugs it into a controller.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use faro_dispatch::{Dispatcher, DispatcherOptions, JsonLinesSink};
//! let dispatcher = Dispatcher::new(DispatcherOptions::default());
//! dispatcher.register(JsonLinesSink::create(std::path::Path::new("./output"))?)?;
//! // controller.add_handler(dispatcher.clone());
//! dispatcher.shutdown().await; // drains every queue, flushes every sink
//! # Ok(()) }
//! ```

mod correlation;
mod dispatcher;
mod envelope;
mod metrics;
mod middleware;
mod plugin;
mod sinks;
mod worker;

pub use correlation::{CorrelationMetrics, CorrelationSink};
pub use dispatcher::{DispatchError, Dispatcher, DispatcherOptions};
pub use envelope::{envelope, json_line, log_envelope};
pub use metrics::DispatchMetrics;
pub use middleware::{DropManagedFields, Middleware, REDACTED, RedactSecrets};
pub use plugin::{PluginError, PluginManifest, PluginWorker, config_name, load, load_directory};
pub use sinks::{ContainerLogsSink, JsonLinesSink, RecordsSink, TextLogSink};
pub use worker::{Handles, ResourceWorker, WorkerError};
