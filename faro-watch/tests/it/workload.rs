//! Workload detection: labelled namespaces declare workloads, and every
//! namespace of a workload is watched while it exists.

use std::collections::BTreeMap;

use crate::{config, configmap, create, namespace, namespace_labelled, sim, wait_watches, watch};

const CONFIG: &str = r#"
workload:
  detection_label: example.com/workload
  workload_pattern: "^team-([a-z]+)$"
  namespace_pattern: "^([a-z]+)-(dev|prod)$"
  gvrs: [v1/configmaps]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_namespaces_are_watched_while_they_exist() {
    let sim = sim().await;
    let label = |v: &'static str| BTreeMap::from([("example.com/workload", v)]);
    // A workload declared before start, with one namespace already there.
    create(&sim, namespace_labelled("blue-dev", &label("team-blue")));
    create(&sim, namespace("blue-prod"));
    create(&sim, namespace("green-dev"));
    create(&sim, configmap("blue-prod", "before", &[]));
    let (controller, events) = watch(&sim, &config(CONFIG)).await;
    wait_watches(
        &sim,
        &[
            "/api/v1/namespaces",
            "/api/v1/namespaces/blue-dev/configmaps",
            "/api/v1/namespaces/blue-prod/configmaps",
        ],
    )
    .await;
    // Readiness waited for the workload watches' first lists too.
    assert!(
        events
            .all()
            .iter()
            .any(|s| s.key == "blue-prod/before" && s.workload.as_deref() == Some("blue")),
        "{:?}",
        events.all()
    );

    create(&sim, configmap("blue-dev", "c1", &[]));
    create(&sim, configmap("green-dev", "ignored", &[]));
    events.wait_for(&["ADDED v1/configmaps blue-dev/c1"]).await;

    // A new workload appears through a label; its namespaces are watched.
    create(&sim, namespace_labelled("green-prod", &label("team-green")));
    wait_watches(
        &sim,
        &[
            "/api/v1/namespaces",
            "/api/v1/namespaces/blue-dev/configmaps",
            "/api/v1/namespaces/blue-prod/configmaps",
            "/api/v1/namespaces/green-dev/configmaps",
            "/api/v1/namespaces/green-prod/configmaps",
        ],
    )
    .await;
    events
        .wait_for(&["ADDED v1/configmaps green-dev/ignored"])
        .await;
    let green = events
        .all()
        .into_iter()
        .find(|s| s.key == "green-dev/ignored")
        .unwrap();
    assert_eq!(green.workload.as_deref(), Some("green"));

    // A namespace going away ends its watch.
    sim.delete("v1", "Namespace", None, "blue-prod").unwrap();
    wait_watches(
        &sim,
        &[
            "/api/v1/namespaces",
            "/api/v1/namespaces/blue-dev/configmaps",
            "/api/v1/namespaces/green-dev/configmaps",
            "/api/v1/namespaces/green-prod/configmaps",
        ],
    )
    .await;
    // The workload's declaring namespace going away ends the whole workload.
    sim.delete("v1", "Namespace", None, "green-prod").unwrap();
    wait_watches(
        &sim,
        &[
            "/api/v1/namespaces",
            "/api/v1/namespaces/blue-dev/configmaps",
        ],
    )
    .await;
    assert!(
        events
            .all()
            .iter()
            .filter(|s| s.key.starts_with("blue-"))
            .all(|s| s.workload.as_deref() == Some("blue"))
    );
    controller.stop().await;
}
