//! Continuity's costs:
//!
//! - `checkpoint/fresh_start_100000` and `checkpoint/resume_100000`: from
//!   `Controller::start` to `ready()` over 100,000 ConfigMaps of 256 bytes,
//!   once with nothing recorded (a streaming list, every object delivered)
//!   and once resuming from a checkpoint (known state loaded, a watch from
//!   the recorded resourceVersion, nothing delivered).
//! - `checkpoint/list_deliver_off_100000` and `…_on_100000`: the watch
//!   benchmark's path (list, classify, deliver, stop) without and with
//!   checkpoints, the latter recording 100,000 objects on first sync and at stop.
//! - `updates/changed_paths_pod_6kb`: one UPDATED of a 6 KB Pod whose 75
//!   environment values, a condition and a restart count changed: the new
//!   state encoded, compared with the kept one, its 77 changed paths listed
//!   and sorted, the new state kept. Before it, the bytes kept per byte of
//!   the objects' JSON are printed (`updates/diff_memory_ratio`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use faro_benches::{Counter, configmap, populated_sim, sim_client};
use faro_core::{Config, DynamicObject, EventType, Gvr};
use faro_watch::{CheckpointOptions, Controller, UpdateTracker, WatchOptions};

const OBJECTS: usize = 100_000;

fn options(dir: Option<&PathBuf>, fresh: bool) -> WatchOptions {
    WatchOptions {
        checkpoint: dir.map(|d| CheckpointOptions {
            directory: d.clone(),
            interval: Duration::from_secs(3600),
            fresh,
        }),
        ..WatchOptions::default()
    }
}

fn checkpoints(c: &mut Criterion) {
    let rt = faro_benches::runtime();
    let sim = rt.block_on(populated_sim(OBJECTS, |i| {
        configmap("bench", &format!("cm-{i}"), 256)
    }));
    let config = Config::from_yaml(
        "resources:\n  - gvr: v1/configmaps\n    namespace_names: [bench]\n    name_pattern: \"^cm-\"\n",
        "bench.yaml",
    )
    .expect("config");
    let dir = std::env::temp_dir().join(format!("faro-bench-checkpoint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    // Start to ready, stop outside the measurement.
    let start_to_ready = |options: WatchOptions, expected: Option<u64>, iters: u64| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            rt.block_on(async {
                let seen = Arc::new(AtomicU64::new(0));
                let controller =
                    Controller::with_options(sim_client(&sim), &config, options.clone());
                controller.add_handler(Counter(seen.clone()));
                let t = Instant::now();
                controller.start().await.expect("start");
                controller.ready().await;
                total += t.elapsed();
                if let Some(n) = expected {
                    assert_eq!(seen.load(Ordering::Relaxed), n);
                }
                controller.stop().await;
            });
        }
        total
    };

    let mut group = c.benchmark_group("checkpoint");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(OBJECTS as u64));
    group.bench_function("fresh_start_100000", |b| {
        b.iter_custom(|iters| start_to_ready(options(None, false), Some(OBJECTS as u64), iters));
    });
    // One run records the checkpoint that every resume starts from.
    start_to_ready(options(Some(&dir), true), Some(OBJECTS as u64), 1);
    group.bench_function("resume_100000", |b| {
        b.iter_custom(|iters| start_to_ready(options(Some(&dir), false), Some(0), iters));
    });
    for (name, on) in [
        ("list_deliver_off_100000", false),
        ("list_deliver_on_100000", true),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let seen = Arc::new(AtomicU64::new(0));
                    let controller = Controller::with_options(
                        sim_client(&sim),
                        &config,
                        options(on.then_some(&dir), true),
                    );
                    controller.add_handler(Counter(seen.clone()));
                    controller.start().await.expect("start");
                    controller.ready().await;
                    controller.stop().await;
                    assert_eq!(seen.load(Ordering::Relaxed), OBJECTS as u64);
                });
            });
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Pod of about 6 KB, the shape a Deployment's pods have.
fn pod(generation: u32) -> DynamicObject {
    let env: Vec<serde_json::Value> = (0..75)
        .map(|i| serde_json::json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}-{generation}")}))
        .collect();
    let value = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-7d4b9c8f6d-x2k9q", "namespace": "shop", "uid": "5b0c9a43-0000-4000-8000-000000000001",
            "resourceVersion": generation.to_string(), "generation": 1,
            "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f6d",
                "uid": "5b0c9a43-0000-4000-8000-000000000002", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [{"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
                "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}]
        },
        "spec": {
            "containers": [
                {"name": "web", "image": "registry.example/web:1.2.3", "env": env,
                 "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                 "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}, {"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]},
                {"name": "sidecar", "image": "registry.example/proxy:4.5", "args": ["--port=9090", "--upstream=127.0.0.1:8080"]}
            ],
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}},
                        {"name": "kube-api-access-x", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}],
            "nodeName": "node-3", "serviceAccountName": "default", "restartPolicy": "Always",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        },
        "status": {
            "phase": "Running", "podIP": "10.244.3.17", "hostIP": "172.18.0.4", "qosClass": "Burstable",
            "startTime": "2026-01-01T00:00:00Z",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Ready", "status": if generation.is_multiple_of(2) { "True" } else { "False" }, "lastTransitionTime": "2026-01-01T00:00:05Z"},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-01-01T00:00:05Z"},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ],
            "containerStatuses": [
                {"name": "web", "ready": true, "restartCount": generation % 3, "image": "registry.example/web:1.2.3",
                 "imageID": "registry.example/web@sha256:0123456789abcdef", "containerID": "containerd://abc",
                 "state": {"running": {"startedAt": "2026-01-01T00:00:03Z"}}},
                {"name": "sidecar", "ready": true, "restartCount": 0, "image": "registry.example/proxy:4.5",
                 "imageID": "registry.example/proxy@sha256:fedcba9876543210", "containerID": "containerd://def",
                 "state": {"running": {"startedAt": "2026-01-01T00:00:03Z"}}}
            ]
        }
    });
    serde_json::from_value(value).expect("a pod")
}

fn updates(c: &mut Criterion) {
    let config = Config::default();
    let pods = Gvr::parse("v1/pods").expect("gvr");
    let a = pod(2);
    let b = pod(3);
    let size = serde_json::to_vec(&a).expect("json").len();

    // Memory: 10,000 such pods kept, against their JSON size.
    let mut tracker = UpdateTracker::new(&config.updates, &pods);
    let mut json = 0u64;
    for i in 0..10_000 {
        let mut p = pod(i);
        p.metadata.name = Some(format!("web-{i}"));
        json += serde_json::to_vec(&p).expect("json").len() as u64;
        tracker.observe(EventType::Added, &p);
    }
    println!(
        "updates/diff_memory_ratio: {:.3} bytes kept per byte of the objects' JSON ({} kept for {json}; pods of {size} bytes)",
        tracker.kept_bytes() as f64 / json as f64,
        tracker.kept_bytes()
    );

    let mut tracker = UpdateTracker::new(&config.updates, &pods);
    tracker.observe(EventType::Added, &a);
    let mut group = c.benchmark_group("updates");
    group.throughput(Throughput::Elements(1));
    let mut flip = false;
    group.bench_function("changed_paths_pod_6kb", |bench| {
        bench.iter(|| {
            flip = !flip;
            let (_, changes) = tracker.observe(EventType::Updated, if flip { &b } else { &a });
            assert_eq!(changes.and_then(|c| c.paths).map(|p| p.len()), Some(77));
        });
    });
    group.finish();
}

criterion_group!(benches, updates, checkpoints);
criterion_main!(benches);
