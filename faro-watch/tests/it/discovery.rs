//! Discovery: unknown resources with suggestions, unwatchable resources,
//! scope contradictions — each refused at start with one line.

use faro_watch::Controller;

use crate::{client, config, sim};

async fn start_error(yaml: &str) -> String {
    let sim = sim().await;
    let controller = Controller::new(client(&sim), &config(yaml));
    let err = controller
        .start()
        .await
        .expect_err("the controller must refuse this configuration");
    let text = err.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(
        sim.watches().is_empty(),
        "nothing is started: {:?}",
        sim.watches()
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_resource_in_a_served_group_suggests_the_close_match() {
    assert_eq!(
        start_error("resources:\n  - gvr: v1/configmap\n").await,
        "v1/configmap: the server has no such resource; did you mean v1/configmaps?"
    );
    assert_eq!(
        start_error("resources:\n  - gvr: apps/v1/deploymnets\n").await,
        "apps/v1/deploymnets: the server has no such resource; did you mean apps/v1/deployments?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_in_the_wrong_group_points_to_the_right_one() {
    assert_eq!(
        start_error("resources:\n  - gvr: v1/deployments\n").await,
        "v1/deployments: the server has no such resource; did you mean apps/v1/deployments?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_without_watch_is_refused() {
    assert_eq!(
        start_error("resources:\n  - gvr: v1/bindings\n").await,
        "v1/bindings: the resource cannot be watched (verbs: create); expected one with the watch verb"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_that_contradicts_discovery_is_refused() {
    assert_eq!(
        start_error("resources:\n  - gvr: apps/v1/deployments\n    scope: Cluster\n").await,
        "apps/v1/deployments: scope is Cluster in the configuration but the server serves it Namespaced"
    );
}
