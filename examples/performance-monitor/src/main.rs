//! `performance-monitor`: the "performance monitoring integration" of the
//! Faro guide. It embeds a Faro controller, hands every event to a handler
//! that processes it under the [`PerformanceMonitor`], and adds a hook that
//! keeps a per-GVR event counter and a per-GVR processing-duration
//! histogram. The monitor's own families, the hook's and the watches' are
//! served on `/metrics`. It prints `METRICS_URL: …` once serving and
//! `READY` once every initial list is processed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use faro_core::{Config, EventHandler, Gvr, HandlerError, MatchedEvent, ResourceRule};
use faro_monitor::{PerformanceMonitor, Snapshot};
use faro_watch::{Controller, WatchOptions};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Parser, Debug)]
#[command(
    name = "performance-monitor",
    about = "Watch resources with Faro and serve per-GVR event counts and processing times"
)]
struct Flags {
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Resources to watch (comma-separated GVRs).
    #[arg(long, value_name = "GVRS", default_value = "v1/configmaps")]
    gvrs: String,
    /// Where /metrics is served.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    listen: SocketAddr,
    /// Stop after this many seconds (default: at SIGINT).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u64>,
}

type GvrLabel = [(&'static str, String); 1];

/// What the hook keeps: events and processing time per GVR.
#[derive(Clone)]
struct PerGvr {
    events: Family<GvrLabel, Counter>,
    processing: Family<GvrLabel, Histogram>,
    /// The last processing time of each GVR, handed from the handler to the
    /// hook with the recorded event's name.
    last: Arc<Mutex<std::collections::HashMap<String, Duration>>>,
}

impl PerGvr {
    fn new() -> Self {
        Self {
            events: Family::default(),
            processing: Family::new_with_constructor(|| {
                // 10 µs to about 1 s.
                Histogram::new(exponential_buckets(0.00001, 4.0, 9))
            }),
            last: Arc::default(),
        }
    }

    /// The hook: every `processed:<gvr>` event counts and is timed.
    fn hook(&self) -> impl Fn(&str, &Snapshot) + Send + Sync + 'static {
        let me = self.clone();
        move |event: &str, _snapshot: &Snapshot| {
            let Some(gvr) = event.strip_prefix("processed:") else {
                return;
            };
            let label = [("gvr", gvr.to_owned())];
            me.events.get_or_create(&label).inc();
            let took = me
                .last
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(gvr)
                .copied();
            if let Some(took) = took {
                me.processing
                    .get_or_create(&label)
                    .observe(took.as_secs_f64());
            }
        }
    }
}

/// Processes each event (here: reads its labels) under the monitor.
struct Processor {
    monitor: PerformanceMonitor,
    per_gvr: PerGvr,
}

#[async_trait::async_trait]
impl EventHandler for Processor {
    fn name(&self) -> &str {
        "processor"
    }

    async fn on_matched(&self, event: &MatchedEvent) -> Result<(), HandlerError> {
        let started = Instant::now();
        let labels =
            self.monitor
                .profile_sync("process_event", || -> Result<usize, HandlerError> {
                    Ok(event
                        .object()
                        .metadata
                        .labels
                        .as_ref()
                        .map_or(0, |l| l.len()))
                })?;
        std::hint::black_box(labels);
        let gvr = event.gvr().to_string();
        self.per_gvr
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(gvr.clone(), started.elapsed());
        self.monitor.record_event(&format!("processed:{gvr}"));
        Ok(())
    }
}

async fn client(path: Option<&PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match path {
        Some(p) => {
            let file = kube::config::Kubeconfig::read_from(p)
                .with_context(|| format!("--kubeconfig {}", p.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    let mut config = Config::default();
    let mut rules = Vec::new();
    for part in flags
        .gvrs
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let gvr = Gvr::parse(part).map_err(|e| anyhow::anyhow!("--gvrs {part:?}: {e}"))?;
        rules.push(ResourceRule::new(gvr));
    }
    config.set_rules(rules)?;
    let client = client(flags.kubeconfig.as_ref()).await?;
    let controller = Controller::with_options(client, &config, WatchOptions::default());

    let monitor = PerformanceMonitor::new();
    let per_gvr = PerGvr::new();
    monitor.add_hook(per_gvr.hook());
    let watched = controller.clone();
    monitor.add_source(move |s: &mut Snapshot| {
        for i in watched.active_informers() {
            *s.informers.entry(i.state.as_str().to_owned()).or_default() += 1;
            s.tracked_objects += i.tracked_objects as u64;
        }
    });
    controller.add_handler(Processor {
        monitor: monitor.clone(),
        per_gvr: per_gvr.clone(),
    });

    let mut registry = Registry::default();
    monitor.register(&mut registry);
    controller.register_metrics(&mut registry);
    registry.register(
        "example_events",
        "Events processed, by GVR",
        per_gvr.events.clone(),
    );
    registry.register(
        "example_processing_duration_seconds",
        "How long processing an event took, by GVR",
        per_gvr.processing.clone(),
    );
    let registry = Arc::new(registry);
    let listener = tokio::net::TcpListener::bind(flags.listen)
        .await
        .with_context(|| format!("--listen {}", flags.listen))?;
    println!("METRICS_URL: http://{}/metrics", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                let mut text = String::new();
                match prometheus_client::encoding::text::encode(&mut text, &registry) {
                    Ok(()) => (axum::http::StatusCode::OK, text),
                    Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                }
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let periodic = monitor.start_periodic(Duration::from_secs(5));
    controller.start().await?;
    controller.ready().await;
    monitor.startup_complete();
    println!("READY");
    match flags.duration {
        Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    periodic.abort();
    let stopping = Instant::now();
    controller.stop().await;
    monitor.shutdown(stopping.elapsed());
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let flags = match Flags::try_parse() {
        Ok(f) => f,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(2);
        }
    };
    match run(flags).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("performance-monitor: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
