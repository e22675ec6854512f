//! The serialised forms of records: the plugin envelopes (ABI v1) of an
//! event and of a log line, and the JSON lines record of the output contract. Both are written straight
//! from the event with borrowed fields, without an intermediate `Value`.

use std::collections::BTreeMap;

use faro_core::{LogRecord, MatchedEvent};
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    v: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    event_type: &'static str,
    gvr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    name: &'a str,
    resource_version: &'a str,
    timestamp: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    inferred: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    workload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_paths: Option<Option<&'a [String]>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    writer: Option<&'a str>,
    object: &'a faro_core::DynamicObject,
}

/// The plugin envelope: `{"v":1,"eventType",…,"object":{…}}`, as
/// `faro-plugin-abi` documents it. `inferred` and `workload` appear only
/// when set.
pub fn envelope(event: &MatchedEvent) -> Vec<u8> {
    let key = event.key();
    let envelope = Envelope {
        v: faro_plugin_abi::ENVELOPE_VERSION,
        cluster: event.cluster().map(|c| &**c),
        event_type: event.event_type().as_str(),
        gvr: event.gvr().to_string(),
        namespace: key.namespace.as_deref(),
        name: &key.name,
        resource_version: event.resource_version(),
        timestamp: event.observed_at().to_string(),
        inferred: event.is_inferred(),
        workload: event.workload(),
        correlation: event.correlation().map(|c| &**c),
        changed_paths: changed_paths(event),
        patch: event.changes().and_then(|c| c.patch.as_ref()),
        shard: event.shard(),
        writer: event.writer().map(|w| &**w),
        object: event.object(),
    };
    serde_json::to_vec(&envelope).unwrap_or_default()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    event_type: &'static str,
    gvr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    resource_version: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    inferred: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    workload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_paths: Option<Option<&'a [String]>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "is_empty")]
    labels: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "is_empty")]
    annotations: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    writer: Option<&'a str>,
}

/// `changedPaths`: absent when no diff was asked for, `null` when the
/// previous state was not kept.
fn changed_paths(event: &MatchedEvent) -> Option<Option<&[String]>> {
    event.changes().map(|c| c.paths.as_deref())
}

fn is_empty(map: &Option<&BTreeMap<String, String>>) -> bool {
    map.is_none_or(BTreeMap::is_empty)
}

/// Appends one JSON lines record (with its newline) to `out`.
pub fn json_line(event: &MatchedEvent, out: &mut Vec<u8>) {
    let key = event.key();
    let meta = &event.object().metadata;
    let line = Line {
        timestamp: event.observed_at().to_string(),
        cluster: event.cluster().map(|c| &**c),
        event_type: event.event_type().as_str(),
        gvr: event.gvr().to_string(),
        namespace: key.namespace.as_deref(),
        name: &key.name,
        uid: meta.uid.as_deref(),
        resource_version: event.resource_version(),
        inferred: event.is_inferred(),
        workload: event.workload(),
        correlation: event.correlation().map(|c| &**c),
        changed_paths: changed_paths(event),
        patch: event.changes().and_then(|c| c.patch.as_ref()),
        labels: meta.labels.as_ref(),
        annotations: meta.annotations.as_ref(),
        shard: event.shard(),
        writer: event.writer().map(|w| &**w),
    };
    if serde_json::to_writer(&mut *out, &line).is_ok() {
        out.push(b'\n');
    }
}

/// The plugin envelope of a container log line: the container-logs record
/// with the envelope version first,
/// `{"v":1,"kind":"log","timestamp",…,"line"}`. Plugins tell it from an
/// event envelope by `"kind"`, which event envelopes do not have.
pub fn log_envelope(record: &LogRecord) -> Vec<u8> {
    let mut line = Vec::with_capacity(256);
    record.write_json(&mut line);
    let mut out = format!("{{\"v\":{},", faro_plugin_abi::ENVELOPE_VERSION).into_bytes();
    let body = line.strip_prefix(b"{").unwrap_or(&line);
    out.extend_from_slice(body.strip_suffix(b"\n").unwrap_or(body));
    out
}
