//! `workload-monitor`: the workload monitor of the Faro guide, built on the
//! Faro crates. A namespace whose `-label` value matches `-pattern` is a
//! workload; its id is the first group `-namespace-pattern` captures from
//! the namespace's name (else the label's value). Every namespace whose
//! name contains the id belongs to the workload, and the `-workloadgvrs`
//! are watched in those namespaces only, each added while the program
//! runs. Each event of a workload's namespaces is one JSON line on stdout:
//! `{"timestamp","workload_id","workload_name","action","resource",
//! "namespace","name","labels"}`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, bail};
use clap::Parser;
use faro_core::config::NamespaceSelection;
use faro_core::{
    Config, EventHandler, EventType, Gvr, HandlerError, MatchedEvent, ResourceRule, Scope,
};
use faro_filter::Pattern;
use faro_watch::Controller;
use tokio::sync::mpsc;

#[derive(Parser, Debug)]
#[command(
    name = "workload-monitor",
    about = "Detect workloads by namespace label and print the events of their namespaces"
)]
struct Flags {
    /// The namespace label whose value names a workload.
    #[arg(long, value_name = "KEY")]
    label: String,
    /// Which label values are workloads (a regular expression).
    #[arg(long, value_name = "RE")]
    pattern: String,
    /// Captures the workload id from the labelled namespace's name.
    #[arg(long, value_name = "RE")]
    namespace_pattern: Option<String>,
    /// Cluster-scoped resources watched besides v1/namespaces (comma-separated).
    #[arg(long, value_name = "GVRS", default_value = "v1/namespaces")]
    allowedgvrs: String,
    /// Namespaced resources watched in each workload's namespaces (comma-separated).
    #[arg(long, value_name = "GVRS")]
    workloadgvrs: String,
    /// Kubeconfig file; else KUBECONFIG, then ~/.kube/config, then in-cluster.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
}

/// The guide writes `-label`; clap wants `--label`.
fn normalise(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|a| {
            let long = a.len() > 2 && a.starts_with('-') && !a.starts_with("--");
            if long { format!("-{a}") } else { a }
        })
        .collect()
}

fn gvrs(flag: &str, text: &str, scope: Scope) -> anyhow::Result<Vec<Gvr>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let gvr = Gvr::parse(part).map_err(|e| anyhow::anyhow!("-{flag} {part:?}: {e}"))?;
        if gvr.known_scope().is_some_and(|s| s != scope) {
            bail!("-{flag} {part:?}: not {scope}-scoped; expected a {scope} resource");
        }
        out.push(gvr);
    }
    Ok(out)
}

struct Workload {
    name: String,
    namespaces: BTreeSet<String>,
}

#[derive(Default)]
struct State {
    workloads: BTreeMap<String, Workload>,
    /// Namespace → workload id.
    owner: BTreeMap<String, String>,
    /// Every namespace seen and its last event, for workloads detected
    /// after them.
    seen: BTreeMap<String, MatchedEvent>,
}

enum Change {
    Join(String),
    Leave(String),
}

struct Monitor {
    label: String,
    pattern: Pattern,
    namespace_pattern: Option<Pattern>,
    state: Mutex<State>,
    changes: mpsc::UnboundedSender<Change>,
}

impl Monitor {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Detects workloads and their namespaces from a namespace's event;
    /// returns the last events of namespaces seen earlier that join now.
    fn namespace_event(&self, event: &MatchedEvent) -> Vec<MatchedEvent> {
        let name = event.key().name.to_string();
        let mut s = self.state();
        let mut earlier_events = Vec::new();
        if event.event_type() == EventType::Deleted {
            s.seen.remove(&name);
            if let Some(id) = s.owner.remove(&name) {
                if let Some(w) = s.workloads.get_mut(&id) {
                    w.namespaces.remove(&name);
                }
                let _ = self.changes.send(Change::Leave(name));
            }
            return earlier_events;
        }
        s.seen.insert(name.clone(), event.clone());
        if s.owner.contains_key(&name) {
            return earlier_events;
        }
        let labels = event.object().metadata.labels.as_ref();
        let value = labels.and_then(|l| l.get(&self.label));
        if let Some(value) = value.filter(|v| self.pattern.is_match(v)) {
            let id = self
                .namespace_pattern
                .as_ref()
                .and_then(|p| p.capture(&name))
                .unwrap_or(value)
                .to_owned();
            if !s.workloads.contains_key(&id) {
                s.workloads.insert(
                    id.clone(),
                    Workload {
                        name: value.clone(),
                        namespaces: BTreeSet::new(),
                    },
                );
                // Namespaces seen before the workload was detected.
                let earlier: Vec<(String, MatchedEvent)> = s
                    .seen
                    .iter()
                    .filter(|(ns, _)| {
                        ns.contains(&id) && **ns != name && !s.owner.contains_key(*ns)
                    })
                    .map(|(ns, e)| (ns.clone(), e.clone()))
                    .collect();
                for (ns, last) in earlier {
                    self.join(&mut s, &id, ns);
                    earlier_events.push(last);
                }
            }
            self.join(&mut s, &id, name);
            return earlier_events;
        }
        let found = s
            .workloads
            .keys()
            .find(|id| name.contains(id.as_str()))
            .cloned();
        if let Some(id) = found {
            self.join(&mut s, &id, name);
        }
        earlier_events
    }

    fn join(&self, s: &mut State, id: &str, namespace: String) {
        if s.owner.contains_key(&namespace) {
            return;
        }
        if let Some(w) = s.workloads.get_mut(id) {
            w.namespaces.insert(namespace.clone());
        }
        s.owner.insert(namespace.clone(), id.to_owned());
        let _ = self.changes.send(Change::Join(namespace));
    }

    /// One JSON line for an event of a workload's namespace.
    fn print(&self, event: &MatchedEvent) -> Result<(), HandlerError> {
        let namespace = match event.key().namespace.as_deref() {
            Some(ns) => ns.to_owned(),
            // A namespace itself belongs to a workload by its name.
            None if event.gvr().to_string() == "v1/namespaces" => event.key().name.to_string(),
            None => return Ok(()),
        };
        let line = {
            let s = self.state();
            let Some(id) = s.owner.get(&namespace) else {
                return Ok(());
            };
            let workload = &s.workloads[id];
            serde_json::json!({
                "timestamp": event.observed_at().to_string(),
                "workload_id": id,
                "workload_name": workload.name,
                "action": event.event_type().as_str(),
                "resource": event.gvr().to_string(),
                "namespace": namespace,
                "name": &*event.key().name,
                "labels": event.object().metadata.labels.clone().unwrap_or_default(),
            })
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| HandlerError::new(format!("stdout: {e}")))
    }
}

#[async_trait::async_trait]
impl EventHandler for Monitor {
    fn name(&self) -> &str {
        "workload-monitor"
    }

    async fn on_matched(&self, event: &MatchedEvent) -> Result<(), HandlerError> {
        let is_namespace = event.gvr().to_string() == "v1/namespaces";
        if is_namespace && event.event_type() != EventType::Deleted {
            // Namespaces seen before their workload was: their last event now.
            for earlier in self.namespace_event(event) {
                self.print(&earlier)?;
            }
        }
        let printed = self.print(event);
        if is_namespace && event.event_type() == EventType::Deleted {
            self.namespace_event(event);
        }
        printed
    }
}

fn rules(gvrs: &[Gvr], namespace: &str) -> Vec<ResourceRule> {
    gvrs.iter()
        .map(|gvr| {
            let mut rule = ResourceRule::new(gvr.clone());
            rule.scope = Some(Scope::Namespaced);
            rule.namespaces = NamespaceSelection::Names(vec![namespace.to_owned()]);
            rule.origin = format!("-workloadgvrs {gvr} in {namespace}");
            rule
        })
        .collect()
}

async fn client(kubeconfig: Option<PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(&path)
                .with_context(|| format!("-kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .with_context(|| format!("-kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no Kubernetes configuration found")?,
    };
    kube::Client::try_from(config).context("cannot build a Kubernetes client")
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    if flags.label.is_empty() {
        bail!("-label \"\": empty; expected a label key such as api.openshift.com/name");
    }
    let pattern = Pattern::new(&flags.pattern)
        .map_err(|e| anyhow::anyhow!("-pattern {:?}: {e}", flags.pattern))?;
    let namespace_pattern = flags
        .namespace_pattern
        .as_deref()
        .map(|p| Pattern::new(p).map_err(|e| anyhow::anyhow!("-namespace-pattern {p:?}: {e}")))
        .transpose()?;
    let mut cluster = gvrs("allowedgvrs", &flags.allowedgvrs, Scope::Cluster)?;
    let namespaces = Gvr::parse("v1/namespaces").expect("a valid GVR");
    if !cluster.contains(&namespaces) {
        cluster.push(namespaces);
    }
    let workload_gvrs = gvrs("workloadgvrs", &flags.workloadgvrs, Scope::Namespaced)?;
    if workload_gvrs.is_empty() {
        bail!(
            "-workloadgvrs \"\": empty; expected namespaced resources such as v1/pods,v1/configmaps"
        );
    }

    let client = client(flags.kubeconfig).await?;
    let mut config = Config::default();
    config.rules = cluster
        .into_iter()
        .map(|gvr| {
            let mut rule = ResourceRule::new(gvr.clone());
            rule.scope = Some(Scope::Cluster);
            rule.origin = format!("-allowedgvrs {gvr}");
            rule
        })
        .collect();
    config.watch_specs = faro_core::config::normalise(&config.rules)?;
    let controller = Controller::new(client, &config);
    let (changes, mut rx) = mpsc::unbounded_channel();
    controller.add_handler(Monitor {
        label: flags.label,
        pattern,
        namespace_pattern,
        state: Mutex::default(),
        changes,
    });
    controller.start().await.context("starting the watches")?;
    // Namespaces join and leave workloads while the program runs: their
    // watches are added and removed here, outside the event path.
    let adder = {
        let controller = controller.clone();
        tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                let result = match &change {
                    Change::Join(ns) => controller.add_resources(rules(&workload_gvrs, ns)).await,
                    Change::Leave(ns) => {
                        controller
                            .remove_resources(&rules(&workload_gvrs, ns))
                            .await
                    }
                };
                if let Err(e) = result {
                    eprintln!("workload-monitor: watching a workload namespace: {e}");
                }
            }
        })
    };
    shutdown().await;
    adder.abort();
    controller.stop().await;
    Ok(())
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be handled");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn main() -> std::process::ExitCode {
    let flags = Flags::parse_from(normalise(std::env::args()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts");
    match runtime.block_on(run(flags)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workload-monitor: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
