//! Kubernetes Events as the cluster's components record them, with the
//! recorder's aggregation, and the conversion between the two Event APIs.
//!
//! A repeated event (same source, involved object, type, reason and
//! message) updates the one Event object instead of creating another:
//! `count` and `lastTimestamp` as client-go's core recorder writes them, and
//! `series` as the events.k8s.io recorder does. Both APIs read the one
//! storage, as on the real server: `events.k8s.io/v1` is a view of the
//! stored core Event.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::Api;

const EVENTS: &str = "/events";

/// Who records an event: `source.component` / `reportingController` and the host.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub component: &'a str,
    pub host: Option<&'a str>,
}

impl Source<'_> {
    pub const DEPLOYMENT: Source<'static> = Source {
        component: "deployment-controller",
        host: None,
    };
    pub const REPLICASET: Source<'static> = Source {
        component: "replicaset-controller",
        host: None,
    };
    pub const STATEFULSET: Source<'static> = Source {
        component: "statefulset-controller",
        host: None,
    };
    pub const DAEMONSET: Source<'static> = Source {
        component: "daemonset-controller",
        host: None,
    };
    pub const JOB: Source<'static> = Source {
        component: "job-controller",
        host: None,
    };
    pub const CRONJOB: Source<'static> = Source {
        component: "cronjob-controller",
        host: None,
    };
    pub const SCHEDULER: Source<'static> = Source {
        component: "default-scheduler",
        host: None,
    };
    pub const NODE_CONTROLLER: Source<'static> = Source {
        component: "node-controller",
        host: None,
    };
}

type AggregationKey = (String, String, String, String, String, String);

/// Remembers the Event object of each distinct event, for aggregation.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    seen: HashMap<AggregationKey, (String, String)>,
    /// Events created since the manager last took them (for their time to live).
    pub created: Vec<(String, String)>,
}

/// What happened, to which object (and which of its containers).
pub(crate) struct Occurrence<'a> {
    pub involved: &'a Value,
    pub field_path: Option<String>,
    pub warning: bool,
    pub reason: &'a str,
    pub message: String,
    pub action: &'a str,
}

impl Recorder {
    /// Records one occurrence: a new Event, or one more on the existing one.
    pub fn record(&mut self, api: &Api<'_>, source: Source<'_>, o: Occurrence<'_>) {
        let meta = &o.involved["metadata"];
        let involved_ns = meta["namespace"].as_str().unwrap_or("default");
        let involved_name = meta["name"].as_str().unwrap_or_default();
        let uid = meta["uid"].as_str().unwrap_or_default();
        let event_type = if o.warning { "Warning" } else { "Normal" };
        let key = (
            format!("{}/{}", source.component, source.host.unwrap_or("")),
            uid.to_string(),
            o.field_path.clone().unwrap_or_default(),
            event_type.to_string(),
            o.reason.to_string(),
            o.message.clone(),
        );
        let now = super::now_rfc3339();
        let micro = micro_time();
        if let Some((ns, name)) = self.seen.get(&key)
            && let Some(existing) = api.get(EVENTS, ns, name)
        {
            let written = api.modify(&existing, EVENTS, |e| {
                let count = e["count"].as_i64().unwrap_or(1) + 1;
                e["count"] = json!(count);
                e["lastTimestamp"] = json!(now);
                e["series"] = json!({ "count": count, "lastObservedTime": micro });
            });
            if written.is_some() {
                return;
            }
        }
        if self.seen.len() > 20_000 {
            self.seen.clear();
        }
        let nanos = jiff::Timestamp::now().as_nanosecond();
        let name = format!("{involved_name}.{nanos:x}");
        let mut involved = json!({
            "kind": o.involved["kind"],
            "namespace": meta["namespace"],
            "name": involved_name,
            "uid": uid,
            "apiVersion": o.involved["apiVersion"],
            "resourceVersion": meta["resourceVersion"],
        });
        if meta["namespace"].is_null()
            && let Some(m) = involved.as_object_mut()
        {
            m.remove("namespace");
        }
        if let Some(path) = &o.field_path {
            involved["fieldPath"] = json!(path);
        }
        let mut event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": { "name": name, "namespace": involved_ns },
            "involvedObject": involved,
            "reason": o.reason,
            "message": o.message,
            "source": { "component": source.component },
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": event_type,
            "eventTime": null,
            "reportingComponent": source.component,
            "reportingInstance": source.host.unwrap_or(""),
        });
        if let Some(host) = source.host {
            event["source"]["host"] = json!(host);
        }
        if !o.action.is_empty() {
            event["action"] = json!(o.action);
        }
        if api.create(EVENTS, involved_ns, event).is_some() {
            self.seen
                .insert(key, (involved_ns.to_string(), name.clone()));
            self.created.push((involved_ns.to_string(), name));
        }
    }
}

/// Deletes an Event whose time to live is over, or looks again when it will be.
pub(crate) fn expire(m: &mut super::Manager, api: &Api<'_>, ns: &str, name: &str) {
    let Some(event) = api.get(EVENTS, ns, name) else {
        return;
    };
    let last = event.value["lastTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .unwrap_or_else(jiff::Timestamp::now);
    let age = std::time::Duration::try_from(jiff::Timestamp::now().duration_since(last))
        .unwrap_or_default();
    let ttl = m.clock.real(m.config.event_ttl);
    if age >= ttl {
        api.delete(EVENTS, ns, name, &crate::ops::DeleteOptions::default());
    } else {
        let at = tokio::time::Instant::now() + (ttl - age);
        m.wake_at(
            at,
            super::Key::ExpireEvent(ns.to_string(), name.to_string()),
        );
    }
}

fn micro_time() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

fn take(map: &mut Map<String, Value>, key: &str) -> Value {
    map.remove(key).unwrap_or(Value::Null)
}

fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    if !value.is_null() {
        map.insert(key.to_string(), value);
    }
}

/// A stored core Event as `events.k8s.io/v1` shows it.
pub(crate) fn to_events_v1(core: &Value) -> Value {
    let Some(mut c) = core.as_object().cloned() else {
        return core.clone();
    };
    let mut e = Map::new();
    e.insert("kind".into(), json!("Event"));
    e.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    put(&mut e, "metadata", take(&mut c, "metadata"));
    e.insert("eventTime".into(), take(&mut c, "eventTime"));
    put(&mut e, "series", take(&mut c, "series"));
    put(
        &mut e,
        "reportingController",
        take(&mut c, "reportingComponent"),
    );
    put(
        &mut e,
        "reportingInstance",
        take(&mut c, "reportingInstance"),
    );
    put(&mut e, "action", take(&mut c, "action"));
    put(&mut e, "reason", take(&mut c, "reason"));
    put(&mut e, "regarding", take(&mut c, "involvedObject"));
    put(&mut e, "related", take(&mut c, "related"));
    put(&mut e, "note", take(&mut c, "message"));
    put(&mut e, "type", take(&mut c, "type"));
    put(&mut e, "deprecatedSource", take(&mut c, "source"));
    put(
        &mut e,
        "deprecatedFirstTimestamp",
        take(&mut c, "firstTimestamp"),
    );
    put(
        &mut e,
        "deprecatedLastTimestamp",
        take(&mut c, "lastTimestamp"),
    );
    put(&mut e, "deprecatedCount", take(&mut c, "count"));
    Value::Object(e)
}

/// An `events.k8s.io/v1` Event as the core Event it is stored as.
pub(crate) fn from_events_v1(new: &Value) -> Value {
    let Some(mut n) = new.as_object().cloned() else {
        return new.clone();
    };
    let mut c = Map::new();
    c.insert("kind".into(), json!("Event"));
    c.insert("apiVersion".into(), json!("v1"));
    put(&mut c, "metadata", take(&mut n, "metadata"));
    put(&mut c, "involvedObject", take(&mut n, "regarding"));
    put(&mut c, "related", take(&mut n, "related"));
    put(&mut c, "reason", take(&mut n, "reason"));
    put(&mut c, "message", take(&mut n, "note"));
    put(&mut c, "source", take(&mut n, "deprecatedSource"));
    put(
        &mut c,
        "firstTimestamp",
        take(&mut n, "deprecatedFirstTimestamp"),
    );
    put(
        &mut c,
        "lastTimestamp",
        take(&mut n, "deprecatedLastTimestamp"),
    );
    put(&mut c, "count", take(&mut n, "deprecatedCount"));
    put(&mut c, "type", take(&mut n, "type"));
    c.insert("eventTime".into(), take(&mut n, "eventTime"));
    put(&mut c, "series", take(&mut n, "series"));
    put(&mut c, "action", take(&mut n, "action"));
    put(
        &mut c,
        "reportingComponent",
        take(&mut n, "reportingController"),
    );
    put(
        &mut c,
        "reportingInstance",
        take(&mut n, "reportingInstance"),
    );
    Value::Object(c)
}
