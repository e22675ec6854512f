//! The real plugins of `plugins/`, loaded from `.so` files: routing,
//! containment of panics, refusals, and the example plugins' output.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use faro_core::config::WorkerSettings;
use faro_core::{EventHandler, EventType};
use faro_dispatch::{Dispatcher, DispatcherOptions, ResourceWorker, load, load_directory};
use serde_json::{Value, json};

use crate::{configs, event, event_with, plugin_dir, plugin_path, send_pods, tempdir::TempDir};

/// Loads plugin `name` from `dir` with `config`.
fn load_from(dir: &TempDir, name: &str, config: Value) -> faro_dispatch::PluginWorker {
    load(
        &plugin_path(dir, name),
        &[dir.path().to_path_buf()],
        Some(&config),
        16,
    )
    .unwrap()
}

fn read_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_are_routed_by_their_manifest_gvrs() {
    let dir = plugin_dir(&["pod-lifecycle", "test-panic"]);
    let out = TempDir::new();
    let pods_out = out.path().join("pods.jsonl");
    let all_out = out.path().join("all.txt");
    let (plugins, errors) = load_directory(
        dir.path(),
        &configs(&[
            ("pod-lifecycle", json!({ "output": pods_out })),
            ("test-panic", json!({ "output": all_out })),
        ]),
        16,
    );
    assert!(errors.is_empty(), "{errors:?}");
    let names: Vec<&str> = plugins.iter().map(|p| p.manifest().name.as_str()).collect();
    assert_eq!(names, ["pod-lifecycle", "test-panic"]);
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    for p in plugins {
        dispatcher.register(p).unwrap();
    }
    for (i, (gvr, name)) in [
        ("v1/configmaps", "c1"),
        ("v1/pods", "p1"),
        ("apps/v1/deployments", "d1"),
    ]
    .iter()
    .enumerate()
    {
        dispatcher
            .on_matched(&event(gvr, "ns", name, i as u64 + 1))
            .await
            .unwrap();
    }
    dispatcher.shutdown().await;
    let pods: Vec<String> = read_lines(&pods_out)
        .iter()
        .map(|l| l["pod"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pods, ["ns/p1"], "pod-lifecycle sees pods only");
    // Different objects go through parallel lanes: compare as a set.
    let mut all: Vec<String> = std::fs::read_to_string(&all_out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    all.sort();
    assert_eq!(
        all,
        ["ADDED c1", "ADDED d1", "ADDED p1"],
        "an all-GVR plugin sees everything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_plugin_is_contained_counted_and_quarantined() {
    let dir = plugin_dir(&["test-panic"]);
    let out = TempDir::new();
    let seen = out.path().join("seen.txt");
    let plugin = load_from(&dir, "test-panic", json!({ "output": seen }));
    let dispatcher = Dispatcher::new(DispatcherOptions {
        quarantine_after: 2,
        ..DispatcherOptions::default()
    });
    dispatcher
        .register_with(
            Arc::new(plugin),
            WorkerSettings {
                lanes: 1,
                ..WorkerSettings::default()
            },
        )
        .unwrap();
    let names = ["a", "panic-1", "b", "panic-2", "panic-3", "c"];
    send_pods(&dispatcher, &names).await;
    dispatcher.shutdown().await;
    // The host is alive, the plugin handled what came between its panics,
    // and two panics in a row quarantined it before "c".
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "ADDED a\nADDED b\n"
    );
    let panics = dispatcher
        .metrics()
        .panics
        .get_or_create(&[("worker", "test-panic".to_owned())])
        .get();
    assert_eq!(panics, 3);
    assert!(dispatcher.is_quarantined("test-panic"));
}

#[test]
fn a_wrong_abi_plugin_is_refused_before_anything_else_runs() {
    let dir = plugin_dir(&["test-wrong-abi"]);
    let path = plugin_path(&dir, "test-wrong-abi");
    let err = load(&path, &[dir.path().to_path_buf()], None, 16).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "plugin {}: plugin ABI 2, this Faro speaks 1",
            path.display()
        )
    );
}

#[test]
fn a_world_or_group_writable_plugin_is_refused() {
    let dir = plugin_dir(&["test-panic"]);
    let path = plugin_path(&dir, "test-panic");
    for (mode, who) in [(0o777, "world"), (0o775, "group")] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = load(&path, &[dir.path().to_path_buf()], None, 16).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "plugin {}: refused: the file is {who}-writable (mode {mode:o}); expected no write permission for group or others",
                path.display()
            )
        );
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = load(&path, &[dir.path().to_path_buf()], None, 16).unwrap_err();
    assert!(
        err.to_string().contains("its directory is world-writable"),
        "{err}"
    );
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_plugin_outside_the_configured_directories_is_refused() {
    let dir = plugin_dir(&["test-panic"]);
    let elsewhere = TempDir::new();
    let err = load(
        &plugin_path(&dir, "test-panic"),
        &[elsewhere.path().to_path_buf()],
        None,
        16,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("not inside a plugin directory"),
        "{err}"
    );
}

#[test]
fn a_plugin_refusing_its_configuration_is_reported() {
    let dir = plugin_dir(&["pod-lifecycle"]);
    let path = plugin_path(&dir, "pod-lifecycle");
    let err = load(&path, &[dir.path().to_path_buf()], Some(&json!({})), 16).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "plugin {}: init failed with status 1: output: missing; expected the path of the JSON lines file to write",
            path.display()
        )
    );
}

fn pod(phase: &str, restarts: i64, uid: &str) -> Value {
    json!({
        "kind": "Pod",
        "metadata": { "uid": uid },
        "status": { "phase": phase, "containerStatuses": [
            { "name": "app", "restartCount": restarts },
            { "name": "sidecar", "restartCount": 0 }
        ]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_lifecycle_writes_one_line_per_transition() {
    let dir = plugin_dir(&["pod-lifecycle"]);
    let out = TempDir::new();
    let file = out.path().join("pods.jsonl");
    let plugin = load_from(&dir, "pod-lifecycle", json!({ "output": file }));
    assert_eq!(plugin.name(), "pod-lifecycle");
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    dispatcher.register(plugin).unwrap();
    use EventType::{Added, Deleted, Updated};
    // The events' observed times are 1_800_000_000 + rv seconds.
    let script = [
        (Added, "web", 10, pod("Pending", 0, "u1")),
        (Updated, "web", 15, pod("Running", 0, "u1")),
        (Updated, "web", 16, pod("Running", 0, "u1")),
        (Updated, "web", 45, pod("Running", 1, "u1")),
        (Updated, "web", 100, pod("Succeeded", 1, "u1")),
        (Deleted, "web", 130, pod("Succeeded", 1, "u1")),
        (Added, "db", 131, pod("Running", 0, "u2")),
    ];
    for (t, name, rv, object) in script {
        dispatcher
            .on_matched(&event_with(t, "v1/pods", Some("shop"), name, rv, object))
            .await
            .unwrap();
    }
    dispatcher.shutdown().await;
    let at = |rv: i64| {
        jiff::Timestamp::from_second(1_800_000_000 + rv)
            .unwrap()
            .to_string()
    };
    // Pods go through parallel lanes, each pod's lines in order: compare per pod.
    let mut lines = read_lines(&file);
    lines.sort_by_key(|l| l["pod"].as_str() == Some("shop/db"));
    assert_eq!(
        lines,
        [
            json!({"timestamp": at(10), "pod": "shop/web", "uid": "u1", "transition": "created", "from": null, "to": "Pending", "secondsInPrevious": null}),
            json!({"timestamp": at(15), "pod": "shop/web", "uid": "u1", "transition": "phase", "from": "Pending", "to": "Running", "secondsInPrevious": 5.0}),
            json!({"timestamp": at(45), "pod": "shop/web", "uid": "u1", "transition": "restart", "container": "app", "restartCount": 1, "phase": "Running"}),
            json!({"timestamp": at(100), "pod": "shop/web", "uid": "u1", "transition": "phase", "from": "Running", "to": "Succeeded", "secondsInPrevious": 85.0}),
            json!({"timestamp": at(130), "pod": "shop/web", "uid": "u1", "transition": "deleted", "from": "Succeeded", "to": null, "secondsInPrevious": 30.0}),
            json!({"timestamp": at(131), "pod": "shop/db", "uid": "u2", "transition": "created", "from": null, "to": "Running", "secondsInPrevious": null}),
        ]
    );
}

fn cm(data: Value) -> Value {
    json!({ "kind": "ConfigMap", "data": data })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_audit_writes_added_removed_and_changed_keys() {
    let dir = plugin_dir(&["configmap-audit"]);
    let out = TempDir::new();
    let file = out.path().join("audit.jsonl");
    let plugin = load_from(&dir, "configmap-audit", json!({ "output": file }));
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    dispatcher.register(plugin).unwrap();
    use EventType::{Added, Deleted, Updated};
    let script = [
        (Added, 1, cm(json!({"a": "1", "b": "2"}))),
        (Updated, 2, cm(json!({"a": "1", "b": "3", "c": "4"}))),
        (Updated, 3, cm(json!({"a": "1", "b": "3", "c": "4"}))),
        (Updated, 4, cm(json!({"c": "4"}))),
        (Deleted, 5, cm(json!({"c": "4"}))),
    ];
    for (t, rv, object) in script {
        dispatcher
            .on_matched(&event_with(
                t,
                "v1/configmaps",
                Some("app"),
                "settings",
                rv,
                object,
            ))
            .await
            .unwrap();
    }
    dispatcher.shutdown().await;
    let at = |rv: i64| {
        jiff::Timestamp::from_second(1_800_000_000 + rv)
            .unwrap()
            .to_string()
    };
    assert_eq!(
        read_lines(&file),
        [
            json!({"timestamp": at(1), "configMap": "app/settings", "event": "ADDED", "resourceVersion": "1", "added": ["a", "b"], "removed": [], "changed": []}),
            json!({"timestamp": at(2), "configMap": "app/settings", "event": "UPDATED", "resourceVersion": "2", "added": ["c"], "removed": [], "changed": ["b"]}),
            json!({"timestamp": at(4), "configMap": "app/settings", "event": "UPDATED", "resourceVersion": "4", "added": [], "removed": ["a", "b"], "changed": []}),
            json!({"timestamp": at(5), "configMap": "app/settings", "event": "DELETED", "resourceVersion": "5", "added": [], "removed": ["c"], "changed": []}),
        ]
    );
}
