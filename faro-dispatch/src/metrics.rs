//! The dispatch layer's Prometheus metrics.

use faro_monitor::LatencyHistogram;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = [(&'static str, String); 1];

/// Counters and gauges of one dispatcher, by worker.
#[derive(Debug, Clone, Default)]
pub struct DispatchMetrics {
    /// Events handled (successfully or not).
    pub handled: Family<Labels, Counter>,
    /// Events dropped because the worker's queue was full (`drop` policy).
    pub dropped: Family<Labels, Counter>,
    /// Calls that returned an error.
    pub errors: Family<Labels, Counter>,
    /// Calls that panicked.
    pub panics: Family<Labels, Counter>,
    /// 1 while the worker is quarantined after repeated panics.
    pub quarantined: Family<Labels, Gauge>,
    /// Events skipped because the worker is quarantined.
    pub skipped: Family<Labels, Counter>,
    /// From the moment an event was read off the watch to the moment the
    /// worker (or sink) returned, by worker.
    pub latency: Family<Labels, LatencyHistogram>,
    /// Events suppressed by a middleware, by middleware.
    pub suppressed: Family<[(&'static str, String); 1], Counter>,
}

impl DispatchMetrics {
    /// Registers every family on `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "faro_worker_events",
            "Events handled, by worker",
            self.handled.clone(),
        );
        registry.register(
            "faro_events_dropped",
            "Events dropped because the worker's queue was full",
            self.dropped.clone(),
        );
        registry.register(
            "faro_worker_errors",
            "Worker calls that returned an error",
            self.errors.clone(),
        );
        registry.register(
            "faro_worker_panics",
            "Worker calls that panicked",
            self.panics.clone(),
        );
        registry.register(
            "faro_worker_quarantined",
            "1 while a worker is quarantined after repeated panics",
            self.quarantined.clone(),
        );
        registry.register(
            "faro_worker_skipped",
            "Events not given to a quarantined worker",
            self.skipped.clone(),
        );
        registry.register(
            "faro_event_latency_seconds",
            "From an event read off the watch to the worker or sink having handled it",
            self.latency.clone(),
        );
        registry.register(
            "faro_events_suppressed",
            "Events a middleware suppressed",
            self.suppressed.clone(),
        );
    }

    pub(crate) fn worker(family: &Family<Labels, Counter>, worker: &str) -> Counter {
        family
            .get_or_create(&[("worker", worker.to_owned())])
            .clone()
    }
}
