//! The guide's command against faro-sim: exactly the events of the
//! detected workloads' namespaces, each with its workload id.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use faro_sim::{Sim, SimConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const MONITOR: &str = env!("CARGO_BIN_EXE_workload-monitor");
const LABEL: &str = "api.openshift.com/name";

fn namespace(sim: &Sim, name: &str, label: Option<&str>) {
    let labels = label.map_or(json!({}), |v| json!({ LABEL: v }));
    sim.create(json!({ "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": name, "labels": labels } }))
        .unwrap();
}

fn objects(sim: &Sim, ns: &str, tag: &str) {
    sim.create(json!({ "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": format!("cm-{tag}"), "namespace": ns, "labels": { "tag": tag } } }))
        .unwrap();
    sim.create(json!({ "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": format!("svc-{tag}"), "namespace": ns },
        "spec": { "ports": [{ "port": 80 }] } }))
        .unwrap();
    sim.create(json!({ "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": format!("pod-{tag}"), "namespace": ns },
        "spec": { "containers": [{ "name": "app", "image": "app:1" }] } }))
        .unwrap();
}

/// `(resource, namespace, name)` of everything the sim holds of the
/// workload GVRs in `namespaces`, plus the namespaces themselves.
fn expected(sim: &Sim, namespaces: &[&str]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for ns in namespaces {
        out.insert((
            "v1/namespaces".to_owned(),
            (*ns).to_owned(),
            (*ns).to_owned(),
        ));
        for (kind, gvr) in [
            ("Pod", "v1/pods"),
            ("ConfigMap", "v1/configmaps"),
            ("Service", "v1/services"),
        ] {
            for o in sim.list("v1", kind, Some(ns)).unwrap() {
                out.insert((
                    gvr.to_owned(),
                    (*ns).to_owned(),
                    o["metadata"]["name"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

fn added(lines: &[Value]) -> BTreeSet<(String, String, String)> {
    lines
        .iter()
        .filter(|l| l["action"] == "ADDED")
        .map(|l| {
            (
                l["resource"].as_str().unwrap().to_owned(),
                l["namespace"].as_str().unwrap().to_owned(),
                l["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_command_prints_exactly_the_workloads_events() {
    let sim = Sim::start(SimConfig {
        bookmark_interval: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await
    .expect("faro-sim starts");
    // A workload (label value toda-…), a namespace of it found by its id, a
    // labelled namespace that is no workload, and an unrelated one.
    namespace(&sim, "klusterlet-2f7c1a", None);
    namespace(&sim, "ocm-staging-2f7c1a", Some("toda-shop"));
    namespace(&sim, "ocm-staging-9b9b9b", Some("other-thing"));
    namespace(&sim, "unrelated", None);
    for ns in [
        "klusterlet-2f7c1a",
        "ocm-staging-2f7c1a",
        "ocm-staging-9b9b9b",
        "unrelated",
    ] {
        objects(&sim, ns, "before");
    }

    let mut child = tokio::process::Command::new(MONITOR)
        .args([
            "-label",
            LABEL,
            "-pattern",
            "toda-.*",
            "-namespace-pattern",
            "ocm-staging-(.+)",
            "-allowedgvrs",
            "v1/namespaces",
            "-workloadgvrs",
            "v1/pods,v1/configmaps,v1/services",
            "-kubeconfig",
            sim.kubeconfig().to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("workload-monitor starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            let value: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    let mut lines: Vec<Value> = Vec::new();
    let workload = ["klusterlet-2f7c1a", "ocm-staging-2f7c1a"];
    let mut wait_for = async |lines: &mut Vec<Value>, want: BTreeSet<(String, String, String)>| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !want.is_subset(&added(lines)) {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(line)) => lines.push(line),
                _ => panic!(
                    "missing {:?}",
                    want.difference(&added(lines)).collect::<Vec<_>>()
                ),
            }
        }
    };
    wait_for(&mut lines, expected(&sim, &workload)).await;

    // Later: objects in every namespace, and a new namespace of the workload.
    namespace(&sim, "hosted-2f7c1a", None);
    for ns in [
        "klusterlet-2f7c1a",
        "ocm-staging-2f7c1a",
        "hosted-2f7c1a",
        "ocm-staging-9b9b9b",
        "unrelated",
    ] {
        objects(&sim, ns, "after");
    }
    let workload = ["klusterlet-2f7c1a", "ocm-staging-2f7c1a", "hosted-2f7c1a"];
    wait_for(&mut lines, expected(&sim, &workload)).await;
    // What else arrives in a moment (pods' status updates) is read too.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    while let Ok(line) = rx.try_recv() {
        lines.push(line);
    }
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-s", "TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());

    assert_eq!(
        added(&lines),
        expected(&sim, &workload),
        "exactly the workload's objects"
    );
    for l in &lines {
        assert_eq!(l["workload_id"], "2f7c1a", "{l}");
        assert_eq!(l["workload_name"], "toda-shop", "{l}");
        assert!(workload.contains(&l["namespace"].as_str().unwrap()), "{l}");
        assert!(
            l["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{l}"
        );
    }
    let cm = lines
        .iter()
        .find(|l| l["resource"] == "v1/configmaps" && l["name"] == "cm-after")
        .unwrap();
    assert_eq!(cm["labels"], json!({ "tag": "after" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_are_one_line_and_exit_2() {
    for (args, expected) in [
        (
            vec![
                "-label",
                LABEL,
                "-pattern",
                "([",
                "-workloadgvrs",
                "v1/pods",
            ],
            "workload-monitor: -pattern \"([\":",
        ),
        (
            vec![
                "-label",
                LABEL,
                "-pattern",
                "x",
                "-workloadgvrs",
                "v1/nodes",
            ],
            "workload-monitor: -workloadgvrs \"v1/nodes\": not Namespaced-scoped",
        ),
        (
            vec!["-label", LABEL, "-pattern", "x", "-workloadgvrs", "pods"],
            "workload-monitor: -workloadgvrs \"pods\":",
        ),
    ] {
        let out = tokio::process::Command::new(MONITOR)
            .args(&args)
            .env_remove("KUBECONFIG")
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(expected), "{args:?}: {err}");
    }
}
