//! `multi-cluster-monitor`: the multi-cluster monitor of the Faro guide,
//! built on the Faro crates. Each `--cluster NAME=KUBECONFIG[@CONTEXT]` is
//! watched by one controller of a [`faro_watch::Fleet`]; one aggregator
//! handler counts the events of every cluster. Every `--interval` seconds,
//! and once at the end, it prints one JSON line:
//! `{"timestamp","clusters":{"NAME":{"state","ADDED","UPDATED","DELETED"}}}`.
//! A cluster that does not answer is reported and retried while the others
//! are counted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use faro_core::config::Readiness;
use faro_core::{Config, EventHandler, EventType, Gvr, HandlerError, MatchedEvent, ResourceRule};
use faro_watch::{Fleet, WatchOptions};
use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(Parser, Debug)]
#[command(
    name = "multi-cluster-monitor",
    about = "Watch several clusters in one process and count each one's events"
)]
struct Flags {
    /// A cluster: NAME=KUBECONFIG, or NAME=KUBECONFIG@CONTEXT (repeatable).
    #[arg(
        long = "cluster",
        value_name = "NAME=KUBECONFIG[@CONTEXT]",
        required = true
    )]
    clusters: Vec<String>,
    /// Resources to watch in every cluster (comma-separated GVRs).
    #[arg(long, value_name = "GVRS", default_value = "v1/configmaps")]
    gvrs: String,
    /// Seconds between report lines.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    interval: u64,
    /// Stop after this many seconds (default: at SIGINT/SIGTERM).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u64>,
}

/// Events counted per cluster and type.
#[derive(Default)]
struct Aggregator {
    counts: Mutex<BTreeMap<String, [u64; 3]>>,
}

#[async_trait::async_trait]
impl EventHandler for Aggregator {
    fn name(&self) -> &str {
        "aggregator"
    }

    async fn on_matched(&self, event: &MatchedEvent) -> Result<(), HandlerError> {
        let cluster = event.cluster().map_or("", |c| &**c).to_owned();
        let i = match event.event_type() {
            EventType::Added => 0,
            EventType::Updated => 1,
            EventType::Deleted => 2,
        };
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(cluster)
            .or_default()[i] += 1;
        Ok(())
    }
}

fn report(fleet: &Fleet, aggregator: &Aggregator) -> String {
    let counts = aggregator
        .counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut clusters = serde_json::Map::new();
    for c in fleet.clusters() {
        let [added, updated, deleted] = counts.get(&*c.name).copied().unwrap_or_default();
        clusters.insert(
            c.name.to_string(),
            serde_json::json!({
                "state": c.state.as_str(),
                "ADDED": added, "UPDATED": updated, "DELETED": deleted,
            }),
        );
    }
    serde_json::json!({
        "timestamp": jiff::Timestamp::now().to_string(),
        "clusters": clusters,
    })
    .to_string()
}

/// `NAME=KUBECONFIG[@CONTEXT]`.
fn parse_cluster(text: &str) -> anyhow::Result<(String, PathBuf, Option<String>)> {
    let Some((name, rest)) = text.split_once('=') else {
        bail!("--cluster {text:?}: expected NAME=KUBECONFIG or NAME=KUBECONFIG@CONTEXT");
    };
    if !faro_core::config::is_cluster_name(name) {
        bail!(
            "--cluster {text:?}: {name:?} is not a cluster name; expected lowercase letters, digits and '-'"
        );
    }
    let (path, context) = match rest.rsplit_once('@') {
        Some((p, c)) => (p, Some(c.to_owned())),
        None => (rest, None),
    };
    Ok((name.to_owned(), PathBuf::from(path), context))
}

async fn client(path: &PathBuf, context: Option<String>) -> anyhow::Result<kube::Client> {
    let file = Kubeconfig::read_from(path).with_context(|| format!("{}", path.display()))?;
    let options = KubeConfigOptions {
        context,
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .with_context(|| format!("{}", path.display()))?;
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
    let fleet = Fleet::new(Readiness::Any);
    let aggregator = std::sync::Arc::new(Aggregator::default());
    fleet.add_handler(aggregator.clone());
    let mut clusters = Vec::new();
    for text in &flags.clusters {
        let (name, path, context) = parse_cluster(text)?;
        if clusters.contains(&name) {
            bail!("--cluster {text:?}: {name:?} is given twice; expected unique names");
        }
        let client = client(&path, context)
            .await
            .with_context(|| format!("--cluster {name}"))?;
        fleet.add_cluster(&name, client, &config, WatchOptions::default())?;
        clusters.push(name);
    }
    let stop = async {
        match flags.duration {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(flags.interval.max(1)));
    tick.tick().await;
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => println!("{}", report(&fleet, &aggregator)),
        }
    }
    let last = report(&fleet, &aggregator);
    fleet.stop().await;
    println!("{last}");
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
            eprintln!("multi-cluster-monitor: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
