//! `faro demo`: an embedded faro-sim with churn, Faro watching it with a
//! built-in configuration, and a live summary.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use faro_core::Config;
use faro_sim::churn::{Churn, ChurnConfig};
use faro_sim::{Sim, SimConfig};
use faro_watch::InformerState;

use crate::cli::Common;
use crate::exit::Failure;
use crate::run::Session;

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
"#;

const GVRS: [&str; 4] = [
    "v1/namespaces",
    "v1/configmaps",
    "v1/pods",
    "apps/v1/deployments",
];

pub async fn demo(common: &Common, duration: Option<u64>) -> Result<(), Failure> {
    let sim = Sim::start(SimConfig {
        bookmark_interval: Duration::from_secs(1),
        ..SimConfig::default()
    })
    .await
    .map_err(|e| Failure::Runtime(format!("the simulated cluster cannot start: {e}")))?;
    let mut churn = Churn::new(ChurnConfig {
        namespaces: vec![
            "demo-shop".into(),
            "demo-payments".into(),
            "demo-search".into(),
        ],
        operations_per_second: 300.0,
        ..ChurnConfig::default()
    });
    churn
        .populate(&sim)
        .map_err(|e| Failure::Runtime(format!("populating the simulated cluster: {e}")))?;
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
    let session = Session::start(client, config, metrics).await?;
    session.wait_ready().await;
    let churner = tokio::spawn(async move {
        let _ = churn.run(&sim, Duration::from_secs(24 * 3600)).await;
        drop(sim);
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
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                let now = counts(&session);
                let rates: Vec<u64> = now.iter().zip(&last).map(|(n, l)| n - l).collect();
                last = now.clone();
                show(&session, &now, &rates, started.elapsed(), terminal, json_path.as_deref());
            }
        }
    }
    churner.abort();
    let summary = session.stop().await;
    println!(
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
    Ok(())
}

/// Events so far per (GVR, type), in the order of `GVRS` × ADDED/UPDATED/DELETED.
fn counts(session: &Session) -> Vec<u64> {
    let metrics = session.controller.metrics();
    GVRS.iter().flat_map(|g| metrics.events_of(g)).collect()
}

fn show(
    session: &Session,
    totals: &[u64],
    rates: &[u64],
    elapsed: Duration,
    terminal: bool,
    json: Option<&str>,
) {
    let infos = session.controller.active_informers();
    let watching = infos
        .iter()
        .filter(|i| i.state == InformerState::Watching)
        .count();
    let tracked: usize = infos.iter().map(|i| i.tracked_objects).sum();
    let rss = crate::http::resident_bytes();
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
            "residentBytes": rss,
        });
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}
