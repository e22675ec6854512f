//! A Kubernetes-compatible API server held in memory, with fault injection,
//! for Faro's tests, its demo and its benchmarks.
//!
//! It serves discovery, get/list/watch/create/update/patch/delete with the
//! real server's resourceVersion, selector, paging and `Status` semantics,
//! pod logs, CRDs, and the controllers' side effects a real cluster adds. It
//! uses `faro-filter` to evaluate selectors; kubectl and kube-rs drive it in
//! tests as they would a real server. Faults (dropped watches, compaction,
//! error bursts, latency, frozen streams, restarts) are injected through the
//! `/faro-sim/v1/` admin API or the same methods on [`Sim`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), faro_sim::SimError> {
//! let sim = faro_sim::Sim::start(faro_sim::SimConfig::default()).await?;
//! println!("serving on {}, kubeconfig at {}", sim.url(), sim.kubeconfig().display());
//! sim.create(serde_json::json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": { "name": "a", "namespace": "default" },
//! }))?;
//! sim.compact(); // a watch from an older version now gets 410 Expired
//! # Ok(()) }
//! ```

mod admin;
pub mod churn;
mod cluster;
mod defaults;
mod http;
mod logs;
mod openapi;
mod ops;
mod protobuf;
mod resources;
mod scale;
pub mod scenario;
mod shared;
mod status;
mod store;
mod strategic;
mod table;
mod validation;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;

pub use resources::ResourceDef;
pub use shared::{ErrorFault, FollowInfo, WatchInfo};
pub use status::ApiError;

use ops::Target;
use shared::Shared;

/// How the simulated server behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where to write the kubeconfig; `None` writes one in the temp directory.
    pub kubeconfig: Option<PathBuf>,
    /// How often an idle watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// How many writes the history keeps for watches to resume from.
    pub history_window: usize,
    /// Namespace defaults, namespace termination and the initial namespaces.
    pub cluster_controllers: bool,
    /// Serve streaming lists (`sendInitialEvents`); when off, such a watch is
    /// refused with 422 as by a server without the WatchList feature gate.
    pub streaming_lists: bool,
    /// About how many bytes of history are kept for watches (the window
    /// ends at whichever of this and `history_window` comes first).
    pub history_bytes: usize,
    /// Nodes registered at start (with `cluster_controllers`).
    pub nodes: usize,
    /// Simulated time runs this many times faster than real time: back-offs,
    /// exits after a delay, grace periods and CronJob schedules.
    pub time_scale: f64,
    /// Lines per second each running container writes (0: only what the
    /// containers write at start, exit and shutdown, and what is appended
    /// through the admin API). A pod's `faro-sim.io/log-rate` annotation overrides it.
    pub log_lines_per_second: f64,
    /// A container's log is kept up to this many bytes; older lines are dropped.
    pub log_bytes_per_container: usize,
    /// Events are deleted this long after they were last recorded
    /// (kube-apiserver's `--event-ttl`, 1 h by default), in simulated time.
    pub event_ttl: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            port: 0,
            kubeconfig: None,
            bookmark_interval: Duration::from_secs(5),
            history_window: 100_000,
            cluster_controllers: true,
            streaming_lists: true,
            history_bytes: 64 << 20,
            nodes: 3,
            time_scale: 1.0,
            log_lines_per_second: 0.0,
            log_bytes_per_container: 1 << 20,
            event_ttl: Duration::from_secs(3600),
        }
    }
}

/// Why the simulated server could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The port could not be bound.
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig could not be written.
    #[error("cannot write kubeconfig {path}: {source}")]
    Kubeconfig {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The request was refused as the API server would refuse it.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// A running simulated API server. Dropping it stops the server.
pub struct Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    kubeconfig: PathBuf,
    server: tokio::task::JoinHandle<()>,
    cluster: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(cluster) = &self.cluster {
            cluster.abort();
        }
        self.shared.drop_connections();
    }
}

impl Sim {
    /// Binds, writes the kubeconfig, creates the initial namespaces and serves.
    pub async fn start(config: SimConfig) -> Result<Sim, SimError> {
        let port = config.port;
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| SimError::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimError::Bind { port, source })?;
        let kubeconfig = config.kubeconfig.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "faro-sim-{}-{}.kubeconfig",
                std::process::id(),
                addr.port()
            ))
        });
        write_kubeconfig(&kubeconfig, &http::url(addr))?;
        let controllers = config.cluster_controllers;
        let cluster_config = cluster::ClusterConfig {
            nodes: config.nodes,
            time_scale: config.time_scale,
            log_lines_per_second: config.log_lines_per_second,
            event_ttl: config.event_ttl,
        };
        let shared = Shared::new(config);
        let sim_shared = shared.clone();
        let (cluster, begin) = if controllers {
            let (task, begin) = cluster::spawn(&shared, cluster_config);
            (Some(task), Some(begin))
        } else {
            (None, None)
        };
        let restart = shared.restart_tx.subscribe();
        let server = tokio::spawn(http::serve(
            listener,
            shared.clone(),
            http::router(shared),
            restart,
        ));
        let sim = Sim {
            shared: sim_shared,
            addr,
            kubeconfig,
            server,
            cluster,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if controllers || ns == "default" {
                sim.create(
                    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }),
                )?;
            }
        }
        if controllers {
            // The API server's own Service, as every cluster has it.
            sim.create(json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": "kubernetes", "namespace": "default",
                    "labels": { "component": "apiserver", "provider": "kubernetes" } },
                "spec": { "clusterIP": "10.96.0.1",
                    "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443 }] },
            }))?;
        }
        if let Some(begin) = begin {
            let _ = begin.send(());
        }
        Ok(sim)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        http::url(self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The kubeconfig pointing at this server.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    fn target_of(&self, object: &Value) -> Result<Target, ApiError> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        self.target(
            api_version,
            kind,
            object["metadata"]["namespace"].as_str(),
            object["metadata"]["name"].as_str(),
        )
    }

    fn target(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> Result<Target, ApiError> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let def = self
            .shared
            .registry()
            .all()
            .iter()
            .find(|d| d.group == group && d.version == version && d.kind == kind)
            .cloned()
            .ok_or_else(|| {
                ApiError::bad_request(format!("no resource of kind {kind} in {api_version}"))
            })?;
        Ok(Target {
            namespace: ns.filter(|_| def.namespaced).map(str::to_string),
            def,
            name: name.map(str::to_string),
            subresource: None,
        })
    }

    /// Creates an object given with `apiVersion`, `kind` and `metadata`.
    pub fn create(&self, object: Value) -> Result<Value, ApiError> {
        let target = self.target_of(&object)?;
        Ok(ops::create(&self.shared, &target, object)?.value.clone())
    }

    /// Replaces an object (conditional when it carries `metadata.resourceVersion`).
    pub fn update(&self, object: Value) -> Result<Value, ApiError> {
        let target = self.target_of(&object)?;
        Ok(ops::update(&self.shared, &target, object)?.value.clone())
    }

    /// Deletes an object.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.delete_with(api_version, kind, namespace, name, None, None)
    }

    /// Deletes an object with a propagation policy (`Background`,
    /// `Foreground`, `Orphan`) and a grace period, as `DeleteOptions` say.
    pub fn delete_with(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        propagation: Option<&str>,
        grace_period_seconds: Option<i64>,
    ) -> Result<Value, ApiError> {
        let target = self.target(api_version, kind, namespace, Some(name))?;
        let grace = grace_period_seconds.map(|g| g.to_string());
        let options = ops::DeleteOptions::parse(b"", propagation, grace.as_deref())?;
        Ok(ops::delete(&self.shared, &target, &options)?.value.clone())
    }

    /// Reads an object.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let target = self.target(api_version, kind, namespace, Some(name))?;
        let stored = ops::get(&self.shared, &target)?;
        Ok(self.view(&target, &stored.value))
    }

    /// Lists the objects of a kind, in one namespace or all, ordered by namespace and name.
    pub fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let target = self.target(api_version, kind, namespace, None)?;
        let objects = self
            .shared
            .store()
            .list(&target.def.storage_key(), target.namespace.as_deref());
        Ok(objects
            .iter()
            .map(|o| self.view(&target, &o.value))
            .collect())
    }

    fn view(&self, target: &Target, value: &Value) -> Value {
        if target.def.is_events_v1() {
            cluster::to_events_v1(value)
        } else {
            value.clone()
        }
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().rv()
    }

    /// `{"resourceVersion", "objects", "watches"}`, as `GET /faro-sim/v1/state`.
    pub fn state(&self) -> Value {
        admin::do_state(&self.shared)
    }

    /// Ends every open watch and log follow now.
    pub fn close_watches(&self) {
        admin::do_close_watches(&self.shared);
    }

    /// Ends every open log follow now (watches stay), as a dropped kubelet stream.
    pub fn close_log_follows(&self) {
        admin::do_close_follows(&self.shared);
    }

    /// The open log follows.
    pub fn log_follows(&self) -> Vec<FollowInfo> {
        self.shared.follow_infos()
    }

    /// Forgets history up to now; returns the version compacted to.
    pub fn compact(&self) -> u64 {
        admin::do_compact(&self.shared)
    }

    /// Fails the next requests as `fault` says.
    pub fn inject_errors(&self, fault: ErrorFault) {
        admin::do_errors(&self.shared, fault);
    }

    /// Adds latency to every API response (zero clears it).
    pub fn set_latency(&self, latency: Duration) {
        admin::do_latency(&self.shared, latency);
    }

    /// Holds back everything watches would send, for `duration`.
    pub fn freeze_watches(&self, duration: Duration) {
        admin::do_freeze(&self.shared, duration);
    }

    /// Drops every connection, clears freezes and latency, and refuses connections for `down`.
    pub fn restart(&self, down: Duration) {
        admin::do_restart(&self.shared, down);
    }

    /// The open watch connections.
    pub fn watches(&self) -> Vec<WatchInfo> {
        self.shared.watch_infos()
    }

    /// Appends lines to a container's log.
    pub fn append_log(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        lines: Vec<String>,
    ) -> Result<(), ApiError> {
        admin::do_append_log(&self.shared, ns, pod, container, lines)
    }

    /// The lines of a container's current log (without timestamps).
    pub fn log(&self, ns: &str, pod: &str, container: &str) -> Option<Vec<String>> {
        let logs = self.shared.logs();
        let log = logs.get(&(ns.to_string(), pod.to_string(), container.to_string()))?;
        Some(log.lines.iter().map(|(_, l)| l.clone()).collect())
    }

    /// The lines of a container's previous (terminated) instance, if it had one.
    pub fn previous_log(&self, ns: &str, pod: &str, container: &str) -> Option<Vec<String>> {
        let logs = self.shared.logs();
        let log = logs.get(&(ns.to_string(), pod.to_string(), container.to_string()))?;
        Some(
            log.previous
                .as_ref()?
                .iter()
                .map(|(_, l)| l.clone())
                .collect(),
        )
    }

    /// Restarts a container: its log becomes "previous", `restartCount` goes up.
    pub fn restart_container(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        exit_code: i64,
        reason: &str,
    ) -> Result<(), ApiError> {
        admin::do_restart_container(&self.shared, ns, pod, container, exit_code, reason)
    }
}

fn write_kubeconfig(path: &Path, url: &str) -> Result<(), SimError> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: faro-sim\n  cluster:\n    server: {url}\ncontexts:\n- name: faro-sim\n  context:\n    cluster: faro-sim\n    user: faro-sim\n    namespace: default\ncurrent-context: faro-sim\nusers:\n- name: faro-sim\n  user: {{}}\npreferences: {{}}\n"
    );
    std::fs::write(path, text).map_err(|source| SimError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    })
}
