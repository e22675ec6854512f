//! Memory per open container log stream: faro-watch holding 2,000 follow
//! streams open against faro-sim (1,000 pods of two containers). The server
//! runs in the same process, on its own threads; the controller runs on
//! this thread alone, so the heap counted here (allocation-counter) is
//! Faro's. The resident set is read too, but it also holds the server's
//! side of every stream. Both are read before the controller starts and
//! once every stream is open. Writes `target/bench-memory-logs.json`,
//! which `cargo xtask bench` folds into its report.

use std::time::Duration;

use faro_benches::{logs_sim, sim_client};
use faro_watch::Controller;

const PODS: usize = 1_000;
const STREAMS: usize = 2 * PODS;
const NAME: &str = "logs/memory_per_open_stream";

fn main() {
    if !faro_benches::selected(NAME) {
        return;
    }
    let rt = faro_benches::runtime();
    let sim = rt.block_on(logs_sim(PODS, 2, 0));
    let config = faro_core::Config::from_yaml(
        &format!("logs:\n  namespace_names: [logs]\n  max_streams: {STREAMS}\n"),
        "bench.yaml",
    )
    .expect("config");
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = local.block_on(async {
        let client = sim_client(&sim);
        let _ = client.list_core_api_versions().await;
        client
    });
    let rss_before = faro_benches::resident_bytes();
    let mut controller = None;
    let info = allocation_counter::measure(|| {
        controller = Some(local.block_on(async {
            let controller = Controller::new(client.clone(), &config);
            controller.start().await.expect("start");
            controller.ready().await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while controller.log_streams().unwrap_or_default().open < STREAMS
                || sim.log_follows().len() < STREAMS
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "streams open: {:?}",
                    controller.log_streams()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Settled: every stream has read its start line.
            tokio::time::sleep(Duration::from_secs(1)).await;
            controller
        }));
    });
    let rss = faro_benches::resident_bytes().saturating_sub(rss_before);
    let controller = controller.expect("controller");
    let open = controller.log_streams().unwrap_or_default().open;
    let heap = info.bytes_current.max(0) as u64;
    local.block_on(controller.stop());
    drop(sim);
    let heap_per = heap as f64 / open as f64;
    let rss_per = rss as f64 / open as f64;
    println!(
        "{NAME}: {open} streams open; Faro's heap {:.1} KiB/stream ({:.1} MiB), resident (Faro and server) {:.1} KiB/stream ({:.1} MiB)",
        heap_per / 1024.0,
        heap as f64 / 1048576.0,
        rss_per / 1024.0,
        rss as f64 / 1048576.0
    );
    let report = serde_json::json!({
        "name": NAME,
        "open_streams": open,
        "heap_bytes_per_stream": heap_per,
        "resident_bytes_per_stream_with_server": rss_per,
    });
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-memory-logs.json");
    if let Err(e) = std::fs::write(&out, report.to_string()) {
        eprintln!("cannot write {}: {e}", out.display());
    }
}
