//! Resources added and removed at run time, shared informers, CRDs that
//! appear after start and disappear while watched.

use std::time::Duration;

use faro_core::{Gvr, ResourceRule};
use faro_filter::Pattern;
use faro_watch::InformerState;
use serde_json::json;

use crate::{config, configmap, create, namespace, object, sim, wait_watches, watch};

fn rule(gvr: &str) -> ResourceRule {
    ResourceRule::new(Gvr::parse(gvr).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_added_and_removed_at_run_time_never_duplicate_a_watch() {
    let sim = sim().await;
    create(&sim, namespace("app"));
    let (controller, events) = watch(&sim, &config("resources:\n  - gvr: v1/configmaps\n")).await;
    wait_watches(&sim, &["/api/v1/configmaps"]).await;

    // The same rule again, and a narrower one it covers: still one watch.
    controller
        .add_resources(vec![rule("v1/configmaps")])
        .await
        .unwrap();
    controller
        .add_resources(vec![rule("v1/configmaps").in_namespaces(["app"])])
        .await
        .unwrap();
    assert_eq!(controller.active_informers().len(), 1);
    wait_watches(&sim, &["/api/v1/configmaps"]).await;

    // A new GVR opens exactly one more watch, and its objects arrive.
    create(&sim, object("v1", "Secret", Some("app"), "s1", &[]));
    controller
        .add_resources(vec![rule("v1/secrets")])
        .await
        .unwrap();
    wait_watches(&sim, &["/api/v1/configmaps", "/api/v1/secrets"]).await;
    events.wait_for(&["ADDED v1/secrets app/s1"]).await;

    // Removing it stops its watch; the config maps keep flowing.
    controller
        .remove_resources(&[rule("v1/secrets")])
        .await
        .unwrap();
    wait_watches(&sim, &["/api/v1/configmaps"]).await;
    create(&sim, object("v1", "Secret", Some("app"), "s2", &[]));
    create(&sim, configmap("app", "after", &[]));
    events.wait_for(&["ADDED v1/configmaps app/after"]).await;
    assert!(
        !events
            .shorts()
            .contains(&"ADDED v1/secrets app/s2".to_owned()),
        "a removed resource delivers nothing"
    );
    let infos = controller.active_informers();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].key.gvr.to_string(), "v1/configmaps");
    assert_eq!(infos[0].subscribers, 1);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widened_filter_delivers_objects_it_now_lets_through_once() {
    let sim = sim().await;
    create(&sim, namespace("app"));
    create(&sim, configmap("app", "a-1", &[]));
    create(&sim, configmap("app", "b-1", &[]));
    let narrow = rule("v1/configmaps").with_name_pattern(Pattern::new("^a-").unwrap());
    let mut cfg = faro_core::Config::default();
    cfg.set_rules(vec![narrow]).unwrap();
    let (controller, events) = watch(&sim, &cfg).await;
    assert_eq!(events.shorts(), ["ADDED v1/configmaps app/a-1"]);
    let wide = rule("v1/configmaps").with_name_pattern(Pattern::new("^b-").unwrap());
    controller.add_resources(vec![wide]).await.unwrap();
    events.wait_for(&["ADDED v1/configmaps app/b-1"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        events.shorts(),
        ["ADDED v1/configmaps app/a-1", "ADDED v1/configmaps app/b-1"],
        "a-1 is not delivered again, b-1 exactly once"
    );
    wait_watches(&sim, &["/api/v1/configmaps"]).await;
    controller.stop().await;
}

fn crd(plural: &str, kind: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{plural}.example.com") },
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": { "plural": plural, "singular": kind.to_lowercase(), "kind": kind },
            "versions": [{ "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true } } }]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_created_after_start_is_watched_and_parked_again_when_deleted() {
    let sim = sim().await;
    create(&sim, namespace("app"));
    let cfg = config("resources:\n  - gvr: example.com/v1/widgets\n");
    // Not served yet: parked, which does not hold readiness back.
    let (controller, events) = watch(&sim, &cfg).await;
    let infos = controller.active_informers();
    let widgets = infos
        .iter()
        .find(|i| i.key.gvr.to_string() == "example.com/v1/widgets")
        .expect("the widgets informer exists");
    assert_eq!(widgets.state, InformerState::Parked);

    create(&sim, crd("widgets", "Widget"));
    let widget = |name: &str| object("example.com/v1", "Widget", Some("app"), name, &[]);
    // The informer starts once the CRD is established; objects created
    // right away are listed or watched, either way delivered once.
    let mut created = false;
    for _ in 0..200 {
        if sim.create(widget("w1")).is_ok() {
            created = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(created, "the CRD's resource is served");
    events
        .wait_for(&["ADDED example.com/v1/widgets app/w1"])
        .await;
    wait_watches(
        &sim,
        &[
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "/apis/example.com/v1/widgets",
        ],
    )
    .await;

    // Deleting the CRD deletes its objects, ends the watch and parks the informer.
    sim.delete(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "widgets.example.com",
    )
    .unwrap();
    events
        .wait_for(&["DELETED example.com/v1/widgets app/w1"])
        .await;
    wait_watches(
        &sim,
        &["/apis/apiextensions.k8s.io/v1/customresourcedefinitions"],
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let parked = controller.active_informers().iter().any(|i| {
            i.key.gvr.to_string() == "example.com/v1/widgets" && i.state == InformerState::Parked
        });
        if parked {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "parked again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // And it comes back when the CRD does.
    create(&sim, crd("widgets", "Widget"));
    create(&sim, widget("w2"));
    events
        .wait_for(&["ADDED example.com/v1/widgets app/w2"])
        .await;
    let shorts = events.shorts();
    assert_eq!(
        shorts,
        [
            "ADDED example.com/v1/widgets app/w1",
            "DELETED example.com/v1/widgets app/w1",
            "ADDED example.com/v1/widgets app/w2",
        ]
    );
    controller.stop().await;
}

struct Failing;

#[async_trait::async_trait]
impl faro_core::EventHandler for Failing {
    fn name(&self) -> &str {
        "failing"
    }
    async fn on_matched(&self, _: &faro_core::MatchedEvent) -> Result<(), faro_core::HandlerError> {
        Err(faro_core::HandlerError::new("refused"))
    }
}

/// Takes its time on every event and records when it finished.
#[derive(Default)]
struct Slow {
    started: std::sync::atomic::AtomicUsize,
    finished: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl faro_core::EventHandler for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    async fn on_matched(&self, _: &faro_core::MatchedEvent) -> Result<(), faro_core::HandlerError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.started.fetch_add(1, SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.finished.fetch_add(1, SeqCst);
        Ok(())
    }
}

/// A started, ready controller over the `app` namespace's ConfigMaps named `c…`.
async fn app_controller(
    sim: &faro_sim::Sim,
    handler: impl faro_core::EventHandler,
) -> faro_watch::Controller {
    create(sim, namespace("app"));
    let controller = faro_watch::Controller::with_options(
        crate::client(sim),
        &config(
            "resources:\n  - gvr: v1/configmaps\n    namespace_names: [app]\n    name_pattern: ^c\n",
        ),
        crate::fast(),
    );
    controller.add_handler(handler);
    controller.start().await.unwrap();
    controller.ready().await;
    controller
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_are_counted_and_other_handlers_still_served() {
    let sim = sim().await;
    let controller = app_controller(&sim, Failing).await;
    let events = crate::Recorder::new();
    controller.add_handler(events.clone());
    create(&sim, configmap("app", "c1", &[]));
    create(&sim, configmap("app", "c2", &[]));
    events
        .wait_for(&["ADDED v1/configmaps app/c1", "ADDED v1/configmaps app/c2"])
        .await;
    let errors = controller
        .metrics()
        .handler_errors
        .get_or_create(&[("handler", "failing".to_owned())])
        .get();
    assert_eq!(errors, 2);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_waits_for_the_handler_call_in_flight() {
    use std::sync::atomic::Ordering::SeqCst;
    let sim = sim().await;
    let slow = std::sync::Arc::new(Slow::default());
    let controller = app_controller(&sim, slow.clone()).await;
    create(&sim, configmap("app", "c1", &[]));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while slow.started.load(SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the handler is called"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    controller.stop().await;
    assert_eq!(
        slow.finished.load(SeqCst),
        1,
        "stop returned only after the call finished"
    );
    wait_watches(&sim, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_share_one_watch_until_the_last_is_dropped() {
    let sim = sim().await;
    create(&sim, namespace("app"));
    let (controller, events) = watch(&sim, &faro_core::Config::default()).await;
    let spec = config("resources:\n  - gvr: v1/configmaps\n    namespace_names: [app]\n")
        .watch_specs
        .remove(0);
    let first = controller.subscribe(&spec).await.unwrap();
    let second = controller.subscribe(&spec).await.unwrap();
    wait_watches(&sim, &["/api/v1/namespaces/app/configmaps"]).await;
    assert_eq!(controller.active_informers()[0].subscribers, 2);
    create(&sim, configmap("app", "shared", &[]));
    events.wait_for(&["ADDED v1/configmaps app/shared"]).await;
    drop(first);
    assert_eq!(controller.active_informers()[0].subscribers, 1);
    wait_watches(&sim, &["/api/v1/namespaces/app/configmaps"]).await;
    drop(second);
    assert!(controller.active_informers().is_empty());
    wait_watches(&sim, &[]).await;
    let added = events
        .shorts()
        .iter()
        .filter(|s| *s == "ADDED v1/configmaps app/shared")
        .count();
    assert_eq!(added, 1, "two subscribers, one delivery");
    controller.stop().await;
}
