//! Everything that talks to the Kubernetes API server: discovery, shared
//! ref-counted informers over any GVR, classification of the watch stream
//! into ADDED / UPDATED / DELETED, resilience to the server's faults, CRD
//! lifecycle, workload detection, container logs followed without a gap or
//! a duplicate line, Kubernetes Event occurrences, pod lifecycle records,
//! and the owner chains that give every record its correlation id.
//!
//! It sits above `faro-core` (vocabulary, configuration) and `faro-filter`
//! (compiled selectors), and hands matched events to every
//! `faro_core::EventHandler` registered on its [`Controller`]:
//!
//! ```no_run
//! # async fn run(client: kube::Client, config: faro_core::Config) -> Result<(), faro_watch::WatchError> {
//! let controller = faro_watch::Controller::new(client, &config);
//! controller.start().await?;
//! controller.ready().await; // every initial list classified and delivered
//! controller.stop().await; // every watch ended, every handler call finished
//! # Ok(()) }
//! ```
//!
//! One watch runs per distinct (GVR, namespace, label selector, field
//! selector); consumers share it through subscriptions and the last one
//! to leave stops it. Each informer keeps a compact known state
//! (key → uid, resourceVersion), so a relist after a gap yields exactly the
//! events that were missed — no replayed ADDED, and an inferred DELETED for
//! every object that disappeared meanwhile. With checkpoints on, that
//! exactness survives a restart: progress that every handler has durably
//! written is recorded, and a restarted informer resumes from it, reading
//! back what was written after it (see [`CheckpointOptions`]). UPDATEDs
//! carry the JSON pointers that changed (and a patch when asked), and no-op
//! updates can be suppressed (the `updates:` block).

mod checkpoint;
mod classify;
mod controller;
mod discovery;
mod error;
mod fleet;
mod informer;
mod k8s_events;
mod lease;
mod lifecycle;
mod logs;
mod metrics;
mod narrative;
mod object;
mod options;
mod owners;
mod replicas;
mod updates;
mod workload;

pub use checkpoint::CheckpointOptions;
pub use classify::{Classified, KnownEntry, KnownState, Observation};
pub use controller::{Controller, InformerInfo, Subscription};
pub use discovery::{Discovery, Resolution, ResolvedResource};
pub use error::WatchError;
pub use fleet::{ClusterState, ClusterStatus, Fleet};
pub use informer::{InformerKey, InformerState};
pub use lease::{AcquirePolicy, ElectionConfig, LeaderElector, LeaseProgress, PROGRESS, StepDown};
pub use logs::{LogOptions, LogStreamCounts};
pub use metrics::WatchMetrics;
pub use object::{WatchedObject, decode_watch_line};
pub use options::{ListStrategy, WatchOptions};
pub use owners::OwnerIndex;
pub use replicas::{Gate, Replicas, default_identity, default_lease_namespace};
pub use updates::{UpdateTracker, changed_paths};
