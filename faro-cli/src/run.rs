//! `faro run`: the configuration-driven run, and the session it sets up
//! (controller, dispatcher, sinks, plugins, metrics) that `demo` reuses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use faro_core::Config;
use faro_core::RecordKind;
use faro_core::config::{LogLevel, Overrides};
use faro_dispatch::{
    ContainerLogsSink, CorrelationSink, Dispatcher, DispatcherOptions, JsonLinesSink, RecordsSink,
    TextLogSink,
};
use faro_watch::{CheckpointOptions, Controller, Fleet, InformerState, Resolution, WatchOptions};
use kube::api::ListParams;
use prometheus_client::registry::Registry;

use crate::cli::Common;
use crate::exit::{Failure, from_watch, one_line};
use crate::http;
use crate::watching::Watching;

/// `--log-level`, if given.
pub fn log_level_flag(common: &Common) -> Result<Option<LogLevel>, Failure> {
    common
        .log_level
        .as_deref()
        .map(|l| {
            l.parse()
                .map_err(|e| Failure::Usage(format!("--log-level: {e}")))
        })
        .transpose()
}

/// The configuration as flags > environment > YAML > defaults.
pub fn resolve_config(common: &Common) -> Result<Config, Failure> {
    let flags = Overrides {
        config_file: common.config.clone(),
        output_dir: common.output_dir.clone(),
        log_level: log_level_flag(common)?,
        auto_shutdown_sec: common.auto_shutdown,
        json_export: None,
    };
    // FARO_CONFIG is read by clap into `common.config`.
    let env = Overrides::from_env(|k| {
        if k == "FARO_CONFIG" {
            None
        } else {
            std::env::var(k).ok()
        }
    })
    .map_err(|e| Failure::Usage(e.to_string()))?;
    Config::resolve(&flags, &env).map_err(|e| Failure::Usage(one_line(&e.to_string())))
}

/// Where metrics are served: the flag, else the YAML keys, else the default.
pub fn metrics_addr(common: &Common, config: &Config) -> Option<SocketAddr> {
    if common.no_metrics {
        return None;
    }
    if let Some(addr) = common.metrics_addr {
        return Some(addr);
    }
    config.metrics.enabled.then(|| config.metrics.addr())
}

/// Lists one object of every served spec, so that a missing permission is a
/// clear failure at start instead of a watch retrying forever.
pub async fn preflight(
    controller: &Controller,
    client: &kube::Client,
    config: &Config,
) -> Result<(), Failure> {
    let discovery = controller.discovery();
    for spec in &config.watch_specs {
        let resource = match discovery
            .resolve(&spec.gvr, spec.scope)
            .await
            .map_err(from_watch)?
        {
            Resolution::Served(r) => r,
            Resolution::NotServed => continue,
        };
        let namespace = spec.server.namespace.as_deref();
        let api = resource.api(client, namespace);
        let mut params = ListParams::default().limit(1);
        if !spec.server.labels.is_empty() {
            params.label_selector = Some(spec.server.labels.to_string());
        }
        if !spec.server.fields.is_empty() {
            params.field_selector = Some(spec.server.fields.to_string());
        }
        if let Err(e) = api.list(&params).await {
            let where_ = namespace.map_or_else(
                || "all namespaces".to_owned(),
                |ns| format!("namespace {ns}"),
            );
            return Err(match e {
                kube::Error::Api(status) if status.code == 403 || status.code == 401 => {
                    Failure::Runtime(format!(
                        "forbidden: cannot list {} in {where_}: {}",
                        spec.gvr,
                        one_line(&status.message)
                    ))
                }
                other => Failure::Runtime(format!(
                    "cannot list {} in {where_}: {}",
                    spec.gvr,
                    one_line(&other.to_string())
                )),
            });
        }
    }
    Ok(())
}

/// The clusters a session watches.
pub enum Target {
    /// One cluster, unnamed: the single-cluster contract.
    One(kube::Client),
    /// Clusters by name, each with its client and configuration.
    Clusters(Vec<ClusterTarget>),
}

/// One cluster of a [`Target::Clusters`].
pub struct ClusterTarget {
    pub name: String,
    pub client: kube::Client,
    pub config: Config,
}

/// Everything a run holds.
pub struct Session {
    pub watching: Watching,
    pub dispatcher: Dispatcher,
    pub json: Option<Arc<JsonLinesSink>>,
    pub container_logs: Option<Arc<ContainerLogsSink>>,
    pub k8s_events: Option<Arc<RecordsSink>>,
    pub lifecycle: Option<Arc<RecordsSink>>,
    pub correlations: Option<Arc<CorrelationSink>>,
    pub log_file: PathBuf,
    pub metrics_url: Option<String>,
    pub ready: Arc<AtomicBool>,
    pub started: Instant,
    /// Between the watches and the dispatcher when replicas share the work:
    /// one, or one per cluster (by name).
    pub gates: Vec<(Option<String>, Arc<faro_watch::Gate>)>,
    /// Snapshots of the run, hooks, event counts and timings.
    pub monitor: faro_monitor::PerformanceMonitor,
    /// Every metric family of the run (served on `/metrics`, pushed).
    pub registry: Arc<Registry>,
    /// Pushes to a Pushgateway, with `metrics.push`.
    pub pusher: Option<faro_monitor::Pusher>,
}

/// `metrics.push` as the monitor's push target.
fn push_target(push: &faro_core::config::PushConfig) -> faro_monitor::PushTarget {
    use faro_core::config::PushAuth;
    faro_monitor::PushTarget {
        url: push.url.clone(),
        job: push.job.clone(),
        grouping: push.grouping.clone(),
        credentials: match &push.auth {
            PushAuth::None => faro_monitor::PushCredentials::None,
            PushAuth::Basic {
                username,
                password_file,
            } => faro_monitor::PushCredentials::Basic {
                username: username.clone(),
                password_file: password_file.clone(),
            },
            PushAuth::Bearer { token_file } => faro_monitor::PushCredentials::Bearer {
                token_file: token_file.clone(),
            },
        },
        timeout: push.timeout,
        retries: push.retries,
    }
}

/// `monitor:` as the monitor's thresholds.
pub fn thresholds(m: &faro_core::config::MonitorConfig) -> faro_monitor::Thresholds {
    let seconds = |s: Option<f64>| s.map(Duration::from_secs_f64);
    faro_monitor::Thresholds {
        max_resident_bytes: m.max_resident_mb.map(|mb| (mb * 1_048_576.0) as u64),
        max_queue_depth: m
            .max_queue_depth
            .map(|d| usize::try_from(d).unwrap_or(usize::MAX)),
        max_event_latency: seconds(m.max_event_latency_seconds),
        max_error_rate: m.max_error_rate,
        stall: seconds(m.stall_seconds),
        ..faro_monitor::Thresholds::default()
    }
}

impl Session {
    /// Checks access, opens the files, loads plugins, starts metrics and the
    /// watches. With one cluster, a cluster that refuses is a failure; with
    /// several, each is reported and retried on its own.
    pub async fn start(
        target: Target,
        config: Config,
        metrics: Option<SocketAddr>,
        checkpoint: Option<CheckpointOptions>,
        writer: Option<(Arc<str>, u32)>,
    ) -> Result<Session, Failure> {
        let started = Instant::now();
        let monitor = faro_monitor::PerformanceMonitor::new();
        let mut pending: Vec<ClusterTarget> = Vec::new();
        let watching = match target {
            Target::One(client) => {
                let options = WatchOptions {
                    checkpoint: checkpoint.clone(),
                    writer: writer.clone(),
                    ..WatchOptions::default()
                };
                let controller = Controller::with_options(client.clone(), &config, options);
                preflight(&controller, &client, &config).await?;
                Watching::One(controller)
            }
            Target::Clusters(clusters) => {
                // The clusters are added once the handlers exist (below).
                pending = clusters;
                Watching::Fleet(Fleet::new(config.readiness))
            }
        };
        let dispatcher = Dispatcher::new(DispatcherOptions {
            workers: config.workers.clone(),
            quarantine_after: config.plugins.quarantine_after,
            middleware: config.middleware,
            ..DispatcherOptions::default()
        });
        let logs = config.output_dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| {
            Failure::Runtime(format!("output_dir {}: {e}", config.output_dir.display()))
        })?;
        let json = if config.json_export {
            let sink = Arc::new(JsonLinesSink::create(&config.output_dir).map_err(|e| {
                Failure::Runtime(format!("output_dir {}: {e}", config.output_dir.display()))
            })?);
            register_one_lane(&dispatcher, sink.clone(), &config.workers)?;
            Some(sink)
        } else {
            None
        };
        let container_logs = if config.logs.is_some() {
            let sink = Arc::new(ContainerLogsSink::create(&config.output_dir).map_err(|e| {
                Failure::Runtime(format!("output_dir {}: {e}", config.output_dir.display()))
            })?);
            // One file, one writer: a single lane takes no lock against another.
            register_one_lane(&dispatcher, sink.clone(), &config.workers)?;
            Some(sink)
        } else {
            None
        };
        let records = |kind: RecordKind| -> Result<Arc<RecordsSink>, Failure> {
            let sink = Arc::new(RecordsSink::create(&config.output_dir, kind).map_err(|e| {
                Failure::Runtime(format!("output_dir {}: {e}", config.output_dir.display()))
            })?);
            register_one_lane(&dispatcher, sink.clone(), &config.workers)?;
            Ok(sink)
        };
        let k8s_events = match &config.k8s_events {
            Some(_) => Some(records(RecordKind::K8sEvent)?),
            None => None,
        };
        let watches_pods = config
            .watch_specs
            .iter()
            .any(|s| s.gvr.group().is_empty() && s.gvr.resource() == "pods");
        let lifecycle = if config.lifecycle.enabled && watches_pods {
            Some(records(RecordKind::Lifecycle)?)
        } else {
            None
        };
        let correlations = if config.correlation_output.enabled {
            let dir = config
                .correlation_output
                .directory
                .clone()
                .unwrap_or_else(|| config.output_dir.join("correlations"));
            let sink = CorrelationSink::create(&dir, &config.correlation_output).map_err(|e| {
                Failure::Usage(format!(
                    "correlation_output.directory: {:?} cannot be written: {e}; expected a writable directory",
                    dir.display().to_string()
                ))
            })?;
            let sink = Arc::new(sink);
            register_one_lane(&dispatcher, sink.clone(), &config.workers)?;
            Some(sink)
        } else {
            None
        };
        let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
        let log_file = logs.join(format!("faro-{}.log", now.strftime("%Y%m%d-%H%M%S")));
        let text_log = TextLogSink::at(log_file.clone())
            .map_err(|e| Failure::Runtime(format!("{}: {e}", log_file.display())))?;
        register_one_lane(&dispatcher, Arc::new(text_log), &config.workers)?;
        if let Some(dir) = &config.plugins.directory {
            let (plugins, errors) = faro_dispatch::load_directory(
                dir,
                &config.plugins.config,
                config.workers.defaults.queue_size,
            );
            if let Some(e) = errors.first() {
                return Err(Failure::Usage(e.to_string()));
            }
            for p in plugins {
                dispatcher
                    .register(p)
                    .map_err(|e| Failure::Usage(e.to_string()))?;
            }
        }
        // With replicas, each cluster has a gate of its own.
        let mut gates: Vec<(Option<String>, Arc<faro_watch::Gate>)> = Vec::new();
        let new_gate = |shards: u32| {
            Arc::new(faro_watch::Gate::new(
                crate::ha::writer(&dispatcher),
                shards,
            ))
        };
        match (&watching, &writer) {
            (Watching::One(_), Some((_, shards))) => {
                let gate = new_gate(*shards);
                watching.add_handler(gate.clone());
                gates.push((None, gate));
            }
            (Watching::Fleet(_), Some(_)) => {}
            (_, None) => watching.add_handler(dispatcher.clone()),
        }
        if let Watching::Fleet(fleet) = &watching {
            for c in pending {
                // Each cluster records its progress in a directory of its own.
                let checkpoint = checkpoint.clone().map(|o| CheckpointOptions {
                    directory: o.directory.join(&c.name),
                    ..o
                });
                let options = WatchOptions {
                    checkpoint,
                    writer: writer.clone(),
                    ..WatchOptions::default()
                };
                let own: Vec<Arc<dyn faro_core::EventHandler>> = match &writer {
                    Some((_, shards)) => {
                        let gate = new_gate(*shards);
                        gates.push((Some(c.name.clone()), gate.clone()));
                        vec![gate]
                    }
                    None => Vec::new(),
                };
                fleet
                    .add_cluster_with(&c.name, c.client, &c.config, options, own)
                    .map_err(|e| Failure::Usage(format!("clusters: {}: {e}", c.name)))?;
            }
        }
        let ready = Arc::new(AtomicBool::new(false));
        let mut registry = Registry::default();
        match &watching {
            Watching::One(c) => c.register_metrics(&mut registry),
            Watching::Fleet(f) => f.register_metrics(&mut registry),
        }
        dispatcher.register_metrics(&mut registry);
        http::register_process(&mut registry);
        monitor.register(&mut registry);
        registry.register_collector(Box::new(http::QueueCollector(dispatcher.clone())));
        let mut sinks: Vec<(&'static str, Arc<dyn http::SinkHealth>)> = Vec::new();
        if let Some(sink) = &json {
            sinks.push((JsonLinesSink::NAME, sink.clone()));
        }
        if let Some(sink) = &container_logs {
            sinks.push((ContainerLogsSink::NAME, sink.clone()));
        }
        for (kind, sink) in [
            (RecordKind::K8sEvent, &k8s_events),
            (RecordKind::Lifecycle, &lifecycle),
        ] {
            if let Some(sink) = sink {
                sinks.push((RecordsSink::name_for(kind), sink.clone()));
            }
        }
        if let Some(sink) = &correlations {
            sink.metrics().register(&mut registry);
        }
        registry.register_collector(Box::new(http::SinkCollector(sinks)));
        let pusher = match &config.metrics.push {
            Some(push) => {
                let pusher = faro_monitor::Pusher::new(&push_target(push))
                    .map_err(|e| Failure::Usage(format!("metrics.push: {e}")))?;
                pusher.register(&mut registry);
                Some(pusher)
            }
            None => None,
        };
        let registry = Arc::new(registry);
        let metrics_url = match metrics {
            Some(addr) => {
                let bound = http::serve(
                    addr,
                    http::Serving {
                        registry: registry.clone(),
                        watching: watching.clone(),
                        ready: ready.clone(),
                        sink: json.clone(),
                        violations: config
                            .monitor
                            .readiness_on_violation
                            .then(|| monitor.clone()),
                        profiler: config
                            .monitor
                            .profiling
                            .then(crate::profiling::Profiler::default),
                    },
                )
                .await?;
                Some(format!("http://{bound}/metrics"))
            }
            None => None,
        };
        if let Watching::One(controller) = &watching {
            controller.start().await.map_err(from_watch)?;
        }
        Ok(Session {
            watching,
            dispatcher,
            json,
            container_logs,
            k8s_events,
            lifecycle,
            correlations,
            log_file,
            metrics_url,
            ready,
            started,
            gates,
            monitor,
            registry,
            pusher,
        })
    }

    /// Pushes every family to the Pushgateway, when `metrics.push` is set;
    /// a failure is a warning (and counted), bounded by the push timeout.
    pub async fn push_metrics(&self) {
        if let Some(p) = &self.pusher {
            match p.push_registry(&self.registry).await {
                Ok(()) => tracing::debug!(url = p.url(), "metrics pushed"),
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }

    /// Waits until every informer synced (of every cluster, or of the
    /// clusters readiness asks for) and every initial event is on disk.
    pub async fn wait_ready(&self) {
        self.watching.ready().await;
        self.dispatcher.wait_idle().await;
        self.ready.store(true, Ordering::SeqCst);
    }

    /// `(synced, parked)` informers.
    pub fn informer_counts(&self) -> (usize, usize) {
        let infos = self.watching.active_informers();
        let parked = infos
            .iter()
            .filter(|i| i.state == InformerState::Parked)
            .count();
        (infos.iter().filter(|i| i.synced).count(), parked)
    }

    /// Stops the watches, drains the queues, flushes the files; bounded in
    /// time. How long it took goes to the monitor's `shutdown` hooks.
    pub async fn stop(&self) -> Summary {
        let stopping = Instant::now();
        if tokio::time::timeout(Duration::from_secs(10), self.watching.stop())
            .await
            .is_err()
        {
            tracing::warn!("the watches did not stop within 10 s");
        }
        if tokio::time::timeout(Duration::from_secs(20), self.dispatcher.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("the queues did not drain within 20 s");
        }
        let (added, updated, deleted) = self.json.as_ref().map_or((0, 0, 0), |j| j.written());
        Summary {
            added,
            updated,
            deleted,
            log_lines: self.container_logs.as_ref().map(|c| c.written()),
            k8s_events: self.k8s_events.as_ref().map(|c| c.written()),
            lifecycle_records: self.lifecycle.as_ref().map(|c| c.written()),
            correlation_files: self
                .correlations
                .as_ref()
                .map(|c| c.metrics().files_written.get()),
            dropped: self.dispatcher.dropped_total(),
            run_seconds: self.started.elapsed().as_secs_f64(),
            shutdown_seconds: {
                let took = stopping.elapsed();
                self.monitor.shutdown(took);
                took.as_secs_f64()
            },
            handed_over: (!self.gates.is_empty()).then(|| {
                self.gates.iter().fold((0, 0), |(r, d), (_, g)| {
                    let (r2, d2) = g.handed_over();
                    (r + r2, d + d2)
                })
            }),
        }
    }
}

/// Registers a file sink with its configured queue, in one lane so that the
/// file keeps the order of events.
fn register_one_lane(
    dispatcher: &Dispatcher,
    worker: Arc<dyn faro_dispatch::ResourceWorker>,
    workers: &faro_core::config::WorkersConfig,
) -> Result<(), Failure> {
    let mut settings = workers.for_worker(worker.name());
    settings.lanes = 1;
    dispatcher
        .register_with(worker, settings)
        .map_err(|e| Failure::Runtime(e.to_string()))
}

/// What a run wrote.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub added: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Lines in the container-logs file, when logs are followed.
    pub log_lines: Option<u64>,
    /// Records in the k8s-events file, when Events are reported.
    pub k8s_events: Option<u64>,
    /// Records in the lifecycle file, when pods are watched.
    pub lifecycle_records: Option<u64>,
    /// Correlation documents written, when they are on.
    pub correlation_files: Option<u64>,
    pub dropped: u64,
    pub run_seconds: f64,
    /// How long stopping took (watches, queues, files).
    pub shutdown_seconds: f64,
    /// With `ha.enabled`: held events written at takeovers, and held events
    /// dropped past the bound.
    pub handed_over: Option<(u64, u64)>,
}

impl Summary {
    pub fn json(&self) -> String {
        let mut out = serde_json::json!({
            "added": self.added,
            "updated": self.updated,
            "deleted": self.deleted,
            "dropped": self.dropped,
            "runSeconds": (self.run_seconds * 10.0).round() / 10.0,
            "shutdownSeconds": (self.shutdown_seconds * 1000.0).round() / 1000.0,
        });
        if let Some(n) = self.log_lines {
            out["logLines"] = n.into();
        }
        if let Some(n) = self.k8s_events {
            out["k8sEvents"] = n.into();
        }
        if let Some(n) = self.lifecycle_records {
            out["lifecycleRecords"] = n.into();
        }
        if let Some(n) = self.correlation_files {
            out["correlationFiles"] = n.into();
        }
        if let Some((replayed, dropped)) = self.handed_over {
            out["heldWritten"] = replayed.into();
            out["heldDropped"] = dropped.into();
        }
        out.to_string()
    }
}

/// Resolves on the first SIGINT/SIGTERM or when `after` has passed. A
/// second signal ends the process at once with 130.
pub async fn shutdown_signal(after: Option<Duration>) {
    let timer = async {
        match after {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = signal() => {
            tracing::info!("signal received; stopping (a second signal exits at once)");
            tokio::spawn(async {
                signal().await;
                eprintln!("faro: second signal; exiting now");
                std::process::exit(130);
            });
        }
        () = timer => tracing::info!("auto-shutdown time reached; stopping"),
    }
}

async fn signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Where and how often `faro run` records progress (`<output_dir>/state`
/// unless the `checkpoint:` block says otherwise); the directory is made here,
/// so that one that cannot be is a usage error.
fn checkpoint_options(config: &Config, fresh: bool) -> Result<Option<CheckpointOptions>, Failure> {
    if !config.checkpoint.enabled {
        return Ok(None);
    }
    let directory = config
        .checkpoint
        .directory
        .clone()
        .unwrap_or_else(|| config.output_dir.join("state"));
    std::fs::create_dir_all(&directory).map_err(|e| {
        Failure::Usage(format!(
            "checkpoint.directory: {} cannot be created: {}; expected a writable directory",
            directory.display(),
            one_line(&e.to_string())
        ))
    })?;
    Ok(Some(CheckpointOptions {
        directory,
        interval: config.checkpoint.interval,
        fresh,
    }))
}

/// The clusters `faro run` watches: the `clusters:` block, else one per
/// `--context` when there are several, else the one cluster.
pub async fn target(common: &Common, config: &Config) -> Result<Target, Failure> {
    if !config.clusters.is_empty() {
        if !common.context.is_empty() {
            return Err(Failure::Usage(
                "--context: the configuration has a clusters: block; expected the contexts there, not on the command line".to_owned(),
            ));
        }
        let mut out = Vec::with_capacity(config.clusters.len());
        for (i, c) in config.clusters.iter().enumerate() {
            let kubeconfig = c.kubeconfig.as_deref().or(common.kubeconfig.as_deref());
            let client = crate::kube_client::client(kubeconfig, c.context.as_deref())
                .await
                .map_err(|f| Failure::Usage(format!("clusters[{i}] ({}): {f}", c.name)))?;
            let cluster_config = config
                .for_cluster(c)
                .map_err(|e| Failure::Usage(one_line(&e.to_string())))?;
            out.push(ClusterTarget {
                name: c.name.clone(),
                client,
                config: cluster_config,
            });
        }
        return Ok(Target::Clusters(out));
    }
    if common.context.len() > 1 {
        let clients =
            crate::kube_client::clients(common.kubeconfig.as_deref(), &common.context).await?;
        return Ok(Target::Clusters(
            clients
                .into_iter()
                .map(|(name, client)| ClusterTarget {
                    name,
                    client,
                    config: config.clone(),
                })
                .collect(),
        ));
    }
    Ok(Target::One(
        crate::kube_client::client(common.kubeconfig.as_deref(), common.one_context()?).await?,
    ))
}

/// Prints `FARO_CLUSTER: <name> <state>` whenever a cluster's state changes.
async fn announce_clusters(fleet: faro_watch::Fleet) {
    let mut changes = fleet.changes();
    let mut said: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    loop {
        for c in fleet.clusters() {
            let mut line = c.state.as_str().to_owned();
            if let faro_watch::ClusterState::Unreachable(why) = &c.state {
                line = format!("{line} ({why})");
            }
            if said.get(&*c.name) != Some(&line) {
                say!("FARO_CLUSTER: {} {line}", c.name);
                said.insert(c.name.to_string(), line);
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// `faro run`.
pub async fn run(common: &Common, mut config: Config, fresh: bool) -> Result<(), Failure> {
    let target = target(common, &config).await?;
    let ha = config.ha.clone();
    let (checkpoint, writer) = if ha.enabled {
        // Progress is handed over through the Leases, not kept on local disk.
        let identity: Arc<str> = Arc::from(faro_watch::default_identity(&ha));
        (None, Some((identity, ha.shards)))
    } else {
        (checkpoint_options(&config, fresh)?, None)
    };
    // Each cluster's Leases live in that cluster.
    let clients: Vec<(Option<String>, kube::Client)> = match &target {
        Target::One(client) => vec![(None, client.clone())],
        Target::Clusters(list) => list
            .iter()
            .map(|c| (Some(c.name.clone()), c.client.clone()))
            .collect(),
    };
    let metrics = metrics_addr(common, &config);
    let auto = config.auto_shutdown_sec.map(Duration::from_secs);
    if common.profiling {
        config.monitor.profiling = true;
    }
    let monitor_config = config.monitor.clone();
    let push_every = config.metrics.push.as_ref().and_then(|p| p.interval);
    let push_on_exit = config.metrics.push.as_ref().is_some_and(|p| p.on_exit);
    let session = Arc::new(Session::start(target, config, metrics, checkpoint, writer).await?);
    let elections: Vec<_> = session
        .gates
        .iter()
        .filter_map(|(cluster, gate)| {
            let (_, client) = clients.iter().find(|(c, _)| c == cluster)?;
            Some(crate::ha::start(
                client.clone(),
                &ha,
                cluster.as_deref(),
                gate.clone(),
                session.ready.clone(),
            ))
        })
        .collect();
    let announcer = match &session.watching {
        Watching::Fleet(f) => Some(tokio::spawn(announce_clusters(f.clone()))),
        Watching::One(_) => None,
    };
    if let Some(url) = &session.metrics_url {
        say!("FARO_METRICS_URL: {url}");
    }
    if let Some(json) = &session.json {
        say!("FARO_JSON_FILE: {}", json.path().display());
    }
    if let Some(logs) = &session.container_logs {
        say!("FARO_CONTAINER_LOGS_FILE: {}", logs.path().display());
    }
    if let Some(events) = &session.k8s_events {
        say!("FARO_K8S_EVENTS_FILE: {}", events.path().display());
    }
    if let Some(lifecycle) = &session.lifecycle {
        say!("FARO_LIFECYCLE_FILE: {}", lifecycle.path().display());
    }
    if let Some(correlations) = &session.correlations {
        say!(
            "FARO_CORRELATION_DIR: {}",
            correlations.directory().display()
        );
    }
    say!("FARO_LOG_FILE: {}", session.log_file.display());
    let interval = Duration::from_secs(common.stats_interval.max(1));
    let collect_every = interval.min(monitor_config.interval);
    session.monitor.add_source(crate::stats::source(
        session.watching.clone(),
        session.dispatcher.clone(),
    ));
    session.monitor.add_hook(crate::stats::hook(
        session.watching.clone(),
        session.dispatcher.clone(),
        interval,
        collect_every,
    ));
    session.monitor.set_thresholds(thresholds(&monitor_config));
    let stats = session.monitor.start_periodic(collect_every);
    let pushing = push_every.map(|every| {
        let session = session.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                session.push_metrics().await;
            }
        })
    });
    let stop = shutdown_signal(auto);
    tokio::pin!(stop);
    tokio::select! {
        () = session.wait_ready() => {
            let (synced, parked) = session.informer_counts();
            match session.watching.clusters() {
                Some(clusters) => say!(
                    "FARO_READY: {}; {synced} informers synced, {parked} parked",
                    crate::watching::summary(&clusters)
                ),
                None => say!("FARO_READY: {synced} informers synced, {parked} parked"),
            }
            session.monitor.startup_complete();
            stop.await;
        }
        () = &mut stop => {}
    }
    stats.abort();
    if let Some(p) = pushing {
        p.abort();
    }
    if let Some(a) = announcer {
        a.abort();
    }
    let summary = session.stop().await;
    for (replicas, announcer) in elections {
        replicas.stop().await;
        announcer.abort();
    }
    say!("FARO_SUMMARY: {}", summary.json());
    if push_on_exit {
        session.push_metrics().await;
    }
    tracing::info!(
        "wrote {} ADDED, {} UPDATED, {} DELETED in {:.1} s ({} dropped)",
        summary.added,
        summary.updated,
        summary.deleted,
        summary.run_seconds,
        summary.dropped
    );
    Ok(())
}
