//! `faro events`, and the Event, lifecycle and correlation files of
//! `faro run`, against faro-sim.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use faro_sim::{Sim, SimConfig};
use serde_json::{Value, json};

use crate::bad_input::fails;
use crate::run::{get, spawn_run};
use crate::{FARO, Faro, TempDir, records, sim};

async fn living(scale: f64) -> Sim {
    Sim::start(SimConfig {
        time_scale: scale,
        bookmark_interval: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await
    .expect("faro-sim starts")
}

fn namespace(sim: &Sim, name: &str) {
    sim.create(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } }))
        .unwrap();
}

fn core_event(
    name: &str,
    kind: &str,
    object: &str,
    reason: &str,
    kind_of: &str,
    message: &str,
) -> Value {
    let now = jiff::Timestamp::now().to_string();
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": { "name": name, "namespace": "shop" },
        "involvedObject": { "kind": kind, "apiVersion": "v1", "namespace": "shop", "name": object },
        "reason": reason, "message": message, "type": kind_of, "count": 1,
        "firstTimestamp": now, "lastTimestamp": now,
        "source": { "component": "kubelet", "host": "node-1" },
    })
}

async fn output(args: &[&str]) -> (bool, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(FARO)
            .args(args)
            .env_remove("KUBECONFIG")
            .stderr(Stdio::inherit())
            .output(),
    )
    .await
    .expect("faro ends")
    .unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faro_events_prints_json_in_a_pipe_and_narratives_on_a_terminal() {
    let sim = sim().await;
    namespace(&sim, "shop");
    sim.create(core_event(
        "web.1",
        "Pod",
        "web",
        "BackOff",
        "Warning",
        "Back-off restarting failed container app in pod web_shop(1234)",
    ))
    .unwrap();
    sim.create(core_event(
        "web.2",
        "Pod",
        "web",
        "Scheduled",
        "Normal",
        "Successfully assigned shop/web to node-1",
    ))
    .unwrap();
    let kc = sim.kubeconfig().to_str().unwrap().to_owned();
    let base = [
        "events",
        "-n",
        "shop",
        "--kubeconfig",
        &kc,
        "--auto-shutdown",
        "2",
    ];

    // `--all`: what the server has, once; piped, as JSON records.
    let (ok, text) = output(&[&base[..], &["--all"]].concat()).await;
    assert!(ok);
    let mut got: Vec<(String, String)> = lines(&text)
        .iter()
        .map(|r| {
            assert_eq!(r["kind"], "k8s-event");
            assert_eq!(r["correlation"], "Pod/shop/web");
            (
                r["reason"].as_str().unwrap().into(),
                r["narrative"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "BackOff".to_owned(),
                "Pod shop/web: back-off restarting failed container app".to_owned()
            ),
            (
                "Scheduled".to_owned(),
                "Pod shop/web: scheduled to node-1 by kubelet".to_owned()
            ),
        ]
    );
    let (ok, text) = output(&[&base[..], &["--all", "--types", "Warning"]].concat()).await;
    assert!(ok);
    let warnings = lines(&text);
    assert_eq!(warnings.len(), 1, "{text}");
    assert_eq!(warnings[0]["reason"], "BackOff");

    // Without `--all` only what happens from the start on.
    let mut faro = Faro::spawn(&["events", "-n", "shop", "--kubeconfig", &kc]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sim.create(core_event(
        "web.3",
        "Pod",
        "web",
        "Killing",
        "Normal",
        "Stopping container app",
    ))
    .unwrap();
    let line = faro.line("{").await;
    let first: Value = serde_json::from_str(&format!("{{{line}")).unwrap();
    assert_eq!(first["narrative"], "Pod shop/web: stopping container app");
    assert_eq!(faro.seen.len(), 1, "{:?}", faro.seen);
    faro.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), faro.child.wait())
        .await
        .expect("faro events ends on SIGTERM")
        .unwrap();
    assert!(status.success());

    // On a terminal: a narrative per line, a Warning in yellow.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED (terminal half): `script` is not on the PATH to give faro a terminal");
        return;
    }
    let command = format!("{FARO} events -n shop --all --auto-shutdown 2 --kubeconfig {kc}");
    let out = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{text}");
    let mut shown: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    shown.sort();
    assert_eq!(
        shown,
        [
            "\u{1b}[33mPod shop/web: back-off restarting failed container app\u{1b}[0m",
            "Pod shop/web: scheduled to node-1 by kubelet",
            "Pod shop/web: stopping container app",
        ],
        "{text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_flags_are_exit_2_on_one_line() {
    for (args, expected) in [
        (
            vec!["events", "-n", "Bad_NS"],
            "faro: --namespace \"Bad_NS\": not a namespace name",
        ),
        (
            vec!["events", "--reasons", "Back Off"],
            "faro: --reasons \"Back Off\": not a name",
        ),
    ] {
        let (code, err) = fails(&args).await;
        assert_eq!(code, 2, "{args:?}");
        assert!(err.starts_with(expected), "{args:?}: {err}");
    }
    // clap's own refusal of a type that is not Normal or Warning.
    let out = tokio::process::Command::new(FARO)
        .args(["events", "--types", "Error"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("invalid value 'Error' for '--types"), "{err}");
}

fn deployment(name: &str, replicas: u64, log_rate: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": "shop" },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name },
                              "annotations": { "faro-sim.io/log-rate": log_rate } },
                "spec": { "containers": [{ "name": "app", "image": format!("{name}:1") }] },
            },
        },
    })
}

const STORY: &str = "namespaces:\n  - name_selector: shop\n    resources:\n      apps/v1/deployments: {}\n      apps/v1/replicasets: {}\n      v1/pods: {}\nlogs:\n  namespace_names: [shop]\nk8s_events:\n  namespace_names: [shop]\n";

async fn until(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The complete correlation documents in `dir`, by file name.
fn documents(dir: &Path) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{name} is not a complete JSON document: {e}"));
        out.push((name, doc));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

/// `faro run` with the story configuration and `correlation_output` (plus
/// `extra` keys) against a living cluster with a `shop` namespace.
async fn story_run(extra: &str) -> (Sim, TempDir, PathBuf, Faro) {
    let sim = living(20.0).await;
    namespace(&sim, "shop");
    let dir = TempDir::new();
    let correlations = dir.path().join("correlations");
    let config = dir.file(
        "faro.yaml",
        &format!(
            "{STORY}correlation_output:\n  enabled: true\n  directory: {}\n{extra}",
            correlations.display()
        ),
    );
    let faro = spawn_run(&sim, &config, &dir);
    (sim, dir, correlations, faro)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_deployment_is_one_complete_document_of_its_whole_story() {
    let (sim, _dir, correlations, mut faro) = story_run("").await;
    let events_file = PathBuf::from(faro.line("FARO_K8S_EVENTS_FILE:").await);
    let lifecycle_file = PathBuf::from(faro.line("FARO_LIFECYCLE_FILE:").await);
    assert!(events_file.to_str().unwrap().contains("/logs/k8s-events-"));
    assert!(
        lifecycle_file
            .to_str()
            .unwrap()
            .contains("/logs/lifecycle-")
    );
    assert_eq!(
        PathBuf::from(faro.line("FARO_CORRELATION_DIR:").await),
        correlations
    );
    let metrics = faro.line("FARO_METRICS_URL:").await;
    faro.line("FARO_READY:").await;

    sim.create(deployment("web", 2, "5")).unwrap();
    until(
        "two web pods with log lines",
        Duration::from_secs(30),
        || {
            let pods = sim.list("v1", "Pod", Some("shop")).unwrap();
            pods.len() == 2
                && pods.iter().all(|p| {
                    let name = p["metadata"]["name"].as_str().unwrap();
                    sim.log("shop", name, "app").is_some_and(|l| l.len() >= 5)
                })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sim.delete("apps/v1", "Deployment", Some("shop"), "web")
        .unwrap();
    until("the Deployment's document", Duration::from_secs(20), || {
        correlations.join("Deployment_shop_web.json").exists()
    })
    .await;
    let docs = documents(&correlations);
    let (_, doc) = docs
        .iter()
        .find(|(n, _)| n == "Deployment_shop_web.json")
        .unwrap();
    assert_eq!(doc["correlation"], "Deployment/shop/web");
    assert_eq!(doc["spilled"], 0);
    let kept = doc["records"].as_array().unwrap();
    let counts = &doc["counts"];
    for (key, kind) in [
        ("events", None),
        ("logs", Some("log")),
        ("k8sEvents", Some("k8s-event")),
        ("lifecycle", Some("lifecycle")),
    ] {
        let n = counts[key].as_u64().unwrap();
        assert!(n > 0, "no {key} in {counts}");
        if let Some(kind) = kind {
            assert_eq!(
                kept.iter().filter(|r| r["kind"] == kind).count() as u64,
                n,
                "{key}"
            );
        }
    }
    assert_eq!(
        counts
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        kept.len() as u64
    );
    for r in kept {
        assert_eq!(r["correlation"], "Deployment/shop/web", "{r}");
    }
    // The last resource event of the document is the Deployment's deletion.
    let last_event = kept
        .iter()
        .rev()
        .find(|r| r.get("eventType").is_some())
        .unwrap();
    assert_eq!(
        (&last_event["eventType"], &last_event["name"]),
        (&json!("DELETED"), &json!("web"))
    );
    let first = doc["firstSeen"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    let last = doc["lastSeen"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    assert!(first <= last);

    let (_, text) = get(&metrics).await;
    assert!(
        metric(&text, "faro_correlation_files_written_total") >= 1.0,
        "{text}"
    );
    assert!(metric(&text, "faro_k8s_events_total") >= counts["k8sEvents"].as_u64().unwrap() as f64);
    assert!(metric(&text, "faro_lifecycle_records_total") >= 1.0);
    let (code, summary) = faro.stop().await;
    assert_eq!(code, 0);
    assert!(
        summary["correlationFiles"].as_u64().unwrap() >= 1,
        "{summary}"
    );
    // Every Event record is in the JSON lines file too, with its narrative.
    let written = records(&events_file);
    assert!(!written.is_empty());
    assert!(
        written
            .iter()
            .all(|r| r["kind"] == "k8s-event" && r["narrative"].is_string())
    );
    assert_eq!(summary["k8sEvents"], json!(written.len()));
    let lifecycle = records(&lifecycle_file);
    assert!(lifecycle.iter().all(|r| r["kind"] == "lifecycle"));
    assert_eq!(summary["lifecycleRecords"], json!(lifecycle.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_budget_the_oldest_records_spill_and_are_counted() {
    let (sim, _dir, correlations, mut faro) =
        story_run("  max_bytes_per_correlation: 4000\n").await;
    let metrics = faro.line("FARO_METRICS_URL:").await;
    faro.line("FARO_READY:").await;
    sim.create(deployment("chatty", 1, "50")).unwrap();
    until("many log lines", Duration::from_secs(30), || {
        sim.list("v1", "Pod", Some("shop"))
            .unwrap()
            .iter()
            .any(|p| {
                sim.log("shop", p["metadata"]["name"].as_str().unwrap(), "app")
                    .is_some_and(|l| l.len() >= 100)
            })
    })
    .await;
    let mut spilled = 0.0;
    for _ in 0..100 {
        spilled = metric(&get(&metrics).await.1, "faro_correlation_spilled_total");
        if spilled > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(spilled > 0.0, "nothing spilled");
    let (code, _) = faro.stop().await;
    assert_eq!(code, 0);
    // Written at shutdown: the newest records within the budget.
    let docs = documents(&correlations);
    let (_, doc) = docs
        .iter()
        .find(|(n, _)| n == "Deployment_shop_chatty.json")
        .unwrap_or_else(|| panic!("no document in {docs:?}"));
    let spilled = doc["spilled"].as_u64().unwrap();
    assert!(spilled > 0, "{doc}");
    let records = doc["records"].as_array().unwrap();
    let bytes: usize = records.iter().map(|r| r.to_string().len() + 1).sum();
    assert!(bytes <= 4000, "{bytes} bytes kept");
    let counted: u64 = doc["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(counted, records.len() as u64 + spilled);
    // The last log line kept is the last one the pod wrote before the stop.
    assert!(records.iter().any(|r| r["kind"] == "log"));
}

/// A small deterministic sequence from a seed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_points_it_leaves_complete_documents_or_none() {
    let sim = std::sync::Arc::new(crate::sim().await);
    namespace(&sim, "shop");
    let dir = TempDir::new();
    let correlations = dir.path().join("c");
    let config = dir.file(
        "faro.yaml",
        &format!(
            "resources:\n  - gvr: v1/configmaps\n    namespace_names: [shop]\ncorrelation_output:\n  enabled: true\n  directory: {}\n  close_after_idle: 1s\n",
            correlations.display()
        ),
    );
    // Many correlations, each written a second after its last change, while
    // changes keep coming: writes are under way at most instants.
    let payload = "x".repeat(20_000);
    let writer = {
        let sim = sim.clone();
        tokio::spawn(async move {
            let mut round = 0u64;
            loop {
                for i in 0..40 {
                    let cm = json!({
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": { "name": format!("cm-{i}"), "namespace": "shop" },
                        "data": { "round": round.to_string(), "payload": payload },
                    });
                    if sim.create(cm.clone()).is_err() {
                        let _ = sim.update(cm);
                    }
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                round += 1;
            }
        })
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill points from seed {seed}");
    let mut rng = Lcg(seed);
    for _ in 0..6 {
        let mut faro = spawn_run(&sim, &config, &dir);
        faro.line("FARO_READY:").await;
        tokio::time::sleep(Duration::from_millis(1000 + rng.below(2500))).await;
        faro.signal("KILL");
        let _ = faro.child.wait().await;
        // Every document there parses; a write cut short left none.
        for (name, doc) in documents(&correlations) {
            assert!(
                doc["correlation"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("ConfigMap/shop/")),
                "{name}"
            );
            assert!(doc["records"].is_array(), "{name}");
        }
    }
    writer.abort();
    assert!(
        !documents(&correlations).is_empty(),
        "no document was written in six runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_story_block_is_exit_2_on_one_line() {
    let dir = TempDir::new();
    let not_a_dir = dir.file("plain-file", "x");
    let cases = [
        (
            "k8s_events: { namespace_patterns: [\"([\"] }\n".to_owned(),
            "faro: k8s_events.namespace_patterns[0]: \"([\" is not a valid regular expression",
        ),
        (
            "k8s_events: { typs: [Warning] }\n".to_owned(),
            "faro: k8s_events.typs: unknown key",
        ),
        (
            "correlation_output: { enabled: true, max_bytes_per_correlation: 0 }\n".to_owned(),
            "faro: correlation_output.max_bytes_per_correlation: 0 is not a budget",
        ),
        (
            format!(
                "resources:\n  - gvr: v1/configmaps\ncorrelation_output: {{ enabled: true, directory: {}/sub }}\n",
                not_a_dir.display()
            ),
            "faro: correlation_output.directory: ",
        ),
    ];
    let sim = crate::sim().await;
    let kc = sim.kubeconfig().to_str().unwrap().to_owned();
    for (yaml, expected) in cases {
        let config = dir.file("faro.yaml", &yaml);
        let (code, err) = fails(&[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--kubeconfig",
            &kc,
        ])
        .await;
        assert_eq!(code, 2, "{yaml}: {err}");
        assert!(err.starts_with(expected), "{yaml}: {err}");
        if expected.ends_with("directory: ") {
            assert!(err.contains("expected a writable directory"), "{err}");
        }
    }
}
