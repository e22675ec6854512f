//! Nanoseconds per watch event from the bytes of one line of a watch stream
//! (a ~1 KB ConfigMap as the API server sends it, managed fields included):
//! - `faro`: what Faro's informer does with it — decode into kube's
//!   `WatchEvent<DynamicObject>` with `decode_watch_line` (the object's JSON
//!   read once), evaluate the client-side filters (a `FilterSet` of 10
//!   rules), classify against the known state;
//! - `faro_decode`: `decode_watch_line` alone;
//! - `kube_dynamic_object`: kube's derived decoder for the same type (the
//!   object buffered, then decoded), what a kube-rs program over dynamic
//!   objects pays before doing anything;
//! - `value`: the same bytes into a `serde_json::Value` and nothing more;
//! - `metadata_only`: the same bytes into a struct of only the fields
//!   filtering and classification read, the rest skipped — the ceiling of
//!   a decoder that keeps nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use faro_core::DynamicObject;
use faro_filter::ObjectView;
use faro_watch::{KnownState, Observation, decode_watch_line};
use kube::core::WatchEvent;
use serde::Deserialize;

const EVENTS: usize = 10_000;

fn lines() -> Vec<String> {
    (0..EVENTS)
        .map(|i| {
            let mut object = faro_benches::configmap(
                &format!("team-{}-prod", i % 10),
                &format!("app-{}-object{i}", i % 10),
                1024,
            );
            let meta = &mut object["metadata"];
            meta["uid"] = serde_json::json!(format!("6f1c2a9e-0000-4000-8000-{i:012}"));
            meta["resourceVersion"] = serde_json::json!((100_000 + i).to_string());
            meta["creationTimestamp"] = serde_json::json!("2026-12-01T10:00:00Z");
            meta["labels"]["tier"] = serde_json::json!(format!("web-{}", i % 10));
            meta["managedFields"] = serde_json::json!([{
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "apiVersion": "v1",
                "time": "2026-12-01T10:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}, "f:payload": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:tier": {}}}}
            }]);
            serde_json::to_string(&serde_json::json!({"type": "ADDED", "object": object}))
                .expect("serialises")
        })
        .collect()
}

#[derive(Deserialize)]
struct MetaLine {
    #[serde(rename = "type")]
    _type: String,
    object: MetaObject,
}

#[derive(Deserialize)]
struct MetaObject {
    metadata: Meta,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    name: String,
    namespace: Option<String>,
    uid: String,
    resource_version: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn decode(c: &mut Criterion) {
    let lines = lines();
    let bytes: usize = lines.iter().map(String::len).sum();
    let filters = faro_benches::watch_spec_with_rules(10).filter_set();

    // The decoders agree on what they read.
    let first: WatchEvent<DynamicObject> = serde_json::from_str(&lines[0]).expect("decodes");
    let WatchEvent::Added(first) = first else {
        panic!("an ADDED line")
    };
    let Some(Ok(WatchEvent::Added(ours))) = decode_watch_line(&lines[0]) else {
        panic!("Faro decodes an ADDED line")
    };
    assert_eq!(ours, first);
    let meta: MetaLine = serde_json::from_str(&lines[0]).expect("decodes");
    let m = &meta.object.metadata;
    assert_eq!(first.metadata.name.as_ref(), Some(&m.name));
    assert_eq!(first.metadata.namespace, m.namespace);
    assert_eq!(first.metadata.labels.as_ref(), Some(&m.labels));
    assert_eq!(
        first.metadata.uid.as_deref(),
        Some(meta.object.metadata.uid.as_str())
    );
    assert_eq!(
        first.metadata.resource_version.as_deref(),
        Some(meta.object.metadata.resource_version.as_str())
    );

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(EVENTS as u64));
    println!(
        "decode: {EVENTS} lines of {} bytes on average",
        bytes / EVENTS
    );

    group.bench_function("faro", |b| {
        b.iter_batched(
            KnownState::new,
            |mut known| {
                // Delivered and dropped line by line, as the informer does.
                let mut out = Vec::with_capacity(1);
                let mut classified = 0;
                for line in &lines {
                    let event = decode_watch_line(line)
                        .expect("a whole line")
                        .expect("decodes");
                    let (observation, object) = match event {
                        WatchEvent::Added(o) | WatchEvent::Modified(o) => (Observation::Present, o),
                        WatchEvent::Deleted(o) => (Observation::Deleted, o),
                        _ => continue,
                    };
                    known.observe(
                        observation,
                        Arc::new(object),
                        |o| {
                            filters.matches(&ObjectView {
                                namespace: o.metadata.namespace.as_deref(),
                                name: o.metadata.name.as_deref().unwrap_or(""),
                                labels: o.metadata.labels.as_ref(),
                            })
                        },
                        &mut out,
                    );
                    classified += out.len();
                    out.clear();
                }
                assert_eq!(classified, EVENTS);
                known
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("kube_dynamic_object", |b| {
        b.iter(|| {
            for line in &lines {
                let e: WatchEvent<DynamicObject> = serde_json::from_str(line).expect("decodes");
                std::hint::black_box(e);
            }
        });
    });
    group.bench_function("faro_decode", |b| {
        b.iter(|| {
            for line in &lines {
                std::hint::black_box(decode_watch_line(line));
            }
        });
    });
    group.bench_function("value", |b| {
        b.iter(|| {
            for line in &lines {
                let v: serde_json::Value = serde_json::from_str(line).expect("decodes");
                std::hint::black_box(v);
            }
        });
    });
    group.bench_function("metadata_only", |b| {
        b.iter(|| {
            for line in &lines {
                let m: MetaLine = serde_json::from_str(line).expect("decodes");
                std::hint::black_box(m);
            }
        });
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
