//! `faro watch` and `faro demo`.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{FARO, sim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_piped_into_head_prints_three_json_lines_and_ends() {
    let sim = sim().await;
    for ns in ["a", "b"] {
        sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .unwrap();
        for i in 0..3 {
            for app in ["web", "db"] {
                sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("{app}-{i}"), "namespace": ns, "labels": {"app": app}}}))
                    .unwrap();
            }
        }
    }
    let script = format!(
        "{FARO} watch v1/configmaps -A -l app=web --kubeconfig {} | head -n 3",
        sim.kubeconfig().display()
    );
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .output(),
    )
    .await
    .expect("the pipeline ends")
    .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    for line in &lines {
        assert_eq!(line["eventType"], "ADDED");
        assert_eq!(line["gvr"], "v1/configmaps");
        assert_eq!(line["labels"]["app"], "web");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_for_its_duration_and_ends_with_a_summary() {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new(FARO)
            .args(["demo", "--duration", "3"])
            .stdout(Stdio::piped())
            .output(),
    )
    .await
    .expect("the demo ends")
    .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (summary, logs) = (lines[lines.len() - 2], lines[lines.len() - 1]);
    assert!(
        summary.starts_with("faro demo: ") && summary.contains("events written"),
        "{summary}"
    );
    // The living cluster's containers write lines, which the demo follows.
    assert!(
        logs.starts_with("faro demo: ") && logs.contains(" container log lines in "),
        "{logs}"
    );
    let file = logs.rsplit(" in ").next().unwrap();
    let written = std::fs::read_to_string(file).unwrap();
    assert!(written.lines().count() > 0, "no container log lines");
    assert!(written.lines().all(|l| l.starts_with("{\"kind\":\"log\"")));
    // Not a terminal: one JSON line per second before the summary.
    let progress: Vec<Value> = lines[..lines.len() - 2]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!progress.is_empty());
    assert!(
        progress
            .iter()
            .any(|p| p["trackedObjects"].as_u64() > Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_with_churn_serves_a_living_cluster() {
    let mut faro =
        crate::Faro::spawn(&["sim", "--churn", "20", "--time-scale", "10", "--port", "0"]);
    let kubeconfig = faro.line("FARO_SIM_KUBECONFIG:").await;
    let kubectl = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    if kubectl(&["version", "--client"]).is_none() {
        eprintln!("SKIPPED: kubectl is not on the PATH; this test reads the cluster with it");
        return;
    }
    let deployments = kubectl(&["get", "deployments", "-n", "shop", "-o", "name"]).unwrap();
    assert_eq!(
        deployments,
        "deployment.apps/api\ndeployment.apps/flaky\ndeployment.apps/hungry\ndeployment.apps/web\n"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let running = kubectl(&[
            "get",
            "pods",
            "-n",
            "shop",
            "-l",
            "app=web",
            "--field-selector",
            "status.phase=Running",
            "-o",
            "name",
        ])
        .unwrap_or_default();
        if running.lines().count() == 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "web's 3 pods running: {running}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let events = kubectl(&["get", "events", "-n", "shop"]).unwrap();
    assert!(events.contains("ScalingReplicaSet"), "{events}");
    assert!(events.contains("Scheduled"), "{events}");
    let churned = kubectl(&["get", "configmaps", "-n", "churn-a", "-o", "name"]).unwrap();
    assert!(churned.lines().count() > 1, "{churned}");
    faro.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), faro.child.wait())
        .await
        .expect("faro sim ends on SIGTERM")
        .unwrap();
    assert!(status.success());
}
