//! Kubernetes Events as occurrences: every ADDED is one, a MODIFIED whose
//! count grew by k is k (one record with `count` and `newOccurrences`),
//! and a relist or a restart yields none again, because each Event's
//! count is remembered by uid — and with `since: start`, an Event last
//! seen before Faro started counts as already reported.
//!
//! One API is watched: `events.k8s.io/v1` when served, else core
//! `v1/events` (the same objects; watching both would report each twice).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use faro_core::config::EventsSince;
use faro_core::{DynamicObject, EventType, K8sEventsConfig, Record, RecordKind, RecordParts};
use serde::Serialize;
use serde_json::Value;

use crate::informer::{Env, InternalSink, lock};
use crate::narrative::{Said, narrate};
use crate::owners::ObjectRef;

/// The internal subscriber of the Event informers.
pub(crate) struct K8sEventsSink {
    env: Arc<Env>,
    config: K8sEventsConfig,
    /// Faro's start, whole seconds: Events last seen before are old.
    started: jiff::Timestamp,
    /// Occurrences already reported (or old), by Event uid.
    known: Mutex<HashMap<Box<str>, u64>>,
}

impl K8sEventsSink {
    pub fn new(env: Arc<Env>, config: K8sEventsConfig) -> Self {
        let now = jiff::Timestamp::now();
        Self {
            env,
            config,
            started: jiff::Timestamp::from_second(now.as_second()).unwrap_or(now),
            known: Mutex::default(),
        }
    }
}

/// An Event in either API's shape.
struct View<'a> {
    event_type: &'a str,
    reason: &'a str,
    action: &'a str,
    note: &'a str,
    count: u64,
    first: Option<&'a str>,
    last: Option<&'a str>,
    reporting: &'a str,
    involved: &'a Value,
}

fn text<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .filter_map(|k| {
            let mut cur = v;
            for part in k.split('.') {
                cur = cur.get(part)?;
            }
            cur.as_str().filter(|s| !s.is_empty())
        })
        .next()
}

fn view(data: &Value) -> View<'_> {
    let count = ["series.count", "count", "deprecatedCount"]
        .iter()
        .filter_map(|k| {
            let mut cur = data;
            for part in k.split('.') {
                cur = cur.get(part)?;
            }
            cur.as_u64()
        })
        .max()
        .unwrap_or(1)
        .max(1);
    let first = text(
        data,
        &["firstTimestamp", "deprecatedFirstTimestamp", "eventTime"],
    );
    let last = text(
        data,
        &[
            "series.lastObservedTime",
            "lastTimestamp",
            "deprecatedLastTimestamp",
            "eventTime",
        ],
    )
    .or(first);
    let involved = data
        .get("regarding")
        .filter(|v| v.is_object())
        .or_else(|| data.get("involvedObject"))
        .unwrap_or(&Value::Null);
    View {
        event_type: text(data, &["type"]).unwrap_or("Normal"),
        reason: text(data, &["reason"]).unwrap_or(""),
        action: text(data, &["action"]).unwrap_or(""),
        note: text(data, &["note", "message"]).unwrap_or(""),
        count,
        first,
        last,
        reporting: text(
            data,
            &[
                "reportingController",
                "reportingComponent",
                "source.component",
                "deprecatedSource.component",
            ],
        )
        .unwrap_or(""),
        involved,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Involved<'a> {
    kind: &'a str,
    api_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    kind: &'static str,
    timestamp: &'a str,
    observed: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    name: &'a str,
    uid: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    reason: &'a str,
    action: &'a str,
    note: &'a str,
    count: u64,
    new_occurrences: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_timestamp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_timestamp: Option<&'a str>,
    reporting_controller: &'a str,
    involved_object: Involved<'a>,
    narrative: &'a str,
    correlation: &'a str,
}

#[async_trait::async_trait]
impl InternalSink for K8sEventsSink {
    async fn on_event(&self, event_type: EventType, object: &Arc<DynamicObject>) {
        let Some(uid) = object.metadata.uid.as_deref() else {
            return;
        };
        if event_type == EventType::Deleted {
            lock(&self.known).remove(uid);
            return;
        }
        let namespace = object.metadata.namespace.as_deref();
        if !self.config.namespace_matches(namespace) {
            return;
        }
        let v = view(&object.data);
        let involved_kind = v.involved["kind"].as_str().unwrap_or("");
        if !self.config.matches(v.event_type, v.reason, involved_kind) {
            return;
        }
        let new = {
            let mut known = lock(&self.known);
            let before = match known.get(uid) {
                Some(n) => *n,
                None if self.config.since == EventsSince::Start && self.is_old(v.last) => v.count,
                None => 0,
            };
            known.insert(uid.into(), v.count.max(before));
            v.count.saturating_sub(before)
        };
        if new == 0 {
            return;
        }
        let involved = Involved {
            kind: involved_kind,
            api_version: v.involved["apiVersion"].as_str().unwrap_or(""),
            namespace: v.involved["namespace"].as_str().filter(|s| !s.is_empty()),
            name: v.involved["name"].as_str().unwrap_or(""),
            uid: v.involved["uid"].as_str().filter(|s| !s.is_empty()),
        };
        let correlation = self
            .env
            .owners
            .of_ref(&ObjectRef {
                api_version: involved.api_version,
                kind: involved.kind,
                namespace: involved.namespace,
                name: involved.name,
                uid: involved.uid,
                fresh: crate::owners::is_fresh(v.last),
                seen_at: object
                    .metadata
                    .resource_version
                    .as_deref()
                    .and_then(|rv| rv.parse().ok()),
            })
            .await;
        let narrative = narrate(&Said {
            kind: involved.kind,
            namespace: involved.namespace,
            name: involved.name,
            reason: v.reason,
            note: v.note,
            reporting: v.reporting,
            count: v.count,
        });
        let observed = jiff::Timestamp::now();
        let subject = match involved.namespace {
            Some(ns) => format!("{ns}/{}", involved.name),
            None => involved.name.to_owned(),
        };
        let line = Line {
            kind: "k8s-event",
            timestamp: v.last.unwrap_or(""),
            observed: observed.to_string(),
            namespace,
            name: object.metadata.name.as_deref().unwrap_or(""),
            uid,
            event_type: v.event_type,
            reason: v.reason,
            action: v.action,
            note: v.note,
            count: v.count,
            new_occurrences: new,
            first_timestamp: v.first,
            last_timestamp: v.last,
            reporting_controller: v.reporting,
            involved_object: involved,
            narrative: &narrative,
            correlation: &correlation,
        };
        let json = serde_json::to_string(&line).unwrap_or_default();
        let severity = if v.event_type == "Warning" {
            "Warning"
        } else {
            "Normal"
        };
        let record = Record::new(
            RecordParts {
                kind: RecordKind::K8sEvent,
                subject,
                severity,
                reason: v.reason.to_owned(),
                narrative,
                correlation: Some(correlation),
                observed_at: observed,
                cluster: self.env.options.cluster.clone(),
            },
            json,
        );
        self.env
            .metrics
            .k8s_events
            .get_or_create(&[
                ("type", v.event_type.to_owned()),
                ("reason", v.reason.to_owned()),
            ])
            .inc_by(new);
        for handler in self.env.handlers().iter() {
            if let Err(e) = handler.on_record(&record).await {
                tracing::warn!(handler = handler.name(), "handler failed: {e}");
            }
        }
    }
}

impl K8sEventsSink {
    /// An Event whose last occurrence is before Faro's start (or unknown).
    fn is_old(&self, last: Option<&str>) -> bool {
        match last.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
            Some(t) => t < self.started,
            None => true,
        }
    }
}
