//! `faro logs` and the container-logs file of `faro run`, against faro-sim.

use std::process::Stdio;
use std::time::Duration;

use faro_sim::{ErrorFault, Sim, SimConfig};
use serde_json::{Value, json};

use crate::bad_input::fails;
use crate::run::{get, spawn_run};
use crate::{FARO, TempDir, records};

async fn living() -> Sim {
    Sim::start(SimConfig {
        time_scale: 10.0,
        bookmark_interval: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await
    .expect("faro-sim starts")
}

fn pod(ns: &str, name: &str, rate: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": ns,
                      "annotations": { "faro-sim.io/log-rate": rate } },
        "spec": { "containers": [{ "name": "app", "image": "app:1" }] },
    })
}

/// Creates pods and waits until each has written `lines` lines.
async fn pods_with_lines(sim: &Sim, ns: &str, names: &[&str], rate: &str, lines: usize) {
    for name in names {
        sim.create(pod(ns, name, rate)).unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !names
        .iter()
        .all(|n| sim.log(ns, n, "app").is_some_and(|l| l.len() >= lines))
    {
        assert!(tokio::time::Instant::now() < deadline, "pods write lines");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn kubeconfig(sim: &Sim) -> String {
    sim.kubeconfig().to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_it_prints_json_records_and_on_a_terminal_coloured_text() {
    let sim = living().await;
    // The pods write their start line and a few more, then the test reads
    // what is there (`--no-follow`): exactly the kubelet's lines.
    pods_with_lines(&sim, "default", &["web-1", "web-2"], "0.001", 1).await;
    sim.append_log(
        "default",
        "web-1",
        "app",
        vec!["GET /a 200".into(), "GET /b 500".into()],
    )
    .unwrap();
    let kc = kubeconfig(&sim);
    let out = tokio::process::Command::new(FARO)
        .args(["logs", "web-", "--kubeconfig", &kc, "--no-follow"])
        .stderr(Stdio::inherit())
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for name in ["web-1", "web-2"] {
        let mine: Vec<&str> = records
            .iter()
            .filter(|r| r["pod"] == name)
            .map(|r| r["line"].as_str().unwrap())
            .collect();
        assert_eq!(mine, sim.log("default", name, "app").unwrap(), "{name}");
    }
    let r = &records[0];
    assert_eq!(
        (
            &r["kind"],
            &r["namespace"],
            &r["container"],
            &r["containerType"],
            &r["restartCount"]
        ),
        (
            &json!("log"),
            &json!("default"),
            &json!("app"),
            &json!("regular"),
            &json!(0)
        )
    );
    assert!(
        r["timestamp"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .is_ok()
    );
    assert!(r["podUid"].is_string() && r["observed"].is_string());

    // On a terminal: `namespace/pod container line`, the prefix coloured.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED (terminal half): `script` is not on the PATH to give faro a terminal");
        return;
    }
    let command = format!("{FARO} logs web-1 --kubeconfig {kc} --no-follow");
    let out = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{text}");
    let colour = text
        .lines()
        .find(|l| l.ends_with(" GET /b 500"))
        .unwrap_or_else(|| panic!("no text line in {text:?}"));
    assert!(colour.starts_with("\u{1b}["), "{colour:?}");
    assert!(
        colour.contains("default/web-1 app\u{1b}[0m GET /b 500"),
        "{colour:?}"
    );
    assert!(!text.contains("\"kind\":\"log\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_ends_it_at_once() {
    let sim = living().await;
    pods_with_lines(&sim, "default", &["busy"], "200", 10).await;
    let command = format!(
        "{FARO} logs -A --kubeconfig {} | head -n 3",
        kubeconfig(&sim)
    );
    let started = std::time::Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new("sh")
            .args(["-c", &command])
            .output(),
    )
    .await
    .expect("faro logs | head -n 3 ends")
    .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_and_a_bad_logs_block_are_exit_2_on_one_line() {
    let (code, err) = fails(&["logs", "--max-streams", "0"]).await;
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "faro: --max-streams: 0 is not a number of streams; expected 1 or more"
        )
    );
    let (code, err) = fails(&["logs", "(["]).await;
    assert_eq!(code, 2);
    assert!(err.starts_with("faro: POD_REGEX \"([\": "), "{err}");
    let (code, err) = fails(&["logs", "--since", "yesterday"]).await;
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "faro: --since: \"yesterday\" is not a start point; expected start, now or a duration such as 10m"
        )
    );
    let dir = TempDir::new();
    for (yaml, expected) in [
        (
            "logs: { max_streams: 0 }\n",
            "faro: logs.max_streams: 0 is not a number of streams; expected 1 or more",
        ),
        (
            "logs: { exclude_container_pattern: \"([\" }\n",
            "faro: logs.exclude_container_pattern: \"([\" is not a valid regular expression",
        ),
        (
            "logs: { streams: 5 }\n",
            "faro: logs.streams: unknown key; expected one of namespace_names",
        ),
    ] {
        let config = dir.file("faro.yaml", yaml);
        let (code, err) = fails(&["run", "--config", config.to_str().unwrap()]).await;
        assert_eq!(code, 2, "{yaml}");
        assert!(err.starts_with(expected), "{yaml}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_writes_the_container_logs_file_beside_an_unchanged_events_file() {
    let sim = living().await;
    sim.create(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "shop" } }))
        .unwrap();
    pods_with_lines(&sim, "shop", &["api-1"], "0.001", 1).await;
    let dir = TempDir::new();
    let config = dir.file(
        "faro.yaml",
        "resources:\n  - gvr: v1/configmaps\n    namespace_names: [shop]\nlogs:\n  namespace_names: [shop]\n",
    );
    let mut faro = spawn_run(&sim, &config, &dir);
    let events = faro.line("FARO_JSON_FILE:").await;
    let logs = faro.line("FARO_CONTAINER_LOGS_FILE:").await;
    assert!(logs.contains("/logs/container-logs-"), "{logs}");
    faro.line("FARO_READY:").await;
    sim.append_log("shop", "api-1", "app", vec!["order 1 placed".into()])
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&logs)
        .unwrap()
        .contains("order 1 placed")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the line reaches the file"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, summary) = faro.stop().await;
    assert_eq!(code, 0);
    let written = records(std::path::Path::new(&logs));
    let texts: Vec<&str> = written
        .iter()
        .map(|r| r["line"].as_str().unwrap())
        .collect();
    assert_eq!(texts, sim.log("shop", "api-1", "app").unwrap());
    assert_eq!(summary["logLines"], json!(texts.len()));
    assert!(
        records(std::path::Path::new(&events))
            .iter()
            .all(|r| r["eventType"].is_string() && r.get("kind").is_none()),
        "the events file has resource events only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_pods_log_is_one_warning_and_a_metric() {
    let sim = living().await;
    sim.create(
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "locked" } }),
    )
    .unwrap();
    pods_with_lines(&sim, "locked", &["a", "b", "c"], "0.001", 1).await;
    sim.inject_errors(ErrorFault {
        count: 1_000_000,
        status: 403,
        path_contains: Some("/log".into()),
        ..ErrorFault::default()
    });
    let dir = TempDir::new();
    let config = dir.file("faro.yaml", "logs:\n  namespace_names: [locked]\n");
    let out = dir.path().join("out");
    let mut child = tokio::process::Command::new(FARO)
        .args(["run", "--config", config.to_str().unwrap(), "--kubeconfig"])
        .arg(sim.kubeconfig())
        .arg("--output-dir")
        .arg(&out)
        .args(["--metrics-addr", "127.0.0.1:0", "--auto-shutdown", "4"])
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut url = String::new();
    while !url.starts_with("FARO_METRICS_URL:") {
        url.clear();
        tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut url)
            .await
            .unwrap();
        assert!(!url.is_empty(), "faro ended before its metrics URL");
    }
    let url = url["FARO_METRICS_URL:".len()..].trim().to_owned();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, metrics) = get(&url).await;
    // One refused read per container, and no retry until a container changes.
    assert!(
        metrics.contains("faro_log_forbidden_total{namespace=\"locked\"} 3\n"),
        "{metrics}"
    );
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("faro stops")
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("reading container logs is forbidden"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("locked") && warnings[0].contains("pods/log"),
        "{stderr}"
    );
}
