//! Events per second through faro-watch's whole path against faro-sim:
//! discovery, a streaming list (a watch with `sendInitialEvents`) of 20,000
//! ConfigMaps of about 1 KB, decoding, a client-side name pattern, classification
//! against the known state, and delivery to a handler — measured from
//! `Controller::start` until `ready()`, which resolves only after the last
//! event was handed over.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use faro_benches::{Counter, configmap, populated_sim, sim_client};
use faro_watch::Controller;

const OBJECTS: usize = 20_000;

fn watch_throughput(c: &mut Criterion) {
    let rt = faro_benches::runtime();
    let sim = rt.block_on(populated_sim(OBJECTS, |i| {
        configmap("bench", &format!("cm-{i}"), 1024)
    }));
    let config = faro_core::Config::from_yaml(
        "resources:\n  - gvr: v1/configmaps\n    namespace_names: [bench]\n    name_pattern: \"^cm-\"\n",
        "bench.yaml",
    )
    .expect("config");

    let mut group = c.benchmark_group("watch");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(OBJECTS as u64));
    group.bench_function("list_classify_deliver_configmaps_1kb", |b| {
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
    group.finish();
    drop(sim);
}

criterion_group!(benches, watch_throughput);
criterion_main!(benches);
