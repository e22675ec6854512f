//! `faro demo`: an embedded faro-sim running a living workload (rollouts,
//! a crash loop, an OOMKill, a CronJob) plus churn, Faro watching it with a
//! built-in configuration, and a live summary that keeps Faro's own figures
//! apart from the embedded server's.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faro_core::Config;
use faro_sim::churn::{Churn, ChurnConfig};
use faro_sim::{Sim, SimConfig};
use faro_watch::InformerState;

use crate::cli::Common;
use crate::exit::Failure;
use crate::run::{Session, Target};

/// The configuration the demo runs with.
pub const DEMO_CONFIG: &str = r#"
resources:
  - gvr: v1/namespaces
  - gvr: v1/configmaps
    namespace_patterns: ["^demo-"]
  - gvr: v1/pods
    namespace_patterns: ["^demo-"]
  - gvr: apps/v1/deployments
    namespace_patterns: ["^demo-"]
  - gvr: apps/v1/replicasets
    namespace_patterns: ["^demo-"]
  - gvr: batch/v1/jobs
    namespace_patterns: ["^demo-"]
logs:
  namespace_patterns: ["^demo-"]
"#;

const GVRS: [&str; 6] = [
    "v1/namespaces",
    "v1/configmaps",
    "v1/pods",
    "apps/v1/deployments",
    "apps/v1/replicasets",
    "batch/v1/jobs",
];

const NAMESPACES: [&str; 3] = ["demo-shop", "demo-payments", "demo-search"];

pub async fn demo(common: &Common, duration: Option<u64>) -> Result<(), Failure> {
    let sim = Arc::new(
        Sim::start(SimConfig {
            bookmark_interval: Duration::from_secs(1),
            log_lines_per_second: 2.0,
            // A short demo needs a short memory: 16 MiB of watch history.
            history_bytes: 16 << 20,
            ..SimConfig::default()
        })
        .await
        .map_err(|e| Failure::Runtime(format!("the simulated cluster cannot start: {e}")))?,
    );
    let namespaces: Vec<String> = NAMESPACES.iter().map(|n| (*n).to_owned()).collect();
    let populate =
        |e: faro_sim::ApiError| Failure::Runtime(format!("populating the simulated cluster: {e}"));
    faro_sim::scenario::install(&sim, &namespaces).map_err(populate)?;
    // The living workload brings the pods, ReplicaSets and Jobs; the churn
    // adds a steady load of ConfigMap writes for Faro to keep up with.
    let mut churn = Churn::new(ChurnConfig {
        namespaces: namespaces.clone(),
        operations_per_second: 300.0,
        pods_per_namespace: 0,
        deployments_per_namespace: 0,
        ..ChurnConfig::default()
    });
    churn.populate(&sim).map_err(populate)?;
    let mut config =
        Config::from_yaml(DEMO_CONFIG, "demo").map_err(|e| Failure::Runtime(e.to_string()))?;
    config.output_dir = common
        .output_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("faro-demo-{}", std::process::id())));
    let client = kube::Client::try_from(kube::Config::new(
        sim.url()
            .parse()
            .map_err(|e| Failure::Runtime(format!("simulated cluster URL: {e}")))?,
    ))
    .map_err(|e| Failure::Runtime(e.to_string()))?;
    let metrics = if common.no_metrics {
        None
    } else {
        common.metrics_addr
    };
    let session = Session::start(Target::One(client), config, metrics, None, None).await?;
    session.wait_ready().await;
    let day = Duration::from_secs(24 * 3600);
    let churn_sim = sim.clone();
    let churner = tokio::spawn(async move { churn.run(&churn_sim, day).await });
    let rollout_sim = sim.clone();
    let rollouts = tokio::spawn(async move {
        faro_sim::scenario::drive(&rollout_sim, &namespaces, Duration::from_secs(20), day).await
    });
    let json_path = session
        .json
        .as_ref()
        .map(|j| j.path().display().to_string());
    let terminal = std::io::stdout().is_terminal();
    let started = Instant::now();
    let stop = crate::run::shutdown_signal(duration.map(Duration::from_secs));
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last: Vec<u64> = counts(&session);
    let mut last_lines = log_lines(&session);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                let now = counts(&session);
                let rates: Vec<u64> = now.iter().zip(&last).map(|(n, l)| n - l).collect();
                last = now.clone();
                let lines = log_lines(&session);
                let logs = Logs { total: lines, rate: lines - last_lines };
                last_lines = lines;
                show(&session, &sim, &now, &rates, &logs, started.elapsed(), terminal, json_path.as_deref());
            }
        }
    }
    churner.abort();
    rollouts.abort();
    let summary = session.stop().await;
    say!(
        "faro demo: {} events written ({} added, {} updated, {} deleted, {} dropped) in {:.1} s{}",
        summary.added + summary.updated + summary.deleted,
        summary.added,
        summary.updated,
        summary.deleted,
        summary.dropped,
        summary.run_seconds,
        json_path
            .map(|p| format!("; events in {p}"))
            .unwrap_or_default()
    );
    if let (Some(lines), Some(file)) = (summary.log_lines, &session.container_logs) {
        say!(
            "faro demo: {lines} container log lines in {}",
            file.path().display()
        );
    }
    Ok(())
}

/// Events so far per (GVR, type), in the order of `GVRS` × ADDED/UPDATED/DELETED.
fn counts(session: &Session) -> Vec<u64> {
    let mut out = vec![0; GVRS.len() * 3];
    for controller in session.watching.controllers() {
        let metrics = controller.metrics();
        for (total, n) in out
            .iter_mut()
            .zip(GVRS.iter().flat_map(|g| metrics.events_of(g)))
        {
            *total += n;
        }
    }
    out
}

/// Container log lines read so far.
fn log_lines(session: &Session) -> u64 {
    session
        .watching
        .controllers()
        .iter()
        .map(|c| c.metrics().log_lines.get())
        .sum()
}

/// Container log lines so far and in the last second.
struct Logs {
    total: u64,
    rate: u64,
}

#[allow(clippy::too_many_arguments)]
fn show(
    session: &Session,
    sim: &Sim,
    totals: &[u64],
    rates: &[u64],
    logs: &Logs,
    elapsed: Duration,
    terminal: bool,
    json: Option<&str>,
) {
    let infos = session.watching.active_informers();
    let watching = infos
        .iter()
        .filter(|i| i.state == InformerState::Watching)
        .count();
    let tracked: usize = infos.iter().map(|i| i.tracked_objects).sum();
    let rss = crate::http::resident_bytes();
    let server = sim.state();
    let mib = |v: &serde_json::Value| v.as_u64().unwrap_or(0) as f64 / 1_048_576.0;
    let mut out = std::io::stdout().lock();
    if terminal {
        let mut text = String::from("\x1b[2J\x1b[H");
        text.push_str(&format!(
            "faro demo — {:.0} s — {} informers ({} watching), {} objects tracked, {:.1} MiB resident\n\n",
            elapsed.as_secs_f64(),
            infos.len(),
            watching,
            tracked,
            rss as f64 / 1_048_576.0
        ));
        text.push_str(&format!(
            "embedded cluster: {} objects, {:.1} MiB of watch history, {:.1} MiB of container logs\n",
            server["objects"],
            mib(&server["historyBytes"]),
            mib(&server["logBytes"])
        ));
        text.push_str(
            "(the resident figure is the whole process: Faro and the embedded cluster)\n\n",
        );
        text.push_str(&format!(
            "{:<22} {:>14} {:>14} {:>14}\n",
            "GVR", "ADDED/s", "UPDATED/s", "DELETED/s"
        ));
        for (i, gvr) in GVRS.iter().enumerate() {
            text.push_str(&format!(
                "{gvr:<22} {:>14} {:>14} {:>14}\n",
                rates[i * 3],
                rates[i * 3 + 1],
                rates[i * 3 + 2]
            ));
        }
        let streams = session.watching.log_streams().unwrap_or_default();
        text.push_str(&format!(
            "{:<22} {:>14} lines/s, {} streams open, {} lines so far\n",
            "container logs", logs.rate, streams.open, logs.total
        ));
        let total: u64 = totals.iter().sum();
        text.push_str(&format!("\n{total} events so far"));
        if let Some(p) = json {
            text.push_str(&format!(", written to {p}"));
        }
        text.push_str("\nCtrl-C stops.\n");
        let _ = out.write_all(text.as_bytes());
    } else {
        let by_gvr: serde_json::Map<String, serde_json::Value> = GVRS
            .iter()
            .enumerate()
            .map(|(i, g)| {
                (
                    (*g).to_owned(),
                    serde_json::json!({"added": rates[i * 3], "updated": rates[i * 3 + 1], "deleted": rates[i * 3 + 2]}),
                )
            })
            .collect();
        let line = serde_json::json!({
            "seconds": elapsed.as_secs(),
            "eventsPerSecond": by_gvr,
            "informers": infos.len(),
            "watching": watching,
            "trackedObjects": tracked,
            "logLinesPerSecond": logs.rate,
            "logStreamsOpen": session.watching.log_streams().unwrap_or_default().open,
            "residentBytes": rss,
            "cluster": {
                "objects": server["objects"],
                "historyBytes": server["historyBytes"],
                "logBytes": server["logBytes"],
            },
        });
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}
