//! The guide's multi-cluster monitor against two faro-sims: each cluster's
//! events counted under its name, and a third that never answers reported
//! as unreachable without holding the others back.

use std::time::Duration;

use faro_sim::{Sim, SimConfig};
use serde_json::{Value, json};

const MONITOR: &str = env!("CARGO_BIN_EXE_multi-cluster-monitor");

async fn sim_with(configmaps: usize) -> Sim {
    let sim = Sim::start(SimConfig::default())
        .await
        .expect("faro-sim starts");
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        .unwrap();
    for i in 0..configmaps {
        sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "namespace": "shop"}}))
            .unwrap();
    }
    sim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_are_counted_apart_and_a_dead_one_is_reported() {
    let (eu, us) = (sim_with(3).await, sim_with(5).await);
    // A port with nothing behind it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let dir = std::env::temp_dir().join(format!("mcm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dead_config = dir.join("dead.kubeconfig");
    std::fs::write(
        &dead_config,
        std::fs::read_to_string(eu.kubeconfig())
            .unwrap()
            .replace(&eu.url(), &dead_url),
    )
    .unwrap();
    let expected_in =
        |sim: &Sim| -> u64 { sim.list("v1", "ConfigMap", None).unwrap().len() as u64 };
    let (eu_n, us_n) = (expected_in(&eu), expected_in(&us));
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(MONITOR)
            .args(["--duration", "3", "--interval", "1"])
            .arg("--cluster")
            .arg(format!("eu={}", eu.kubeconfig().display()))
            .arg("--cluster")
            .arg(format!("us={}@faro-sim", us.kubeconfig().display()))
            .arg("--cluster")
            .arg(format!("dead={}", dead_config.display()))
            .output(),
    )
    .await
    .expect("the monitor ends")
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let c = &last["clusters"];
    assert_eq!(c["eu"]["ADDED"], eu_n, "{stdout}");
    assert_eq!(c["us"]["ADDED"], us_n, "{stdout}");
    assert_eq!(c["eu"]["state"], "ready");
    assert_eq!(c["us"]["state"], "ready");
    assert_eq!(c["dead"]["state"], "unreachable", "{stdout}");
    assert_eq!(c["dead"]["ADDED"], 0);
    // Reports came every second, not only at the end.
    assert!(stdout.lines().count() >= 3, "{stdout}");
}

#[tokio::test]
async fn a_bad_cluster_flag_is_exit_2_in_one_line() {
    for arg in ["eu", "Bad_Name=/x", "eu=/nonexistent/kubeconfig"] {
        let out = tokio::process::Command::new(MONITOR)
            .args(["--cluster", arg])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{arg}: {out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim().lines().count(), 1, "{arg}: {err}");
        assert!(err.contains("--cluster"), "{arg}: {err}");
    }
}
