//! Several clusters in one `faro run` and one `faro watch`: three faro-sims
//! as clusters, one down and one slow.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::run::{get, spawn_run_with};
use crate::{FARO, TempDir, records, sim};

fn seed(sim: &faro_sim::Sim) {
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        .unwrap();
    sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop"}}))
        .unwrap();
}

/// `cluster TYPE ns/name` of each record.
fn by_cluster(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            format!(
                "{} {} {}/{}",
                r["cluster"].as_str().unwrap_or("-"),
                r["eventType"].as_str().unwrap_or(""),
                r["namespace"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_three_clusters_delivers_from_the_healthy_one_while_the_others_lag() {
    let (healthy, slow, down) = (sim().await, sim().await, sim().await);
    for s in [&healthy, &slow, &down] {
        seed(s);
    }
    slow.set_latency(Duration::from_secs(2));
    down.restart(Duration::from_secs(6));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dir = TempDir::new();
    let config = dir.file(
        "faro.yaml",
        &format!(
            "resources:\n  - gvr: v1/configmaps\n    namespace_names: [shop]\n    name_pattern: \"^(settings|after)$\"\nclusters:\n  - name: healthy\n    kubeconfig: {}\n  - name: slow\n    kubeconfig: {}\n  - name: down\n    kubeconfig: {}\n",
            healthy.kubeconfig().display(),
            slow.kubeconfig().display(),
            down.kubeconfig().display()
        ),
    );
    let mut faro = spawn_run_with(&healthy, &config, &dir, &[]);
    let metrics = faro.line("FARO_METRICS_URL:").await;
    let json_file = std::path::PathBuf::from(faro.line("FARO_JSON_FILE:").await);
    let ready = faro.line("FARO_READY:").await;
    assert!(ready.starts_with("3 clusters, 1 ready"), "{ready}");
    assert!(ready.contains("1 unreachable (down: "), "{ready}");
    faro.line("FARO_CLUSTER: down unreachable").await;
    let base = metrics.trim_end_matches("/metrics").to_owned();
    let (code, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("cluster healthy: ready"), "{body}");
    assert!(body.contains("cluster down: unreachable ("), "{body}");

    // The others join when they can.
    faro.line("FARO_CLUSTER: down ready").await;
    faro.line("FARO_CLUSTER: slow ready").await;
    down.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "after", "namespace": "shop"}}))
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let seen = by_cluster(&records(&json_file));
        let want = [
            "healthy ADDED shop/settings",
            "slow ADDED shop/settings",
            "down ADDED shop/settings",
            "down ADDED shop/after",
        ];
        if want.iter().all(|w| seen.iter().any(|s| s == w)) {
            assert!(seen.iter().all(|s| !s.starts_with("- ")), "{seen:?}");
            assert_eq!(seen.len(), 4, "{seen:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, text) = get(&metrics).await;
    for name in ["healthy", "slow", "down"] {
        assert!(
            text.contains(&format!("faro_cluster_up{{cluster=\"{name}\"}} 1")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("faro_watch_events_total{")
                    && l.contains(&format!("cluster=\"{name}\""))),
            "{text}"
        );
    }
    let (code, summary) = faro.stop().await;
    assert_eq!(code, 0);
    assert_eq!(summary["added"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_all_contexts_prints_every_cluster_s_events_with_its_name() {
    let (a, b) = (sim().await, sim().await);
    for s in [&a, &b] {
        seed(s);
    }
    let dir = TempDir::new();
    let kubeconfig = dir.file(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n    server: {}\n- name: b\n  cluster:\n    server: {}\ncontexts:\n- name: kind-a\n  context:\n    cluster: a\n    user: u\n    namespace: shop\n- name: Kind_B\n  context:\n    cluster: b\n    user: u\n    namespace: shop\ncurrent-context: kind-a\nusers:\n- name: u\n  user: {{}}\n",
            a.url(),
            b.url()
        ),
    );
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(FARO)
            .args(["watch", "v1/configmaps", "--name-pattern", "^settings$"])
            .args(["--all-contexts", "--auto-shutdown", "4"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .output(),
    )
    .await
    .expect("faro watch ends")
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut seen = by_cluster(&lines);
    seen.sort();
    assert_eq!(
        seen,
        ["kind-a ADDED shop/settings", "kind-b ADDED shop/settings"]
    );

    // Both flags at once, and a context that does not exist, are refused.
    for args in [
        vec!["--all-contexts", "--context", "kind-a"],
        vec!["--context", "kind-a", "--context", "nope"],
    ] {
        let out = std::process::Command::new(FARO)
            .args(["watch", "v1/configmaps"])
            .args(&args)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clusters_block_with_a_missing_context_is_exit_2_naming_the_cluster() {
    let a = sim().await;
    let dir = TempDir::new();
    let config = dir.file(
        "faro.yaml",
        &format!(
            "resources:\n  - gvr: v1/configmaps\nclusters:\n  - name: a\n    kubeconfig: {k}\n  - name: b\n    kubeconfig: {k}\n    context: nope\n",
            k = a.kubeconfig().display()
        ),
    );
    let out = std::process::Command::new(FARO)
        .args(["run", "--no-metrics", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("clusters[1] (b): "), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
