//! Several clusters in one process: one [`Controller`] per cluster, the
//! same handlers for all, each cluster started, retried and stopped on its
//! own so that an unreachable, slow or forbidden cluster never holds the
//! others back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use faro_core::config::Readiness;
use faro_core::{Config, EventHandler};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::informer::lock;
use crate::options::Backoff;
use crate::{Controller, WatchError, WatchMetrics, WatchOptions};

/// Where one cluster of a [`Fleet`] stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterState {
    /// Asking the API server whether it answers.
    Connecting,
    /// It did not answer, or refused to start the watches; retried with
    /// back-off. The reason is one line.
    Unreachable(String),
    /// Watches started; initial lists not all delivered yet.
    Syncing,
    /// Every initial list delivered.
    Ready,
    /// Stopped (the fleet stopped, or the cluster was removed).
    Stopped,
}

impl ClusterState {
    /// `connecting`, `unreachable`, `syncing`, `ready` or `stopped`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Unreachable(_) => "unreachable",
            Self::Syncing => "syncing",
            Self::Ready => "ready",
            Self::Stopped => "stopped",
        }
    }
}

/// One cluster's name and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The cluster's name.
    pub name: Arc<str>,
    /// Where it stands.
    pub state: ClusterState,
}

/// Many clusters watched in one process, sharing handlers.
///
/// ```no_run
/// # async fn run(eu: kube::Client, us: kube::Client, config: faro_core::Config) -> Result<(), faro_watch::WatchError> {
/// use faro_watch::{Fleet, WatchOptions};
/// let fleet = Fleet::new(faro_core::config::Readiness::Any);
/// // fleet.add_handler(my_sink);
/// fleet.add_cluster("eu", eu, &config, WatchOptions::default())?;
/// fleet.add_cluster("us", us, &config, WatchOptions::default())?;
/// fleet.ready().await; // one cluster ready is enough with Readiness::Any
/// fleet.stop().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<FleetInner>,
}

struct FleetInner {
    readiness: Readiness,
    handlers: Mutex<Vec<Arc<dyn EventHandler>>>,
    members: Mutex<BTreeMap<Arc<str>, Member>>,
    /// Bumped whenever a cluster's state changes.
    changed: watch::Sender<u64>,
    up: Family<[(&'static str, String); 1], Gauge>,
}

struct Member {
    state: Arc<Mutex<ClusterState>>,
    controller: Arc<Mutex<Option<Controller>>>,
    metrics: WatchMetrics,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Fleet {
    /// An empty fleet; `readiness` says whether [`Fleet::ready`] waits for
    /// one cluster or for all.
    pub fn new(readiness: Readiness) -> Self {
        Self {
            inner: Arc::new(FleetInner {
                readiness,
                handlers: Mutex::default(),
                members: Mutex::default(),
                changed: watch::Sender::new(0),
                up: Family::default(),
            }),
        }
    }

    /// Adds a handler to every cluster, present and future.
    pub fn add_handler(&self, handler: impl EventHandler) {
        let handler: Arc<dyn EventHandler> = Arc::new(handler);
        // Held throughout, so that a controller being made now gets it once.
        let mut handlers = lock(&self.inner.handlers);
        handlers.push(handler.clone());
        for member in lock(&self.inner.members).values() {
            if let Some(c) = &*lock(&member.controller) {
                c.add_handler(handler.clone());
            }
        }
    }

    /// A receiver that changes whenever a cluster's state does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// Starts watching a cluster named `name` with `config`'s rules. It
    /// connects in the background: this returns at once, and a cluster
    /// that does not answer is retried with back-off while the others run.
    /// Every record of the cluster carries its name.
    pub fn add_cluster(
        &self,
        name: &str,
        client: kube::Client,
        config: &Config,
        options: WatchOptions,
    ) -> Result<(), WatchError> {
        self.add_cluster_with(name, client, config, options, Vec::new())
    }

    /// [`Fleet::add_cluster`] with handlers of this cluster alone (besides
    /// the fleet's), there from its first event: a gate of its own, say.
    pub fn add_cluster_with(
        &self,
        name: &str,
        client: kube::Client,
        config: &Config,
        mut options: WatchOptions,
        handlers: Vec<Arc<dyn EventHandler>>,
    ) -> Result<(), WatchError> {
        let mut members = lock(&self.inner.members);
        if members.contains_key(name) {
            return Err(WatchError::State(
                "a cluster of that name is already in the fleet",
            ));
        }
        let name: Arc<str> = Arc::from(name);
        options.cluster = Some(name.clone());
        let state = Arc::new(Mutex::new(ClusterState::Connecting));
        let controller = Arc::new(Mutex::new(None));
        let handlers = Arc::new(Mutex::new(handlers));
        let metrics = WatchMetrics::default();
        let (stop, stop_rx) = watch::channel(false);
        let run = Run {
            fleet: Arc::downgrade(&self.inner),
            name: name.clone(),
            client,
            config: config.clone(),
            options,
            metrics: metrics.clone(),
            state: state.clone(),
            controller: controller.clone(),
            handlers,
            stop: stop_rx,
        };
        let task = tokio::spawn(run.run());
        members.insert(
            name,
            Member {
                state,
                controller,
                metrics,
                stop,
                task,
            },
        );
        drop(members);
        self.inner.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Stops watching the cluster `name`; false when there is none.
    pub async fn remove_cluster(&self, name: &str) -> bool {
        let Some(member) = lock(&self.inner.members).remove(name) else {
            return false;
        };
        member.stop.send_replace(true);
        let _ = member.task.await;
        self.inner.up.remove(&[("cluster", name.to_owned())]);
        self.inner.changed.send_modify(|n| *n += 1);
        true
    }

    /// Every cluster's state, by name.
    pub fn clusters(&self) -> Vec<ClusterStatus> {
        lock(&self.inner.members)
            .iter()
            .map(|(name, m)| ClusterStatus {
                name: name.clone(),
                state: lock(&m.state).clone(),
            })
            .collect()
    }

    /// The controller of cluster `name`, once it answered (it may still be starting).
    pub fn controller(&self, name: &str) -> Option<Controller> {
        let members = lock(&self.inner.members);
        let member = members.get(name)?;
        lock(&member.controller).clone()
    }

    /// Whether the fleet is ready: one cluster ready ([`Readiness::Any`])
    /// or every cluster ([`Readiness::All`]); never with no cluster.
    pub fn is_ready(&self) -> bool {
        let clusters = self.clusters();
        let ready = clusters.iter().filter(|c| c.state == ClusterState::Ready);
        match self.inner.readiness {
            Readiness::Any => ready.count() > 0,
            Readiness::All => !clusters.is_empty() && ready.count() == clusters.len(),
        }
    }

    /// Resolves when [`Fleet::is_ready`] holds.
    pub async fn ready(&self) {
        let mut changed = self.inner.changed.subscribe();
        loop {
            if self.is_ready() {
                return;
            }
            if changed.changed().await.is_err() {
                return;
            }
        }
    }

    /// Resolves when the cluster `name` is ready; at once if there is none.
    pub async fn cluster_ready(&self, name: &str) {
        let mut changed = self.inner.changed.subscribe();
        loop {
            let state = {
                let members = lock(&self.inner.members);
                members.get(name).map(|m| lock(&m.state).clone())
            };
            if !matches!(
                state,
                Some(
                    ClusterState::Connecting | ClusterState::Unreachable(_) | ClusterState::Syncing
                )
            ) {
                return;
            }
            if changed.changed().await.is_err() {
                return;
            }
        }
    }

    /// Registers `faro_cluster_up{cluster}` and each cluster's watch metrics
    /// with a `cluster` label. Clusters added later are counted in
    /// `faro_cluster_up` but their watch metrics are not registered.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "faro_cluster_up",
            "1 while the cluster answers and its watches run, 0 while it is unreachable",
            self.inner.up.clone(),
        );
        for (name, member) in lock(&self.inner.members).iter() {
            let sub = registry.sub_registry_with_label(("cluster".into(), name.to_string().into()));
            member.metrics.register(sub);
        }
    }

    /// Stops every cluster at once and waits for each to finish its
    /// handler calls; a cluster that does not answer delays nothing.
    pub async fn stop(&self) {
        let members: Vec<Member> = std::mem::take(&mut *lock(&self.inner.members))
            .into_values()
            .collect();
        for m in &members {
            m.stop.send_replace(true);
        }
        for m in members {
            let _ = m.task.await;
        }
        self.inner.changed.send_modify(|n| *n += 1);
    }
}

/// One cluster's life in the fleet.
struct Run {
    fleet: Weak<FleetInner>,
    name: Arc<str>,
    client: kube::Client,
    config: Config,
    options: WatchOptions,
    metrics: WatchMetrics,
    state: Arc<Mutex<ClusterState>>,
    controller: Arc<Mutex<Option<Controller>>>,
    handlers: Arc<Mutex<Vec<Arc<dyn EventHandler>>>>,
    stop: watch::Receiver<bool>,
}

impl Run {
    fn set(&self, state: ClusterState) {
        let Some(fleet) = self.fleet.upgrade() else {
            return;
        };
        let up = i64::from(matches!(state, ClusterState::Syncing | ClusterState::Ready));
        if let ClusterState::Unreachable(why) = &state
            && *lock(&self.state) != state
        {
            tracing::warn!(cluster = %self.name, "cluster unreachable; retrying: {why}");
        }
        *lock(&self.state) = state;
        fleet
            .up
            .get_or_create(&[("cluster", self.name.to_string())])
            .set(up);
        fleet.changed.send_modify(|n| *n += 1);
    }

    /// Sleeps `delay`; false when the fleet stopped meanwhile.
    async fn wait(&mut self, delay: std::time::Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            _ = self.stop.wait_for(|s| *s) => false,
        }
    }

    async fn run(mut self) {
        let mut backoff = Backoff::new(&self.options);
        'connect: loop {
            if *self.stop.borrow() {
                break;
            }
            let probe = tokio::select! {
                r = self.client.apiserver_version() => r,
                _ = self.stop.wait_for(|s| *s) => break,
            };
            if let Err(e) = probe {
                self.set(ClusterState::Unreachable(one_line(&e.to_string())));
                let delay = backoff.next_delay();
                if self.wait(delay).await {
                    continue;
                }
                break;
            }
            self.set(ClusterState::Syncing);
            let controller = Controller::with_metrics(
                self.client.clone(),
                &self.config,
                self.options.clone(),
                self.metrics.clone(),
            );
            if let Some(fleet) = self.fleet.upgrade() {
                let handlers = lock(&fleet.handlers);
                for h in handlers.iter().chain(lock(&self.handlers).iter()) {
                    controller.add_handler(h.clone());
                }
                *lock(&self.controller) = Some(controller.clone());
            }
            let started = tokio::select! {
                r = controller.start() => Some(r),
                _ = self.stop.wait_for(|s| *s) => None,
            };
            match started {
                None => {
                    controller.stop().await;
                    break;
                }
                Some(Err(e)) => {
                    lock(&self.controller).take();
                    controller.stop().await;
                    self.set(ClusterState::Unreachable(one_line(&e.to_string())));
                    let delay = backoff.next_delay();
                    if self.wait(delay).await {
                        continue 'connect;
                    }
                    break;
                }
                Some(Ok(())) => {}
            }
            backoff.reset();
            let ready = tokio::select! {
                () = controller.ready() => true,
                _ = self.stop.wait_for(|s| *s) => false,
            };
            if ready {
                self.set(ClusterState::Ready);
            }
            let _ = self.stop.wait_for(|s| *s).await;
            controller.stop().await;
            break;
        }
        self.set(ClusterState::Stopped);
    }
}

/// The first line of an error, without trailing punctuation noise.
fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_owned()
}
