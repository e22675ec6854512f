//! `faro run --config`: the events file, readiness, metrics, shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Faro, Kubectl, TempDir, records, shorts, sim};

/// `faro run` on `config` against `sim`, writing under `dir/out`, metrics on a free port.
pub fn spawn_run(sim: &faro_sim::Sim, config: &std::path::Path, dir: &TempDir) -> Faro {
    spawn_run_with(sim, config, dir, &[])
}

/// [`spawn_run`] with more arguments.
pub fn spawn_run_with(
    sim: &faro_sim::Sim,
    config: &std::path::Path,
    dir: &TempDir,
    extra: &[&str],
) -> Faro {
    spawn_run_to(sim, config, dir, extra, None)
}

/// [`spawn_run_with`], its stderr written to `stderr` when given.
pub fn spawn_run_to(
    sim: &faro_sim::Sim,
    config: &std::path::Path,
    dir: &TempDir,
    extra: &[&str],
    stderr: Option<&std::path::Path>,
) -> Faro {
    let out = dir.path().join("out");
    let mut args = vec![
        "run",
        "--config",
        config.to_str().unwrap(),
        "--kubeconfig",
        sim.kubeconfig().to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Faro::spawn_to(&args, stderr)
}

/// Waits (up to 20 s) until the distinct `TYPE gvr ns/name` lines of the
/// events file that `keep` keeps are exactly `expected`.
async fn wait_for_distinct(path: &std::path::Path, expected: &[&str], keep: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut now = shorts(&records(path));
        now.retain(|s| keep(s));
        now.dedup();
        if now == expected || tokio::time::Instant::now() > deadline {
            assert_eq!(now, expected, "the distinct events written");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A GET over a fresh connection: (status, body).
pub async fn get(url: &str) -> (u16, String) {
    let (status, body) = crate::monitor::get_bytes(url).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Sums the samples of `name` (any labels) in Prometheus text, checking every line parses.
fn sum(text: &str, name: &str, labels: &str) -> f64 {
    let mut total = 0.0;
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let metric = series.split('{').next().unwrap();
        assert!(
            metric
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if metric == name && series.contains(labels) {
            total += value;
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_run_writes_exactly_the_watched_events() {
    let sim = sim().await;
    let Some(kubectl) = Kubectl::new(&sim) else {
        return;
    };
    let dir = TempDir::new();
    let config = dir.file(
        "faro.yaml",
        r#"
namespaces:
  - name_selector: faro-test-1
    resources:
      v1/configmaps:
        name_selector: test-config-1
        label_selector: app=faro-test
      apps/v1/deployments:
        name_pattern: "^web-"
resources:
  - gvr: v1/secrets
    namespace_patterns: ["^team-"]
"#,
    );
    kubectl.apply(
        r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: faro-test-1}}
- {apiVersion: v1, kind: Namespace, metadata: {name: team-a}}
- {apiVersion: v1, kind: Namespace, metadata: {name: other}}
"#,
    );
    let mut faro = spawn_run(&sim, &config, &dir);
    let json_file = faro.line("FARO_JSON_FILE:").await;
    let log_file = faro.line("FARO_LOG_FILE:").await;
    // One watch each for the namespace's ConfigMaps and Deployments, one
    // cluster-wide watch for Secrets filtered by namespace pattern.
    assert_eq!(
        faro.line("FARO_READY:").await,
        "3 informers synced, 0 parked"
    );
    kubectl.apply(
        r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: test-config-1, namespace: faro-test-1, labels: {app: faro-test}}, data: {k: v}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: test-config-1, namespace: other, labels: {app: faro-test}}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: unrelated, namespace: faro-test-1, labels: {app: faro-test}}}
- {apiVersion: v1, kind: Secret, metadata: {name: s1, namespace: team-a}, data: {p: c2VjcmV0}}
- {apiVersion: v1, kind: Secret, metadata: {name: s2, namespace: other}}
- {apiVersion: apps/v1, kind: Deployment, metadata: {name: web-1, namespace: faro-test-1}, spec: {selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: nginx}]}}}}
- {apiVersion: apps/v1, kind: Deployment, metadata: {name: api-1, namespace: faro-test-1}, spec: {selector: {matchLabels: {app: api}}, template: {metadata: {labels: {app: api}}, spec: {containers: [{name: c, image: nginx}]}}}}
"#,
    );
    kubectl.run(
        &[
            "label",
            "configmap",
            "test-config-1",
            "-n",
            "faro-test-1",
            "changed=yes",
        ],
        None,
    );
    kubectl.run(
        &["delete", "deployment", "web-1", "-n", "faro-test-1"],
        None,
    );
    let expected = [
        "ADDED apps/v1/deployments faro-test-1/web-1",
        "ADDED v1/configmaps faro-test-1/test-config-1",
        "ADDED v1/secrets team-a/s1",
        "DELETED apps/v1/deployments faro-test-1/web-1",
        "UPDATED v1/configmaps faro-test-1/test-config-1",
    ];
    let path = std::path::PathBuf::from(&json_file);
    // The deployment controller may write web-1's status before it goes.
    wait_for_distinct(&path, &expected, |s| {
        !s.starts_with("UPDATED apps/v1/deployments")
    })
    .await;
    let (code, summary) = faro.stop().await;
    assert_eq!(code, 0);
    let written = records(&path);
    let count = |t: &str| written.iter().filter(|r| r["eventType"] == t).count() as u64;
    assert_eq!(
        (
            summary["added"].as_u64(),
            summary["updated"].as_u64(),
            summary["deleted"].as_u64()
        ),
        (
            Some(count("ADDED")),
            Some(count("UPDATED")),
            Some(count("DELETED"))
        ),
        "the summary matches the file: {summary}"
    );
    assert!(
        written
            .iter()
            .all(|r| r["resourceVersion"].as_str().is_some_and(|v| !v.is_empty()))
    );
    let text_log = std::fs::read_to_string(&log_file).unwrap();
    assert_eq!(
        text_log.lines().count(),
        written.len(),
        "one text line per event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_comes_after_sync_with_readyz_and_metrics_agreeing() {
    let sim = sim().await;
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bulk"}}))
        .unwrap();
    for i in 0..2_000 {
        sim.create(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "namespace": "bulk", "labels": {"bulk": "yes"}},
            "data": {"k": "v"}
        }))
        .unwrap();
    }
    // Every request takes a while, so that the window before readiness is wide.
    sim.set_latency(Duration::from_millis(400));
    let dir = TempDir::new();
    let config = dir.file(
        "faro.yaml",
        "resources:\n  - gvr: v1/configmaps\n    namespace_names: [bulk]\n    label_selector: bulk=yes\n",
    );
    let mut faro = spawn_run(&sim, &config, &dir);
    let metrics = faro.line("FARO_METRICS_URL:").await;
    let base = metrics.trim_end_matches("/metrics").to_owned();
    let json_file = faro.line("FARO_JSON_FILE:").await;
    assert_eq!(
        get(&format!("{base}/readyz")).await.0,
        503,
        "not ready before sync"
    );
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    faro.line("FARO_READY:").await;
    // Everything listed is in the file the moment FARO_READY is printed.
    let written = records(std::path::Path::new(&json_file));
    assert_eq!(written.len(), 2_000);
    assert!(written.iter().all(|r| r["eventType"] == "ADDED"));
    assert_eq!(get(&format!("{base}/readyz")).await.0, 200);
    let (status, text) = get(&metrics).await;
    assert_eq!(status, 200);
    assert_eq!(
        sum(&text, "faro_watch_events_total", "type=\"ADDED\""),
        2_000.0
    );
    assert_eq!(
        sum(&text, "faro_worker_events_total", "worker=\"json-lines\""),
        2_000.0
    );
    assert!(sum(&text, "process_resident_memory_bytes", "") > 0.0);
    assert!(text.contains("faro_build_info{version=\""));
    assert!(
        text.contains("faro_worker_queue_depth{worker=\"json-lines\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("faro_sink_healthy{sink=\"json-lines\"} 1")
            && text.contains("faro_sink_write_failures_total{sink=\"json-lines\"} 0"),
        "{text}"
    );
    let (code, summary) = faro.stop().await;
    assert_eq!(code, 0);
    assert_eq!(summary["added"], 2_000);
    let shutdown = summary["shutdownSeconds"]
        .as_f64()
        .expect("shutdownSeconds");
    assert!((0.0..10.0).contains(&shutdown), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_a_burst_keeps_every_delivered_event_and_whole_lines() {
    let sim = Arc::new(sim().await);
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "burst"}}))
        .unwrap();
    let dir = TempDir::new();
    let config = dir.file(
        "faro.yaml",
        "resources:\n  - gvr: v1/configmaps\n    namespace_names: [burst]\n    name_pattern: ^b-\n",
    );
    let mut faro = spawn_run(&sim, &config, &dir);
    let json_file = faro.line("FARO_JSON_FILE:").await;
    faro.line("FARO_READY:").await;
    let created = Arc::new(AtomicU64::new(0));
    let rvs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let burst = {
        let (sim, created, rvs) = (sim.clone(), created.clone(), rvs.clone());
        std::thread::spawn(move || {
            for i in 0..5_000 {
                let o = sim
                    .create(json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("b-{i}"), "namespace": "burst"}}))
                    .unwrap();
                let rv: u64 = o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                rvs.lock().unwrap().push((format!("b-{i}"), rv));
                created.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_micros(800));
            }
        })
    };
    while created.load(Ordering::SeqCst) < 2_500 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // What the server has sent on Faro's watch when the signal goes out.
    let sent: u64 = sim
        .watches()
        .iter()
        .find(|w| w.path == "/api/v1/namespaces/burst/configmaps")
        .expect("faro's watch")
        .last_resource_version
        .parse()
        .unwrap();
    let (code, summary) = faro.stop().await;
    burst.join().unwrap();
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&json_file).unwrap();
    assert!(text.ends_with('\n'), "the file ends with a complete line");
    let written: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: std::collections::HashSet<&str> = written
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let missing: Vec<String> = rvs
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, rv)| *rv <= sent && !names.contains(name.as_str()))
        .map(|(name, _)| name.clone())
        .collect();
    assert!(
        missing.is_empty(),
        "sent before the signal but not written: {missing:?}"
    );
    assert!(
        written.len() < 5_000,
        "the signal came in the middle of the burst"
    );
    assert_eq!(summary["added"].as_u64(), Some(written.len() as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_other_configuration_shape_writes_exactly_its_events() {
    let sim = sim().await;
    let Some(kubectl) = Kubectl::new(&sim) else {
        return;
    };
    let dir = TempDir::new();
    // One GVR per shape, so that each shape's events can be told apart.
    let config = dir.file(
        "faro.yaml",
        r#"
namespaces:
  - name_selector: shop
    resources:
      apps/v1/deployments:
        name_pattern: "^a-"
resources:
  - gvr: apps/v1/deployments
    namespace_names: [shop]
    name_pattern: "^b-"
  - gvr: v1/configmaps
    scope: Namespaced
    namespace_names: [shop, ops]
    name_selector: settings
  - gvr: v1/services
    label_selector: "tier notin (frontend), env in (prod, staging)"
  - gvr: v1/secrets
    namespace_names: [shop]
    label_pattern: "app=^web-.*$"
  - gvr: v1/pods
    name_pattern: "^job-"
  - gvr: v1/namespaces
    label_selector: team
"#,
    );
    let mut faro = spawn_run(&sim, &config, &dir);
    let json_file = faro.line("FARO_JSON_FILE:").await;
    // deployments (merged: one watch), configmaps ×2, services, secrets, pods, namespaces.
    assert_eq!(
        faro.line("FARO_READY:").await,
        "7 informers synced, 0 parked"
    );
    let svc = |name: &str, ns: &str, labels: &str| {
        format!(
            "- {{apiVersion: v1, kind: Service, metadata: {{name: {name}, namespace: {ns}, labels: {{{labels}}}}}, spec: {{ports: [{{port: 80}}]}}}}\n"
        )
    };
    let mut items = String::from(
        r#"apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop, labels: {team: a}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: ops}}
- {apiVersion: v1, kind: Namespace, metadata: {name: dev}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: settings, namespace: shop}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: settings, namespace: ops}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: settings, namespace: dev}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: other, namespace: shop}}
- {apiVersion: v1, kind: Secret, metadata: {name: web-secret, namespace: shop, labels: {app: web-1}}}
- {apiVersion: v1, kind: Secret, metadata: {name: api-secret, namespace: shop, labels: {app: api-1}}}
- {apiVersion: v1, kind: Pod, metadata: {name: job-1, namespace: dev}, spec: {containers: [{name: c, image: busybox}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: web-1, namespace: dev}, spec: {containers: [{name: c, image: busybox}]}}
"#,
    );
    items.push_str(&svc("prod-api", "shop", "env: prod, tier: backend"));
    items.push_str(&svc("prod-web", "shop", "env: prod, tier: frontend"));
    items.push_str(&svc("dev-api", "dev", "env: dev"));
    for name in ["a-1", "b-1", "c-1"] {
        items.push_str(&format!(
            "- {{apiVersion: apps/v1, kind: Deployment, metadata: {{name: {name}, namespace: shop}}, spec: {{selector: {{matchLabels: {{app: x}}}}, template: {{metadata: {{labels: {{app: x}}}}, spec: {{containers: [{{name: c, image: nginx}}]}}}}}}}}\n"
        ));
    }
    kubectl.apply(&items);
    let expected = [
        "ADDED apps/v1/deployments shop/a-1",
        "ADDED apps/v1/deployments shop/b-1",
        "ADDED v1/configmaps ops/settings",
        "ADDED v1/configmaps shop/settings",
        "ADDED v1/namespaces shop",
        "ADDED v1/pods dev/job-1",
        "ADDED v1/secrets shop/web-secret",
        "ADDED v1/services shop/prod-api",
    ];
    let path = std::path::PathBuf::from(&json_file);
    // Pods and Deployments get status updates from the cluster; compare the
    // distinct ADDED and DELETED lines, and check below there is nothing else.
    wait_for_distinct(&path, &expected, |s| !s.starts_with("UPDATED")).await;
    let (code, _) = faro.stop().await;
    assert_eq!(code, 0);
    let watched: std::collections::HashSet<String> = expected
        .iter()
        .map(|e| e.split_once(' ').unwrap().1.to_owned())
        .collect();
    for r in records(&path) {
        let ns = r["namespace"]
            .as_str()
            .map(|n| format!("{n}/"))
            .unwrap_or_default();
        let object = format!(
            "{} {ns}{}",
            r["gvr"].as_str().unwrap(),
            r["name"].as_str().unwrap()
        );
        assert!(
            watched.contains(&object),
            "an unwatched object was written: {r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_during_shutdown_exits_at_once_with_130() {
    let sim = Arc::new(sim().await);
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "busy"}}))
        .unwrap();
    let dir = TempDir::new();
    let config = dir.file(
        "faro.yaml",
        "resources:\n  - gvr: v1/configmaps\n    namespace_names: [busy]\n",
    );
    let mut faro = spawn_run(&sim, &config, &dir);
    faro.line("FARO_READY:").await;
    // A steady stream of changes keeps the stopping watch draining for its
    // full second, which is the window for the second signal.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (sim, done) = (sim.clone(), done.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !done.load(Ordering::SeqCst) {
                sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("c-{i}"), "namespace": "busy"}}))
                    .unwrap();
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    faro.signal("TERM");
    tokio::time::sleep(Duration::from_millis(150)).await;
    faro.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), faro.child.wait())
        .await
        .expect("faro exits")
        .unwrap();
    done.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert_eq!(status.code(), Some(130));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_redirected_to_a_file_has_no_escape_sequences() {
    let sim = sim().await;
    let dir = TempDir::new();
    let config = dir.file("faro.yaml", "resources:\n  - gvr: v1/configmaps\n");
    let log = dir.path().join("stderr.log");
    let mut child = tokio::process::Command::new(crate::FARO)
        .args(["run", "--config", config.to_str().unwrap(), "--kubeconfig"])
        .arg(sim.kubeconfig())
        .arg("--output-dir")
        .arg(dir.path().join("out"))
        .args(["--no-metrics", "--log-level", "info"])
        .env_remove("KUBECONFIG")
        .env_remove("FARO_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Started (its events file exists), then stopped: "signal received" is logged at INFO.
    let logs = dir.path().join("out/logs");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(&logs).map_or(0, |d| d.count()) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "faro run did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-s", "TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("signal received"), "{text}");
    assert!(!text.contains('\x1b'), "escape sequences in {text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_output_disk_fails_healthz_and_loses_no_line() {
    let dir = TempDir::new();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&out)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!(
            "SKIPPED: mounting a small tmpfs needs root; this test fills the output directory's filesystem"
        );
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(out.clone());
    let sim = sim().await;
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "full"}}))
        .unwrap();
    let config = dir.file(
        "faro.yaml",
        "resources:\n  - gvr: v1/configmaps\n    namespace_names: [full]\n    name_pattern: \"^cm-\"\n",
    );
    let mut faro = spawn_run(&sim, &config, &dir);
    let base = faro
        .line("FARO_METRICS_URL:")
        .await
        .trim_end_matches("/metrics")
        .to_owned();
    let json_file = std::path::PathBuf::from(faro.line("FARO_JSON_FILE:").await);
    let log_file = faro.line("FARO_LOG_FILE:").await;
    faro.line("FARO_READY:").await;
    // Take the space the events need.
    let filler = out.join("filler");
    std::fs::write(&filler, vec![b'x'; 1000 * 1024]).unwrap_or(());
    for i in 0..2_000 {
        sim.create(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "namespace": "full"},
            "data": {"k": "v".repeat(200)}
        }))
        .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = get(&format!("{base}/healthz")).await;
        if code == 503 {
            assert_eq!(body, "sink json-lines: writing the events file fails\n");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/healthz never failed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A reader may catch the tail of a write in progress, never a broken line before it.
    let text = std::fs::read_to_string(&json_file).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let settled = if text.ends_with('\n') {
        lines.len()
    } else {
        lines.len().saturating_sub(1)
    };
    assert!(
        lines[..settled]
            .iter()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "whole lines only while the disk is full"
    );
    // Space returns: writing resumes and /healthz recovers.
    std::fs::remove_file(&filler).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while get(&format!("{base}/healthz")).await.0 != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "/healthz never recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, summary) = faro.stop().await;
    assert_eq!(code, 0);
    let written = records(&json_file);
    let mut names: Vec<String> = written
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        2_000,
        "every event written after space returned"
    );
    assert_eq!(written.len(), 2_000, "and none twice");
    assert_eq!(
        summary["added"], 2_000,
        "the summary is the file: {summary}"
    );
    let text_log = std::fs::read_to_string(&log_file).unwrap();
    assert!(text_log.ends_with('\n'));
    assert_eq!(
        text_log.lines().count(),
        2_000,
        "the text log lost nothing either"
    );
    assert!(
        text_log
            .lines()
            .all(|l| l.contains(" ADDED ") && l.contains(" rv="))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_loses_lines_not_the_run() {
    use tokio::io::AsyncBufReadExt;
    let sim = sim().await;
    let dir = TempDir::new();
    let config = dir.file("faro.yaml", "resources: [{gvr: v1/configmaps}]\n");
    let out = dir.path().join("out");
    let mut child = tokio::process::Command::new(crate::FARO)
        .args(["run", "--config", config.to_str().unwrap(), "--no-metrics"])
        .arg("--kubeconfig")
        .arg(sim.kubeconfig())
        .arg("--output-dir")
        .arg(&out)
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Read one line, then close the pipe, as `faro run | head -1` does.
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let events = first.strip_prefix("FARO_JSON_FILE: ").unwrap().to_owned();
    drop(lines);
    let events = std::path::Path::new(&events);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(events).is_ok_and(|t| t.contains("kube-root-ca.crt")) {
        assert!(tokio::time::Instant::now() < deadline, "no events written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim.create(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "after-the-pipe", "namespace": "default"}}))
        .unwrap();
    while !std::fs::read_to_string(events).is_ok_and(|t| t.contains("after-the-pipe")) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run stopped writing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-s", "TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("faro exits")
        .unwrap();
    assert_eq!(status.code(), Some(0), "no panic on the closed stdout");
}
