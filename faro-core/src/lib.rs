//! Faro's vocabulary: resource names ([`Gvr`], [`Scope`]), events
//! ([`EventType`], [`ObjectKey`], [`MatchedEvent`]), container log lines
//! ([`LogRecord`], [`ContainerRef`]), Kubernetes Event occurrences and pod
//! lifecycle changes ([`Record`]), the [`EventHandler`]
//! trait that joins watching to dispatching (and its way back, durable
//! progress: [`DurableMark`], [`WrittenEvent`]), and the [`config`]uration with
//! its validation and normalisation into [`WatchSpec`]s.
//!
//! Below it is `faro-filter` (compiled selectors and patterns); above it,
//! `faro-watch` produces `MatchedEvent`s and `faro-dispatch` consumes them,
//! the two meeting only through `EventHandler`.
//!
//! ```
//! use faro_core::config::Config;
//!
//! let config = Config::from_yaml(
//!     r#"
//! resources:
//!   - gvr: v1/configmaps
//!     namespace_names: [prod]
//!     label_selector: "app in (web, api)"
//! "#,
//!     "example.yaml",
//! )
//! .unwrap();
//! assert_eq!(
//!     config.watch_specs[0].to_string(),
//!     r#"v1/configmaps namespace=prod labels="app in (api,web)" filter=[*]"#
//! );
//! ```

pub mod config;
mod event;
mod gvr;
mod handler;
mod log;
mod progress;
mod record;

pub use config::{
    Config, ConfigError, CorrelationOutputConfig, K8sEventsConfig, LifecycleConfig, LogsConfig,
    ResourceRule, WatchSpec, WorkloadConfig,
};
pub use event::{Changes, EventType, MatchedEvent, MatchedEventBuilder, ObjectKey};
pub use gvr::{Gvr, GvrError, Scope, ScopeError};
pub use handler::{EventHandler, HandlerError};
pub use log::{ContainerRef, ContainerType, LogRecord, LogRecordBuilder};
pub use progress::{DurableMark, WrittenEvent};
pub use record::{Record, RecordKind, RecordParts};

/// Re-exported so that users name one version of the object type.
pub use kube_core::DynamicObject;
