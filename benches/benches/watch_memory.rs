//! Memory per tracked object: faro-watch following 100,000 ConfigMaps of
//! about 1 KB. The server runs in the same process and is filled first;
//! the heap (counted by this binary's allocator) and the resident set are
//! read before the controller starts and after it is ready, with the
//! objects themselves already handed over and dropped — what remains is
//! the known state. Writes `target/bench-memory.json`, which
//! `cargo xtask bench` folds into its report.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use faro_benches::{Counter, configmap, populated_sim, sim_client};
use faro_watch::Controller;

const OBJECTS: usize = 100_000;
const NAME: &str = "watch/memory_per_tracked_object";

fn main() {
    if !faro_benches::selected(NAME) {
        return;
    }
    let rt = faro_benches::runtime();
    let sim = rt.block_on(populated_sim(OBJECTS, |i| {
        configmap(&format!("ns-{}", i % 50), &format!("cm-{i}"), 1024)
    }));
    let config = faro_core::Config::from_yaml(
        "resources:\n  - gvr: v1/configmaps\n    name_pattern: \"^cm-\"\n",
        "bench.yaml",
    )
    .expect("config");
    // The controller runs on this thread alone, where allocation-counter
    // counts; the server's threads are not counted.
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = local.block_on(async {
        let client = sim_client(&sim);
        // Warm the client's connection pool first.
        let _ = client.list_core_api_versions().await;
        client
    });
    let rss_before = faro_benches::resident_bytes();
    let seen = Arc::new(AtomicU64::new(0));
    let mut controller = None;
    let info = allocation_counter::measure(|| {
        controller = Some(local.block_on(async {
            let controller = Controller::new(client.clone(), &config);
            controller.add_handler(Counter(seen.clone()));
            controller.start().await.expect("start");
            controller.ready().await;
            controller
        }));
    });
    let rss = faro_benches::resident_bytes().saturating_sub(rss_before);
    let controller = controller.expect("controller");
    let tracked: usize = controller
        .active_informers()
        .iter()
        .map(|i| i.tracked_objects)
        .sum();
    assert_eq!(seen.load(Ordering::Relaxed), OBJECTS as u64);
    let heap = info.bytes_current.max(0) as u64;
    local.block_on(controller.stop());
    drop(sim);
    let heap_per = heap as f64 / tracked as f64;
    let rss_per = rss as f64 / tracked as f64;
    println!(
        "{NAME}: {tracked} objects tracked; heap {heap_per:.0} B/object ({:.1} MiB), resident {rss_per:.0} B/object ({:.1} MiB)",
        heap as f64 / 1048576.0,
        rss as f64 / 1048576.0
    );
    let report = serde_json::json!({
        "name": NAME,
        "tracked_objects": tracked,
        "heap_bytes_per_object": heap_per,
        "resident_bytes_per_object": rss_per,
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-memory.json");
    if let Err(e) = std::fs::write(&out, report.to_string()) {
        eprintln!("cannot write {}: {e}", out.display());
    }
}
