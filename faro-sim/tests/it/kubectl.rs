//! kubectl, a client written elsewhere, drives faro-sim as it would a real server.

use std::process::Stdio;
use std::time::Duration;

use crate::{Kubectl, eventually, manifest, start};

const WORKLOAD: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm1
  namespace: demo
  labels: {app: web}
data: {a: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm2, namespace: demo}
data: {b: "2"}
---
apiVersion: v1
kind: Secret
metadata: {name: s1, namespace: demo}
stringData: {password: hunter2}
---
apiVersion: v1
kind: Service
metadata: {name: svc1, namespace: demo}
spec: {ports: [{port: 80}], selector: {app: web}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: job1, namespace: demo}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: j, image: busybox}]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_label_annotate_patch_replace_delete() {
    let sim = start().await;
    let Some(k) = Kubectl::find(&sim) else { return };
    let file = manifest("workload.yaml", WORKLOAD);
    let file = file.to_str().unwrap();

    let created = k.ok(&["create", "-f", file, "--validate=false"]);
    for line in [
        "namespace/demo created",
        "configmap/cm1 created",
        "configmap/cm2 created",
        "secret/s1 created",
        "service/svc1 created",
        "deployment.apps/web created",
        "job.batch/job1 created",
    ] {
        assert!(created.contains(line), "missing {line:?} in {created}");
    }
    let again = k.run(&["create", "-f", file, "--validate=false"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains(r#"configmaps "cm1" already exists"#));

    // apply over what create made: nothing changed is "unchanged", a change is "configured".
    let applied = k.ok(&["apply", "-f", file, "--validate=false"]);
    assert!(
        applied.contains("configmap/cm1 configured") || applied.contains("configmap/cm1 unchanged"),
        "{applied}"
    );
    let changed = manifest(
        "apply.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm2, namespace: demo}\ndata: {b: '3'}\n",
    );
    let applied = k.ok(&["apply", "-f", changed.to_str().unwrap(), "--validate=false"]);
    assert_eq!(applied.trim(), "configmap/cm2 configured");
    assert_eq!(
        k.json(&["get", "cm", "cm2", "-n", "demo"])["data"]["b"],
        "3"
    );
    let applied = k.ok(&["apply", "-f", changed.to_str().unwrap(), "--validate=false"]);
    assert_eq!(applied.trim(), "configmap/cm2 unchanged");

    let namespaces = k.ok(&["get", "ns"]);
    for ns in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "demo",
    ] {
        assert!(
            namespaces.lines().any(|l| l.starts_with(&format!("{ns} "))),
            "{ns} in {namespaces}"
        );
    }
    // What a real cluster's controllers add to a new namespace.
    let cms = k.ok(&["get", "cm", "-n", "demo"]);
    assert!(
        cms.contains("kube-root-ca.crt") && cms.contains("cm1"),
        "{cms}"
    );
    assert!(k.ok(&["get", "sa", "-n", "demo"]).contains("default"));

    let cm = k.json(&["get", "cm", "cm1", "-n", "demo"]);
    assert_eq!(cm["metadata"]["labels"]["app"], "web");
    assert_eq!(cm["data"]["a"], "1");
    let rv1: u64 = cm["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(!cm["metadata"]["uid"].as_str().unwrap().is_empty());

    assert_eq!(
        k.ok(&["label", "cm", "cm1", "-n", "demo", "tier=front"])
            .trim(),
        "configmap/cm1 labeled"
    );
    assert_eq!(
        k.ok(&["annotate", "cm", "cm1", "-n", "demo", "note=hi"])
            .trim(),
        "configmap/cm1 annotated"
    );
    assert_eq!(
        k.ok(&[
            "patch",
            "cm",
            "cm1",
            "-n",
            "demo",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"b":"2"}}"#
        ])
        .trim(),
        "configmap/cm1 patched"
    );
    let cm = k.json(&["get", "cm", "cm1", "-n", "demo"]);
    assert_eq!(cm["metadata"]["labels"]["tier"], "front");
    assert_eq!(cm["metadata"]["annotations"]["note"], "hi");
    assert_eq!(cm["data"], serde_json::json!({"a": "1", "b": "2"}));
    let rv2: u64 = cm["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1, "resourceVersion moves forward");

    let mut replaced = cm.clone();
    replaced["data"]["c"] = "3".into();
    let file = manifest("cm1.json", &replaced.to_string());
    assert_eq!(
        k.ok(&["replace", "-f", file.to_str().unwrap(), "--validate=false"])
            .trim(),
        "configmap/cm1 replaced"
    );
    assert_eq!(
        k.json(&["get", "cm", "cm1", "-n", "demo"])["data"]["c"],
        "3"
    );
    // The same replace again carries a stale resourceVersion: 409 Conflict.
    let stale = k.fails(&["replace", "-f", file.to_str().unwrap(), "--validate=false"]);
    assert!(stale.contains("the object has been modified"), "{stale}");

    assert_eq!(
        k.ok(&["delete", "cm", "cm2", "-n", "demo"]).trim(),
        r#"configmap "cm2" deleted"#
    );
    let gone = k.fails(&["get", "cm", "cm2", "-n", "demo"]);
    assert!(gone.contains(r#"configmaps "cm2" not found"#), "{gone}");

    let deploy = k.json(&["get", "deploy", "web", "-n", "demo"]);
    assert_eq!(deploy["metadata"]["generation"], 1);
    assert_eq!(deploy["kind"], "Deployment");
    assert_eq!(
        k.json(&["get", "job", "job1", "-n", "demo"])["apiVersion"],
        "batch/v1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_through_raw_and_api_resources() {
    let sim = start().await;
    let Some(k) = Kubectl::find(&sim) else { return };
    let apis: serde_json::Value = serde_json::from_str(&k.ok(&["get", "--raw", "/apis"])).unwrap();
    assert_eq!(apis["kind"], "APIGroupList");
    let groups: Vec<&str> = apis["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in ["apps", "batch", "events.k8s.io", "apiextensions.k8s.io"] {
        assert!(groups.contains(&g), "{g} in {groups:?}");
    }
    let core: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "--raw", "/api/v1"])).unwrap();
    let pods_log = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "pods/log");
    assert!(pods_log, "pods/log subresource is discovered");

    let table = k.ok(&["api-resources"]);
    let row = |name: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} in {table}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        row("configmaps"),
        ["configmaps", "cm", "v1", "true", "ConfigMap"]
    );
    assert_eq!(
        row("namespaces"),
        ["namespaces", "ns", "v1", "false", "Namespace"]
    );
    assert_eq!(
        row("deployments"),
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    assert_eq!(
        row("cronjobs"),
        ["cronjobs", "cj", "batch/v1", "true", "CronJob"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_in_the_background_sees_added_modified_deleted() {
    let sim = start().await;
    let Some(k) = Kubectl::find(&sim) else { return };
    let out = manifest("watch.out", "");
    let mut watcher = k
        .command(&[
            "get",
            "cm",
            "-n",
            "default",
            "-w",
            "-o",
            "json",
            "--output-watch-events",
        ])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The watch is open once faro-sim lists it.
    assert!(eventually(Duration::from_secs(10), || !sim.watches().is_empty()).await);

    let cm = manifest(
        "w.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched, namespace: default}\ndata: {a: '1'}\n",
    );
    k.ok(&["create", "-f", cm.to_str().unwrap(), "--validate=false"]);
    k.ok(&[
        "patch",
        "cm",
        "watched",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ]);
    k.ok(&["delete", "cm", "watched"]);

    let types = || -> Vec<String> {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let stream = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
        stream
            .filter_map(Result::ok)
            .filter(|e| e["object"]["metadata"]["name"] == "watched")
            .map(|e| e["type"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let seen = eventually(Duration::from_secs(10), || types().len() >= 3).await;
    watcher.kill().ok();
    watcher.wait().ok();
    assert!(seen, "events seen: {:?}", types());
    assert_eq!(types(), ["ADDED", "MODIFIED", "DELETED"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_and_previous() {
    let sim = start().await;
    let Some(k) = Kubectl::find(&sim) else { return };
    let pod = manifest(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p1, namespace: default}\nspec: {containers: [{name: app, image: busybox}, {name: side, image: busybox}]}\n",
    );
    k.ok(&["create", "-f", pod.to_str().unwrap(), "--validate=false"]);
    sim.append_log("default", "p1", "app", vec!["hello".into(), "world".into()])
        .unwrap();
    assert_eq!(k.ok(&["logs", "p1", "-c", "app"]), "hello\nworld\n");
    assert_eq!(k.ok(&["logs", "p1", "-c", "app", "--tail", "1"]), "world\n");
    let stamped = k.ok(&["logs", "p1", "-c", "app", "--timestamps"]);
    assert!(
        stamped.lines().all(|l| l.len() > 30 && l.contains("Z ")),
        "{stamped}"
    );
    let none = k.fails(&["logs", "p1", "-c", "app", "--previous"]);
    assert!(
        none.contains(r#"previous terminated container "app" in pod "p1" not found"#),
        "{none}"
    );

    // Follow: lines appended later arrive on the open stream.
    let out = manifest("follow.out", "");
    let mut follower = k
        .command(&["logs", "-f", "p1", "-c", "app"])
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || std::fs::read_to_string(&out)
            .unwrap_or_default()
            == "hello\nworld\n")
        .await
    );
    sim.append_log("default", "p1", "app", vec!["later".into()])
        .unwrap();
    let followed = eventually(Duration::from_secs(10), || {
        std::fs::read_to_string(&out).unwrap_or_default() == "hello\nworld\nlater\n"
    })
    .await;
    // A restart ends the followed stream, as the kubelet does.
    sim.restart_container("default", "p1", "app", 137, "OOMKilled")
        .unwrap();
    let ended = tokio::task::spawn_blocking(move || follower.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(followed, "followed: {:?}", std::fs::read_to_string(&out));
    assert!(ended.success());

    sim.append_log("default", "p1", "app", vec!["after restart".into()])
        .unwrap();
    assert_eq!(
        k.ok(&["logs", "p1", "-c", "app", "--previous"]),
        "hello\nworld\nlater\n"
    );
    assert_eq!(k.ok(&["logs", "p1", "-c", "app"]), "after restart\n");
    let status = k.json(&["get", "pod", "p1"]);
    let app = &status["status"]["containerStatuses"][0];
    assert_eq!(app["restartCount"], 1);
    assert_eq!(app["lastState"]["terminated"]["reason"], "OOMKilled");
    assert_eq!(app["lastState"]["terminated"]["exitCode"], 137);
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_lifecycle() {
    let sim = start().await;
    let Some(k) = Kubectl::find(&sim) else { return };
    let crd = manifest("crd.yaml", CRD);
    assert_eq!(
        k.ok(&["create", "-f", crd.to_str().unwrap(), "--validate=false"])
            .trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"
    );
    k.ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=10s",
        "crd/widgets.example.com",
    ]);
    assert!(
        k.ok(&["api-resources", "--api-group", "example.com"])
            .contains("Widget")
    );

    let cr = manifest(
        "widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: default}\nspec: {size: 3}\n",
    );
    assert_eq!(
        k.ok(&["create", "-f", cr.to_str().unwrap(), "--validate=false"])
            .trim(),
        "widget.example.com/w1 created"
    );
    let list = k.json(&["get", "widgets"]);
    assert_eq!(list["items"][0]["spec"]["size"], 3);
    assert!(k.ok(&["get", "wd"]).contains("w1"));
    assert_eq!(
        k.ok(&["delete", "widget", "w1"]).trim(),
        r#"widget.example.com "w1" deleted"#
    );
    assert!(k.ok(&["get", "widgets", "-o", "name"]).trim().is_empty());

    k.ok(&["delete", "crd", "widgets.example.com"]);
    // kubectl may still hold "widgets" in its discovery cache; either way the
    // resource is no longer served.
    let err = k.fails(&["get", "widgets"]);
    assert!(
        err.contains("the server doesn't have a resource type \"widgets\"")
            || err.contains("the server could not find the requested resource"),
        "{err}"
    );
    assert!(!k.ok(&["get", "--raw", "/apis"]).contains("example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_deletion_terminates_then_removes_its_contents() {
    let sim = start().await;
    let Some(k) = Kubectl::find(&sim) else { return };
    let file = manifest(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: doomed}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: doomed}\n",
    );
    k.ok(&["create", "-f", file.to_str().unwrap(), "--validate=false"]);
    assert_eq!(
        k.ok(&["delete", "ns", "doomed"]).trim(),
        r#"namespace "doomed" deleted"#
    );
    assert!(
        k.fails(&["get", "ns", "doomed"])
            .contains(r#"namespaces "doomed" not found"#)
    );
    assert!(
        k.fails(&["get", "cm", "c", "-n", "doomed"])
            .contains("not found")
    );
}
