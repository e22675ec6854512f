//! Fixtures shared by Faro's criterion benchmarks: configurations of a given
//! size and the objects evaluated against them.

use std::collections::BTreeMap;

use faro_core::config::NamespaceSelection;
use faro_core::{Gvr, ResourceRule, WatchSpec};
use faro_filter::{LabelPattern, NamespaceMatcher, Pattern};

/// A watch over `v1/configmaps` in all namespaces serving `rules` rules, each
/// with a namespace pattern, a name pattern and a label pattern, so that
/// every rule costs a full evaluation.
pub fn watch_spec_with_rules(rules: usize) -> WatchSpec {
    let gvr = Gvr::parse("v1/configmaps").expect("valid GVR");
    let rules: Vec<ResourceRule> = (0..rules)
        .map(|i| {
            let mut rule = ResourceRule::new(gvr.clone());
            rule.namespaces = NamespaceSelection::Matching(
                NamespaceMatcher::new(Vec::<String>::new(), [format!("^team-{i}-")])
                    .expect("valid pattern"),
            );
            rule.name_pattern = Some(Pattern::new(&format!("^app-{i}-[a-z]+$")).expect("valid"));
            rule.label_patterns =
                LabelPattern::parse_list(&format!("tier=^(web|api)-{i}$")).expect("valid");
            rule.origin = format!("resources[{i}]");
            rule
        })
        .collect();
    let mut specs = faro_core::config::normalise(&rules).expect("rules normalise");
    assert_eq!(specs.len(), 1, "all rules share one watch");
    specs.remove(0)
}

/// One object's namespace, name and labels.
pub struct SampleObject {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
}

/// `count` objects, a quarter of which match rule `i % rules`, the rest
/// matching none; so the benchmark measures both early exits and full scans.
pub fn sample_objects(count: usize, rules: usize) -> Vec<SampleObject> {
    (0..count)
        .map(|n| {
            let i = n % rules.max(1);
            let hit = n % 4 == 0;
            let namespace = if hit {
                format!("team-{i}-prod")
            } else {
                format!("other-{n}")
            };
            let labels = BTreeMap::from([
                ("tier".to_string(), format!("web-{i}")),
                ("app.kubernetes.io/name".to_string(), "bench".to_string()),
            ]);
            SampleObject {
                namespace,
                name: format!("app-{i}-object"),
                labels,
            }
        })
        .collect()
}

/// A ConfigMap of about `bytes` bytes of data, as the demo and benchmarks create.
pub fn configmap(namespace: &str, name: &str, bytes: usize) -> serde_json::Value {
    let value: String = "abcdefghijklmnopqrstuvwxyz0123456789"
        .chars()
        .cycle()
        .take(bytes)
        .collect();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { "app": "bench", "tier": "web" },
        },
        "data": { "payload": value },
    })
}

/// A faro-sim holding `count` objects made by `object(i)`, with their namespaces.
pub async fn populated_sim(
    count: usize,
    object: impl Fn(usize) -> serde_json::Value,
) -> faro_sim::Sim {
    let sim = faro_sim::Sim::start(faro_sim::SimConfig::default())
        .await
        .expect("faro-sim starts");
    let mut namespaces = std::collections::BTreeSet::new();
    for i in 0..count {
        let o = object(i);
        if let Some(ns) = o["metadata"]["namespace"].as_str()
            && namespaces.insert(ns.to_owned())
        {
            sim.create(serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns },
            }))
            .expect("namespace");
        }
        sim.create(o).expect("object");
    }
    sim
}

/// A kube client for `sim`.
pub fn sim_client(sim: &faro_sim::Sim) -> kube::Client {
    let config = kube::Config::new(sim.url().parse().expect("sim URL"));
    kube::Client::try_from(config).expect("client")
}

/// A handler that only counts the events it is given.
pub struct Counter(pub std::sync::Arc<std::sync::atomic::AtomicU64>);

#[async_trait::async_trait]
impl faro_core::EventHandler for Counter {
    fn name(&self) -> &str {
        "counter"
    }

    async fn on_matched(
        &self,
        _event: &faro_core::MatchedEvent,
    ) -> Result<(), faro_core::HandlerError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// The runtime the benchmarks drive faro-sim and Faro on: two workers, as the machine has two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Builds the plugin package `name` of `plugins/` (debug, in a target
/// directory of its own, since the running `cargo bench` holds the main one)
/// and returns a private directory (mode 0755) holding a copy of its `.so`.
pub fn built_plugin(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let target = root.join("target/plugin-tests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--quiet", "--release", "-p", name, "--target-dir"])
        .arg(&target)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building plugin {name} failed");
    let file = format!("lib{}.so", name.replace('-', "_"));
    let dir = std::env::temp_dir().join(format!("faro-bench-plugins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("plugin directory");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let to = dir.join(&file);
    std::fs::copy(target.join("release").join(&file), &to).expect("copy plugin");
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (dir, to)
}

/// A living faro-sim with `pods` running pods of `containers` containers in
/// namespace `logs`, each container's log holding `lines` lines of about
/// 120 bytes. The kubelet writes nothing of its own.
pub async fn logs_sim(pods: usize, containers: usize, lines: usize) -> faro_sim::Sim {
    let sim = faro_sim::Sim::start(faro_sim::SimConfig {
        nodes: pods.div_ceil(100).max(1),
        time_scale: 100.0,
        history_bytes: usize::MAX,
        // A kubelet's rotated file: enough for a few rounds of lines.
        log_bytes_per_container: 128 * 1024,
        ..faro_sim::SimConfig::default()
    })
    .await
    .expect("faro-sim starts");
    sim.create(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "logs" },
    }))
    .expect("namespace");
    let names: Vec<String> = (0..containers).map(|c| format!("c{c}")).collect();
    for p in 0..pods {
        let spec: Vec<serde_json::Value> = names
            .iter()
            .map(|n| serde_json::json!({ "name": n, "image": "app:1" }))
            .collect();
        sim.create(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": format!("pod-{p:05}"), "namespace": "logs",
                          "annotations": { "faro-sim.io/log-rate": "0.0001" } },
            "spec": { "containers": spec },
        }))
        .expect("pod");
    }
    // Every container has started (written its start line).
    loop {
        let started = (0..pods).all(|p| {
            names
                .iter()
                .all(|c| sim.log("logs", &format!("pod-{p:05}"), c).is_some())
        });
        if started {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for p in 0..pods {
        let pod = format!("pod-{p:05}");
        for c in &names {
            let text = (0..lines)
                .map(|i| {
                    format!(
                        "level=info ts=2026-12-01T10:00:00Z caller=api.go:{i:04} msg=\"GET /api/v1/orders/{i:06} 200\" pod={pod} c={c}"
                    )
                })
                .collect();
            sim.append_log("logs", &pod, c, text).expect("append");
        }
    }
    sim
}

/// The process's resident set.
pub use faro_monitor::process::resident_bytes;

/// Whether a plain (non-criterion) bench called `name` is to run:
/// `cargo bench -- FILTER` passes the filter on, after criterion's flags.
pub fn selected(name: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || !args[i - 1].ends_with("-time")))
        .map(|(_, a)| a.as_str())
        .next_back();
    filter.is_none_or(|f| name.contains(f))
}
