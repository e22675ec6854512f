//! The watch layer's Prometheus metrics.
//!
//! The families exist from the controller's creation; `register` puts them
//! on a registry the caller owns, so one `/metrics` endpoint serves every
//! layer.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels<const N: usize> = [(&'static str, String); N];

/// Counters and gauges of every informer of one controller.
#[derive(Debug, Clone, Default)]
pub struct WatchMetrics {
    /// Events handed to handlers, by GVR and type.
    pub events: Family<Labels<2>, Counter>,
    /// Watch restarts, by GVR and reason (`closed`, `expired`, `error`, `stall`).
    pub restarts: Family<Labels<2>, Counter>,
    /// Full relists, by GVR.
    pub relists: Family<Labels<1>, Counter>,
    /// Watches restarted because nothing, not even a bookmark, arrived in time.
    pub stalls: Family<Labels<1>, Counter>,
    /// Informers by state (`listing`, `watching`, `backoff`, `parked`).
    pub informers: Family<Labels<1>, Gauge>,
    /// Objects in each informer's known state.
    pub tracked: Family<Labels<1>, Gauge>,
    /// Unix time of each informer's last event.
    pub last_event: Family<Labels<1>, Gauge<f64, AtomicU64>>,
    /// Handler calls that returned an error, by handler.
    pub handler_errors: Family<Labels<1>, Counter>,
    /// Container log streams by state (`open`, `waiting`, `backoff`).
    pub log_streams: Family<Labels<1>, Gauge>,
    /// Log lines handed to handlers.
    pub log_lines: Counter,
    /// Bytes of the log lines handed to handlers.
    pub log_bytes: Counter,
    /// Log streams opened again, by reason (`ended`, `error`, `forbidden`,
    /// `yield`, `restart`).
    pub log_restarts: Family<Labels<1>, Counter>,
    /// Log lines read and not handed on, by reason (`duplicate`, `excluded`).
    pub log_skipped: Family<Labels<1>, Counter>,
    /// Log reads refused for lack of `get` on `pods/log`, by namespace.
    pub log_forbidden: Family<Labels<1>, Counter>,
    /// Kubernetes Event occurrences reported, by type and reason.
    pub k8s_events: Family<Labels<2>, Counter>,
    /// Lifecycle records, by reason.
    pub lifecycle_records: Family<Labels<1>, Counter>,
    /// UPDATEDs not delivered, by GVR and reason (`resync`, `status_only`,
    /// `metadata_only`, `managed_fields_only`, `paths`, `event_type`).
    pub updates_suppressed: Family<Labels<2>, Counter>,
    /// UPDATEDs whose previous state was evicted (`changedPaths: null`), by GVR.
    pub diffs_unknown: Family<Labels<1>, Counter>,
    /// Bytes of previous states kept for diffs.
    pub diff_bytes: Gauge,
    /// Informers resumed from a checkpoint, by GVR.
    pub resumes: Family<Labels<1>, Counter>,
    /// Checkpoint rounds written.
    pub checkpoints: Counter,
    /// Checkpoint rounds that could not be written (a handler could not
    /// write durably, or the checkpoint file could not be written).
    pub checkpoint_failures: Counter,
}

impl WatchMetrics {
    /// Registers every family on `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "faro_updates_suppressed",
            "UPDATEDs not delivered, by GVR and reason",
            self.updates_suppressed.clone(),
        );
        registry.register(
            "faro_update_diffs_unknown",
            "UPDATEDs whose previous state was evicted past the diff memory budget",
            self.diffs_unknown.clone(),
        );
        registry.register(
            "faro_update_diff_bytes",
            "Bytes of previous states kept for diffs",
            self.diff_bytes.clone(),
        );
        registry.register(
            "faro_checkpoint_resumes",
            "Informers resumed from a checkpoint, by GVR",
            self.resumes.clone(),
        );
        registry.register(
            "faro_checkpoints",
            "Checkpoint rounds written",
            self.checkpoints.clone(),
        );
        registry.register(
            "faro_checkpoint_failures",
            "Checkpoint rounds that could not be written",
            self.checkpoint_failures.clone(),
        );
        registry.register(
            "faro_watch_events",
            "Events handed to handlers, by GVR and type",
            self.events.clone(),
        );
        registry.register(
            "faro_watch_restarts",
            "Watch restarts, by GVR and reason",
            self.restarts.clone(),
        );
        registry.register(
            "faro_watch_relists",
            "Full relists, by GVR",
            self.relists.clone(),
        );
        registry.register(
            "faro_watch_stalls",
            "Watches restarted because nothing arrived within the stall timeout",
            self.stalls.clone(),
        );
        registry.register(
            "faro_watch_informers",
            "Informers by state",
            self.informers.clone(),
        );
        registry.register(
            "faro_watch_tracked_objects",
            "Objects in each informer's known state",
            self.tracked.clone(),
        );
        registry.register(
            "faro_watch_last_event_timestamp_seconds",
            "Unix time of each informer's last event",
            self.last_event.clone(),
        );
        registry.register(
            "faro_log_streams",
            "Container log streams by state",
            self.log_streams.clone(),
        );
        registry.register(
            "faro_log_lines",
            "Container log lines handed to handlers",
            self.log_lines.clone(),
        );
        registry.register(
            "faro_log_bytes",
            "Bytes of container log lines handed to handlers",
            self.log_bytes.clone(),
        );
        registry.register(
            "faro_log_stream_restarts",
            "Container log streams opened again, by reason",
            self.log_restarts.clone(),
        );
        registry.register(
            "faro_log_lines_skipped",
            "Container log lines read and not handed on, by reason",
            self.log_skipped.clone(),
        );
        registry.register(
            "faro_log_forbidden",
            "Container log reads refused (no get on pods/log), by namespace",
            self.log_forbidden.clone(),
        );
        registry.register(
            "faro_k8s_events",
            "Kubernetes Event occurrences reported, by type and reason",
            self.k8s_events.clone(),
        );
        registry.register(
            "faro_lifecycle_records",
            "Pod lifecycle records, by reason",
            self.lifecycle_records.clone(),
        );
        registry.register(
            "faro_handler_errors",
            "Handler calls that returned an error, by handler",
            self.handler_errors.clone(),
        );
    }

    /// Events handed to handlers so far for `gvr`: (ADDED, UPDATED, DELETED).
    pub fn events_of(&self, gvr: &str) -> [u64; 3] {
        ["ADDED", "UPDATED", "DELETED"].map(|t| {
            self.events
                .get_or_create(&[("gvr", gvr.to_owned()), ("type", t.to_owned())])
                .get()
        })
    }

    pub(crate) fn restart(&self, gvr: &str, reason: &'static str) {
        self.restarts
            .get_or_create(&[("gvr", gvr.to_owned()), ("reason", reason.to_owned())])
            .inc();
    }

    pub(crate) fn set_state(&self, from: Option<&'static str>, to: Option<&'static str>) {
        if from == to {
            return;
        }
        if let Some(from) = from {
            self.informers
                .get_or_create(&[("state", from.to_owned())])
                .dec();
        }
        if let Some(to) = to {
            self.informers
                .get_or_create(&[("state", to.to_owned())])
                .inc();
        }
    }
}
