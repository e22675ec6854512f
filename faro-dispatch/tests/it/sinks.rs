//! The JSON lines file of the output contract, the text log, and the
//! middleware in front of them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use faro_core::config::{MiddlewareConfig, WorkerSettings};
use faro_core::{EventHandler, EventType, MatchedEvent};
use faro_dispatch::{
    Dispatcher, DispatcherOptions, Handles, JsonLinesSink, ResourceWorker, TextLogSink, WorkerError,
};
use serde_json::{Value, json};

use crate::{event_with, tempdir::TempDir};

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn one_lane(dispatcher: &Dispatcher, worker: Arc<dyn ResourceWorker>) {
    dispatcher
        .register_with(
            worker,
            WorkerSettings {
                lanes: 1,
                ..WorkerSettings::default()
            },
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_follow_the_output_contract() {
    let out = TempDir::new();
    let sink = Arc::new(JsonLinesSink::create(out.path()).unwrap());
    let path = sink.path().to_path_buf();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(path.parent().unwrap().ends_with("logs"));
    assert!(
        name.starts_with("events-")
            && name.ends_with(".json")
            && name.len() == "events-YYYYMMDD-HHMMSS.json".len(),
        "{name}"
    );
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    one_lane(&dispatcher, sink);
    let labelled = json!({"kind": "ConfigMap", "metadata": {"labels": {"app": "web"}, "annotations": {"note": "x"}}});
    dispatcher
        .on_matched(&event_with(
            EventType::Added,
            "v1/configmaps",
            Some("ns"),
            "a",
            7,
            labelled,
        ))
        .await
        .unwrap();
    dispatcher
        .on_matched(&event_with(
            EventType::Updated,
            "v1/namespaces",
            None,
            "team",
            8,
            json!({"kind": "Namespace"}),
        ))
        .await
        .unwrap();
    let gone = MatchedEvent::builder(
        EventType::Deleted,
        Arc::new(faro_core::Gvr::parse("apps/v1/deployments").unwrap()),
        event_with(
            EventType::Deleted,
            "apps/v1/deployments",
            Some("ns"),
            "d",
            9,
            json!({}),
        )
        .object()
        .clone(),
    )
    .observed_at(jiff::Timestamp::from_second(1_800_000_009).unwrap())
    .inferred("5")
    .build();
    dispatcher.on_matched(&gone).await.unwrap();
    // Flushed once the queue is idle, before any shutdown.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at = |s: i64| {
        jiff::Timestamp::from_second(1_800_000_000 + s)
            .unwrap()
            .to_string()
    };
    let expected = [
        json!({"timestamp": at(7), "eventType": "ADDED", "gvr": "v1/configmaps", "namespace": "ns", "name": "a", "uid": "uid-a", "resourceVersion": "7", "labels": {"app": "web"}, "annotations": {"note": "x"}}),
        json!({"timestamp": at(8), "eventType": "UPDATED", "gvr": "v1/namespaces", "name": "team", "uid": "uid-team", "resourceVersion": "8"}),
        json!({"timestamp": at(9), "eventType": "DELETED", "gvr": "apps/v1/deployments", "namespace": "ns", "name": "d", "uid": "uid-d", "resourceVersion": "5", "inferred": true}),
    ];
    assert_eq!(lines(&path), expected);
    dispatcher.shutdown().await;
    assert_eq!(lines(&path), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_line_accepted_before_shutdown_is_lost() {
    let out = TempDir::new();
    let sink = Arc::new(JsonLinesSink::create(out.path()).unwrap());
    let path = sink.path().to_path_buf();
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    one_lane(&dispatcher, sink);
    for rv in 1..=20_000u64 {
        dispatcher
            .on_matched(&crate::event(
                "v1/configmaps",
                "ns",
                &format!("c{}", rv % 50),
                rv,
            ))
            .await
            .unwrap();
    }
    dispatcher.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 20_000);
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        last["resourceVersion"], "20000",
        "lines keep the order of events"
    );
}

/// Keeps the last object it was given.
#[derive(Default)]
struct LastObject(Mutex<Option<Value>>);

#[async_trait]
impl ResourceWorker for LastObject {
    fn name(&self) -> &str {
        "last-object"
    }
    fn handles(&self) -> Handles {
        Handles::All
    }
    async fn handle(&self, event: &MatchedEvent) -> Result<(), WorkerError> {
        *self.0.lock().unwrap() = Some(serde_json::to_value(event.object().as_ref()).unwrap());
        Ok(())
    }
}

const SECRET_VALUE: &str = "c3VwZXItc2VjcmV0LXBhc3N3b3Jk";

fn secret() -> Value {
    let manifest = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "ns"}, "data": {"password": SECRET_VALUE}});
    json!({
        "kind": "Secret",
        "metadata": {
            "annotations": { "kubectl.kubernetes.io/last-applied-configuration": manifest.to_string() },
            "managedFields": [{ "manager": "kubectl", "operation": "Apply" }]
        },
        "data": { "password": SECRET_VALUE },
        "stringData": { "token": "plain-text-token" }
    })
}

async fn run_secret(redact: bool) -> (String, Value) {
    let out = TempDir::new();
    let sink = Arc::new(JsonLinesSink::create(out.path()).unwrap());
    let path = sink.path().to_path_buf();
    let dispatcher = Dispatcher::new(DispatcherOptions {
        middleware: MiddlewareConfig {
            redact_secrets: redact,
            drop_managed_fields: true,
        },
        ..DispatcherOptions::default()
    });
    let last = Arc::new(LastObject::default());
    one_lane(&dispatcher, sink);
    dispatcher.register_arc(last.clone()).unwrap();
    dispatcher
        .on_matched(&event_with(
            EventType::Added,
            "v1/secrets",
            Some("ns"),
            "db",
            3,
            secret(),
        ))
        .await
        .unwrap();
    dispatcher.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let object = last.0.lock().unwrap().clone().unwrap();
    (text, object)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_never_reach_the_file_unless_redaction_is_off() {
    let (text, object) = run_secret(true).await;
    assert!(!text.contains(SECRET_VALUE), "{text}");
    assert!(!text.contains("plain-text-token"), "{text}");
    assert_eq!(object["data"], json!({"password": "<redacted>"}));
    assert_eq!(object["stringData"], json!({"token": "<redacted>"}));
    assert_eq!(
        object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "<redacted>"
    );
    assert!(
        object["metadata"].get("managedFields").is_none(),
        "managedFields dropped"
    );

    let (text, object) = run_secret(false).await;
    assert!(
        text.contains(SECRET_VALUE),
        "with redaction off the annotation is written as is"
    );
    assert_eq!(object["data"], json!({"password": SECRET_VALUE}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_log_writes_one_readable_line_per_event() {
    let out = TempDir::new();
    let file = out.path().join("events.log");
    let sink = TextLogSink::new(Box::new(std::fs::File::create(&file).unwrap()));
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    one_lane(&dispatcher, Arc::new(sink));
    dispatcher
        .on_matched(&crate::event("v1/configmaps", "ns", "app", 42))
        .await
        .unwrap();
    dispatcher.shutdown().await;
    let at = jiff::Timestamp::from_second(1_800_000_042).unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{at} ADDED   v1/configmaps ns/app rv=42\n")
    );
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    /// `None`, after saying why, where mounting is not allowed (not root).
    fn mount(size: &str) -> Option<Self> {
        let dir = TempDir::new();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            eprintln!(
                "SKIPPED: mounting a {size} tmpfs needs root; this test fills a small filesystem"
            );
            return None;
        }
        Some(Self { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a lane of a failed test may still hold the file open.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_never_gets_a_partial_line_and_loses_nothing() {
    let Some(disk) = SmallDisk::mount("1m") else {
        return;
    };
    // Most of the space is taken, so the events do not fit until it is freed.
    let filler = disk.dir.path().join("filler");
    std::fs::write(&filler, vec![b'x'; 900 * 1024]).unwrap();
    let sink = Arc::new(JsonLinesSink::at(disk.dir.path().join("events.json")).unwrap());
    let path = sink.path().to_path_buf();
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    one_lane(&dispatcher, sink.clone());
    let whole_lines = |text: &str| {
        text.is_empty()
            || (text.ends_with('\n')
                && text
                    .lines()
                    .all(|l| serde_json::from_str::<Value>(l).is_ok()))
    };
    const EVENTS: u64 = 3_000;
    for rv in 1..=EVENTS {
        dispatcher
            .on_matched(&crate::event(
                "v1/configmaps",
                "ns",
                &format!("config-{rv}"),
                rv,
            ))
            .await
            .unwrap();
        if rv % 500 == 0 {
            // The lane may be writing now: only the tail may be unfinished.
            let text = std::fs::read_to_string(&path).unwrap();
            let settled = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
            assert!(whole_lines(settled), "a broken line in the file");
        }
    }
    dispatcher.wait_idle().await;
    assert!(!sink.healthy(), "the disk is full");
    assert!(sink.write_failures() > 0);
    // An idle retry may be writing now: only the tail may be unfinished.
    let text = std::fs::read_to_string(&path).unwrap();
    let before = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    assert!(whole_lines(before));
    let (a, u, d) = sink.written();
    assert_eq!(
        a + u + d,
        before.lines().count() as u64,
        "the count is the file's"
    );
    assert!(before.lines().count() < EVENTS as usize, "some lines wait");

    // Space returns: the lines that waited are written, by the idle lane's retries alone.
    std::fs::remove_file(&filler).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !sink.healthy() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "writing did not resume"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dispatcher.shutdown().await;
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(whole_lines(&after));
    let names: Vec<String> = after
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let expected: Vec<String> = (1..=EVENTS).map(|rv| format!("config-{rv}")).collect();
    assert_eq!(names, expected, "every event once, in order");
    let (a, u, d) = sink.written();
    assert_eq!(a + u + d, EVENTS);
}

/// Records the log lines it is given, per container.
#[derive(Default)]
struct LogWorker {
    seen: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl ResourceWorker for LogWorker {
    fn name(&self) -> &str {
        "log-worker"
    }
    fn handles(&self) -> Handles {
        Handles::Only(Vec::new())
    }
    async fn handle(&self, _event: &MatchedEvent) -> Result<(), WorkerError> {
        panic!("a logs-only worker got a resource event");
    }
    fn wants_logs(&self) -> bool {
        true
    }
    async fn handle_log(&self, record: &faro_core::LogRecord) -> Result<(), WorkerError> {
        // Uneven handling times shuffle lanes against each other.
        if record.line().ends_with('7') {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.seen.lock().unwrap().push((
            record.source().container.to_string(),
            record.line().to_owned(),
        ));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_reach_the_container_logs_file_and_log_workers_only_in_container_order() {
    let out = TempDir::new();
    let events = Arc::new(JsonLinesSink::create(out.path()).unwrap());
    let logs = Arc::new(faro_dispatch::ContainerLogsSink::create(out.path()).unwrap());
    let worker = Arc::new(LogWorker::default());
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    one_lane(&dispatcher, events.clone());
    dispatcher.register_arc(logs.clone()).unwrap();
    dispatcher.register_arc(worker.clone()).unwrap();
    let containers: Vec<faro_core::LogRecord> = (0..6)
        .map(|c| crate::log_line(&format!("c{c}"), "x"))
        .collect();
    for i in 0..200 {
        for c in &containers {
            let record = faro_core::LogRecord::builder(
                c.source().clone(),
                0,
                "2026-12-01T10:00:00Z",
                &format!("line {i}"),
            )
            .build();
            dispatcher.on_log(&record).await.unwrap();
        }
    }
    dispatcher
        .on_matched(&event_with(
            EventType::Added,
            "v1/configmaps",
            Some("default"),
            "cm",
            1,
            json!({}),
        ))
        .await
        .unwrap();
    dispatcher.shutdown().await;
    assert_eq!(
        events.written(),
        (1, 0, 0),
        "the events file has events only"
    );
    assert_eq!(logs.written(), 1200);
    let name = logs
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("container-logs-") && name.ends_with(".json"),
        "{name}"
    );
    let records = lines(logs.path());
    assert_eq!(records.len(), 1200);
    assert!(
        records
            .iter()
            .all(|r| r["kind"] == "log" && r["pod"] == "web-1")
    );
    for c in 0..6 {
        let container = format!("c{c}");
        let in_file: Vec<&str> = records
            .iter()
            .filter(|r| r["container"] == container.as_str())
            .map(|r| r["line"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (0..200).map(|i| format!("line {i}")).collect();
        assert_eq!(in_file, expected, "{container} in the file");
        let seen: Vec<String> = worker
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k == container)
            .map(|(_, l)| l.clone())
            .collect();
        assert_eq!(seen, expected, "{container} at the worker");
    }
}
