//! Nanoseconds per event through faro-dispatch: 10,000 events of ~1 KB
//! ConfigMaps over 100 objects, from `on_matched` until the dispatcher has
//! drained (shutdown included), to
//! - a static worker that does nothing (routing, middleware, lanes),
//! - a plugin loaded from its `.so` (envelope serialisation, the channel to
//!   its thread, the FFI call, the SDK's decoding),
//! - the JSON lines sink (serialisation, buffered writes, the final flush).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use faro_core::{DynamicObject, EventHandler, EventType, Gvr, MatchedEvent};
use faro_dispatch::{
    Dispatcher, DispatcherOptions, Handles, JsonLinesSink, ResourceWorker, WorkerError,
};

const EVENTS: usize = 10_000;

struct Noop(AtomicU64);

#[async_trait::async_trait]
impl ResourceWorker for Noop {
    fn name(&self) -> &str {
        "noop"
    }
    fn handles(&self) -> Handles {
        Handles::All
    }
    async fn handle(&self, _: &MatchedEvent) -> Result<(), WorkerError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Fresh events each batch: an event caches its plugin envelope.
fn events(objects: &[Arc<DynamicObject>], gvr: &Arc<Gvr>) -> Vec<MatchedEvent> {
    (0..EVENTS)
        .map(|i| {
            MatchedEvent::new(
                EventType::Updated,
                gvr.clone(),
                objects[i % objects.len()].clone(),
            )
        })
        .collect()
}

async fn run(dispatcher: Dispatcher, events: Vec<MatchedEvent>) {
    for e in &events {
        dispatcher.on_matched(e).await.expect("dispatch");
    }
    dispatcher.shutdown().await;
}

fn dispatch(c: &mut Criterion) {
    let rt = faro_benches::runtime();
    let gvr = Arc::new(Gvr::parse("v1/configmaps").expect("gvr"));
    let objects: Vec<Arc<DynamicObject>> = (0..100)
        .map(|i| {
            let mut v = faro_benches::configmap("bench", &format!("cm-{i}"), 1024);
            v["metadata"]["uid"] = serde_json::json!(format!("uid-{i}"));
            v["metadata"]["resourceVersion"] = serde_json::json!(i.to_string());
            Arc::new(serde_json::from_value(v).expect("object"))
        })
        .collect();
    let (plugin_dir, plugin_file) = faro_benches::built_plugin("test-panic");
    let output = std::env::temp_dir().join(format!("faro-bench-dispatch-{}", std::process::id()));
    std::fs::create_dir_all(&output).expect("output directory");

    let mut group = c.benchmark_group("dispatch");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("static_worker", |b| {
        b.iter_batched(
            || events(&objects, &gvr),
            |events| {
                rt.block_on(async {
                    let dispatcher = Dispatcher::new(DispatcherOptions::default());
                    let noop = Arc::new(Noop(AtomicU64::new(0)));
                    dispatcher.register_arc(noop.clone()).expect("register");
                    run(dispatcher, events).await;
                    assert_eq!(noop.0.load(Ordering::Relaxed), EVENTS as u64);
                });
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("plugin", |b| {
        b.iter_batched(
            || events(&objects, &gvr),
            |events| {
                rt.block_on(async {
                    let dispatcher = Dispatcher::new(DispatcherOptions::default());
                    let plugin = faro_dispatch::load(
                        &plugin_file,
                        std::slice::from_ref(&plugin_dir),
                        None,
                        1024,
                    )
                    .expect("plugin loads");
                    dispatcher.register(plugin).expect("register");
                    run(dispatcher, events).await;
                });
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("json_lines_sink", |b| {
        b.iter_batched(
            || events(&objects, &gvr),
            |events| {
                rt.block_on(async {
                    let dispatcher = Dispatcher::new(DispatcherOptions::default());
                    let sink = JsonLinesSink::at(output.join("events.json")).expect("sink");
                    dispatcher
                        .register_with(
                            Arc::new(sink),
                            faro_core::config::WorkerSettings {
                                lanes: 1,
                                ..Default::default()
                            },
                        )
                        .expect("register");
                    run(dispatcher, events).await;
                });
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&output);
    let _ = std::fs::remove_dir_all(&plugin_dir);
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
