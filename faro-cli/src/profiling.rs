//! `/debug/pprof/*` on the metrics address, when profiling is on: a CPU
//! profile in pprof's protobuf format, a memory summary (Faro runs on the
//! system allocator, which keeps no allocation profile), and the tokio
//! runtime's task figures. When off, every path answers 404.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use faro_monitor::cpu::{CpuProfiler, ProfileError};

/// What the profiling endpoints serve.
#[derive(Clone, Default)]
pub struct Profiler {
    cpu: CpuProfiler,
}

/// The routes: real ones with a profiler, 404s without.
pub fn routes(profiler: Option<Profiler>) -> Router {
    match profiler {
        Some(p) => Router::new()
            .route("/debug/pprof/profile", get(cpu))
            .route("/debug/pprof/heap", get(heap))
            .route("/debug/pprof/tasks", get(tasks))
            .with_state(p),
        None => Router::new().route("/debug/pprof/{*rest}", get(off)),
    }
}

async fn off() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        "profiling is off; start faro with --profiling or set monitor.profiling: true\n",
    )
}

/// `?seconds=N` (1–300, default 30): a CPU profile of the whole process.
async fn cpu(
    State(p): State<Profiler>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let given = q.get("seconds");
    let seconds = match given.map(|s| s.parse::<u64>()) {
        None => 30,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "seconds: {:?} is not a number; expected 1 to 300\n",
                    given.cloned().unwrap_or_default()
                ),
            )
                .into_response();
        }
    };
    match p.cpu.profile(seconds).await {
        Ok(bytes) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"faro-cpu.pb\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e @ ProfileError::Busy) => (StatusCode::CONFLICT, format!("{e}\n")).into_response(),
        Err(e @ ProfileError::Seconds(_)) => {
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// The process's memory as the kernel counts it.
async fn heap() -> impl IntoResponse {
    let mut out = String::from(
        "# Faro runs on the system allocator, which keeps no allocation profile:\n# the kernel's figures for this process follow (/proc/self/status, smaps_rollup).\n",
    );
    for (file, keys) in [
        (
            "/proc/self/status",
            &[
                "VmPeak", "VmSize", "VmHWM", "VmRSS", "RssAnon", "RssFile", "VmData",
            ][..],
        ),
        (
            "/proc/self/smaps_rollup",
            &["Rss", "Pss", "Private_Dirty", "Anonymous", "Swap"][..],
        ),
    ] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines() {
            if keys.iter().any(|k| line.starts_with(&format!("{k}:"))) {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out)
}

/// The tokio runtime's figures: workers, tasks alive, queued work, and
/// how busy each worker has been.
async fn tasks() -> impl IntoResponse {
    let m = tokio::runtime::Handle::current().metrics();
    let mut out = format!(
        "workers: {}\ntasks alive: {}\nglobal queue depth: {}\n",
        m.num_workers(),
        m.num_alive_tasks(),
        m.global_queue_depth()
    );
    for w in 0..m.num_workers() {
        out.push_str(&format!(
            "worker {w}: busy {:.3} s, parked {} times\n",
            m.worker_total_busy_duration(w).as_secs_f64(),
            m.worker_park_count(w)
        ));
    }
    out.push_str(
        "# a dump of each task's stack needs a build with RUSTFLAGS=\"--cfg tokio_unstable --cfg tokio_taskdump\"\n",
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out)
}
