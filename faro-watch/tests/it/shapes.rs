//! Each configuration shape opens exactly the expected watches, with the
//! selectors on the request, and delivers exactly the expected events.

use faro_sim::Sim;

use crate::{config, configmap, create, namespace, object, sim, wait_watches, watch};

async fn namespaces(sim: &Sim, names: &[&str]) {
    for n in names {
        create(sim, namespace(n));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_centric_names_push_selectors_to_the_server() {
    let sim = sim().await;
    namespaces(&sim, &["faro-test-1", "other"]).await;
    let cfg = config(
        r#"
namespaces:
  - name_selector: faro-test-1
    resources:
      v1/configmaps:
        name_selector: test-config-1
        label_selector: app=faro-test
      apps/v1/deployments:
        name_pattern: "^web-"
"#,
    );
    let (controller, events) = watch(&sim, &cfg).await;
    wait_watches(
        &sim,
        &[
            "/api/v1/namespaces/faro-test-1/configmaps ?fieldSelector=metadata.name=test-config-1&labelSelector=app=faro-test",
            "/apis/apps/v1/namespaces/faro-test-1/deployments",
        ],
    )
    .await;
    create(
        &sim,
        configmap("faro-test-1", "test-config-1", &[("app", "faro-test")]),
    );
    create(
        &sim,
        configmap("faro-test-1", "test-config-1-b", &[("app", "faro-test")]),
    );
    create(&sim, configmap("faro-test-1", "other", &[("app", "nope")]));
    create(
        &sim,
        configmap("other", "test-config-1", &[("app", "faro-test")]),
    );
    let deploy = |ns, name| object("apps/v1", "Deployment", Some(ns), name, &[]);
    create(&sim, deploy("faro-test-1", "web-1"));
    create(&sim, deploy("faro-test-1", "api-1"));
    create(&sim, deploy("other", "web-2"));
    // Something after the rest, so that its arrival means the rest was seen.
    create(&sim, deploy("faro-test-1", "web-last"));
    events
        .wait_for(&["ADDED apps/v1/deployments faro-test-1/web-last"])
        .await;
    let mut seen = events.shorts();
    // The cluster's deployment controller writes their status: those updates are its, not the shape's.
    seen.retain(|s| !s.starts_with("UPDATED apps/v1/deployments"));
    seen.sort();
    assert_eq!(
        seen,
        [
            "ADDED apps/v1/deployments faro-test-1/web-1",
            "ADDED apps/v1/deployments faro-test-1/web-last",
            "ADDED v1/configmaps faro-test-1/test-config-1",
        ]
    );
    controller.stop().await;
    wait_watches(&sim, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_pattern_is_one_cluster_wide_watch_filtered_here() {
    let sim = sim().await;
    namespaces(&sim, &["team-a", "team-b", "ops"]).await;
    let cfg = config(
        r#"
namespaces:
  - name_pattern: "^team-.*"
    resources:
      v1/configmaps: {}
"#,
    );
    let (controller, events) = watch(&sim, &cfg).await;
    wait_watches(&sim, &["/api/v1/configmaps"]).await;
    create(&sim, configmap("ops", "x", &[]));
    create(&sim, configmap("team-a", "x", &[]));
    create(&sim, configmap("team-b", "y", &[]));
    events
        .wait_for(&[
            "ADDED v1/configmaps team-a/x",
            "ADDED v1/configmaps team-b/y",
        ])
        .await;
    assert!(
        events.shorts().iter().all(|s| s.contains(" team-")),
        "only team namespaces: {:?}",
        events.shorts()
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_centric_names_give_one_watch_per_namespace() {
    let sim = sim().await;
    namespaces(&sim, &["faro-a", "faro-b", "faro-c"]).await;
    let cfg = config(
        r#"
resources:
  - gvr: v1/configmaps
    scope: Namespaced
    namespace_names: [faro-b, faro-a]
    name_selector: test-config-2
"#,
    );
    let (controller, events) = watch(&sim, &cfg).await;
    wait_watches(
        &sim,
        &[
            "/api/v1/namespaces/faro-a/configmaps ?fieldSelector=metadata.name=test-config-2",
            "/api/v1/namespaces/faro-b/configmaps ?fieldSelector=metadata.name=test-config-2",
        ],
    )
    .await;
    for ns in ["faro-a", "faro-b", "faro-c"] {
        create(&sim, configmap(ns, "test-config-2", &[]));
        create(&sim, configmap(ns, "test-config-3", &[]));
    }
    events
        .wait_for(&[
            "ADDED v1/configmaps faro-a/test-config-2",
            "ADDED v1/configmaps faro-b/test-config-2",
        ])
        .await;
    // faro-c's create came last; give it time to show up if it wrongly would.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(events.count(), 2, "{:?}", events.shorts());
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_formats_for_one_gvr_share_one_watch_and_deliver_once() {
    let sim = sim().await;
    namespaces(&sim, &["faro-test"]).await;
    let cfg = config(
        r#"
namespaces:
  - name_selector: faro-test
    resources:
      v1/configmaps:
        name_pattern: "^a-"
resources:
  - gvr: v1/configmaps
    namespace_names: [faro-test]
    name_pattern: "^(a|b)-"
"#,
    );
    let (controller, events) = watch(&sim, &cfg).await;
    wait_watches(&sim, &["/api/v1/namespaces/faro-test/configmaps"]).await;
    create(&sim, configmap("faro-test", "a-1", &[]));
    create(&sim, configmap("faro-test", "b-1", &[]));
    create(&sim, configmap("faro-test", "c-1", &[]));
    create(&sim, configmap("faro-test", "b-last", &[]));
    events
        .wait_for(&["ADDED v1/configmaps faro-test/b-last"])
        .await;
    assert_eq!(
        events.shorts(),
        [
            "ADDED v1/configmaps faro-test/a-1",
            "ADDED v1/configmaps faro-test/b-1",
            "ADDED v1/configmaps faro-test/b-last",
        ]
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_based_selector_is_sent_canonically_and_label_pattern_applied_here() {
    let sim = sim().await;
    namespaces(&sim, &["web"]).await;
    let cfg = config(
        r#"
resources:
  - gvr: v1/configmaps
    namespace_names: [web]
    label_selector: "tier notin (frontend),env in (staging, production)"
    label_pattern: "app=^nginx-.*$"
"#,
    );
    let (controller, events) = watch(&sim, &cfg).await;
    wait_watches(
        &sim,
        &["/api/v1/namespaces/web/configmaps ?labelSelector=env in (production,staging),tier notin (frontend)"],
    )
    .await;
    create(
        &sim,
        configmap("web", "ok", &[("env", "staging"), ("app", "nginx-1")]),
    );
    create(
        &sim,
        configmap("web", "wrong-app", &[("env", "staging"), ("app", "apache")]),
    );
    create(
        &sim,
        configmap(
            "web",
            "frontend",
            &[("env", "staging"), ("tier", "frontend"), ("app", "nginx-2")],
        ),
    );
    create(
        &sim,
        configmap("web", "dev", &[("env", "dev"), ("app", "nginx-3")]),
    );
    create(
        &sim,
        configmap(
            "web",
            "ok-last",
            &[("env", "production"), ("app", "nginx-4")],
        ),
    );
    events.wait_for(&["ADDED v1/configmaps web/ok-last"]).await;
    assert_eq!(
        events.shorts(),
        [
            "ADDED v1/configmaps web/ok",
            "ADDED v1/configmaps web/ok-last"
        ]
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_namespace_watch_of_a_namespaced_gvr_sees_every_namespace() {
    let sim = sim().await;
    namespaces(&sim, &["n1", "n2"]).await;
    // Pre-existing objects arrive as ADDED from the initial list.
    create(&sim, configmap("n1", "before", &[]));
    let cfg = config(
        r#"
resources:
  - gvr: v1/configmaps
    name_pattern: "^app-|^before$"
"#,
    );
    let (controller, events) = watch(&sim, &cfg).await;
    wait_watches(&sim, &["/api/v1/configmaps"]).await;
    assert_eq!(events.shorts(), ["ADDED v1/configmaps n1/before"]);
    create(&sim, configmap("n1", "app-1", &[]));
    create(&sim, configmap("n2", "app-2", &[]));
    create(&sim, configmap("default", "app-3", &[]));
    events
        .wait_for(&[
            "ADDED v1/configmaps n1/app-1",
            "ADDED v1/configmaps n2/app-2",
            "ADDED v1/configmaps default/app-3",
        ])
        .await;
    // Updates and deletes are classified and carry the event's own version.
    let mut cm = sim.get("v1", "ConfigMap", Some("n2"), "app-2").unwrap();
    cm["data"] = serde_json::json!({"k": "changed"});
    let updated = sim.update(cm).unwrap();
    let deleted = sim.delete("v1", "ConfigMap", Some("n2"), "app-2").unwrap();
    events.wait_for(&["DELETED v1/configmaps n2/app-2"]).await;
    let all = events.all();
    let of_app2: Vec<_> = all.iter().filter(|s| s.key == "n2/app-2").collect();
    assert_eq!(
        of_app2.iter().map(|s| s.event_type).collect::<Vec<_>>(),
        ["ADDED", "UPDATED", "DELETED"]
    );
    assert_eq!(
        of_app2[1].rv,
        updated["metadata"]["resourceVersion"].as_str().unwrap()
    );
    assert_eq!(
        of_app2[2].rv,
        deleted["metadata"]["resourceVersion"].as_str().unwrap()
    );
    assert!(of_app2.iter().all(|s| !s.inferred));
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_scoped_resource_is_one_watch() {
    let sim = sim().await;
    let cfg = config(
        r#"
resources:
  - gvr: v1/namespaces
    label_selector: team
"#,
    );
    let (controller, events) = watch(&sim, &cfg).await;
    wait_watches(&sim, &["/api/v1/namespaces ?labelSelector=team"]).await;
    create(&sim, namespace("plain"));
    create(
        &sim,
        crate::namespace_labelled("labelled", &[("team", "a")].into_iter().collect()),
    );
    events.wait_for(&["ADDED v1/namespaces labelled"]).await;
    assert_eq!(events.shorts(), ["ADDED v1/namespaces labelled"]);
    controller.stop().await;
}
