//! The kube-rs client and runtime watcher against faro-sim, and every fault
//! of the admin API observed as a client observes the real fault.

use std::time::{Duration, Instant};

use axum::http::Request;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;

use crate::start;

async fn client(sim: &faro_sim::Sim) -> Client {
    let config = kube::Config::new(sim.url().parse().unwrap());
    Client::try_from(config).unwrap()
}

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels },
        "data": { "k": "v" },
    }))
    .unwrap()
}

async fn create(api: &Api<ConfigMap>, name: &str) -> ConfigMap {
    api.create(&PostParams::default(), &cm(name, json!({})))
        .await
        .unwrap()
}

/// A JSON POST to an admin route.
fn post(path: &str, body: serde_json::Value) -> Request<Vec<u8>> {
    Request::post(path.to_string())
        .header("content-type", "application/json")
        .body(body.to_string().into_bytes())
        .unwrap()
}

fn rv(cm: &ConfigMap) -> String {
    cm.metadata.resource_version.clone().unwrap()
}

/// The next watch event, or `None` when the stream ended or `within` passed.
async fn next<S: futures_util::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin>(
    stream: &mut S,
    within: Duration,
) -> Option<WatchEvent<ConfigMap>> {
    tokio::time::timeout(within, stream.next())
        .await
        .ok()
        .flatten()
        .map(|e| e.unwrap())
}

fn name_of(event: &WatchEvent<ConfigMap>) -> (&'static str, String) {
    match event {
        WatchEvent::Added(o) => ("ADDED", o.metadata.name.clone().unwrap()),
        WatchEvent::Modified(o) => ("MODIFIED", o.metadata.name.clone().unwrap()),
        WatchEvent::Deleted(o) => ("DELETED", o.metadata.name.clone().unwrap()),
        WatchEvent::Bookmark(b) => ("BOOKMARK", b.metadata.resource_version.clone()),
        WatchEvent::Error(e) => ("ERROR", e.code.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_lists_are_consistent_snapshots() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client(&sim).await, "default");
    for i in 0..25 {
        create(&api, &format!("cm-{i:02}")).await;
    }
    let first = api.list(&ListParams::default().limit(10)).await.unwrap();
    assert_eq!(first.items.len(), 10);
    let token = first.metadata.continue_.clone().expect("more pages");
    // 25 of ours and the namespace's kube-root-ca.crt.
    assert_eq!(first.metadata.remaining_item_count, Some(16));
    // Written after the first page: not part of this list's snapshot.
    create(&api, "cm-99-late").await;
    let mut names: Vec<String> = first
        .items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    let mut token = Some(token);
    while let Some(t) = token {
        let page = api
            .list(&ListParams::default().limit(10).continue_token(&t))
            .await
            .unwrap();
        assert_eq!(
            page.metadata.resource_version,
            first.metadata.resource_version
        );
        names.extend(page.items.iter().map(|c| c.metadata.name.clone().unwrap()));
        token = page.metadata.continue_.filter(|c| !c.is_empty());
    }
    let mut expected: Vec<String> = (0..25).map(|i| format!("cm-{i:02}")).collect();
    expected.push("kube-root-ca.crt".into());
    assert_eq!(
        names, expected,
        "every object once, in key order, none from later"
    );
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        27
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_an_exact_version_with_bookmarks() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client(&sim).await, "default");
    let a = create(&api, "a").await;
    create(&api, "b").await;
    let c = create(&api, "c").await;
    // From a's version (exclusive): b and c, nothing of a.
    let mut stream = api
        .watch(&WatchParams::default(), &rv(&a))
        .await
        .unwrap()
        .boxed();
    let e1 = next(&mut stream, Duration::from_secs(5)).await.unwrap();
    let e2 = next(&mut stream, Duration::from_secs(5)).await.unwrap();
    assert_eq!(name_of(&e1), ("ADDED", "b".to_string()));
    assert_eq!(name_of(&e2), ("ADDED", "c".to_string()));
    // Idle: a bookmark carrying the latest version arrives.
    let e3 = next(&mut stream, Duration::from_secs(5)).await.unwrap();
    assert_eq!(name_of(&e3), ("BOOKMARK", rv(&c)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_selector_watch_sees_objects_enter_and_leave() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client(&sim).await, "default");
    let start_rv = rv(&create(&api, "x").await);
    let mut stream = api
        .watch(&WatchParams::default().labels("app=web"), &start_rv)
        .await
        .unwrap()
        .boxed();
    let patch =
        |labels: serde_json::Value| Patch::Merge(json!({ "metadata": { "labels": labels } }));
    api.patch(
        "x",
        &PatchParams::default(),
        &patch(json!({ "app": "web" })),
    )
    .await
    .unwrap();
    api.patch("x", &PatchParams::default(), &patch(json!({ "tier": "1" })))
        .await
        .unwrap();
    api.patch("x", &PatchParams::default(), &patch(json!({ "app": "db" })))
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(name_of(&next(&mut stream, Duration::from_secs(5)).await.unwrap()).0);
    }
    assert_eq!(seen, ["ADDED", "MODIFIED", "DELETED"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_gives_410_and_the_runtime_watcher_relists() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client(&sim).await, "default");
    let old = rv(&create(&api, "old").await);
    create(&api, "newer").await;
    let compacted = sim.compact();
    assert!(compacted > old.parse().unwrap());
    let mut stream = api
        .watch(&WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    match next(&mut stream, Duration::from_secs(5)).await {
        Some(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
            assert!(
                e.message.starts_with("too old resource version:"),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410 Expired, got {other:?}"),
    }

    // kube-runtime's watcher: close its watch and compact, and it relists and
    // still sees what was created meanwhile.
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut seen = std::collections::BTreeSet::new();
    let mut inits = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut disturbed = false;
    while Instant::now() < deadline && !(inits >= 2 && seen.contains("made-in-gap")) {
        let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .map(|e| e.ok().flatten())
        else {
            continue;
        };
        match event {
            watcher::Event::Init => inits += 1,
            watcher::Event::InitApply(o) | watcher::Event::Apply(o) => {
                seen.insert(o.metadata.name.unwrap());
            }
            watcher::Event::InitDone if !disturbed => {
                disturbed = true;
                sim.compact();
                create(&api, "made-in-gap").await;
                sim.compact();
                sim.close_watches();
            }
            _ => {}
        }
    }
    assert!(inits >= 2, "the watcher relisted after the 410");
    assert!(seen.contains("made-in-gap"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_lists_send_initial_events_then_a_marked_bookmark() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client(&sim).await, "default");
    create(&api, "s1").await;
    create(&api, "s2").await;
    let mut events = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.try_next()).await {
            Ok(Ok(Some(watcher::Event::InitApply(o)))) => initial.push(o.metadata.name.unwrap()),
            Ok(Ok(Some(watcher::Event::InitDone))) => break,
            Ok(Ok(Some(_))) => {}
            other => panic!("stream ended before InitDone: {other:?}"),
        }
    }
    initial.sort();
    assert_eq!(initial, ["kube-root-ca.crt", "s1", "s2"]);
    // The watch used the streaming-list parameters, not a list.
    let w = sim.watches();
    assert!(
        w.iter().any(|w| w.query.contains("sendInitialEvents=true")),
        "{w:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_watches_ends_the_streams() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client(&sim).await, "default");
    let from = rv(&create(&api, "a").await);
    let mut stream = api
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .boxed();
    assert_eq!(sim.watches().len(), 1);
    assert_eq!(
        sim.watches()[0].path,
        "/api/v1/namespaces/default/configmaps"
    );
    sim.close_watches();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .is_none()
    );
    assert!(crate::eventually(Duration::from_secs(5), || sim.watches().is_empty()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bursts_are_scoped_by_verb_and_user_agent() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client(&sim).await, "default");
    create(&api, "a").await;
    sim.inject_errors(faro_sim::ErrorFault {
        count: 2,
        status: 500,
        verbs: vec!["list".into()],
        ..Default::default()
    });
    // A get is not a list: untouched.
    api.get("a").await.unwrap();
    for _ in 0..2 {
        match api.list(&ListParams::default()).await {
            Err(kube::Error::Api(s)) => assert_eq!(s.code, 500),
            other => panic!("expected 500, got {other:?}"),
        }
    }
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );

    // Raw HTTP from here: kube's client retries 429s and dropped connections
    // by itself, which would hide exactly what is being tested.
    sim.inject_errors(faro_sim::ErrorFault {
        count: 1,
        status: 429,
        retry_after_seconds: 7,
        ..Default::default()
    });
    let answer = raw_get(
        &sim,
        "/api/v1/namespaces/default/configmaps/a",
        "test-client",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 7"),
        "{answer}"
    );
    assert!(answer.contains(r#""reason":"TooManyRequests""#), "{answer}");

    sim.inject_errors(faro_sim::ErrorFault {
        count: 1,
        status: 500,
        user_agent: Some("faro".into()),
        ..Default::default()
    });
    let other = raw_get(
        &sim,
        "/api/v1/namespaces/default/configmaps/a",
        "kubectl/v1.32",
    )
    .await;
    assert!(
        other.starts_with("HTTP/1.1 200"),
        "another client's fault does not hit us: {other}"
    );
    let hit = raw_get(&sim, "/api/v1/namespaces/default/configmaps/a", "faro/0.1").await;
    assert!(hit.starts_with("HTTP/1.1 500"), "{hit}");
    assert!(hit.contains(r#""reason":"InternalError""#), "{hit}");

    sim.inject_errors(faro_sim::ErrorFault {
        count: 1,
        reset: true,
        status: 500,
        ..Default::default()
    });
    let reset = raw_get(
        &sim,
        "/api/v1/namespaces/default/configmaps/a",
        "test-client",
    )
    .await;
    assert_eq!(reset, "", "a reset drops the connection without an answer");
    let after = raw_get(
        &sim,
        "/api/v1/namespaces/default/configmaps/a",
        "test-client",
    )
    .await;
    assert!(after.starts_with("HTTP/1.1 200"), "{after}");
}

/// One GET on a fresh connection; everything the server sent before closing.
async fn raw_get(sim: &faro_sim::Sim, path: &str, user_agent: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {user_agent}\r\nConnection: close\r\n\r\n",
        sim.addr()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_freeze_and_restart() {
    let sim = start().await;
    let client = client(&sim).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let from = rv(&create(&api, "a").await);

    sim.set_latency(Duration::from_millis(300));
    let t = Instant::now();
    api.get("a").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    sim.set_latency(Duration::ZERO);

    // A frozen stream stays open, sends nothing, then delivers what it held back.
    let mut stream = api
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .boxed();
    sim.freeze_watches(Duration::from_millis(1500));
    create(&api, "during-freeze").await;
    assert!(
        next(&mut stream, Duration::from_millis(700))
            .await
            .is_none(),
        "nothing while frozen"
    );
    let held = next(&mut stream, Duration::from_secs(5)).await.unwrap();
    assert_eq!(name_of(&held), ("ADDED", "during-freeze".to_string()));

    // A restart drops connections, refuses new ones for a while, keeps the store.
    sim.restart(Duration::from_millis(800));
    let cut = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.next().await {
                Some(Ok(WatchEvent::Bookmark(_))) => continue,
                other => return other,
            }
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(cut, None | Some(Err(_))),
        "the watch is cut: {cut:?}"
    );
    let refused = tokio::net::TcpStream::connect(sim.addr()).await;
    assert!(refused.is_err(), "connections are refused while down");
    let back = crate::eventually(Duration::from_secs(5), || {
        std::net::TcpStream::connect(sim.addr()).is_ok()
    })
    .await;
    assert!(back);
    let fresh: Api<ConfigMap> = Api::namespaced(self::client(&sim).await, "default");
    assert!(
        fresh.get("during-freeze").await.is_ok(),
        "the store survives a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_over_http() {
    let sim = start().await;
    let client = client(&sim).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let old = rv(&create(&api, "a").await);
    create(&api, "b").await;
    let state: serde_json::Value = serde_json::from_str(
        &client
            .request_text(Request::get("/faro-sim/v1/state").body(vec![]).unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        state["resourceVersion"],
        json!(sim.resource_version().to_string())
    );
    assert_eq!(state["watches"], 0);
    assert!(state["objects"].as_u64().unwrap() >= 1);

    let compacted: serde_json::Value = serde_json::from_str(
        &client
            .request_text(post("/faro-sim/v1/history/compact", json!({})))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        compacted["compactedTo"],
        json!(sim.resource_version().to_string())
    );
    let mut stream = api
        .watch(&WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    assert!(
        matches!(next(&mut stream, Duration::from_secs(5)).await, Some(WatchEvent::Error(e)) if e.code == 410)
    );

    client
        .request_text(post(
            "/faro-sim/v1/faults/errors",
            json!({"count": 1, "status": 500, "verbs": ["get"]}),
        ))
        .await
        .unwrap();
    assert!(api.get("a").await.is_err());
    assert!(api.get("a").await.is_ok());

    let from = sim.resource_version().to_string();
    let _open = api
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .boxed();
    let watches: serde_json::Value = serde_json::from_str(
        &client
            .request_text(Request::get("/faro-sim/v1/watches").body(vec![]).unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(watches[0]["path"], "/api/v1/namespaces/default/configmaps");
    assert!(watches[0]["query"].as_str().unwrap().contains("watch=true"));
    client
        .request_text(post("/faro-sim/v1/watches/close", json!({})))
        .await
        .unwrap();
    assert!(crate::eventually(Duration::from_secs(5), || sim.watches().is_empty()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_log_and_restart_routes_over_http() {
    let sim = start().await;
    let client = client(&sim).await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "default");
    let pod = serde_json::from_value(json!({
        "metadata": { "name": "p" },
        "spec": { "containers": [{ "name": "app", "image": "busybox" }] },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    client
        .request_text(post(
            "/faro-sim/v1/pods/default/p/containers/app/log",
            json!({"lines": ["one", "two"]}),
        ))
        .await
        .unwrap();
    assert_eq!(
        pods.logs("p", &Default::default()).await.unwrap(),
        "one\ntwo\n"
    );
    client
        .request_text(post(
            "/faro-sim/v1/pods/default/p/containers/app/restart",
            json!({"exitCode": 2, "reason": "Error"}),
        ))
        .await
        .unwrap();
    let previous = kube::api::LogParams {
        previous: true,
        ..Default::default()
    };
    assert_eq!(pods.logs("p", &previous).await.unwrap(), "one\ntwo\n");
    assert_eq!(pods.logs("p", &Default::default()).await.unwrap(), "");
    let status = pods.get("p").await.unwrap().status.unwrap();
    assert_eq!(status.container_statuses.unwrap()[0].restart_count, 1);
    let missing = client
        .request_text(post(
            "/faro-sim/v1/pods/default/nope/containers/app/log",
            json!({"lines": ["x"]}),
        ))
        .await;
    assert!(matches!(missing, Err(kube::Error::Api(s)) if s.code == 404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_window_eviction_expires_old_versions() {
    let sim = faro_sim::Sim::start(faro_sim::SimConfig {
        history_window: 5,
        ..faro_sim::SimConfig::default()
    })
    .await
    .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client(&sim).await, "default");
    let first = rv(&create(&api, "first").await);
    for i in 0..10 {
        create(&api, &format!("later-{i}")).await;
    }
    let mut stream = api
        .watch(&WatchParams::default(), &first)
        .await
        .unwrap()
        .boxed();
    assert!(
        matches!(next(&mut stream, Duration::from_secs(5)).await, Some(WatchEvent::Error(e)) if e.code == 410)
    );
    // Within the window it still resumes.
    let recent = (sim.resource_version() - 2).to_string();
    let mut stream = api
        .watch(&WatchParams::default(), &recent)
        .await
        .unwrap()
        .boxed();
    assert_eq!(
        name_of(&next(&mut stream, Duration::from_secs(5)).await.unwrap()).0,
        "ADDED"
    );
    // An exact list at an evicted version is 410 Gone too.
    match api
        .list(
            &ListParams::default()
                .at(&first)
                .matching(kube::api::VersionMatch::Exact),
        )
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_seconds_watch_1_json_patch_and_deletecollection() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client(&sim).await, "default");
    let from = rv(&create(&api, "a").await);

    // timeoutSeconds ends the stream cleanly.
    let mut stream = api
        .watch(
            &WatchParams::default().timeout(1).disable_bookmarks(),
            &from,
        )
        .await
        .unwrap()
        .boxed();
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap();
    assert!(end.is_none(), "{end:?}");

    // watch=1 is a watch as well.
    let answer = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
        let request = "GET /api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1&resourceVersion=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_string();
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    };
    assert!(answer.contains(r#"{"type":"ADDED","object":{"#), "{answer}");

    // JSON patch (RFC 6902), sent as kube's client would with its jsonpatch feature.
    let client = client(&sim).await;
    let json_patch = |ops: serde_json::Value| {
        Request::patch("/api/v1/namespaces/default/configmaps/a")
            .header("content-type", "application/json-patch+json")
            .body(ops.to_string().into_bytes())
            .unwrap()
    };
    let patched: ConfigMap = serde_json::from_str(
        &client
            .request_text(json_patch(json!([
                { "op": "add", "path": "/data/extra", "value": "x" },
                { "op": "test", "path": "/data/k", "value": "v" },
            ])))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(patched.data.unwrap()["extra"], "x");
    match client
        .request_text(json_patch(
            json!([{ "op": "test", "path": "/data/k", "value": "nope" }]),
        ))
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 422),
        other => panic!("a failed test op is 422 Invalid, got {other:?}"),
    }

    // deletecollection with a label selector deletes only what matches.
    api.create(
        &PostParams::default(),
        &cm("web-1", json!({ "app": "web" })),
    )
    .await
    .unwrap();
    api.create(
        &PostParams::default(),
        &cm("web-2", json!({ "app": "web" })),
    )
    .await
    .unwrap();
    api.delete_collection(
        &Default::default(),
        &ListParams::default().labels("app=web"),
    )
    .await
    .unwrap();
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["a", "kube-root-ca.crt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_crd_ends_the_watches_on_its_resources() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = start().await;
    sim.create(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": { "name": "gadgets.example.com" },
        "spec": { "group": "example.com", "scope": "Namespaced",
                  "names": { "plural": "gadgets", "kind": "Gadget" },
                  "versions": [{ "name": "v1", "served": true, "storage": true }] },
    }))
    .unwrap();
    sim.create(json!({
        "apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": { "name": "g1", "namespace": "default" },
    }))
    .unwrap();
    let mut socket = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    socket
        .write_all(b"GET /apis/example.com/v1/namespaces/default/gadgets?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(crate::eventually(Duration::from_secs(5), || sim.watches().len() == 1).await);
    sim.delete(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "gadgets.example.com",
    )
    .unwrap();
    // The stream ends: the terminating zero-length chunk arrives, after the DELETED.
    let mut seen = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
            if n == 0 || seen.ends_with(b"0\r\n\r\n") {
                return;
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&seen);
    assert!(ended.is_ok(), "the watch stayed open: {text}");
    assert!(text.contains(r#""type":"DELETED""#), "{text}");
    assert!(crate::eventually(Duration::from_secs(5), || sim.watches().is_empty()).await);
    assert!(
        sim.get("example.com/v1", "Gadget", Some("default"), "g1")
            .is_err()
    );
}

/// The `Status` of a refused request: (code, reason, message).
async fn refused(client: &Client, request: Request<Vec<u8>>) -> (u16, String, String) {
    match client.request_text(request).await {
        Err(kube::Error::Api(status)) => (status.code, status.reason, status.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn body_request(path: &str, content_type: &str, body: Vec<u8>) -> Request<Vec<u8>> {
    Request::post(path)
        .header("content-type", content_type)
        .body(body)
        .unwrap()
}

/// A `k8s\0` envelope around a `runtime.Unknown` of `kind`, encoded by hand.
fn envelope(kind: &str, raw: &[u8]) -> Vec<u8> {
    let field = |tag: u8, bytes: &[u8]| {
        let mut out = vec![tag, u8::try_from(bytes.len()).unwrap()];
        out.extend_from_slice(bytes);
        out
    };
    let type_meta = [field(0x0a, b"v1"), field(0x12, kind.as_bytes())].concat();
    [b"k8s\0".to_vec(), field(0x0a, &type_meta), field(0x12, raw)].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_the_real_servers_codes() {
    let sim = start().await;
    let client = client(&sim).await;
    let path = "/api/v1/namespaces/default/configmaps";
    const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

    let huge = serde_json::to_vec(
        &json!({"metadata": {"name": "big"}, "data": {"a": "x".repeat(4 << 20)}}),
    )
    .unwrap();
    let (code, reason, message) =
        refused(&client, body_request(path, "application/json", huge)).await;
    assert_eq!((code, reason.as_str()), (413, "RequestEntityTooLarge"));
    assert_eq!(message, "Request entity too large: limit is 3145728");

    let (code, reason, _) = refused(
        &client,
        body_request(path, PROTOBUF, b"k8s\0\x0a\xff\xff".to_vec()),
    )
    .await;
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
    let (code, _, message) = refused(
        &client,
        body_request(path, PROTOBUF, envelope("Secret", b"")),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        message,
        "the kind in the data (Secret) does not match the expected kind (ConfigMap)"
    );
    let (code, reason, _) = refused(
        &client,
        body_request(
            "/api/v1/namespaces/default/events",
            PROTOBUF,
            envelope("Event", b""),
        ),
    )
    .await;
    assert_eq!((code, reason.as_str()), (415, "UnsupportedMediaType"));
    let (code, reason, _) = refused(
        &client,
        body_request(path, "application/yaml", b"a: b".to_vec()),
    )
    .await;
    assert_eq!((code, reason.as_str()), (415, "UnsupportedMediaType"));

    // A ConfigMap in protobuf: its name (field 1 of ObjectMeta, field 1 of
    // ConfigMap) and one data entry (field 2, a map entry of key and value).
    let meta = [0x0a, 3, b'p', b'b', b'1'];
    let entry = [0x0a, 1, b'k', 0x12, 1, b'v'];
    let raw = [&[0x0a, 5][..], &meta, &[0x12, 6], &entry].concat();
    client
        .request_text(body_request(path, PROTOBUF, envelope("ConfigMap", &raw)))
        .await
        .expect("a protobuf ConfigMap is created");
    let stored = sim.get("v1", "ConfigMap", Some("default"), "pb1").unwrap();
    assert_eq!(stored["data"], json!({"k": "v"}));

    // Field validation: Strict refuses an unknown field, Warn (the default) drops it.
    let unknown =
        serde_json::to_vec(&json!({"metadata": {"name": "v1"}, "data": {"a": "b"}, "extra": 1}))
            .unwrap();
    let (code, _, message) = refused(
        &client,
        body_request(
            &format!("{path}?fieldValidation=Strict"),
            "application/json",
            unknown.clone(),
        ),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        message,
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "extra""#
    );
    client
        .request_text(body_request(path, "application/json", unknown))
        .await
        .unwrap();
    let stored = sim.get("v1", "ConfigMap", Some("default"), "v1").unwrap();
    assert!(stored.get("extra").is_none(), "{stored}");
    let wrong_type =
        serde_json::to_vec(&json!({"metadata": {"name": "v2"}, "data": {"a": 1}})).unwrap();
    let (code, _, message) =
        refused(&client, body_request(path, "application/json", wrong_type)).await;
    assert_eq!(code, 400);
    assert!(
        message.starts_with(r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: "#),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_take_turns_with_optimistic_concurrency_in_two_clusters() {
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use kube::api::PostParams;

    let east = start().await;
    let west = start().await;
    let lease = |holder: &str| Lease {
        metadata: kube::api::ObjectMeta {
            name: Some("faro-leader".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    let api_east: Api<Lease> = Api::namespaced(client(&east).await, "default");
    let api_west: Api<Lease> = Api::namespaced(client(&west).await, "default");
    let held = api_east
        .create(&PostParams::default(), &lease("replica-a"))
        .await
        .unwrap();
    api_west
        .create(&PostParams::default(), &lease("replica-b"))
        .await
        .unwrap();
    assert!(
        held.metadata.generation.is_none(),
        "Leases carry no generation"
    );

    // A renewal from the version read succeeds; one from an older version is a conflict.
    let mut renewed = held.clone();
    renewed.spec.as_mut().unwrap().renew_time =
        Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
    let renewed = api_east
        .replace("faro-leader", &PostParams::default(), &renewed)
        .await
        .unwrap();
    assert_ne!(
        renewed.metadata.resource_version,
        held.metadata.resource_version
    );
    let mut stale = held.clone();
    stale.spec.as_mut().unwrap().holder_identity = Some("replica-c".into());
    match api_east
        .replace("faro-leader", &PostParams::default(), &stale)
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
        }
        other => panic!("a stale takeover must conflict: {other:?}"),
    }
    // Each cluster keeps its own holder.
    let east_now = api_east.get("faro-leader").await.unwrap();
    let west_now = api_west.get("faro-leader").await.unwrap();
    assert_eq!(
        east_now.spec.unwrap().holder_identity.as_deref(),
        Some("replica-a")
    );
    assert_eq!(
        west_now.spec.unwrap().holder_identity.as_deref(),
        Some("replica-b")
    );
    assert_ne!(east.url(), west.url());
}

/// A restart asked for right after start, before the server's accept loop
/// first ran, still takes effect (it used to be missed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_right_after_start_refuses_connections() {
    for _ in 0..5 {
        let sim = start().await;
        sim.restart(Duration::from_secs(2));
        let refused = crate::eventually(Duration::from_secs(1), || {
            std::net::TcpStream::connect(sim.addr()).is_err()
        })
        .await;
        assert!(refused, "connections are refused while down");
    }
}
