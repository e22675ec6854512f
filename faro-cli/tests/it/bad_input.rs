//! Bad input: each case gives its exit code and exactly one line on stderr.

use std::process::Stdio;

use faro_sim::ErrorFault;

use crate::{FARO, TempDir, sim};

/// Runs faro to its end; returns (exit code, stderr).
pub async fn fails<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String) {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new(FARO)
            .args(args)
            .env_remove("KUBECONFIG")
            .env_remove("FARO_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output(),
    )
    .await
    .expect("faro ends")
    .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line on stderr, got {stderr:?}"
    );
    (out.status.code().unwrap(), stderr.trim_end().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_configuration_file_is_exit_2() {
    let (code, err) = fails(&["run", "--config", "/nonexistent/faro.yaml"]).await;
    assert_eq!(code, 2);
    assert!(
        err.starts_with("faro: ") && err.contains("/nonexistent/faro.yaml"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_is_exit_2_naming_it() {
    let dir = TempDir::new();
    let config = dir.file("faro.yaml", "colour: blue\n");
    // The Go Faro's spelling of the flag still works.
    let (code, err) = fails(&["-config", config.to_str().unwrap()]).await;
    assert_eq!(code, 2);
    assert!(
        err.starts_with("faro: colour: unknown key; expected one of"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_are_exit_2() {
    let (code, err) = fails(&["watch", "v1/configmaps", "-l", "app in (a,"]).await;
    assert_eq!(code, 2);
    assert!(
        err.starts_with("faro: --selector \"app in (a,\": "),
        "{err}"
    );
}

/// `run --config F --kubeconfig K --no-metrics --output-dir D`.
fn run_args(config: &std::path::Path, kubeconfig: &std::path::Path, dir: &TempDir) -> Vec<String> {
    [
        "run".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--kubeconfig".as_ref(),
        kubeconfig.as_os_str(),
        "--no-metrics".as_ref(),
        "--output-dir".as_ref(),
        dir.path().as_os_str(),
    ]
    .iter()
    .map(|a| a.to_string_lossy().into_owned())
    .collect()
}

fn kubeconfig_for(dir: &TempDir, server: &str) -> String {
    dir.file(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: default\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .to_str()
    .unwrap()
    .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_exit_1() {
    let dir = TempDir::new();
    let config = dir.file("faro.yaml", "resources:\n  - gvr: v1/configmaps\n");
    let kubeconfig = kubeconfig_for(&dir, "http://127.0.0.1:1");
    let (code, err) = fails(&run_args(&config, std::path::Path::new(&kubeconfig), &dir)).await;
    assert_eq!(code, 1);
    assert!(
        err.starts_with("faro: cannot reach the API server"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_gvr_is_exit_2_with_a_suggestion() {
    let sim = sim().await;
    let dir = TempDir::new();
    let config = dir.file("faro.yaml", "resources:\n  - gvr: v1/configmap\n");
    let (code, err) = fails(&run_args(&config, sim.kubeconfig(), &dir)).await;
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "faro: v1/configmap: the server has no such resource; did you mean v1/configmaps?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_list_is_exit_1_naming_gvr_and_namespace() {
    let sim = sim().await;
    sim.inject_errors(ErrorFault {
        count: 1_000,
        status: 403,
        verbs: vec!["list".into()],
        ..ErrorFault::default()
    });
    let dir = TempDir::new();
    let config = dir.file(
        "faro.yaml",
        "resources:\n  - gvr: v1/configmaps\n    namespace_names: [team-a]\n",
    );
    let (code, err) = fails(&run_args(&config, sim.kubeconfig(), &dir)).await;
    assert_eq!(code, 1);
    assert!(
        err.starts_with("faro: forbidden: cannot list v1/configmaps in namespace team-a"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sim_flags_are_exit_2() {
    let (code, err) = fails(&["sim", "--time-scale", "0"]).await;
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "faro: --time-scale: 0 is not a positive number; expected e.g. 1 or 60"
    );
    let (code, err) = fails(&["sim", "--churn=-5"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("--churn"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_monitor_and_push_settings_are_exit_2_naming_them() {
    let dir = TempDir::new();
    for (yaml, start) in [
        (
            "metrics:\n  push:\n    url: ftp://127.0.0.1:9091\n",
            "faro: metrics.push.url: \"ftp://127.0.0.1:9091\" is not an http(s) URL",
        ),
        (
            "metrics:\n  push:\n    url: http://127.0.0.1:9091\n    bearer_token_file: /no/such/token\n",
            "faro: metrics.push.bearer_token_file: \"/no/such/token\" does not exist",
        ),
        (
            "monitor:\n  max_queue_depth: -3\n",
            "faro: monitor.max_queue_depth: -3 is not a queue depth",
        ),
        (
            "monitor:\n  thresholds: {}\n",
            "faro: monitor.thresholds: unknown key",
        ),
    ] {
        let config = dir.file("faro.yaml", yaml);
        let (code, err) = fails(&["run", "--config", config.to_str().unwrap()]).await;
        assert_eq!(code, 2, "{yaml}");
        assert!(err.starts_with(start), "{yaml}\n{err}");
    }
}
