//! Middleware: what every event goes through before any worker or sink
//! sees it. A middleware returns the event (changed or not) or `None` to
//! suppress it. The built-ins remove `metadata.managedFields` and redact
//! Secret values; each copies the object only when it has something to
//! change, so most events pass through untouched.

use std::sync::Arc;

use faro_core::{DynamicObject, LogRecord, MatchedEvent};
use serde_json::Value;

/// Mutates or suppresses events before the workers.
pub trait Middleware: Send + Sync + 'static {
    /// For logs and the `faro_events_suppressed_total{middleware}` metric.
    fn name(&self) -> &str;
    /// The event to hand on, or `None` to suppress it.
    fn apply(&self, event: MatchedEvent) -> Option<MatchedEvent>;

    /// The log line to hand on, or `None` to suppress it. By default, unchanged.
    fn apply_log(&self, record: LogRecord) -> Option<LogRecord> {
        Some(record)
    }
}

/// Removes `metadata.managedFields`, which is large and of no use downstream.
#[derive(Debug, Default, Clone, Copy)]
pub struct DropManagedFields;

impl Middleware for DropManagedFields {
    fn name(&self) -> &str {
        "drop-managed-fields"
    }

    fn apply(&self, event: MatchedEvent) -> Option<MatchedEvent> {
        if event
            .object()
            .metadata
            .managed_fields
            .as_ref()
            .is_none_or(Vec::is_empty)
        {
            return Some(event);
        }
        let mut object = DynamicObject::clone(event.object());
        object.metadata.managed_fields = None;
        Some(event.with_object(Arc::new(object)))
    }
}

/// The text every Secret value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// The annotation `kubectl apply` leaves, which holds the whole manifest (a
/// Secret's data included).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Replaces every value of `data` and `stringData` of `v1/secrets`, and the
/// `kubectl apply` annotation that repeats them, with `"<redacted>"`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RedactSecrets;

impl Middleware for RedactSecrets {
    fn name(&self) -> &str {
        "redact-secrets"
    }

    fn apply(&self, event: MatchedEvent) -> Option<MatchedEvent> {
        let gvr = event.gvr();
        if !(gvr.is_core() && gvr.resource() == "secrets") {
            return Some(event);
        }
        let needs = |v: &Value| {
            v.as_object()
                .is_some_and(|m| m.values().any(|x| x.as_str() != Some(REDACTED)))
        };
        let data = &event.object().data;
        let annotated = event
            .object()
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LAST_APPLIED))
            .is_some_and(|v| v != REDACTED);
        if !annotated
            && !["data", "stringData"]
                .iter()
                .any(|k| data.get(k).is_some_and(needs))
        {
            return Some(event);
        }
        let mut object = DynamicObject::clone(event.object());
        if let Some(v) = object
            .metadata
            .annotations
            .as_mut()
            .and_then(|a| a.get_mut(LAST_APPLIED))
        {
            REDACTED.clone_into(v);
        }
        for key in ["data", "stringData"] {
            if let Some(Value::Object(map)) = object.data.get_mut(key) {
                for value in map.values_mut() {
                    *value = Value::String(REDACTED.to_owned());
                }
            }
        }
        Some(event.with_object(Arc::new(object)))
    }
}
