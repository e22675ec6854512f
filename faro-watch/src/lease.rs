//! Leader election on `coordination.k8s.io/v1` Leases, with client-go's
//! semantics: a Lease is taken when it is free or its holder has not
//! renewed it for `lease_duration` (as this replica observed it, not by the
//! holder's clock); the leader renews every `retry_period` and steps down
//! the moment it has not renewed for `renew_deadline`; every write carries
//! the resourceVersion read, so two replicas never both win; a leader that
//! stops releases the Lease so that a standby takes over at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

use crate::informer::lock;
use tokio::sync::watch;

/// The Lease annotation that carries the leader's durable progress.
pub const PROGRESS: &str = "faro.io/progress";

/// The progress annotation of a Lease, from one [`LeaderElector`].
#[derive(Clone)]
pub struct LeaseProgress {
    publish: Arc<Mutex<Option<String>>>,
    observed: watch::Receiver<Option<String>>,
}

impl LeaseProgress {
    /// Written with the next renewal, and with the release, while leading.
    pub fn publish(&self, text: String) {
        *lock(&self.publish) = Some(text);
    }

    /// The annotation as last read from the Lease; changes as it does.
    pub fn observed(&self) -> watch::Receiver<Option<String>> {
        self.observed.clone()
    }
}

/// Where the Lease is and how it is held.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity, written as the holder.
    pub identity: String,
    /// How long a Lease holds without renewal (15 s in client-go).
    pub lease_duration: Duration,
    /// A leader that could not renew for this long steps down (10 s).
    pub renew_deadline: Duration,
    /// How often the Lease is tried (2 s), stretched by up to 20 %.
    pub retry_period: Duration,
    /// Labels the Lease is created with (to list a group of Leases).
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Whether this replica may take a Lease it does not hold now.
pub type AcquirePolicy = Arc<dyn Fn() -> bool + Send + Sync>;

/// Asks a leading [`LeaderElector`] to release its Lease and follow.
#[derive(Clone)]
pub struct StepDown(watch::Sender<u64>);

impl StepDown {
    /// Releases at the elector's next turn, when it leads.
    pub fn request(&self) {
        self.0.send_modify(|n| *n += 1);
    }
}

/// Elects a leader among replicas sharing a Lease.
///
/// ```no_run
/// # async fn run(client: kube::Client, config: faro_watch::ElectionConfig) {
/// let elector = faro_watch::LeaderElector::new(client, config);
/// let mut leading = elector.leading();
/// let (stop_tx, stop) = tokio::sync::watch::channel(false);
/// tokio::spawn(async move { elector.run(stop).await });
/// leading.wait_for(|l| *l).await.ok(); // this replica writes from now on
/// # }
/// ```
pub struct LeaderElector {
    api: Api<Lease>,
    config: ElectionConfig,
    leading: watch::Sender<bool>,
    /// What the leader writes into the Lease's progress annotation.
    publish: Arc<Mutex<Option<String>>>,
    /// The progress annotation as last read.
    progress: watch::Sender<Option<String>>,
    policy: Option<AcquirePolicy>,
    step_down: watch::Sender<u64>,
    /// The record last read or written, and when this replica saw it change.
    observed: Option<(Observed, Instant)>,
}

/// The parts of a Lease election compares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    holder: String,
    duration_seconds: i32,
    acquire: Option<MicroTime>,
    renew: Option<MicroTime>,
    transitions: i32,
}

impl Observed {
    fn of(lease: &Lease) -> Self {
        let spec = lease.spec.clone().unwrap_or_default();
        Self {
            holder: spec.holder_identity.unwrap_or_default(),
            duration_seconds: spec.lease_duration_seconds.unwrap_or(0),
            acquire: spec.acquire_time,
            renew: spec.renew_time,
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: ElectionConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            leading: watch::Sender::new(false),
            publish: Arc::default(),
            progress: watch::Sender::new(None),
            policy: None,
            step_down: watch::Sender::new(0),
            observed: None,
        }
    }

    /// Takes a Lease it does not hold only when `policy` says so (a share
    /// of shards, say); renewing a held one is never refused.
    #[must_use]
    pub fn with_policy(mut self, policy: AcquirePolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// A handle that makes the leader release its Lease and follow.
    pub fn step_down(&self) -> StepDown {
        StepDown(self.step_down.clone())
    }

    /// The progress carried in the Lease (annotation [`PROGRESS`]): what
    /// the leader publishes with each renewal and with its release, and
    /// what every replica last read. Standbys use it to know what the
    /// leader has durably written.
    pub fn progress(&self) -> LeaseProgress {
        LeaseProgress {
            publish: self.publish.clone(),
            observed: self.progress.subscribe(),
        }
    }

    fn annotate(&self, lease: &mut Lease) {
        if let Some(text) = lock(&self.publish).clone() {
            lease
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(PROGRESS.to_owned(), text);
        }
    }

    fn read_progress(&self, lease: &Lease) {
        let text = lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PROGRESS))
            .cloned();
        self.progress.send_if_modified(|p| {
            let changed = *p != text;
            *p = text;
            changed
        });
    }

    /// True while this replica holds the Lease.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// The holder this replica last saw (`None` before the first read, or
    /// while the Lease is free).
    pub fn holder(&self) -> Option<&str> {
        self.observed
            .as_ref()
            .map(|(o, _)| o.holder.as_str())
            .filter(|h| !h.is_empty())
    }

    fn is_leader(&self) -> bool {
        self.holder() == Some(self.config.identity.as_str())
    }

    fn jittered(&self) -> Duration {
        self.config
            .retry_period
            .mul_f64(1.0 + 0.2 * fastrand::f64())
    }

    /// Acquires, renews and steps down until `stop` turns true; then, if
    /// leading, releases the Lease.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut step_down = self.step_down.subscribe();
        loop {
            // Following: try every retry period until the Lease is ours.
            loop {
                if *stop.borrow() {
                    return;
                }
                if self.try_acquire_or_renew().await {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(self.jittered()) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            tracing::info!(
                lease = %self.config.name,
                identity = %self.config.identity,
                "became the leader"
            );
            self.leading.send_replace(true);
            step_down.borrow_and_update();
            // Leading: renew every retry period; past the deadline, step down.
            let mut renewed = Instant::now();
            let stopping = loop {
                let asked = tokio::select! {
                    () = tokio::time::sleep(self.config.retry_period) => false,
                    _ = stop.wait_for(|s| *s) => break true,
                    _ = step_down.changed() => true,
                };
                if asked {
                    self.leading.send_replace(false);
                    self.release().await;
                    break false;
                }
                let left = self.config.renew_deadline.saturating_sub(renewed.elapsed());
                let ok = tokio::time::timeout(left, self.try_acquire_or_renew())
                    .await
                    .unwrap_or(false);
                if ok && self.is_leader() {
                    renewed = Instant::now();
                } else if renewed.elapsed() >= self.config.renew_deadline || !self.is_leader() {
                    break false;
                }
            };
            if stopping {
                self.leading.send_replace(false);
                self.release().await;
                return;
            }
            let released = !*self.leading.borrow();
            if released {
                continue;
            }
            self.leading.send_replace(false);
            tracing::warn!(
                lease = %self.config.name,
                identity = %self.config.identity,
                "lost the leadership: the Lease was not renewed within the deadline"
            );
        }
    }

    /// One attempt, as client-go's `tryAcquireOrRenew`: create the Lease if
    /// there is none, leave it alone while another holder's is valid, else
    /// write ourselves in with the resourceVersion read.
    async fn try_acquire_or_renew(&mut self) -> bool {
        let stamp = now();
        let mut record = Observed {
            holder: self.config.identity.clone(),
            duration_seconds: i32::try_from(self.config.lease_duration.as_secs())
                .unwrap_or(i32::MAX),
            acquire: Some(stamp.clone()),
            renew: Some(stamp),
            transitions: 0,
        };
        let current = match self.api.get_opt(&self.config.name).await {
            Ok(current) => current,
            Err(e) => {
                tracing::debug!(lease = %self.config.name, "cannot read the Lease: {e}");
                return false;
            }
        };
        let refused = |me: &Self| me.policy.as_ref().is_some_and(|p| !p());
        let Some(mut lease) = current else {
            if refused(self) {
                return false;
            }
            let mut lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    labels: (!self.config.labels.is_empty()).then(|| self.config.labels.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec(&record)),
            };
            self.annotate(&mut lease);
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observed = Some((Observed::of(&created), Instant::now()));
                    true
                }
                Err(_) => false,
            };
        };
        self.read_progress(&lease);
        let old = Observed::of(&lease);
        if self.observed.as_ref().is_none_or(|(o, _)| *o != old) {
            self.observed = Some((old.clone(), Instant::now()));
        }
        let valid = self.observed.as_ref().is_some_and(|(o, seen)| {
            seen.elapsed() < Duration::from_secs(u64::try_from(o.duration_seconds).unwrap_or(0))
        });
        if !old.holder.is_empty() && valid && !self.is_leader() {
            return false;
        }
        if !self.is_leader() && refused(self) {
            return false;
        }
        if self.is_leader() {
            record.acquire = old.acquire.clone();
            record.transitions = old.transitions;
        } else {
            record.transitions = old.transitions + 1;
        }
        lease.spec = Some(spec(&record));
        if self.is_leader() {
            self.annotate(&mut lease);
        }
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.observed = Some((Observed::of(&written), Instant::now()));
                true
            }
            Err(e) => {
                tracing::debug!(lease = %self.config.name, "cannot write the Lease: {e}");
                false
            }
        }
    }

    /// Gives the Lease up, as client-go does on a graceful stop: no holder,
    /// so that a standby takes it at its next try.
    async fn release(&mut self) {
        if !self.is_leader() {
            return;
        }
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        if Observed::of(&lease).holder != self.config.identity {
            return;
        }
        let old = Observed::of(&lease);
        let stamp = now();
        lease.spec = Some(spec(&Observed {
            holder: String::new(),
            duration_seconds: 1,
            acquire: Some(stamp.clone()),
            renew: Some(stamp),
            transitions: old.transitions,
        }));
        self.annotate(&mut lease);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.config.name, "released the Lease"),
            Err(e) => tracing::warn!(lease = %self.config.name, "could not release the Lease: {e}"),
        }
        self.observed = None;
    }
}

fn spec(r: &Observed) -> LeaseSpec {
    LeaseSpec {
        holder_identity: (!r.holder.is_empty()).then(|| r.holder.clone()),
        lease_duration_seconds: Some(r.duration_seconds),
        acquire_time: r.acquire.clone(),
        renew_time: r.renew.clone(),
        lease_transitions: Some(r.transitions),
        ..LeaseSpec::default()
    }
}
