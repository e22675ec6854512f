//! `/metrics`, `/healthz` and `/readyz`, served by axum.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use faro_dispatch::JsonLinesSink;
use faro_watch::{ClusterState, InformerState};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::exit::Failure;
use crate::watching::Watching;

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    watching: Watching,
    ready: Arc<AtomicBool>,
    sink: Option<Arc<JsonLinesSink>>,
    /// With `monitor.readiness_on_violation`: the monitor whose exceeded
    /// thresholds make `/readyz` fail.
    violations: Option<faro_monitor::PerformanceMonitor>,
}

/// What the server serves besides the registry.
pub struct Serving {
    pub registry: Arc<Registry>,
    pub watching: Watching,
    pub ready: Arc<AtomicBool>,
    pub sink: Option<Arc<JsonLinesSink>>,
    pub violations: Option<faro_monitor::PerformanceMonitor>,
    /// `/debug/pprof/*`; `None`: 404.
    pub profiler: Option<crate::profiling::Profiler>,
}

/// Binds `addr` and serves in the background; returns the bound address.
pub async fn serve(addr: SocketAddr, serving: Serving) -> Result<SocketAddr, Failure> {
    let Serving {
        registry,
        watching,
        ready,
        sink,
        violations,
        profiler,
    } = serving;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::Runtime(format!("--metrics-addr {addr}: cannot listen: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::Runtime(format!("--metrics-addr {addr}: {e}")))?;
    let state = AppState {
        registry,
        watching,
        ready,
        sink,
        violations,
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
        .merge(crate::profiling::routes(profiler));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("metrics server stopped: {e}");
        }
    });
    Ok(bound)
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("encoding metrics: {e}\n"),
        ),
    }
}

/// Alive: not every watch failing, and the events file taking lines.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let informers = state.watching.active_informers();
    let failing =
        !informers.is_empty() && informers.iter().all(|i| i.state == InformerState::Backoff);
    if failing {
        (StatusCode::SERVICE_UNAVAILABLE, "every watch is failing\n")
    } else if state.sink.as_ref().is_some_and(|s| !s.healthy()) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "sink json-lines: writing the events file fails\n",
        )
    } else {
        (StatusCode::OK, "ok\n")
    }
}

/// 503 until every informer has synced and its events are written (with
/// several clusters: as `readiness` says); the body lists each cluster.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let synced = state.ready.load(Ordering::SeqCst);
    let exceeded = state
        .violations
        .as_ref()
        .map(|m| m.last_snapshot().exceeded.clone())
        .unwrap_or_default();
    let ready = synced && exceeded.is_empty();
    let mut body = String::from(match (synced, ready) {
        (false, _) => "not synced yet\n",
        (true, true) => "ready\n",
        (true, false) => "threshold exceeded\n",
    });
    for (threshold, value) in &exceeded {
        body.push_str(&format!("threshold {threshold}: {value}\n"));
    }
    for c in state.watching.clusters().unwrap_or_default() {
        body.push_str(&format!("cluster {}: {}", c.name, c.state.as_str()));
        if let ClusterState::Unreachable(why) = &c.state {
            body.push_str(&format!(" ({why})"));
        }
        body.push('\n');
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body)
}

/// Process figures read at each scrape: resident memory, CPU time, open
/// file descriptors, and the build.
#[derive(Debug)]
pub struct ProcessCollector;

use faro_monitor::process::cpu_seconds;
pub use faro_monitor::process::resident_bytes;

fn open_fds() -> i64 {
    i64::try_from(faro_monitor::process::open_fds()).unwrap_or(i64::MAX)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let rss = ConstGauge::new(i64::try_from(resident_bytes()).unwrap_or(i64::MAX));
        rss.encode(encoder.encode_descriptor(
            "process_resident_memory",
            "Resident memory size",
            Some(&Unit::Bytes),
            rss.metric_type(),
        )?)?;
        let cpu = ConstCounter::new(cpu_seconds());
        cpu.encode(encoder.encode_descriptor(
            "process_cpu",
            "User and system CPU time",
            Some(&Unit::Seconds),
            cpu.metric_type(),
        )?)?;
        let fds = ConstGauge::new(open_fds());
        fds.encode(encoder.encode_descriptor(
            "process_open_fds",
            "Open file descriptors",
            None,
            fds.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Registers the process collector and `faro_build_info{version}`.
pub fn register_process(registry: &mut Registry) {
    registry.register_collector(Box::new(ProcessCollector));
    let info = prometheus_client::metrics::info::Info::new(vec![(
        "version".to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
    )]);
    registry.register("faro_build", "Faro's version", info);
}

/// The events file's health and failed writes, read at each scrape.
#[derive(Debug)]
pub struct SinkCollector(pub Vec<(&'static str, Arc<dyn SinkHealth>)>);

/// What a file sink reports about its disk.
pub trait SinkHealth: Send + Sync + std::fmt::Debug {
    fn healthy(&self) -> bool;
    fn write_failures(&self) -> u64;
}

impl SinkHealth for JsonLinesSink {
    fn healthy(&self) -> bool {
        JsonLinesSink::healthy(self)
    }
    fn write_failures(&self) -> u64 {
        JsonLinesSink::write_failures(self)
    }
}

impl SinkHealth for faro_dispatch::ContainerLogsSink {
    fn healthy(&self) -> bool {
        faro_dispatch::ContainerLogsSink::healthy(self)
    }
    fn write_failures(&self) -> u64 {
        faro_dispatch::ContainerLogsSink::write_failures(self)
    }
}

impl SinkHealth for faro_dispatch::RecordsSink {
    fn healthy(&self) -> bool {
        faro_dispatch::RecordsSink::healthy(self)
    }
    fn write_failures(&self) -> u64 {
        faro_dispatch::RecordsSink::write_failures(self)
    }
}

impl Collector for SinkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "faro_sink_healthy",
            "1 while the sink writes, 0 while writing fails",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (name, sink) in &self.0 {
            ConstGauge::new(i64::from(sink.healthy()))
                .encode(family.encode_family(&[("sink", *name)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "faro_sink_write_failures",
            "Writes the sink could not make (each attempt)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (name, sink) in &self.0 {
            ConstCounter::new(sink.write_failures())
                .encode(family.encode_family(&[("sink", *name)])?)?;
        }
        Ok(())
    }
}

/// Queue depth per worker, read at each scrape.
#[derive(Debug)]
pub struct QueueCollector(pub faro_dispatch::Dispatcher);

impl Collector for QueueCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "faro_worker_queue_depth",
            "Events waiting or being handled, by worker",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (worker, depth) in self.0.queue_depths() {
            let labels = [("worker", worker)];
            let gauge = ConstGauge::new(i64::try_from(depth).unwrap_or(i64::MAX));
            gauge.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
