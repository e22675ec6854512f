//! The workload story's hot paths:
//!
//! - `correlation/lookup_100000_owners`: the correlation id of a pod whose
//!   ReplicaSet is one of 100,000 in the owner index (1,000 Deployments of
//!   100 ReplicaSets each) — the work added to every record. Before it, the
//!   index's heap per tracked owner is printed (`correlation/index_bytes_per_owner`).
//! - `k8s_events/events_to_file_20000`: 20,000 core Events served by
//!   faro-sim, reported with `since: all`, each given its occurrence count,
//!   narrative and correlation and written to the k8s-events file.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use faro_benches::{populated_sim, sim_client};
use faro_core::{DynamicObject, RecordKind};
use faro_dispatch::{Dispatcher, DispatcherOptions, RecordsSink};
use faro_watch::{Controller, OwnerIndex};

const DEPLOYMENTS: usize = 1_000;
const REPLICA_SETS_EACH: usize = 100;

fn uid(kind: u8, i: usize) -> String {
    format!("{kind:02x}{i:06x}-0000-4000-8000-000000000000")
}

fn object(value: serde_json::Value) -> DynamicObject {
    serde_json::from_value(value).expect("an object")
}

fn deployment(d: usize) -> DynamicObject {
    object(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": format!("app-{d}"), "namespace": format!("ns-{}", d % 50), "uid": uid(1, d) },
    }))
}

fn replica_set(d: usize, r: usize) -> DynamicObject {
    object(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("app-{d}-{r:08x}"), "namespace": format!("ns-{}", d % 50),
            "uid": uid(2, d * REPLICA_SETS_EACH + r),
            "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "Deployment",
                "name": format!("app-{d}"), "uid": uid(1, d), "controller": true }],
        },
    }))
}

fn pod(d: usize, r: usize) -> DynamicObject {
    object(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("app-{d}-{r:08x}-x2k9q"), "namespace": format!("ns-{}", d % 50),
            "uid": uid(3, d * REPLICA_SETS_EACH + r),
            "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("app-{d}-{r:08x}"), "uid": uid(2, d * REPLICA_SETS_EACH + r), "controller": true }],
        },
    }))
}

fn correlation(c: &mut Criterion) {
    let objects: Vec<DynamicObject> = (0..DEPLOYMENTS)
        .flat_map(|d| {
            std::iter::once(deployment(d))
                .chain((0..REPLICA_SETS_EACH).map(move |r| replica_set(d, r)))
        })
        .collect();
    let mut index = None;
    let info = allocation_counter::measure(|| {
        let built = OwnerIndex::new();
        for o in &objects {
            built.record(o);
        }
        index = Some(built);
    });
    let index = index.expect("an index");
    let owners = index.tracked();
    println!(
        "correlation/index_bytes_per_owner: {owners} owners tracked; heap {:.0} B/owner",
        info.bytes_current.max(0) as f64 / owners as f64
    );
    let pods: Vec<DynamicObject> = (0..10_000)
        .map(|i| pod((i * 7919) % DEPLOYMENTS, (i * 31) % REPLICA_SETS_EACH))
        .collect();
    assert_eq!(&*index.correlation_of(&pods[1]), "Deployment/ns-19/app-919");
    let mut group = c.benchmark_group("correlation");
    group.throughput(Throughput::Elements(1));
    let mut next = 0usize;
    group.bench_function("lookup_100000_owners", |b| {
        b.iter(|| {
            next = (next + 1) % pods.len();
            index.correlation_of(&pods[next])
        });
    });
    group.finish();
}

const EVENTS: usize = 20_000;

fn core_event(i: usize) -> serde_json::Value {
    let reasons = [
        (
            "Scheduled",
            "Normal",
            "Successfully assigned shop/web-{i} to node-1",
        ),
        (
            "Pulled",
            "Normal",
            "Container image \"web:1\" already present on machine",
        ),
        (
            "BackOff",
            "Warning",
            "Back-off restarting failed container app in pod web-{i}_shop",
        ),
        (
            "Unhealthy",
            "Warning",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
        ),
    ];
    let (reason, kind, message) = reasons[i % reasons.len()];
    serde_json::json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": { "name": format!("web-{i}.{i:x}"), "namespace": format!("ns-{}", i % 20) },
        "involvedObject": { "kind": "Pod", "apiVersion": "v1", "namespace": format!("ns-{}", i % 20),
            "name": format!("web-{i}"), "uid": uid(4, i) },
        "reason": reason, "message": message.replace("{i}", &i.to_string()), "type": kind,
        "count": 1 + i % 5,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
        "source": { "component": "kubelet", "host": "node-1" },
    })
}

fn events_to_file(c: &mut Criterion) {
    let rt = faro_benches::runtime();
    let sim = rt.block_on(populated_sim(EVENTS, core_event));
    let config = faro_core::Config::from_yaml(
        "k8s_events:\n  namespace_patterns: ['^ns-']\n  since: all\n",
        "bench.yaml",
    )
    .expect("config");
    let dir = std::env::temp_dir().join(format!("faro-bench-events-{}", std::process::id()));
    let mut group = c.benchmark_group("k8s_events");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("events_to_file_20000", |b| {
        b.iter_custom(|iterations| {
            let mut measured = Duration::ZERO;
            for _ in 0..iterations {
                measured += rt.block_on(async {
                    let dispatcher = Dispatcher::new(DispatcherOptions::default());
                    let sink =
                        Arc::new(RecordsSink::create(&dir, RecordKind::K8sEvent).expect("sink"));
                    dispatcher
                        .register_with(
                            sink.clone(),
                            faro_core::config::WorkerSettings {
                                lanes: 1,
                                ..faro_core::config::WorkerSettings::default()
                            },
                        )
                        .expect("register");
                    let controller = Controller::new(sim_client(&sim), &config);
                    controller.add_handler(dispatcher.clone());
                    let started = std::time::Instant::now();
                    controller.start().await.expect("start");
                    while sink.written() < EVENTS as u64 {
                        dispatcher.wait_idle().await;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    let took = started.elapsed();
                    controller.stop().await;
                    dispatcher.shutdown().await;
                    assert_eq!(sink.written(), EVENTS as u64);
                    let _ = std::fs::remove_file(sink.path());
                    took
                });
            }
            measured
        });
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, correlation, events_to_file);
criterion_main!(benches);
