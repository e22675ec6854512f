//! kubectl against the living cluster: imperative commands (protobuf
//! bodies), `apply` with the server doing validation, rollouts, scaling,
//! Events and logs.

use std::time::Duration;

use serde_json::Value;

use crate::{Kubectl, eventually, living, manifest};

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imperative_commands_send_protobuf_and_work() {
    let sim = living(10.0).await;
    let Some(k) = Kubectl::find(&sim) else { return };
    let steps: &[(&[&str], &str)] = &[
        (&["create", "namespace", "shop"], "namespace/shop created\n"),
        (
            &[
                "-n",
                "shop",
                "create",
                "configmap",
                "web",
                "--from-literal=a=b",
            ],
            "configmap/web created\n",
        ),
        (
            &[
                "-n",
                "shop",
                "create",
                "secret",
                "generic",
                "pw",
                "--from-literal=p=s3cret",
            ],
            "secret/pw created\n",
        ),
        (
            &[
                "-n",
                "shop",
                "create",
                "deployment",
                "web",
                "--image=nginx:1.27",
                "--replicas=2",
                "--port=80",
            ],
            "deployment.apps/web created\n",
        ),
        (
            &["-n", "shop", "create", "job", "once", "--image=busybox:1"],
            "job.batch/once created\n",
        ),
        (
            &[
                "-n",
                "shop",
                "create",
                "cronjob",
                "tick",
                "--image=busybox:1",
                "--schedule=*/5 * * * *",
            ],
            "cronjob.batch/tick created\n",
        ),
        (
            &[
                "-n",
                "shop",
                "create",
                "service",
                "clusterip",
                "db",
                "--tcp=5432:5432",
            ],
            "service/db created\n",
        ),
        (
            &[
                "-n",
                "shop",
                "run",
                "solo",
                "--image=busybox:1",
                "--labels=app=solo",
            ],
            "pod/solo created\n",
        ),
        (
            &[
                "-n",
                "shop",
                "expose",
                "deployment",
                "web",
                "--name=web-svc",
                "--port=80",
            ],
            "service/web-svc exposed\n",
        ),
        (
            &["-n", "shop", "scale", "deployment", "web", "--replicas=3"],
            "deployment.apps/web scaled\n",
        ),
        (
            &["-n", "shop", "label", "deployment", "web", "tier=front"],
            "deployment.apps/web labeled\n",
        ),
        (
            &[
                "-n",
                "shop",
                "annotate",
                "deployment",
                "web",
                "owner=team-a",
            ],
            "deployment.apps/web annotated\n",
        ),
        (
            &[
                "-n",
                "shop",
                "set",
                "image",
                "deployment/web",
                "nginx=nginx:1.28",
            ],
            "deployment.apps/web image updated\n",
        ),
        (
            &["-n", "shop", "rollout", "restart", "deployment/web"],
            "deployment.apps/web restarted\n",
        ),
    ];
    for (args, expected) in steps {
        assert_eq!(&k.ok(args), expected, "kubectl {args:?}");
    }
    // What was created is what the commands asked for.
    let secret = k.json(&["-n", "shop", "get", "secret", "pw"]);
    assert_eq!(secret["data"]["p"], "czNjcmV0");
    let cm = k.json(&["-n", "shop", "get", "configmap", "web"]);
    assert_eq!(cm["data"]["a"], "b");
    let d = k.json(&["-n", "shop", "get", "deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["labels"]["tier"], "front");
    assert_eq!(d["metadata"]["annotations"]["owner"], "team-a");
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.28");
    assert_eq!(
        container["ports"][0]["containerPort"], 80,
        "set image kept the port"
    );
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
    let svc = k.json(&["-n", "shop", "get", "service", "web-svc"]);
    assert_eq!(svc["spec"]["selector"]["app"], "web");
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.96.")
    );
    let cj = k.json(&["-n", "shop", "get", "cronjob", "tick"]);
    assert_eq!(cj["spec"]["schedule"], "*/5 * * * *");
    let solo = k.json(&["-n", "shop", "get", "pod", "solo"]);
    assert_eq!(solo["metadata"]["labels"]["app"], "solo");
    // The rollout settles on one ReplicaSet with three pods.
    k.ok(&[
        "-n",
        "shop",
        "rollout",
        "status",
        "deployment/web",
        "--timeout=60s",
    ]);
    assert_eq!(
        k.ok(&["-n", "shop", "delete", "deployment", "web"]),
        "deployment.apps \"web\" deleted\n"
    );
    assert!(
        eventually(Duration::from_secs(20), || names(&k.json(&[
            "-n",
            "shop",
            "get",
            "replicasets"
        ]))
        .is_empty())
        .await,
        "the deployment's ReplicaSets are collected"
    );
}

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}, annotations: {faro-sim.io/log-rate: "20"}}
    spec:
      containers: [{name: app, image: "nginx:1.27", ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 80}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: default}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: migrate, image: "tool:1"}]}}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: default}
spec:
  schedule: "0 * * * *"
  jobTemplate: {spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: r, image: "tool:1"}]}}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: crash
  namespace: default
  annotations: {faro-sim.io/exit-after: "2s", faro-sim.io/exit-code: "1", faro-sim.io/log-rate: "5"}
spec: {containers: [{name: app, image: "app:1"}]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_rollout_scale_restart_events_and_logs() {
    let sim = living(10.0).await;
    let Some(k) = Kubectl::find(&sim) else { return };
    let file = manifest("app.yaml", APP);
    let file = file.to_str().unwrap();
    assert_eq!(
        k.ok(&["apply", "-f", file]),
        "deployment.apps/web created\nservice/web created\njob.batch/migrate created\ncronjob.batch/report created\npod/crash created\n"
    );
    assert_eq!(
        k.ok(&["apply", "-f", file]),
        "deployment.apps/web unchanged\nservice/web unchanged\njob.batch/migrate unchanged\ncronjob.batch/report unchanged\npod/crash unchanged\n"
    );
    // The server validates: an unknown field is refused as strict decoding does.
    let bad = manifest(
        "bad.yaml",
        &APP.replacen("replicas: 2", "replicas: 2\n  replica: 3", 1),
    );
    let refused = k.fails(&["apply", "-f", bad.to_str().unwrap()]);
    assert!(
        refused.contains(r#"strict decoding error: unknown field "spec.replica""#),
        "{refused}"
    );
    let rollout = k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(
        rollout.ends_with("deployment \"web\" successfully rolled out\n"),
        "{rollout}"
    );

    let rs_before = names(&k.json(&["get", "replicasets"]));
    assert_eq!(rs_before.len(), 1);
    let pods_before = names(&k.json(&["get", "pods", "-l", "app=web"]));
    k.ok(&["scale", "deployment/web", "--replicas=3"]);
    assert!(
        eventually(Duration::from_secs(20), || names(
            &k.json(&["get", "pods", "-l", "app=web"])
        )
        .len()
            == 3)
        .await,
        "scaled to three pods"
    );
    k.ok(&["rollout", "restart", "deployment/web"]);
    k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let rs_after = names(&k.json(&["get", "replicasets"]));
    assert_eq!(rs_after.len(), 2, "{rs_after:?}");
    assert!(
        eventually(Duration::from_secs(20), || {
            let pods = names(&k.json(&["get", "pods", "-l", "app=web"]));
            pods.len() == 3 && pods.iter().all(|p| !pods_before.contains(p))
        })
        .await,
        "the restart replaced every pod"
    );

    // The rollout's Events, with their counts.
    let events = k.ok(&["get", "events", "-A", "-o", "wide"]);
    let header = events.lines().next().unwrap();
    for column in ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE", "COUNT"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(
        events.lines().any(|l| l.contains("ScalingReplicaSet")
            && l.contains("deployment/web")
            && l.contains(&format!(
                "Scaled up replica set {} from 0 to 2",
                rs_before[0]
            ))),
        "{events}"
    );
    assert!(
        events
            .lines()
            .any(|l| l.contains("SuccessfulCreate") && l.contains("replicaset/")),
        "{events}"
    );
    assert!(
        eventually(Duration::from_secs(30), || {
            k.ok(&[
                "get",
                "events",
                "-o",
                "json",
                "--field-selector",
                "involvedObject.name=crash,reason=BackOff",
            ])
            .contains("\"count\": 2")
        })
        .await,
        "the crashing pod's BackOff is counted"
    );

    // Logs: a deployment's pod, and a crashed container's previous instance.
    let logs = k.ok(&["logs", "deployment/web"]);
    assert!(
        logs.lines()
            .next()
            .unwrap()
            .starts_with("starting app (image nginx:1.27"),
        "{logs}"
    );
    let previous = k.ok(&["logs", "crash", "--previous"]);
    assert!(
        previous.starts_with("starting app (image app:1, restart "),
        "{previous}"
    );
    assert!(
        previous.ends_with("app: fatal error, exiting with 1\n"),
        "{previous}"
    );
    let pods = k.ok(&["get", "pods"]);
    assert!(
        pods.lines().any(|l| l.starts_with("crash ")
            && (l.contains("CrashLoopBackOff") || l.contains("Running") || l.contains("Error"))),
        "{pods}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_tables_read_every_page() {
    let sim = living(1.0).await;
    let Some(k) = Kubectl::find(&sim) else { return };
    for i in 0..1_200 {
        sim.create(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": format!("cm-{i:04}"), "namespace": "default" },
            "data": { "i": i.to_string() },
        }))
        .unwrap();
    }
    // kubectl asks for tables 500 rows at a time and follows `continue`.
    let table = k.ok(&["get", "configmaps", "--no-headers"]);
    let names: Vec<&str> = table
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names.len(), 1_201, "1,200 and kube-root-ca.crt");
    assert_eq!(names[0], "cm-0000");
    assert_eq!(names[1_199], "cm-1199");
    assert_eq!(names[1_200], "kube-root-ca.crt");
}
