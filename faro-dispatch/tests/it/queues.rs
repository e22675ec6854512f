//! Per-object order across lanes, block and drop policies, panics and quarantine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use faro_core::config::{FullQueuePolicy, WorkerSettings};
use faro_core::{EventHandler, MatchedEvent};
use faro_dispatch::{Dispatcher, DispatcherOptions, Handles, ResourceWorker, WorkerError};
use tokio::sync::Semaphore;

use crate::{event, send_pods, worker_count};

/// Records the order of resourceVersions per object and how many calls overlap.
#[derive(Default)]
struct Ordered {
    per_key: Mutex<HashMap<String, Vec<u64>>>,
    running: AtomicUsize,
    most_running: AtomicUsize,
}

#[async_trait]
impl ResourceWorker for Ordered {
    fn name(&self) -> &str {
        "ordered"
    }
    fn handles(&self) -> Handles {
        Handles::All
    }
    async fn handle(&self, event: &MatchedEvent) -> Result<(), WorkerError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_running.fetch_max(now, Ordering::SeqCst);
        // Vary the time each call takes, so that lanes overtake each other.
        let rv: u64 = event.resource_version().parse().unwrap();
        if rv.is_multiple_of(7) {
            tokio::time::sleep(Duration::from_micros(200)).await;
        } else {
            tokio::task::yield_now().await;
        }
        self.per_key
            .lock()
            .unwrap()
            .entry(event.key().to_string())
            .or_default()
            .push(rv);
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_object_order_holds_over_8_lanes() {
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    let worker = Arc::new(Ordered::default());
    dispatcher
        .register_with(
            worker.clone(),
            WorkerSettings {
                queue_size: 64,
                full_queue: FullQueuePolicy::Block,
                lanes: 8,
            },
        )
        .unwrap();
    for rv in 1..=10_000u64 {
        let name = format!("obj-{}", rv % 100);
        dispatcher
            .on_matched(&event("v1/configmaps", "ns", &name, rv))
            .await
            .unwrap();
    }
    dispatcher.shutdown().await;
    let per_key = worker.per_key.lock().unwrap();
    assert_eq!(per_key.len(), 100);
    let total: usize = per_key.values().map(Vec::len).sum();
    assert_eq!(total, 10_000, "every event handled once");
    for (key, rvs) in per_key.iter() {
        assert!(
            rvs.windows(2).all(|w| w[0] < w[1]),
            "{key} out of order: {rvs:?}"
        );
    }
    assert!(
        worker.most_running.load(Ordering::SeqCst) > 1,
        "different objects were handled in parallel"
    );
}

/// Blocks in `handle` until the test lets it go, one permit per event.
struct Gated {
    name: &'static str,
    gate: Arc<Semaphore>,
    handled: AtomicUsize,
}

#[async_trait]
impl ResourceWorker for Gated {
    fn name(&self) -> &str {
        self.name
    }
    fn handles(&self) -> Handles {
        Handles::All
    }
    async fn handle(&self, _: &MatchedEvent) -> Result<(), WorkerError> {
        self.gate.acquire().await.unwrap().forget();
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn gated(name: &'static str) -> Arc<Gated> {
    Arc::new(Gated {
        name,
        gate: Arc::new(Semaphore::new(0)),
        handled: AtomicUsize::new(0),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_policy_stops_the_sender_at_the_queue_bound() {
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    let worker = gated("blocked");
    let settings = WorkerSettings {
        queue_size: 4,
        full_queue: FullQueuePolicy::Block,
        lanes: 2,
    };
    dispatcher.register_with(worker.clone(), settings).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let sender = {
        let dispatcher = dispatcher.clone();
        let accepted = accepted.clone();
        tokio::spawn(async move {
            for rv in 1..=1_000u64 {
                let name = format!("obj-{}", rv % 10);
                dispatcher
                    .on_matched(&event("v1/pods", "ns", &name, rv))
                    .await
                    .unwrap();
                accepted.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Each lane holds its queue plus the one event its worker call is on;
    // the sender waits on the next one. Nothing beyond that is in memory.
    let bound = settings.lanes * (settings.queue_size + 1);
    let held = accepted.load(Ordering::SeqCst);
    assert!(
        held <= bound,
        "{held} events accepted with a bound of {bound}"
    );
    assert!(held >= settings.queue_size, "the queues did fill ({held})");
    assert!(!sender.is_finished(), "the sender is held back");
    worker.gate.add_permits(1_000);
    sender.await.unwrap();
    dispatcher.shutdown().await;
    assert_eq!(worker.handled.load(Ordering::SeqCst), 1_000, "nothing lost");
    let dropped = dispatcher
        .metrics()
        .dropped
        .get_or_create(&[("worker", "blocked".to_owned())])
        .get();
    assert_eq!(dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_policy_counts_exactly_what_it_dropped() {
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    let worker = gated("lossy");
    dispatcher
        .register_with(
            worker.clone(),
            WorkerSettings {
                queue_size: 8,
                full_queue: FullQueuePolicy::Drop,
                lanes: 1,
            },
        )
        .unwrap();
    for rv in 1..=500u64 {
        dispatcher
            .on_matched(&event("v1/pods", "ns", "p", rv))
            .await
            .unwrap();
    }
    worker.gate.add_permits(500);
    dispatcher.shutdown().await;
    let handled = worker.handled.load(Ordering::SeqCst) as u64;
    let dropped = dispatcher
        .metrics()
        .dropped
        .get_or_create(&[("worker", "lossy".to_owned())])
        .get();
    assert!(dropped > 0, "the queue overflowed");
    assert_eq!(
        handled + dropped,
        500,
        "handled {handled} + dropped {dropped}"
    );
    assert!(
        handled <= 9,
        "the queue (8) and the call in flight (1): {handled}"
    );
}

/// Panics on events whose name starts with `panic`.
struct Panicky {
    handled: AtomicUsize,
}

#[async_trait]
impl ResourceWorker for Panicky {
    fn name(&self) -> &str {
        "panicky"
    }
    fn handles(&self) -> Handles {
        Handles::All
    }
    async fn handle(&self, event: &MatchedEvent) -> Result<(), WorkerError> {
        if event.key().name.starts_with("panic") {
            panic!("told to panic on {}", event.key());
        }
        if event.key().name.starts_with("fail") {
            return Err(WorkerError::new("refused"));
        }
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_worker_is_contained_counted_and_quarantined_after_n() {
    let dispatcher = Dispatcher::new(DispatcherOptions {
        quarantine_after: 3,
        ..DispatcherOptions::default()
    });
    let worker = Arc::new(Panicky {
        handled: AtomicUsize::new(0),
    });
    dispatcher
        .register_with(
            worker.clone(),
            WorkerSettings {
                lanes: 1,
                ..WorkerSettings::default()
            },
        )
        .unwrap();
    let names = [
        "ok-1", "panic-1", "ok-2", "fail-1", "panic-2", "panic-3", "ok-3", "panic-4", "panic-5",
        "panic-6", "ok-4", "ok-5",
    ];
    send_pods(&dispatcher, &names).await;
    dispatcher.shutdown().await;
    let m = dispatcher.metrics();
    let get = |f| worker_count(f, "panicky");
    // ok-1, ok-2 and ok-3 were handled after panics; the three in a row
    // (panic-4..6) quarantined it, so ok-4 and ok-5 were skipped.
    assert_eq!(worker.handled.load(Ordering::SeqCst), 3);
    assert_eq!(get(&m.panics), 6);
    assert_eq!(get(&m.errors), 1);
    assert_eq!(get(&m.skipped), 2);
    assert!(dispatcher.is_quarantined("panicky"));
    assert_eq!(
        m.quarantined
            .get_or_create(&[("worker", "panicky".to_owned())])
            .get(),
        1
    );
}

/// Sleeps a little on every event.
struct Slow;

#[async_trait]
impl ResourceWorker for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    fn handles(&self) -> Handles {
        Handles::All
    }
    async fn handle(&self, _event: &MatchedEvent) -> Result<(), WorkerError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_handled_event_is_timed_from_the_watch_to_the_worker() {
    let d = Dispatcher::new(DispatcherOptions::default());
    d.register(Slow).unwrap();
    let fast = crate::Recording::new("fast", Handles::All);
    d.register_arc(fast.clone()).unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    d.register_metrics(&mut registry);
    for i in 0..120 {
        d.on_matched(&event("v1/configmaps", "ns", &format!("c{i}"), i + 1))
            .await
            .unwrap();
    }
    d.wait_idle().await;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for worker in ["slow", "fast"] {
        let count = format!("faro_event_latency_seconds_count{{worker=\"{worker}\"}} 120");
        let handled = format!("faro_worker_events_total{{worker=\"{worker}\"}} 120");
        assert!(text.contains(&count), "{count} in {text}");
        assert!(text.contains(&handled), "{handled} in {text}");
    }
    let all = d.latency_counts();
    assert_eq!(all.count(), 240);
    // Every event of the slow worker took at least its 2 ms sleep.
    assert!(all.quantile(0.6).unwrap() >= 0.0025, "{all:?}");
    assert_eq!(fast.seen().len(), 120);
}

/// Takes events in batches of up to 8 but answers for at most 3 of them per
/// call, and stops at a panic, as a plugin does: the lane must hand the rest
/// over again, in order, or skip them once the worker is quarantined.
#[derive(Default)]
struct Batching {
    seen: Mutex<Vec<String>>,
    batch_sizes: Mutex<Vec<usize>>,
}

#[async_trait]
impl ResourceWorker for Batching {
    fn name(&self) -> &str {
        "batching"
    }
    fn handles(&self) -> Handles {
        Handles::All
    }
    async fn handle(&self, _: &MatchedEvent) -> Result<(), WorkerError> {
        unreachable!("a batching worker is given batches")
    }
    fn max_batch(&self) -> usize {
        8
    }
    async fn handle_batch(&self, events: &[MatchedEvent]) -> Vec<Result<(), WorkerError>> {
        let first_call = self.batch_sizes.lock().unwrap().is_empty();
        self.batch_sizes.lock().unwrap().push(events.len());
        if first_call {
            // Let the rest queue up behind the first call.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut results = Vec::new();
        for e in events.iter().take(3) {
            let name = e.key().name.clone();
            self.seen.lock().unwrap().push(name.clone());
            if name.starts_with("panic") {
                results.push(Err(WorkerError::panicked(format!(
                    "told to panic on {name}"
                ))));
                break;
            }
            results.push(if name.starts_with("fail") {
                Err(WorkerError::new("refused"))
            } else {
                Ok(())
            });
        }
        results
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batching_worker_answers_for_a_prefix_and_the_lane_hands_over_the_rest() {
    let dispatcher = Dispatcher::new(DispatcherOptions {
        quarantine_after: 3,
        ..DispatcherOptions::default()
    });
    let worker = Arc::new(Batching::default());
    dispatcher
        .register_with(
            worker.clone(),
            WorkerSettings {
                lanes: 1,
                ..WorkerSettings::default()
            },
        )
        .unwrap();
    let names = [
        "ok-1", "ok-2", "ok-3", "ok-4", "fail-1", "ok-5", "panic-1", "ok-6", "panic-2", "panic-3",
        "panic-4", "ok-7", "ok-8",
    ];
    send_pods(&dispatcher, &names).await;
    dispatcher.shutdown().await;
    // Every event up to the third panic in a row, once each and in order;
    // the two after it skipped.
    assert_eq!(*worker.seen.lock().unwrap(), names[..11]);
    let sizes = worker.batch_sizes.lock().unwrap().clone();
    assert!(
        sizes.iter().any(|&n| n > 3),
        "events were batched: {sizes:?}"
    );
    assert!(
        sizes.iter().all(|&n| n <= 8),
        "at most max_batch: {sizes:?}"
    );
    let m = dispatcher.metrics();
    let get = |f| worker_count(f, "batching");
    assert_eq!(get(&m.handled), 11);
    assert_eq!(get(&m.panics), 4);
    assert_eq!(get(&m.errors), 1);
    assert_eq!(get(&m.skipped), 2);
    assert!(dispatcher.is_quarantined("batching"));
    assert_eq!(dispatcher.latency_counts().count(), 11);
}
