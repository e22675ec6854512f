//! The kubelet's log endpoint as faro-sim serves it: timestamps, an
//! inclusive `sinceTime`, follows that end when their container exits or
//! are dropped on demand, and logs of init and ephemeral containers.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{eventually, living, start};

/// One GET on a fresh connection: what the server sends until it closes
/// (or `limit` passes); the second value says whether it closed.
async fn get_until_closed(sim: &faro_sim::Sim, path: &str, limit: Duration) -> (String, bool) {
    let mut socket = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        sim.addr()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(limit, socket.read_to_end(&mut answer))
        .await
        .is_ok();
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

fn pod(name: &str, annotations: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": "default", "annotations": annotations },
        "spec": { "restartPolicy": "Never", "containers": [{ "name": "app", "image": "app:1" }] },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_and_an_inclusive_since_time() {
    let sim = start().await;
    sim.create(pod("p", json!({}))).unwrap();
    for line in ["one", "two", "three"] {
        sim.append_log("default", "p", "app", vec![line.into()])
            .unwrap();
    }
    let path = "/api/v1/namespaces/default/pods/p/log?container=app&timestamps=true";
    let (all, _) = get_until_closed(&sim, path, Duration::from_secs(5)).await;
    let body = all.split("\r\n\r\n").nth(1).unwrap();
    let lines: Vec<(String, String)> = body
        .lines()
        .filter(|l| l.contains('Z'))
        .map(|l| {
            let (at, text) = l.split_once(' ').unwrap();
            (at.to_string(), text.to_string())
        })
        .collect();
    assert_eq!(
        lines.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        ["one", "two", "three"]
    );
    for (at, _) in &lines {
        // RFC 3339 with nanoseconds and trailing zeros trimmed, as the kubelet writes.
        let parsed: jiff::Timestamp = at.parse().unwrap();
        assert_eq!(&parsed.to_string(), at);
        assert!(!at.trim_end_matches('Z').ends_with('0'), "{at}");
    }
    // sinceTime is inclusive: from the second line's own timestamp.
    let since = &lines[1].0;
    let (from_two, _) = get_until_closed(
        &sim,
        &format!("/api/v1/namespaces/default/pods/p/log?container=app&sinceTime={since}"),
        Duration::from_secs(5),
    )
    .await;
    assert!(from_two.ends_with("\r\n\r\ntwo\nthree\n"), "{from_two}");
    assert!(!from_two.contains("one"), "{from_two}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_are_listed_and_dropped_without_touching_watches() {
    let sim = start().await;
    sim.create(pod("p", json!({}))).unwrap();
    sim.append_log("default", "p", "app", vec!["before".into()])
        .unwrap();
    let watch = {
        let addr = sim.addr();
        tokio::spawn(async move {
            let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!(
                "GET /api/v1/namespaces/default/configmaps?watch=true HTTP/1.1\r\nHost: {addr}\r\n\r\n"
            );
            socket.write_all(request.as_bytes()).await.unwrap();
            let mut buf = vec![0u8; 1024];
            let _ = socket.read(&mut buf).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        })
    };
    let follower = {
        let path = "/api/v1/namespaces/default/pods/p/log?container=app&follow=true";
        let sim_addr = sim.addr();
        tokio::spawn(async move {
            let mut socket = tokio::net::TcpStream::connect(sim_addr).await.unwrap();
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {sim_addr}\r\nConnection: close\r\n\r\n");
            socket.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let closed =
                tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
                    .await
                    .is_ok();
            (String::from_utf8_lossy(&answer).into_owned(), closed)
        })
    };
    assert!(
        eventually(Duration::from_secs(5), || sim.log_follows().len() == 1
            && sim.watches().len() == 1)
        .await,
        "one follow and one watch open"
    );
    let follow = &sim.log_follows()[0];
    assert_eq!(
        (
            follow.namespace.as_str(),
            follow.pod.as_str(),
            follow.container.as_str()
        ),
        ("default", "p", "app")
    );
    assert!(follow.query.contains("follow=true"), "{follow:?}");
    sim.append_log("default", "p", "app", vec!["during".into()])
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    sim.close_log_follows();
    let (text, closed) = follower.await.unwrap();
    assert!(closed, "the follow ended");
    assert!(
        text.contains("before\n") && text.contains("during\n"),
        "{text}"
    );
    assert!(sim.log_follows().is_empty());
    assert_eq!(sim.watches().len(), 1, "the watch is still open");
    watch.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_ends_when_its_container_exits() {
    let sim = living(10.0).await;
    sim.create(pod(
        "short",
        json!({ "faro-sim.io/exit-after": "5s", "faro-sim.io/log-rate": "20" }),
    ))
    .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || sim
            .log("default", "short", "app")
            .is_some_and(|l| !l.is_empty()))
        .await
    );
    let (text, closed) = get_until_closed(
        &sim,
        "/api/v1/namespaces/default/pods/short/log?container=app&follow=true",
        Duration::from_secs(10),
    )
    .await;
    assert!(closed, "the follow ended with the container");
    assert!(text.contains("app: work done, exiting with 0\n"), "{text}");
    let status = sim.get("v1", "Pod", Some("default"), "short").unwrap();
    assert_eq!(status["status"]["phase"], "Succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_and_ephemeral_containers_have_logs() {
    let sim = living(10.0).await;
    sim.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "p", "namespace": "default", "annotations": { "faro-sim.io/log-rate": "1" } },
        "spec": {
            "initContainers": [{ "name": "setup", "image": "tool:1" }],
            "containers": [{ "name": "app", "image": "app:1" }],
        },
    }))
    .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || sim
            .get("v1", "Pod", Some("default"), "p")
            .is_ok_and(|p| p["status"]["phase"] == "Running"))
        .await
    );
    let (setup, _) = get_until_closed(
        &sim,
        "/api/v1/namespaces/default/pods/p/log?container=setup",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        setup.ends_with("init setup: preparing\ninit setup: done\n"),
        "{setup}"
    );
    // An ephemeral container, added as kubectl debug does.
    let mut current = sim.get("v1", "Pod", Some("default"), "p").unwrap();
    current["spec"]["ephemeralContainers"] =
        json!([{ "name": "debugger", "image": "busybox:1", "targetContainerName": "app" }]);
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let request = axum::http::Request::put("/api/v1/namespaces/default/pods/p/ephemeralcontainers")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&current).unwrap())
        .unwrap();
    client.request_text(request).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || sim
            .get("v1", "Pod", Some("default"), "p")
            .is_ok_and(|p| {
                p["status"]["ephemeralContainerStatuses"][0]["state"]["running"].is_object()
            }))
        .await,
        "the ephemeral container runs"
    );
    let (debugger, _) = get_until_closed(
        &sim,
        "/api/v1/namespaces/default/pods/p/log?container=debugger",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        debugger.contains("starting debugger (image busybox:1, restart 0)\n"),
        "{debugger}"
    );
}
