//! Container log lines per second from faro-sim to the container-logs
//! file, one Faro, 1,000 containers (500 pods of two), lines of about 120
//! bytes read with `timestamps=true`, checked against the position, routed
//! through the dispatcher and written as JSON records:
//!
//! - `open_1000_streams_and_read_them`: from `Controller::start` (pod list,
//!   1,000 streams opened) until the 200 lines each container holds are in
//!   the file;
//! - `follow_lines_to_file_1000_containers`: with every stream open, the
//!   containers write 200 lines each; until they are all in the file.
//!
//! Also: the watch benchmark's path with a `logs:` block following pods of
//! another namespace, to show that following logs does not slow watches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use faro_benches::{Counter, configmap, logs_sim, sim_client};
use faro_dispatch::{ContainerLogsSink, Dispatcher, DispatcherOptions};
use faro_watch::Controller;

/// A dispatcher writing log lines to a container-logs file in `dir`, in one lane.
fn sink_in(dir: &std::path::Path) -> (Dispatcher, Arc<ContainerLogsSink>) {
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    let sink = Arc::new(ContainerLogsSink::create(dir).expect("sink"));
    dispatcher
        .register_with(
            sink.clone(),
            faro_core::config::WorkerSettings {
                lanes: 1,
                ..faro_core::config::WorkerSettings::default()
            },
        )
        .expect("register");
    (dispatcher, sink)
}

const PODS: usize = 500;
const CONTAINERS: usize = 2;
const LINES: usize = 200;

fn logs_throughput(c: &mut Criterion) {
    let rt = faro_benches::runtime();
    let sim = rt.block_on(logs_sim(PODS, CONTAINERS, LINES));
    let total = (PODS * CONTAINERS * (LINES + 1)) as u64;
    let config = faro_core::Config::from_yaml(
        "logs:\n  namespace_names: [logs]\n  max_streams: 1000\n",
        "bench.yaml",
    )
    .expect("config");
    let dir = std::env::temp_dir().join(format!("faro-bench-logs-{}", std::process::id()));
    let mut group = c.benchmark_group("logs");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(total));
    group.bench_function("open_1000_streams_and_read_them", |b| {
        b.iter_custom(|iterations| {
            let mut measured = Duration::ZERO;
            for _ in 0..iterations {
                measured += rt.block_on(async {
                    let (dispatcher, sink) = sink_in(&dir);
                    let controller = Controller::new(sim_client(&sim), &config);
                    controller.add_handler(dispatcher.clone());
                    let started = std::time::Instant::now();
                    controller.start().await.expect("start");
                    while sink.written() < total {
                        dispatcher.wait_idle().await;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    let took = started.elapsed();
                    controller.stop().await;
                    dispatcher.shutdown().await;
                    assert_eq!(sink.written(), total);
                    let _ = std::fs::remove_file(sink.path());
                    took
                });
            }
            measured
        });
    });
    // Steady state: every stream open and caught up; each iteration the
    // 1,000 containers write 200 more lines each, and Faro follows.
    let total = (PODS * CONTAINERS * LINES) as u64;
    group.throughput(Throughput::Elements(total));
    group.bench_function("follow_lines_to_file_1000_containers", |b| {
        let _runtime = rt.enter();
        let (dispatcher, sink) = sink_in(&dir);
        let controller = Controller::new(sim_client(&sim), &config);
        controller.add_handler(dispatcher.clone());
        let mut round = 0usize;
        rt.block_on(async {
            controller.start().await.expect("start");
            let already = (PODS * CONTAINERS * (LINES + 1)) as u64;
            while sink.written() < already {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        b.iter_custom(|iterations| {
            let mut measured = Duration::ZERO;
            for _ in 0..iterations {
                round += 1;
                let batches: Vec<(String, String, Vec<String>)> = (0..PODS)
                    .flat_map(|p| (0..CONTAINERS).map(move |c| (p, c)))
                    .map(|(p, c)| {
                        let pod = format!("pod-{p:05}");
                        let lines = (0..LINES)
                            .map(|i| {
                                format!(
                                    "level=info ts=2026-12-01T10:00:00Z caller=api.go:{i:04} msg=\"GET /api/v1/orders/{round:06} 200\" pod={pod} c=c{c}"
                                )
                            })
                            .collect();
                        (pod, format!("c{c}"), lines)
                    })
                    .collect();
                let before = sink.written();
                let started = std::time::Instant::now();
                for (pod, c, lines) in batches {
                    sim.append_log("logs", &pod, &c, lines).expect("append");
                }
                rt.block_on(async {
                    while sink.written() < before + total {
                        dispatcher.wait_idle().await;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                });
                measured += started.elapsed();
            }
            measured
        });
        rt.block_on(async {
            controller.stop().await;
            dispatcher.shutdown().await;
        });
        let _ = std::fs::remove_file(sink.path());
    });
    group.finish();
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}

const OBJECTS: usize = 20_000;

/// The watch benchmark, with and without a `logs:` block for pods of
/// another namespace (whose 200 containers hold streams open meanwhile).
fn watch_with_logs(c: &mut Criterion) {
    let rt = faro_benches::runtime();
    let sim = rt.block_on(async {
        let sim = logs_sim(100, 2, 0).await;
        sim.create(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "bench" },
        }))
        .expect("namespace");
        for i in 0..OBJECTS {
            sim.create(configmap("bench", &format!("cm-{i}"), 1024))
                .expect("object");
        }
        sim
    });
    let watch = "resources:\n  - gvr: v1/configmaps\n    namespace_names: [bench]\n    name_pattern: \"^cm-\"\n";
    let mut group = c.benchmark_group("watch_logs");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(OBJECTS as u64));
    for (name, yaml) in [
        ("configmaps_without_logs", watch.to_owned()),
        (
            "configmaps_with_logs_of_other_pods",
            format!("{watch}logs:\n  namespace_names: [logs]\n"),
        ),
    ] {
        let config = faro_core::Config::from_yaml(&yaml, "bench.yaml").expect("config");
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let seen = Arc::new(AtomicU64::new(0));
                    let controller = Controller::new(sim_client(&sim), &config);
                    controller.add_handler(Counter(seen.clone()));
                    controller.start().await.expect("start");
                    controller.ready().await;
                    assert_eq!(seen.load(Ordering::Relaxed), OBJECTS as u64);
                    controller.stop().await;
                });
            });
        });
    }
    group.finish();
    drop(sim);
}

criterion_group!(benches, logs_throughput, watch_with_logs);
criterion_main!(benches);
