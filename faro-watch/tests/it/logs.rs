//! Container logs followed against faro-sim's kubelet: every kind of
//! container, restarts, deletion, dropped streams and a restarted server,
//! and the stream budget. Every check compares the delivered records with
//! the lines faro-sim holds, exactly.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faro_core::{EventHandler, HandlerError, LogRecord, MatchedEvent};
use faro_sim::{Sim, SimConfig};
use faro_watch::{Controller, LogOptions, WatchOptions};
use serde_json::{Value, json};

use crate::{client, config, fast};

/// One delivered line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    pod: String,
    container: String,
    kind: &'static str,
    restart: u32,
    previous: bool,
    timestamp: String,
    text: String,
}

#[derive(Default)]
struct Lines(Mutex<Vec<Line>>);

impl Lines {
    fn all(&self) -> Vec<Line> {
        self.0.lock().unwrap().clone()
    }

    /// The texts of one container's lines, in delivery order.
    fn texts(&self, pod: &str, container: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|l| l.pod == pod && l.container == container)
            .map(|l| l.text)
            .collect()
    }

    async fn wait(&self, what: &str, limit: Duration, done: impl Fn(&[Line]) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if done(&self.0.lock().unwrap()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; {} lines delivered",
                self.0.lock().unwrap().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[async_trait::async_trait]
impl EventHandler for Lines {
    fn name(&self) -> &str {
        "lines"
    }

    async fn on_matched(&self, _event: &MatchedEvent) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn on_log(&self, record: &LogRecord) -> Result<(), HandlerError> {
        let s = record.source();
        self.0.lock().unwrap().push(Line {
            pod: s.pod.to_string(),
            container: s.container.to_string(),
            kind: s.container_type.as_str(),
            restart: record.restart_count(),
            previous: record.is_previous(),
            timestamp: record.timestamp().to_owned(),
            text: record.line().to_owned(),
        });
        Ok(())
    }
}

fn options(time_slice: Duration) -> WatchOptions {
    WatchOptions {
        logs: LogOptions {
            time_slice,
            reopen_delay: Duration::from_millis(50),
            ..LogOptions::default()
        },
        ..fast()
    }
}

async fn follow(sim: &Sim, yaml: &str, options: WatchOptions) -> (Controller, Arc<Lines>) {
    let controller = Controller::with_options(client(sim), &config(yaml), options);
    let lines = Arc::new(Lines::default());
    controller.add_handler(lines.clone());
    controller.start().await.expect("controller starts");
    tokio::time::timeout(Duration::from_secs(10), controller.ready())
        .await
        .expect("ready");
    (controller, lines)
}

async fn living(nodes: usize) -> Sim {
    Sim::start(SimConfig {
        time_scale: 10.0,
        nodes,
        bookmark_interval: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await
    .expect("faro-sim starts")
}

async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pod(name: &str, annotations: Value, spec: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": "default", "annotations": annotations },
        "spec": spec,
    })
}

async fn running(sim: &Sim, name: &str) {
    until(
        &format!("pod {name} running"),
        Duration::from_secs(15),
        || {
            sim.get("v1", "Pod", Some("default"), name)
                .is_ok_and(|p| p["status"]["phase"] == "Running")
        },
    )
    .await;
}

/// Asserts that no line was delivered twice (same container instance,
/// timestamp and text).
fn assert_no_duplicates(lines: &[Line]) {
    let mut seen = HashSet::new();
    for l in lines {
        assert!(
            seen.insert((&l.pod, &l.container, l.restart, &l.timestamp, &l.text)),
            "delivered twice: {l:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_container_is_followed_once_and_in_order() {
    let sim = living(3).await;
    // Containers write their start lines, and their own lines too rarely to matter.
    sim.create(pod(
        "p",
        json!({ "faro-sim.io/log-rate": "0.001" }),
        json!({
            "initContainers": [
                { "name": "setup", "image": "tool:1" },
                { "name": "proxy", "image": "proxy:1", "restartPolicy": "Always" },
            ],
            "containers": [
                { "name": "app", "image": "app:1" },
                { "name": "web", "image": "web:1" },
            ],
        }),
    ))
    .unwrap();
    let (controller, lines) = follow(
        &sim,
        "logs: { namespace_names: [default] }",
        options(Duration::from_secs(10)),
    )
    .await;
    running(&sim, "p").await;
    for batch in 0..5 {
        for c in ["proxy", "app", "web"] {
            let text = (0..20)
                .map(|i| format!("{c} batch={batch} i={i}"))
                .collect();
            sim.append_log("default", "p", c, text).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // An ephemeral container, added as kubectl debug does.
    let mut current = sim.get("v1", "Pod", Some("default"), "p").unwrap();
    current["spec"]["ephemeralContainers"] =
        json!([{ "name": "debugger", "image": "busybox:1", "targetContainerName": "app" }]);
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client(&sim), "default");
    pods.replace_ephemeral_containers(
        "p",
        &kube::api::PostParams::default(),
        &serde_json::from_value(current).unwrap(),
    )
    .await
    .unwrap();
    until(
        "the ephemeral container runs",
        Duration::from_secs(10),
        || {
            sim.get("v1", "Pod", Some("default"), "p").is_ok_and(|p| {
                p["status"]["ephemeralContainerStatuses"][0]["state"]["running"].is_object()
            })
        },
    )
    .await;
    until(
        "the ephemeral container's log",
        Duration::from_secs(10),
        || sim.log("default", "p", "debugger").is_some(),
    )
    .await;
    sim.append_log("default", "p", "debugger", vec!["debugger says hi".into()])
        .unwrap();
    let containers = ["setup", "proxy", "app", "web", "debugger"];
    lines
        .wait(
            "every line of every container",
            Duration::from_secs(15),
            |all| {
                containers.iter().all(|c| {
                    let mine: Vec<String> = all
                        .iter()
                        .filter(|l| l.container == *c)
                        .map(|l| l.text.clone())
                        .collect();
                    Some(mine) == sim.log("default", "p", c)
                })
            },
        )
        .await;
    let all = lines.all();
    assert_no_duplicates(&all);
    let kinds: BTreeMap<&str, &str> = all.iter().map(|l| (l.container.as_str(), l.kind)).collect();
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("app", "regular"),
            ("debugger", "ephemeral"),
            ("proxy", "sidecar"),
            ("setup", "init"),
            ("web", "regular"),
        ])
    );
    assert!(
        lines
            .texts("p", "setup")
            .contains(&"init setup: done".to_owned())
    );
    assert_eq!(
        lines.texts("p", "app").len(),
        1 + 100,
        "start line and 100 appended"
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_restarted_instance_leaves_its_last_lines_once() {
    let sim = living(3).await;
    sim.create(pod(
        "r",
        json!({}),
        json!({ "containers": [{ "name": "app", "image": "app:1" }] }),
    ))
    .unwrap();
    let (controller, lines) = follow(&sim, "logs: {}", options(Duration::from_secs(10))).await;
    running(&sim, "r").await;
    for instance in 0..3u32 {
        let before: Vec<String> = (0..5).map(|i| format!("i{instance} before {i}")).collect();
        sim.append_log("default", "r", "app", before.clone())
            .unwrap();
        lines
            .wait("the lines before", Duration::from_secs(10), |all| {
                all.iter().any(|l| l.text == before[4])
            })
            .await;
        // The stream drops, and the container writes its last lines and is
        // restarted before it could be opened again: only `previous` has them.
        sim.close_log_follows();
        let last: Vec<String> = (0..3).map(|i| format!("i{instance} last {i}")).collect();
        sim.append_log("default", "r", "app", last).unwrap();
        sim.restart_container("default", "r", "app", 1, "Error")
            .unwrap();
        lines
            .wait("the last lines", Duration::from_secs(10), |all| {
                all.iter().any(|l| l.text == format!("i{instance} last 2"))
            })
            .await;
    }
    sim.append_log("default", "r", "app", vec!["i3 running".into()])
        .unwrap();
    lines
        .wait("the fourth instance", Duration::from_secs(10), |all| {
            all.iter().any(|l| l.text == "i3 running")
        })
        .await;
    let all = lines.all();
    assert_no_duplicates(&all);
    for instance in 0..3u32 {
        let mine: Vec<(bool, String)> = all
            .iter()
            .filter(|l| l.text.starts_with(&format!("i{instance} ")))
            .map(|l| {
                assert_eq!(l.restart, instance, "{l:?}");
                (l.previous, l.text.clone())
            })
            .collect();
        let mut expected: Vec<(bool, String)> = (0..5)
            .map(|i| (false, format!("i{instance} before {i}")))
            .collect();
        expected.extend((0..3).map(|i| (true, format!("i{instance} last {i}"))));
        assert_eq!(mine, expected, "instance {instance}");
    }
    let fourth: Vec<&Line> = all.iter().filter(|l| l.text == "i3 running").collect();
    assert_eq!(
        (fourth.len(), fourth[0].restart, fourth[0].previous),
        (1, 3, false)
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pods_last_words_are_kept() {
    let sim = living(3).await;
    sim.create(pod(
        "d",
        json!({ "faro-sim.io/log-rate": "20", "faro-sim.io/shutdown-seconds": "5" }),
        json!({ "containers": [{ "name": "app", "image": "app:1" }] }),
    ))
    .unwrap();
    let (controller, lines) = follow(&sim, "logs: {}", options(Duration::from_secs(10))).await;
    running(&sim, "d").await;
    lines
        .wait("some lines", Duration::from_secs(10), |all| all.len() > 10)
        .await;
    sim.delete("v1", "Pod", Some("default"), "d").unwrap();
    lines
        .wait("the shutdown lines", Duration::from_secs(15), |all| {
            all.iter().any(|l| l.text == "app: shutdown complete")
        })
        .await;
    let all = lines.all();
    assert_no_duplicates(&all);
    let texts: Vec<&str> = all.iter().map(|l| l.text.as_str()).collect();
    let n = texts.len();
    assert_eq!(
        &texts[n - 2..],
        [
            "app: received SIGTERM, shutting down",
            "app: shutdown complete"
        ]
    );
    // Every line the container wrote, in order, none twice.
    let seqs: Vec<u64> = texts.iter().filter_map(|t| seq(t)).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    controller.stop().await;
}

/// The `seq=N` of a line the simulated kubelet wrote.
fn seq(text: &str) -> Option<u64> {
    text.split(' ')
        .find_map(|w| w.strip_prefix("seq="))
        .and_then(|n| n.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_streams_and_a_restarted_server_lose_and_repeat_nothing() {
    let sim = living(3).await;
    for name in ["a", "b"] {
        sim.create(pod(
            name,
            json!({ "faro-sim.io/log-rate": "400" }),
            json!({ "containers": [
                { "name": "one", "image": "app:1" },
                { "name": "two", "image": "app:1" },
            ] }),
        ))
        .unwrap();
    }
    let (controller, lines) = follow(&sim, "logs: {}", options(Duration::from_secs(10))).await;
    for name in ["a", "b"] {
        running(&sim, name).await;
    }
    for round in 0..12 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        if round == 6 {
            sim.restart(Duration::from_millis(500));
        } else {
            sim.close_log_follows();
        }
    }
    // Everything the containers wrote until now must arrive, exactly once.
    let snapshot: Vec<(&str, &str, usize)> = ["a", "b"]
        .iter()
        .flat_map(|p| ["one", "two"].map(|c| (*p, c)))
        .map(|(p, c)| (p, c, sim.log("default", p, c).unwrap().len()))
        .collect();
    lines
        .wait("every line written", Duration::from_secs(20), |all| {
            snapshot.iter().all(|(p, c, n)| {
                all.iter()
                    .filter(|l| l.pod == *p && l.container == *c)
                    .count()
                    >= *n
            })
        })
        .await;
    controller.stop().await;
    let all = lines.all();
    assert_no_duplicates(&all);
    let mut total = 0;
    for (p, c, _) in &snapshot {
        let seqs: Vec<u64> = all
            .iter()
            .filter(|l| l.pod == *p && l.container == *c)
            .filter_map(|l| seq(&l.text))
            .collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "{p}/{c}: a gap or a repeat"
        );
        total += seqs.len();
    }
    assert!(total >= 10_000, "only {total} lines");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_pods_share_fifty_streams_and_lose_nothing() {
    let sim = living(8).await;
    for i in 0..500 {
        sim.create(pod(
            &format!("p{i:03}"),
            json!({}),
            json!({ "containers": [{ "name": "app", "image": "app:1" }] }),
        ))
        .unwrap();
    }
    until("500 pods running", Duration::from_secs(60), || {
        sim.list("v1", "Pod", Some("default")).is_ok_and(|items| {
            items
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .count()
                == 500
        })
    })
    .await;
    let (controller, lines) = follow(
        &sim,
        "logs: { max_streams: 50 }",
        options(Duration::from_millis(300)),
    )
    .await;
    for i in 0..500 {
        let name = format!("p{i:03}");
        let text = (0..3).map(|j| format!("{name} line {j}")).collect();
        sim.append_log("default", &name, "app", text).unwrap();
    }
    let mut most = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        most = most.max(sim.log_follows().len());
        let all = lines.all();
        let complete = (0..500).all(|i| {
            let name = format!("p{i:03}");
            let mine = all.iter().filter(|l| l.pod == name).count();
            Some(mine) == sim.log("default", &name, "app").map(|l| l.len())
        });
        if complete {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: {} lines of {} expected",
            all.len(),
            500 * 4
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        most <= 50,
        "{most} log streams open at once; expected at most 50"
    );
    assert!(
        most >= 40,
        "only {most} streams were ever open; the budget is not used"
    );
    let all = lines.all();
    assert_no_duplicates(&all);
    for i in [0, 250, 499] {
        let name = format!("p{i:03}");
        assert_eq!(
            lines.texts(&name, "app"),
            sim.log("default", &name, "app").unwrap()
        );
    }
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_unseen_while_the_stream_was_down_still_loses_and_repeats_nothing() {
    let sim = living(3).await;
    sim.create(pod(
        "u",
        json!({}),
        json!({ "containers": [{ "name": "app", "image": "app:1" }] }),
    ))
    .unwrap();
    let (controller, lines) = follow(&sim, "logs: {}", options(Duration::from_secs(10))).await;
    running(&sim, "u").await;
    sim.append_log("default", "u", "app", vec!["old 1".into(), "old 2".into()])
        .unwrap();
    lines
        .wait("the first lines", Duration::from_secs(10), |all| {
            all.iter().any(|l| l.text == "old 2")
        })
        .await;
    // The pod's status cannot reach Faro for a while: the stream drops, the
    // container writes its last lines and restarts, and the new instance
    // writes. Faro reopens the stream and finds the new instance there.
    sim.freeze_watches(Duration::from_millis(1500));
    tokio::time::sleep(Duration::from_millis(100)).await;
    sim.close_log_follows();
    sim.append_log("default", "u", "app", vec!["old last".into()])
        .unwrap();
    sim.restart_container("default", "u", "app", 1, "Error")
        .unwrap();
    sim.append_log("default", "u", "app", vec!["new 1".into()])
        .unwrap();
    lines
        .wait("the new instance's line", Duration::from_secs(10), |all| {
            all.iter().any(|l| l.text == "new 1")
        })
        .await;
    // Once the status says it restarted, the old instance's last line comes
    // from `previous`, and the new instance goes on where it was.
    lines
        .wait(
            "the old instance's last line",
            Duration::from_secs(10),
            |all| all.iter().any(|l| l.text == "old last"),
        )
        .await;
    sim.append_log("default", "u", "app", vec!["new 2".into()])
        .unwrap();
    lines
        .wait(
            "the new instance's next line",
            Duration::from_secs(10),
            |all| all.iter().any(|l| l.text == "new 2"),
        )
        .await;
    let all = lines.all();
    assert_no_duplicates(&all);
    let texts: Vec<&str> = all
        .iter()
        .map(|l| l.text.as_str())
        .filter(|t| t.starts_with("old") || t.starts_with("new"))
        .collect();
    let count = |t: &str| texts.iter().filter(|x| **x == t).count();
    for t in ["old 1", "old 2", "old last", "new 1", "new 2"] {
        assert_eq!(count(t), 1, "{t} in {texts:?}");
    }
    let last = all.iter().find(|l| l.text == "old last").unwrap();
    assert!(last.previous, "{last:?}");
    controller.stop().await;
}
