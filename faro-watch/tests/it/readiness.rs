//! Readiness resolves only after every pre-existing object was handed to the
//! handlers, whichever way the initial list is read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use faro_sim::SimConfig;
use faro_watch::{Controller, ListStrategy, WatchOptions};

use crate::{Recorder, client, config, configmap, create, fast, namespace, sim_with};

const OBJECTS: usize = 5_000;

async fn ready_after_all(streaming_server: bool, strategy: ListStrategy) {
    let sim = sim_with(SimConfig {
        streaming_lists: streaming_server,
        ..SimConfig::default()
    })
    .await;
    create(&sim, namespace("bulk"));
    for i in 0..OBJECTS {
        create(
            &sim,
            configmap("bulk", &format!("cm-{i:05}"), &[("bulk", "yes")]),
        );
    }
    let cfg = config(
        "resources:\n  - gvr: v1/configmaps\n    namespace_names: [bulk]\n    label_selector: bulk=yes\n",
    );
    let controller = Controller::with_options(
        client(&sim),
        &cfg,
        WatchOptions {
            list_strategy: strategy,
            ..fast()
        },
    );
    // A handler that takes its time, so that an early readiness would show.
    let recorder = Recorder::slow(Duration::from_millis(1));
    controller.add_handler(recorder.clone());
    let at_callback = Arc::new(AtomicUsize::new(usize::MAX));
    let seen = at_callback.clone();
    let r = recorder.clone();
    controller.on_ready(move || seen.store(r.count(), Ordering::SeqCst));
    controller.start().await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), controller.ready())
        .await
        .expect("ready within a minute");
    assert_eq!(
        recorder.count(),
        OBJECTS,
        "every ADDED handed over before ready"
    );
    assert_eq!(
        at_callback.load(Ordering::SeqCst),
        OBJECTS,
        "the callback too"
    );
    let all = recorder.all();
    assert!(all.iter().all(|s| s.event_type == "ADDED"));
    let mut keys: Vec<&str> = all.iter().map(|s| s.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), OBJECTS, "each object once");
    assert!(controller.is_ready());
    assert_eq!(controller.active_informers()[0].tracked_objects, OBJECTS);
    let mut registry = prometheus_client::registry::Registry::default();
    controller.register_metrics(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        "faro_watch_tracked_objects{informer=\"v1/configmaps namespace=bulk labels=\\\"bulk=yes\\\"\"} 5000",
        "faro_watch_events_total{gvr=\"v1/configmaps\",type=\"ADDED\"} 5000",
        "faro_watch_informers{state=\"watching\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(text.contains("faro_watch_last_event_timestamp_seconds{informer="));
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_after_5000_objects_from_a_streaming_list() {
    ready_after_all(true, ListStrategy::Auto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_after_5000_objects_when_the_server_refuses_streaming_lists() {
    ready_after_all(false, ListStrategy::Auto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_after_5000_objects_from_paged_lists() {
    ready_after_all(true, ListStrategy::Paged).await;
}
