//! Faro's configuration: the YAML file (namespace-centric and resource-centric
//! formats, alone or together), its validation, environment and flag
//! overrides, and normalisation into watch specs.

mod continuity;
mod error;
mod fleet;
mod logs;
mod monitor;
mod raw;
mod spec;
mod story;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use faro_filter::{
    FieldSelector, FilterError, LabelPattern, LabelSelector, NamespaceMatcher, Pattern,
    is_dns_label,
};

pub use continuity::{CheckpointConfig, DiffMode, Suppress, UpdatePolicy, UpdatesConfig};
pub use error::{ConfigError, Invalid};
pub use fleet::{ClusterConfig, HaConfig, Readiness, is_cluster_name, shard_of};
pub use logs::{LogSince, LogsConfig};
pub use monitor::{MonitorConfig, PushAuth, PushConfig};
pub use spec::{NamespaceSelection, ResourceRule, WatchSpec, normalise};
pub use story::{CorrelationOutputConfig, EventsSince, K8sEventsConfig, LifecycleConfig};

use crate::{Gvr, Scope};
use raw::{
    RawConfig, RawMiddleware, RawPlugins, RawResource, RawResourceFilter, RawWorkerSettings,
    RawWorkers, RawWorkload, boolean, push_key, whole_number,
};

/// How much Faro logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogLevel {
    /// Everything, including each event.
    Debug,
    /// Start-up, readiness, periodic statistics.
    #[default]
    Info,
    /// Problems Faro recovers from (`warning` and `warn`).
    Warn,
    /// Problems it does not.
    Error,
    /// Only what ends the program.
    Fatal,
}

/// A string that is not a log level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a log level; expected one of debug, info, warning, warn, error, fatal")]
pub struct LogLevelError(String);

impl FromStr for LogLevel {
    type Err = LogLevelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warning" | "warn" => Ok(LogLevel::Warn),
            "error" => Ok(LogLevel::Error),
            "fatal" => Ok(LogLevel::Fatal),
            _ => Err(LogLevelError(text.to_string())),
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
        })
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// URL path, starting with `/`.
    pub path: String,
    /// Address to bind.
    pub bind_addr: IpAddr,
    /// Pushing to a Prometheus Pushgateway; `None`: no push.
    pub push: Option<PushConfig>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            port: 8080,
            path: "/metrics".to_string(),
            bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            push: None,
        }
    }
}

impl MetricsConfig {
    /// The socket address to serve on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind_addr, self.port)
    }
}

/// A validated configuration. Further blocks are added as fields; the
/// struct is non-exhaustive so that adding one breaks no user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Where `logs/` with the event and log files goes.
    pub output_dir: PathBuf,
    /// How much to log.
    pub log_level: LogLevel,
    /// Stop by itself after this many seconds; `None` runs until signalled.
    pub auto_shutdown_sec: Option<u64>,
    /// Write the JSON lines event file.
    pub json_export: bool,
    /// The metrics endpoint.
    pub metrics: MetricsConfig,
    /// What the configuration asks to watch, in the order written
    /// (namespace-centric entries first, then resource-centric).
    pub rules: Vec<ResourceRule>,
    /// The normalised watches serving `rules`.
    pub watch_specs: Vec<WatchSpec>,
    /// Workload detection; `None` when the block is absent.
    pub workload: Option<WorkloadConfig>,
    /// Where plugins are loaded from and what each is configured with.
    pub plugins: PluginsConfig,
    /// Queues of the resource workers.
    pub workers: WorkersConfig,
    /// The built-in middleware applied before every worker and sink.
    pub middleware: MiddlewareConfig,
    /// Container logs to follow; `None` when the block is absent.
    pub logs: Option<LogsConfig>,
    /// Kubernetes Events to report; `None` when the block is absent.
    pub k8s_events: Option<K8sEventsConfig>,
    /// Lifecycle records of the pods Faro watches.
    pub lifecycle: LifecycleConfig,
    /// One JSON document per correlation.
    pub correlation_output: CorrelationOutputConfig,
    /// Checkpoints of watch progress, for resuming after a restart.
    pub checkpoint: CheckpointConfig,
    /// How UPDATEDs are treated, per GVR.
    pub updates: UpdatesConfig,
    /// The clusters to watch, by name; empty: one unnamed cluster.
    pub clusters: Vec<ClusterConfig>,
    /// With several clusters: whether readiness waits for one or for all.
    pub readiness: Readiness,
    /// Replicas electing a leader (per shard) through Leases.
    pub ha: HaConfig,
    /// How Faro watches itself: thresholds, profiling.
    pub monitor: MonitorConfig,
}

/// The `plugins:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginsConfig {
    /// The directory `.so` plugins are loaded from; `None` loads none.
    pub directory: Option<PathBuf>,
    /// A plugin that panics this many times in a row is quarantined.
    pub quarantine_after: u32,
    /// Each plugin's configuration, by plugin name, handed to it as JSON.
    pub config: BTreeMap<String, serde_json::Value>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            directory: None,
            quarantine_after: 5,
            config: BTreeMap::new(),
        }
    }
}

/// What a worker's queue does when it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullQueuePolicy {
    /// Wait for room: the backpressure reaches the watch.
    #[default]
    Block,
    /// Drop the event and count it.
    Drop,
}

impl FromStr for FullQueuePolicy {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "block" => Ok(Self::Block),
            "drop" => Ok(Self::Drop),
            other => Err(format!(
                "{other:?} is not a full-queue policy; expected block or drop"
            )),
        }
    }
}

/// One worker's queue settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Events each lane holds before the policy applies.
    pub queue_size: usize,
    /// What happens when a lane is full.
    pub full_queue: FullQueuePolicy,
    /// Parallel lanes; events of one object always share a lane.
    pub lanes: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            queue_size: 1024,
            full_queue: FullQueuePolicy::Block,
            lanes: 8,
        }
    }
}

/// The `workers:` block: defaults and per-worker overrides.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkersConfig {
    /// For every worker without an override.
    pub defaults: WorkerSettings,
    /// By worker name.
    pub overrides: BTreeMap<String, WorkerSettings>,
}

impl WorkersConfig {
    /// The settings of the worker called `name`.
    pub fn for_worker(&self, name: &str) -> WorkerSettings {
        self.overrides.get(name).copied().unwrap_or(self.defaults)
    }
}

/// The `middleware:` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MiddlewareConfig {
    /// Replace the values of `data` and `stringData` of `v1/secrets` with `"<redacted>"`.
    pub redact_secrets: bool,
    /// Remove `metadata.managedFields`.
    pub drop_managed_fields: bool,
}

impl Default for MiddlewareConfig {
    fn default() -> Self {
        Self {
            redact_secrets: true,
            drop_managed_fields: true,
        }
    }
}

/// Workload detection: namespaces labelled as workloads, and the resources
/// watched in each workload's namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// The namespace label whose value names a workload.
    pub detection_label: String,
    /// Which label values are workloads; its first capture group (or the
    /// whole match) is the workload id.
    pub workload_pattern: Pattern,
    /// Which namespaces belong to a workload: its first capture group must
    /// equal the workload id.
    pub namespace_pattern: Pattern,
    /// Namespaced resources watched in every namespace of a workload.
    pub gvrs: Vec<Gvr>,
}

impl WorkloadConfig {
    /// The workload id a namespace's labels declare, if any.
    pub fn workload_of<'a>(
        &self,
        labels: Option<&'a std::collections::BTreeMap<String, String>>,
    ) -> Option<&'a str> {
        let value = labels?.get(&self.detection_label)?;
        self.workload_pattern.capture(value)
    }

    /// The workload id a namespace name belongs to, if any.
    pub fn namespace_workload<'a>(&self, namespace: &'a str) -> Option<&'a str> {
        self.namespace_pattern.capture(namespace)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            output_dir: PathBuf::from("./output"),
            log_level: LogLevel::default(),
            auto_shutdown_sec: None,
            json_export: true,
            metrics: MetricsConfig::default(),
            rules: Vec::new(),
            watch_specs: Vec::new(),
            workload: None,
            plugins: PluginsConfig::default(),
            workers: WorkersConfig::default(),
            middleware: MiddlewareConfig::default(),
            logs: None,
            k8s_events: None,
            lifecycle: LifecycleConfig::default(),
            correlation_output: CorrelationOutputConfig::default(),
            checkpoint: CheckpointConfig::default(),
            updates: UpdatesConfig::default(),
            clusters: Vec::new(),
            readiness: Readiness::default(),
            ha: HaConfig::default(),
            monitor: MonitorConfig::default(),
        }
    }
}

impl Config {
    /// Reads and validates a YAML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// Validates YAML text; `origin` names it in syntax errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw = raw::parse(text, origin)?;
        Self::from_raw(raw)
    }

    /// Replaces the rules and recomputes the watch specs.
    pub fn set_rules(&mut self, rules: Vec<ResourceRule>) -> Result<(), ConfigError> {
        self.watch_specs = normalise(&rules)?;
        let mut per_gvr: BTreeMap<Gvr, (UpdatePolicy, &str)> = BTreeMap::new();
        for rule in &rules {
            let Some(policy) = &rule.updates else {
                continue;
            };
            match per_gvr.get(&rule.gvr) {
                Some((seen, origin)) if seen != policy => {
                    return Err(ConfigError::invalid(
                        format!("{}.updates", rule.origin),
                        format!(
                            "differs from {origin}.updates for {}; expected one updates block per GVR",
                            rule.gvr
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    per_gvr.insert(rule.gvr.clone(), (policy.clone(), &rule.origin));
                }
            }
        }
        self.updates.per_gvr = per_gvr.into_iter().map(|(g, (p, _))| (g, p)).collect();
        self.rules = rules;
        Ok(())
    }

    /// The configuration one cluster runs with: the shared one, with the
    /// cluster's own rules when it has them.
    pub fn for_cluster(&self, cluster: &ClusterConfig) -> Result<Config, ConfigError> {
        let mut config = self.clone();
        config.clusters = Vec::new();
        if let Some(rules) = &cluster.rules {
            config.set_rules(rules.clone())?;
        }
        Ok(config)
    }

    /// Applies overrides (from flags or the environment) on top of the file.
    pub fn apply(&mut self, overrides: &Overrides) {
        if let Some(dir) = &overrides.output_dir {
            self.output_dir.clone_from(dir);
        }
        if let Some(level) = overrides.log_level {
            self.log_level = level;
        }
        if let Some(sec) = overrides.auto_shutdown_sec {
            self.auto_shutdown_sec = (sec > 0).then_some(sec);
        }
        if let Some(json) = overrides.json_export {
            self.json_export = json;
        }
    }

    /// The configuration as flags > environment > YAML file > defaults.
    /// The file is `flags.config_file`, else `env.config_file`, else none.
    pub fn resolve(flags: &Overrides, env: &Overrides) -> Result<Self, ConfigError> {
        let merged = flags.clone().or(env.clone());
        let mut config = match &merged.config_file {
            Some(path) => Self::load(path)?,
            None => Self::default(),
        };
        config.apply(&merged);
        Ok(config)
    }

    fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        if let Some(dir) = raw.output_dir {
            if dir.trim().is_empty() {
                return Err(ConfigError::invalid(
                    "output_dir",
                    "\"\" is empty; expected a directory path",
                ));
            }
            config.output_dir = PathBuf::from(dir);
        }
        if let Some(level) = raw.log_level {
            config.log_level = level
                .parse()
                .map_err(|e: LogLevelError| ConfigError::invalid("log_level", e.to_string()))?;
        }
        if let Some(sec) = &raw.auto_shutdown_sec {
            let sec = whole_number(
                "auto_shutdown_sec",
                sec,
                u64::from(u32::MAX),
                "a number of seconds",
            )?;
            config.auto_shutdown_sec = (sec > 0).then_some(sec);
        }
        if let Some(json) = &raw.json_export {
            config.json_export = boolean("json_export", json)?;
        }
        if let Some(metrics) = raw.metrics {
            let m = &mut config.metrics;
            if let Some(enabled) = &metrics.enabled {
                m.enabled = boolean("metrics.enabled", enabled)?;
            }
            if let Some(port) = &metrics.port {
                m.port = u16::try_from(whole_number("metrics.port", port, 65535, "a port")?)
                    .unwrap_or(m.port);
            }
            if let Some(path) = metrics.path {
                if !path.starts_with('/') {
                    return Err(ConfigError::invalid(
                        "metrics.path",
                        format!(
                            "{path:?} does not start with \"/\"; expected a URL path such as /metrics"
                        ),
                    ));
                }
                m.path = path;
            }
            if let Some(addr) = metrics.bind_addr {
                m.bind_addr = addr.parse().map_err(|_| {
                    ConfigError::invalid(
                        "metrics.bind_addr",
                        format!("{addr:?} is not an IP address; expected one such as 127.0.0.1 or 0.0.0.0"),
                    )
                })?;
            }
            if let Some(push) = metrics.push {
                m.push = Some(monitor::push_config(push)?);
            }
        }
        if let Some(m) = raw.monitor {
            config.monitor = monitor::monitor_config(m)?;
        }

        let rules = rules_of("", raw.namespaces, raw.resources)?;
        config.set_rules(rules)?;
        if let Some(workload) = raw.workload {
            config.workload = Some(workload_config(workload)?);
        }
        if let Some(plugins) = raw.plugins {
            config.plugins = plugins_config(plugins)?;
        }
        if let Some(workers) = raw.workers {
            config.workers = workers_config(workers)?;
        }
        if let Some(middleware) = raw.middleware {
            config.middleware = middleware_config(&middleware)?;
        }
        if let Some(logs) = raw.logs {
            config.logs = Some(logs::logs_config(logs)?);
        }
        if let Some(events) = raw.k8s_events {
            config.k8s_events = Some(story::k8s_events_config(events)?);
        }
        if let Some(lifecycle) = raw.lifecycle {
            config.lifecycle = story::lifecycle_config(lifecycle)?;
        }
        if let Some(output) = raw.correlation_output {
            config.correlation_output = story::correlation_output_config(output)?;
        }
        if let Some(checkpoint) = raw.checkpoint {
            config.checkpoint = continuity::checkpoint_config(checkpoint)?;
        }
        config.clusters = fleet::clusters_config(raw.clusters, rules_of)?;
        if let Some(readiness) = &raw.readiness {
            config.readiness = readiness
                .parse()
                .map_err(|e: String| ConfigError::invalid("readiness", e))?;
        }
        if let Some(ha) = raw.ha {
            config.ha = fleet::ha_config(ha)?;
        }
        for c in &config.clusters {
            if let Some(rules) = &c.rules {
                // A cluster's own rules must hold together like the shared ones.
                config.clone().set_rules(rules.clone())?;
            }
        }
        if let Some(updates) = &raw.updates {
            let per_gvr = std::mem::take(&mut config.updates.per_gvr);
            config.updates = continuity::updates_config(updates)?;
            config.updates.per_gvr = per_gvr;
        }
        Ok(config)
    }
}

/// The rules of `namespaces` and `resources` entries; origins start with
/// `prefix` (`""`, or `clusters[i].` for a cluster's own).
fn rules_of(
    prefix: &str,
    namespaces: Vec<raw::RawNamespace>,
    resources: Vec<raw::RawResource>,
) -> Result<Vec<ResourceRule>, ConfigError> {
    let mut rules = Vec::new();
    for (i, ns) in namespaces.into_iter().enumerate() {
        let origin = format!("{prefix}namespaces[{i}]");
        let namespaces = match (ns.name_selector, ns.name_pattern) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    origin,
                    "name_selector and name_pattern are both set; expected exactly one",
                ));
            }
            (None, None) => {
                return Err(ConfigError::invalid(
                    origin,
                    "neither name_selector nor name_pattern is set; expected exactly one",
                ));
            }
            (Some(name), None) => {
                namespace_name(&format!("{origin}.name_selector"), &name)?;
                NamespaceSelection::Names(vec![name])
            }
            (None, Some(pattern)) => NamespaceSelection::Matching(
                NamespaceMatcher::new(Vec::<String>::new(), [pattern.clone()]).map_err(
                    |(_, e)| invalid_value(&format!("{origin}.name_pattern"), &pattern, &e),
                )?,
            ),
        };
        for (gvr_text, filter) in ns.resources {
            let mut at = format!("{origin}.resources");
            push_key(&mut at, &gvr_text);
            let gvr = Gvr::parse(&gvr_text)
                .map_err(|e| ConfigError::invalid(at.clone(), e.to_string()))?;
            if gvr.known_scope() == Some(Scope::Cluster) {
                return Err(ConfigError::invalid(
                    at,
                    format!(
                        "{gvr} is cluster-scoped; expected a namespaced resource under namespaces[]"
                    ),
                ));
            }
            let mut rule = ResourceRule::new(gvr);
            rule.scope = Some(Scope::Namespaced);
            rule.namespaces = namespaces.clone();
            apply_filter(&mut rule, &at, filter)?;
            rule.origin = at;
            rules.push(rule);
        }
    }
    for (i, resource) in resources.into_iter().enumerate() {
        rules.push(resource_rule(&format!("{prefix}resources[{i}]"), resource)?);
    }
    Ok(rules)
}

fn plugins_config(raw: RawPlugins) -> Result<PluginsConfig, ConfigError> {
    let mut out = PluginsConfig::default();
    if let Some(dir) = raw.directory {
        if dir.trim().is_empty() {
            return Err(ConfigError::invalid(
                "plugins.directory",
                "\"\" is empty; expected a directory path",
            ));
        }
        out.directory = Some(PathBuf::from(dir));
    }
    if let Some(n) = &raw.quarantine_after {
        let n = whole_number(
            "plugins.quarantine_after",
            n,
            1_000_000,
            "a number of panics",
        )?;
        if n == 0 {
            return Err(ConfigError::invalid(
                "plugins.quarantine_after",
                "0 is not a number of panics; expected 1 or more",
            ));
        }
        out.quarantine_after = u32::try_from(n).unwrap_or(u32::MAX);
    }
    out.config = raw.config;
    Ok(out)
}

fn worker_settings(
    path: &str,
    base: WorkerSettings,
    queue_size: Option<&serde_json::Value>,
    full_queue: Option<&str>,
    lanes: Option<&serde_json::Value>,
) -> Result<WorkerSettings, ConfigError> {
    let mut out = base;
    if let Some(size) = queue_size {
        let at = format!("{path}.queue_size");
        let n = whole_number(&at, size, 1 << 24, "a queue size")?;
        if n == 0 {
            return Err(ConfigError::invalid(
                at,
                "0 is not a queue size; expected 1 or more",
            ));
        }
        out.queue_size = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(policy) = full_queue {
        out.full_queue = policy
            .parse()
            .map_err(|e: String| ConfigError::invalid(format!("{path}.full_queue"), e))?;
    }
    if let Some(lanes) = lanes {
        let at = format!("{path}.lanes");
        let n = whole_number(&at, lanes, 256, "a number of lanes")?;
        if n == 0 {
            return Err(ConfigError::invalid(
                at,
                "0 is not a number of lanes; expected 1 to 256",
            ));
        }
        out.lanes = usize::try_from(n).unwrap_or(1);
    }
    Ok(out)
}

fn workers_config(raw: RawWorkers) -> Result<WorkersConfig, ConfigError> {
    let defaults = worker_settings(
        "workers",
        WorkerSettings::default(),
        raw.queue_size.as_ref(),
        raw.full_queue.as_deref(),
        raw.lanes.as_ref(),
    )?;
    let mut overrides = BTreeMap::new();
    for (name, o) in raw.overrides {
        let RawWorkerSettings {
            queue_size,
            full_queue,
            lanes,
        } = o;
        let mut at = "workers.overrides".to_owned();
        push_key(&mut at, &name);
        let settings = worker_settings(
            &at,
            defaults,
            queue_size.as_ref(),
            full_queue.as_deref(),
            lanes.as_ref(),
        )?;
        overrides.insert(name, settings);
    }
    Ok(WorkersConfig {
        defaults,
        overrides,
    })
}

fn middleware_config(raw: &RawMiddleware) -> Result<MiddlewareConfig, ConfigError> {
    let mut out = MiddlewareConfig::default();
    if let Some(v) = &raw.redact_secrets {
        out.redact_secrets = boolean("middleware.redact_secrets", v)?;
    }
    if let Some(v) = &raw.drop_managed_fields {
        out.drop_managed_fields = boolean("middleware.drop_managed_fields", v)?;
    }
    Ok(out)
}

fn workload_config(raw: RawWorkload) -> Result<WorkloadConfig, ConfigError> {
    let label = raw.detection_label;
    let plain_key = !label.contains(['=', '!', ',', ' ', '(', ')']);
    if !plain_key || LabelSelector::parse(&label).is_err() {
        return Err(ConfigError::invalid(
            "workload.detection_label",
            format!("{label:?} is not a label key; expected one such as example.com/workload"),
        ));
    }
    let pattern =
        |path: &str, text: &str| Pattern::new(text).map_err(|e| invalid_value(path, text, &e));
    let workload_pattern = pattern(
        "workload.workload_pattern",
        raw.workload_pattern.as_deref().unwrap_or(".+"),
    )?;
    let namespace_pattern = pattern("workload.namespace_pattern", &raw.namespace_pattern)?;
    if namespace_pattern.group_count() == 0 {
        return Err(ConfigError::invalid(
            "workload.namespace_pattern",
            format!(
                "{:?} has no capture group; expected one that captures the workload id, such as ^(.+)-(dev|prod)$",
                raw.namespace_pattern
            ),
        ));
    }
    if raw.gvrs.is_empty() {
        return Err(ConfigError::invalid(
            "workload.gvrs",
            "is empty; expected at least one namespaced resource such as v1/pods",
        ));
    }
    let mut gvrs = Vec::with_capacity(raw.gvrs.len());
    for (i, text) in raw.gvrs.iter().enumerate() {
        let at = format!("workload.gvrs[{i}]");
        let gvr = Gvr::parse(text).map_err(|e| ConfigError::invalid(at.clone(), e.to_string()))?;
        if gvr.known_scope() == Some(Scope::Cluster) {
            return Err(ConfigError::invalid(
                at,
                format!("{gvr} is cluster-scoped; expected a namespaced resource"),
            ));
        }
        gvrs.push(gvr);
    }
    Ok(WorkloadConfig {
        detection_label: label,
        workload_pattern,
        namespace_pattern,
        gvrs,
    })
}

fn resource_rule(origin: &str, raw: RawResource) -> Result<ResourceRule, ConfigError> {
    let gvr = Gvr::parse(&raw.gvr)
        .map_err(|e| ConfigError::invalid(format!("{origin}.gvr"), e.to_string()))?;
    let mut rule = ResourceRule::new(gvr);
    if let Some(scope) = &raw.scope {
        let scope = Scope::parse(scope)
            .map_err(|e| ConfigError::invalid(format!("{origin}.scope"), e.to_string()))?;
        if rule.scope == Some(Scope::Cluster) && scope == Scope::Namespaced {
            return Err(ConfigError::invalid(
                format!("{origin}.scope"),
                format!("{} is cluster-scoped; expected scope Cluster", rule.gvr),
            ));
        }
        rule.scope = Some(scope);
    }
    if rule.scope == Some(Scope::Cluster) {
        for (key, present) in [
            ("namespace_names", !raw.namespace_names.is_empty()),
            ("namespace_patterns", !raw.namespace_patterns.is_empty()),
        ] {
            if present {
                return Err(ConfigError::invalid(
                    format!("{origin}.{key}"),
                    format!("{} is cluster-scoped; expected no {key}", rule.gvr),
                ));
            }
        }
    }
    for (j, name) in raw.namespace_names.iter().enumerate() {
        namespace_name(&format!("{origin}.namespace_names[{j}]"), name)?;
    }
    rule.namespaces = if !raw.namespace_patterns.is_empty() {
        let matcher =
            NamespaceMatcher::new(raw.namespace_names.clone(), raw.namespace_patterns.clone())
                .map_err(|(j, e)| {
                    invalid_value(
                        &format!("{origin}.namespace_patterns[{j}]"),
                        &raw.namespace_patterns[j],
                        &e,
                    )
                })?;
        NamespaceSelection::Matching(matcher)
    } else if !raw.namespace_names.is_empty() {
        let mut names = raw.namespace_names.clone();
        names.sort();
        names.dedup();
        NamespaceSelection::Names(names)
    } else {
        NamespaceSelection::All
    };
    let filter = RawResourceFilter {
        name_selector: raw.name_selector,
        name_pattern: raw.name_pattern,
        label_selector: raw.label_selector,
        label_pattern: raw.label_pattern,
        field_selector: raw.field_selector,
    };
    apply_filter(&mut rule, origin, filter)?;
    if let Some(updates) = &raw.updates {
        let path = format!("{origin}.updates");
        if updates.diff_memory_mb.is_some() {
            return Err(ConfigError::invalid(
                format!("{path}.diff_memory_mb"),
                "is set per rule; expected it in the top-level updates block only",
            ));
        }
        rule.updates = Some(continuity::update_policy(&path, updates)?);
    }
    rule.origin = origin.to_string();
    Ok(rule)
}

/// The keys shared by both formats: selectors and patterns on one resource.
fn apply_filter(
    rule: &mut ResourceRule,
    origin: &str,
    raw: RawResourceFilter,
) -> Result<(), ConfigError> {
    if let Some(text) = &raw.label_selector {
        rule.label_selector = LabelSelector::parse(text)
            .map_err(|e| invalid_value(&format!("{origin}.label_selector"), text, &e))?;
    }
    if let Some(text) = &raw.field_selector {
        rule.field_selector = FieldSelector::parse(text)
            .map_err(|e| invalid_value(&format!("{origin}.field_selector"), text, &e))?;
    }
    if let Some(name) = &raw.name_selector {
        let path = format!("{origin}.name_selector");
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ',' || c == '/') {
            return Err(ConfigError::invalid(
                path,
                format!(
                    "{name:?} is not an object name; expected one exact name such as my-config"
                ),
            ));
        }
        if let Some(other) = rule.field_selector.required("metadata.name")
            && other != name
        {
            return Err(ConfigError::invalid(
                path,
                format!(
                    "{name:?} conflicts with metadata.name={other} in field_selector; expected one name"
                ),
            ));
        }
        rule.field_selector = rule
            .field_selector
            .clone()
            .and(&FieldSelector::name_equals(name));
    }
    if let Some(text) = &raw.name_pattern {
        rule.name_pattern = Some(
            Pattern::new(text)
                .map_err(|e| invalid_value(&format!("{origin}.name_pattern"), text, &e))?,
        );
    }
    if let Some(text) = &raw.label_pattern {
        rule.label_patterns = LabelPattern::parse_list(text)
            .map_err(|e| invalid_value(&format!("{origin}.label_pattern"), text, &e))?;
    }
    Ok(())
}

fn namespace_name(path: &str, name: &str) -> Result<(), ConfigError> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            path,
            format!(
                "{name:?} is not a namespace name; expected a DNS-1123 label (lowercase letters, digits and '-')"
            ),
        ))
    }
}

fn invalid_value(path: &str, value: &str, error: &FilterError) -> ConfigError {
    let what = match error {
        FilterError::LabelSelector(_) => "a valid label selector",
        FilterError::FieldSelector(_) => "a valid field selector",
        FilterError::Pattern(_) => "a valid regular expression",
        FilterError::LabelPattern(_) => "a valid label pattern (key=regex)",
    };
    ConfigError::invalid(path, format!("{value:?} is not {what}: {error}"))
}

/// Values that override the YAML file, from flags or the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--config` / `FARO_CONFIG`.
    pub config_file: Option<PathBuf>,
    /// `--output-dir` / `FARO_OUTPUT_DIR`.
    pub output_dir: Option<PathBuf>,
    /// `--log-level` / `FARO_LOG_LEVEL`.
    pub log_level: Option<LogLevel>,
    /// `--auto-shutdown` / `FARO_AUTO_SHUTDOWN_SEC` (0 disables).
    pub auto_shutdown_sec: Option<u64>,
    /// `FARO_JSON_EXPORT`.
    pub json_export: Option<bool>,
}

impl Overrides {
    /// Reads `FARO_CONFIG`, `FARO_OUTPUT_DIR`, `FARO_LOG_LEVEL`,
    /// `FARO_AUTO_SHUTDOWN_SEC` and `FARO_JSON_EXPORT` through `get`
    /// (`std::env::var` in a program, a map in a test).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.is_empty());
        let mut out = Overrides {
            config_file: get("FARO_CONFIG").map(PathBuf::from),
            output_dir: get("FARO_OUTPUT_DIR").map(PathBuf::from),
            ..Overrides::default()
        };
        if let Some(level) = get("FARO_LOG_LEVEL") {
            out.log_level = Some(level.parse().map_err(|e: LogLevelError| {
                ConfigError::invalid("FARO_LOG_LEVEL", e.to_string())
            })?);
        }
        if let Some(sec) = get("FARO_AUTO_SHUTDOWN_SEC") {
            out.auto_shutdown_sec = Some(sec.parse().map_err(|_| {
                ConfigError::invalid(
                    "FARO_AUTO_SHUTDOWN_SEC",
                    format!(
                        "{sec:?} is not a number of seconds; expected a whole number such as 300"
                    ),
                )
            })?);
        }
        if let Some(json) = get("FARO_JSON_EXPORT") {
            out.json_export = Some(match json.as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ConfigError::invalid(
                        "FARO_JSON_EXPORT",
                        format!("{json:?} is not a boolean; expected true or false"),
                    ));
                }
            });
        }
        Ok(out)
    }

    /// `self` where set, else `lower`.
    #[must_use]
    pub fn or(self, lower: Overrides) -> Overrides {
        Overrides {
            config_file: self.config_file.or(lower.config_file),
            output_dir: self.output_dir.or(lower.output_dir),
            log_level: self.log_level.or(lower.log_level),
            auto_shutdown_sec: self.auto_shutdown_sec.or(lower.auto_shutdown_sec),
            json_export: self.json_export.or(lower.json_export),
        }
    }
}
