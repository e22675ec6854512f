//! Routing by GVR: a worker sees only the GVRs it handles; "all" sees every one.

use faro_dispatch::{Dispatcher, DispatcherOptions, Handles};

use crate::{Recording, event, gvrs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_see_exactly_their_gvrs() {
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    let pods = Recording::new("pods", gvrs(&["v1/pods"]));
    let apps = Recording::new("apps", gvrs(&["apps/v1/deployments", "v1/pods"]));
    let all = Recording::new("all", Handles::All);
    for w in [&pods, &apps, &all] {
        dispatcher.register_arc(w.clone()).unwrap();
    }
    let sent = [
        ("v1/pods", "p1"),
        ("apps/v1/deployments", "d1"),
        ("v1/configmaps", "c1"),
        ("v1/pods", "p2"),
        ("example.com/v1/widgets", "w1"),
    ];
    for (i, (gvr, name)) in sent.iter().enumerate() {
        faro_core::EventHandler::on_matched(&dispatcher, &event(gvr, "ns", name, i as u64 + 1))
            .await
            .unwrap();
    }
    dispatcher.shutdown().await;
    let names = |r: &Recording| {
        let mut v: Vec<String> = r
            .seen()
            .into_iter()
            .map(|(g, k, _)| format!("{g} {k}"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&pods), ["v1/pods ns/p1", "v1/pods ns/p2"]);
    assert_eq!(
        names(&apps),
        [
            "apps/v1/deployments ns/d1",
            "v1/pods ns/p1",
            "v1/pods ns/p2"
        ]
    );
    assert_eq!(names(&all).len(), sent.len(), "all sees every event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_unique_and_removal_reroutes() {
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    let a = Recording::new("a", Handles::All);
    dispatcher.register_arc(a.clone()).unwrap();
    let err = dispatcher
        .register_arc(Recording::new("a", Handles::All))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "worker \"a\" is already registered; expected unique worker names"
    );
    faro_core::EventHandler::on_matched(&dispatcher, &event("v1/pods", "ns", "before", 1))
        .await
        .unwrap();
    assert!(dispatcher.remove("a").await);
    faro_core::EventHandler::on_matched(&dispatcher, &event("v1/pods", "ns", "after", 2))
        .await
        .unwrap();
    assert_eq!(a.seen().len(), 1, "a removed worker gets nothing more");
    dispatcher.shutdown().await;
    let refused =
        faro_core::EventHandler::on_matched(&dispatcher, &event("v1/pods", "ns", "late", 3)).await;
    assert!(refused.is_err(), "a shut-down dispatcher refuses events");
}

/// Suppresses events of objects named `noise*`.
struct DropNoise;

impl faro_dispatch::Middleware for DropNoise {
    fn name(&self) -> &str {
        "drop-noise"
    }
    fn apply(&self, event: faro_core::MatchedEvent) -> Option<faro_core::MatchedEvent> {
        (!event.key().name.starts_with("noise")).then_some(event)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_middleware_can_suppress_events_and_is_counted() {
    let dispatcher = Dispatcher::with_middleware(
        DispatcherOptions::default(),
        vec![std::sync::Arc::new(DropNoise)],
    );
    let all = Recording::new("all", Handles::All);
    dispatcher.register_arc(all.clone()).unwrap();
    for (i, name) in ["a", "noise-1", "b", "noise-2"].iter().enumerate() {
        faro_core::EventHandler::on_matched(
            &dispatcher,
            &event("v1/pods", "ns", name, i as u64 + 1),
        )
        .await
        .unwrap();
    }
    dispatcher.shutdown().await;
    let mut keys: Vec<String> = all.seen().into_iter().map(|(_, k, _)| k).collect();
    keys.sort();
    assert_eq!(keys, ["ns/a", "ns/b"]);
    let suppressed = dispatcher
        .metrics()
        .suppressed
        .get_or_create(&[("middleware", "drop-noise".to_owned())])
        .get();
    assert_eq!(suppressed, 2);
}
