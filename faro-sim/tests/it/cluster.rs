//! The living cluster: controllers, garbage collection, scheduler and
//! kubelet, and the Events they record — each result checked exactly.

use std::time::{Duration, Instant};

use faro_sim::Sim;

use crate::living;
use serde_json::{Value, json};

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`.
async fn until<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn list(sim: &Sim, api_version: &str, kind: &str, ns: &str) -> Vec<Value> {
    sim.list(api_version, kind, Some(ns)).unwrap()
}

fn name(o: &Value) -> String {
    o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn controller(o: &Value) -> (String, String, String) {
    let r = o["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
        .unwrap_or_else(|| panic!("{} has a controller reference", name(o)));
    (
        r["kind"].as_str().unwrap().to_string(),
        r["name"].as_str().unwrap().to_string(),
        r["uid"].as_str().unwrap().to_string(),
    )
}

fn uid(o: &Value) -> String {
    o["metadata"]["uid"].as_str().unwrap().to_string()
}

/// Events whose involved object is `name`, as (reason, message, count).
fn events_of(sim: &Sim, ns: &str, name: &str) -> Vec<(String, String, i64)> {
    list(sim, "v1", "Event", ns)
        .iter()
        .filter(|e| e["involvedObject"]["name"] == name)
        .map(|e| {
            (
                e["reason"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
                e["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn deployment(name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": "default" },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": image }] },
            },
        },
    })
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_registered_ready_with_their_events() {
    let sim = living(1.0).await;
    let nodes = until(Duration::from_secs(5), "three nodes", || {
        let nodes = sim.list("v1", "Node", None).unwrap();
        (nodes.len() == 3).then_some(nodes)
    })
    .await;
    assert_eq!(
        nodes.iter().map(name).collect::<Vec<_>>(),
        ["node-1", "node-2", "node-3"]
    );
    for node in &nodes {
        let ready = node["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True");
    }
    let reasons: Vec<String> = events_of(&sim, "default", "node-2")
        .into_iter()
        .map(|(r, _, _)| r)
        .collect();
    for reason in ["Starting", "NodeReady", "RegisteredNode"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
    let api_server = sim
        .get("v1", "Service", Some("default"), "kubernetes")
        .unwrap();
    assert_eq!(api_server["spec"]["clusterIP"], "10.96.0.1");
    assert_eq!(api_server["spec"]["ports"][0]["port"], 443);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rolls_out_through_replicasets_to_running_pods() {
    let sim = living(10.0).await;
    sim.create(deployment("web", 3, "nginx:1.27")).unwrap();
    let pods = until(Duration::from_secs(10), "3 ready pods", || {
        let pods = list(&sim, "v1", "Pod", "default");
        (pods.len() == 3 && pods.iter().all(ready)).then_some(pods)
    })
    .await;
    let d = sim
        .get("apps/v1", "Deployment", Some("default"), "web")
        .unwrap();
    let rs = list(&sim, "apps/v1", "ReplicaSet", "default");
    assert_eq!(rs.len(), 1);
    let rs = &rs[0];
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    assert_eq!(name(rs), format!("web-{hash}"));
    assert_eq!(controller(rs), ("Deployment".into(), "web".into(), uid(&d)));
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    for pod in &pods {
        assert_eq!(controller(pod), ("ReplicaSet".into(), name(rs), uid(rs)));
        assert!(name(pod).starts_with(&format!("web-{hash}-")));
        assert_eq!(pod["metadata"]["labels"]["pod-template-hash"], hash);
        assert_eq!(pod["status"]["phase"], "Running");
        assert!(
            pod["spec"]["nodeName"]
                .as_str()
                .unwrap()
                .starts_with("node-")
        );
        let events: Vec<String> = events_of(&sim, "default", &name(pod))
            .into_iter()
            .map(|(r, _, _)| r)
            .collect();
        assert_eq!(events[0], "Scheduled", "{events:?}");
        for reason in ["Pulled", "Created", "Started"] {
            assert!(events.iter().any(|e| e == reason), "{reason}: {events:?}");
        }
    }
    let d = until(Duration::from_secs(10), "deployment status", || {
        let d = sim
            .get("apps/v1", "Deployment", Some("default"), "web")
            .unwrap();
        (d["status"]["availableReplicas"] == 3 && d["status"]["updatedReplicas"] == 3).then_some(d)
    })
    .await;
    assert_eq!(d["status"]["replicas"], 3);
    assert_eq!(
        d["status"]["observedGeneration"],
        d["metadata"]["generation"]
    );
    assert_eq!(
        events_of(&sim, "default", "web"),
        [(
            "ScalingReplicaSet".to_string(),
            format!("Scaled up replica set web-{hash} from 0 to 3"),
            1
        )]
    );

    // A new template: a second ReplicaSet takes over, the first goes to zero.
    let mut changed = d.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    sim.update(changed).unwrap();
    let (old, new) = until(Duration::from_secs(15), "the rollout", || {
        let rs = list(&sim, "apps/v1", "ReplicaSet", "default");
        let old = rs
            .iter()
            .find(|r| name(r) == format!("web-{hash}"))?
            .clone();
        let new = rs
            .iter()
            .find(|r| name(r) != format!("web-{hash}"))?
            .clone();
        let done = old["spec"]["replicas"] == 0
            && old["status"]["replicas"] == 0
            && new["status"]["availableReplicas"] == 3;
        done.then_some((old, new))
    })
    .await;
    assert_eq!(
        new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(
        old["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let pods = until(Duration::from_secs(10), "only new pods", || {
        let pods = list(&sim, "v1", "Pod", "default");
        (pods.len() == 3).then_some(pods)
    })
    .await;
    for pod in &pods {
        assert_eq!(controller(pod).1, name(&new));
        assert_eq!(pod["spec"]["containers"][0]["image"], "nginx:1.28");
    }
    let scaling: Vec<String> = events_of(&sim, "default", "web")
        .into_iter()
        .map(|(_, m, _)| m)
        .collect();
    assert!(
        scaling
            .iter()
            .any(|m| m.starts_with(&format!("Scaled up replica set {}", name(&new)))),
        "{scaling:?}"
    );
    assert!(
        scaling
            .iter()
            .any(|m| m == &format!("Scaled down replica set web-{hash} from 1 to 0")),
        "{scaling:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pod_stops_gracefully_and_is_replaced() {
    let sim = living(10.0).await;
    sim.create(deployment("api", 2, "api:1")).unwrap();
    let pods = until(Duration::from_secs(10), "2 ready pods", || {
        let pods = list(&sim, "v1", "Pod", "default");
        (pods.len() == 2 && pods.iter().all(ready)).then_some(pods)
    })
    .await;
    let victim = name(&pods[0]);
    let rs = controller(&pods[0]).1;
    let deleting = sim.delete("v1", "Pod", Some("default"), &victim).unwrap();
    assert!(deleting["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(deleting["metadata"]["deletionGracePeriodSeconds"], 30);
    let pods = until(Duration::from_secs(10), "a replacement", || {
        let pods = list(&sim, "v1", "Pod", "default");
        let gone = !pods.iter().any(|p| name(p) == victim);
        (gone && pods.len() == 2 && pods.iter().all(ready)).then_some(pods)
    })
    .await;
    assert!(pods.iter().all(|p| controller(p).1 == rs));
    let victim_events = events_of(&sim, "default", &victim);
    assert!(
        victim_events
            .iter()
            .any(|(r, m, _)| r == "Killing" && m == "Stopping container app"),
        "{victim_events:?}"
    );
    let created: Vec<String> = events_of(&sim, "default", &rs)
        .into_iter()
        .filter(|(r, _, _)| r == "SuccessfulCreate")
        .map(|(_, m, _)| m)
        .collect();
    assert_eq!(
        created.len(),
        3,
        "two pods, then one replacement: {created:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_pod_stays_until_its_containers_said_their_last_words() {
    let sim = living(10.0).await;
    sim.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "d", "namespace": "default", "annotations": {
            "faro-sim.io/log-rate": "20", "faro-sim.io/shutdown-seconds": "5" } },
        "spec": { "containers": [{ "name": "app", "image": "app:1" }] },
    }))
    .unwrap();
    until(Duration::from_secs(10), "the pod running", || {
        let p = sim.get("v1", "Pod", Some("default"), "d").ok()?;
        (p["status"]["phase"] == "Running").then_some(())
    })
    .await;
    sim.delete("v1", "Pod", Some("default"), "d").unwrap();
    // Shutting down takes 5 simulated seconds (0.5 s here); the kubelet's
    // status writes meanwhile must not remove the pod.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let terminating = sim.get("v1", "Pod", Some("default"), "d").unwrap();
    assert!(terminating["metadata"]["deletionTimestamp"].is_string());
    until(Duration::from_secs(10), "the pod gone", || {
        sim.get("v1", "Pod", Some("default"), "d")
            .is_err()
            .then_some(())
    })
    .await;
    let log = sim.log("default", "d", "app").unwrap();
    assert_eq!(
        log[log.len() - 2..],
        [
            "app: received SIGTERM, shutting down",
            "app: shutdown complete"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_follows_the_propagation_policy() {
    let sim = living(20.0).await;
    for name in ["bg", "fg", "orphan"] {
        sim.create(deployment(name, 1, "x:1")).unwrap();
    }
    until(Duration::from_secs(10), "3 ready pods", || {
        let pods = list(&sim, "v1", "Pod", "default");
        (pods.len() == 3 && pods.iter().all(ready)).then_some(())
    })
    .await;
    let owned_by = |d: &str| -> (Vec<Value>, Vec<Value>) {
        let rs: Vec<Value> = list(&sim, "apps/v1", "ReplicaSet", "default")
            .into_iter()
            .filter(|r| name(r).starts_with(&format!("{d}-")))
            .collect();
        let pods: Vec<Value> = list(&sim, "v1", "Pod", "default")
            .into_iter()
            .filter(|p| name(p).starts_with(&format!("{d}-")))
            .collect();
        (rs, pods)
    };

    // Background: the owner goes at once, its dependents after.
    sim.delete_with(
        "apps/v1",
        "Deployment",
        Some("default"),
        "bg",
        Some("Background"),
        None,
    )
    .unwrap();
    assert!(
        sim.get("apps/v1", "Deployment", Some("default"), "bg")
            .is_err()
    );
    until(Duration::from_secs(10), "bg's dependents gone", || {
        let (rs, pods) = owned_by("bg");
        (rs.is_empty() && pods.is_empty()).then_some(())
    })
    .await;

    // Foreground: the owner stays, marked, until its dependents are gone.
    let marked = sim
        .delete_with(
            "apps/v1",
            "Deployment",
            Some("default"),
            "fg",
            Some("Foreground"),
            None,
        )
        .unwrap();
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        marked["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    until(
        Duration::from_secs(10),
        "fg gone after its dependents",
        || {
            // The owner is read first: dependents read before it could be
            // deleted, then the owner, between the two reads.
            let owner = sim.get("apps/v1", "Deployment", Some("default"), "fg");
            if owner.is_ok() {
                return None;
            }
            let (rs, pods) = owned_by("fg");
            assert!(rs.is_empty() && pods.is_empty(), "owner went first");
            Some(())
        },
    )
    .await;

    // Orphan: the ReplicaSet stays, without its owner reference.
    sim.delete_with(
        "apps/v1",
        "Deployment",
        Some("default"),
        "orphan",
        Some("Orphan"),
        None,
    )
    .unwrap();
    let (rs, pods) = until(Duration::from_secs(10), "orphan released", || {
        let gone = sim
            .get("apps/v1", "Deployment", Some("default"), "orphan")
            .is_err();
        let (rs, pods) = owned_by("orphan");
        (gone && rs.len() == 1 && rs[0]["metadata"]["ownerReferences"].is_null())
            .then_some((rs, pods))
    })
    .await;
    assert_eq!(pods.len(), 1);
    assert_eq!(controller(&pods[0]).1, name(&rs[0]));
}

/// Polls a pod's first container and notes when its restart count changes.
async fn restart_times(sim: &Sim, pod: &str, restarts: u64, limit: Duration) -> Vec<Instant> {
    let mut times = Vec::new();
    let mut seen = 0;
    let deadline = Instant::now() + limit;
    while seen < restarts {
        assert!(Instant::now() < deadline, "{pod}: only {seen} restarts");
        let p = sim.get("v1", "Pod", Some("default"), pod).unwrap();
        let count = p["status"]["containerStatuses"][0]["restartCount"]
            .as_u64()
            .unwrap_or(0);
        if count > seen {
            assert_eq!(count, seen + 1, "one restart at a time");
            seen = count;
            times.push(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_back_off_doubles_from_ten_seconds() {
    // 20× faster: a 10 s back-off takes 500 ms.
    let sim = living(20.0).await;
    sim.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "crash", "namespace": "default",
            "annotations": { "faro-sim.io/exit-after": "1s", "faro-sim.io/exit-code": "3",
                "faro-sim.io/log-rate": "0.001" } },
        "spec": { "containers": [{ "name": "app", "image": "app:1" }] },
    }))
    .unwrap();
    let times = restart_times(&sim, "crash", 4, Duration::from_secs(20)).await;
    // Restart 1 is immediate; then 10 s, 20 s, 40 s of back-off, each after 1 s of running.
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 20.0)
        .collect();
    for (gap, expected) in gaps.iter().zip([11.0, 21.0, 41.0]) {
        assert!(
            // Late by up to 8 simulated seconds (400 ms) on a loaded machine.
            *gap >= expected - 0.5 && *gap <= expected + 8.0,
            "simulated gaps {gaps:?}, expected about 11, 21, 41"
        );
    }
    let pod = sim.get("v1", "Pod", Some("default"), "crash").unwrap();
    let status = &pod["status"]["containerStatuses"][0];
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 3);
    assert_eq!(status["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(pod["status"]["phase"], "Running");
    let waiting = until(Duration::from_secs(5), "CrashLoopBackOff", || {
        let pod = sim.get("v1", "Pod", Some("default"), "crash").unwrap();
        let w = pod["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["reason"] == "CrashLoopBackOff").then_some(w)
    })
    .await;
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .starts_with("back-off 1m20s restarting failed container=app pod=crash_default("),
        "{waiting}"
    );
    // One BackOff Event, its count growing with each back-off.
    let backoff: Vec<(String, String, i64)> = events_of(&sim, "default", "crash")
        .into_iter()
        .filter(|(r, _, _)| r == "BackOff")
        .collect();
    assert_eq!(backoff.len(), 1, "{backoff:?}");
    assert!(backoff[0].2 >= 3, "{backoff:?}");
    // The terminated instance's log stays readable.
    let line = "app: fatal error, exiting with 3";
    assert!(
        sim.previous_log("default", "crash", "app")
            .unwrap()
            .contains(&line.to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_killed_container_exits_137() {
    let sim = living(20.0).await;
    sim.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "hungry", "namespace": "default",
            "annotations": { "faro-sim.io/oom-after": "2s" } },
        "spec": { "restartPolicy": "Never", "containers": [{ "name": "app", "image": "app:1" }] },
    }))
    .unwrap();
    let pod = until(Duration::from_secs(10), "Failed", || {
        let pod = sim.get("v1", "Pod", Some("default"), "hungry").unwrap();
        (pod["status"]["phase"] == "Failed").then_some(pod)
    })
    .await;
    let terminated = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["reason"], "OOMKilled");
    assert_eq!(terminated["exitCode"], 137);
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_runs_jobs_that_run_pods_to_completion() {
    // 120× faster: a minute takes half a second.
    let sim = living(120.0).await;
    sim.create(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": { "name": "report", "namespace": "default" },
        "spec": { "schedule": "* * * * *", "jobTemplate": { "spec": { "template": { "spec": {
            "restartPolicy": "OnFailure", "containers": [{ "name": "report", "image": "report:1" }] } } } } },
    }))
    .unwrap();
    let job = until(Duration::from_secs(10), "a completed job", || {
        list(&sim, "batch/v1", "Job", "default")
            .into_iter()
            .find(|j| {
                j["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Complete" && c["status"] == "True")
            })
    })
    .await;
    let cj = sim
        .get("batch/v1", "CronJob", Some("default"), "report")
        .unwrap();
    assert_eq!(
        controller(&job),
        ("CronJob".into(), "report".into(), uid(&cj))
    );
    assert_eq!(job["status"]["succeeded"], 1);
    let pods: Vec<Value> = list(&sim, "v1", "Pod", "default")
        .into_iter()
        .filter(|p| controller(p).2 == uid(&job))
        .collect();
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["status"]["phase"], "Succeeded");
    assert_eq!(pods[0]["metadata"]["labels"]["job-name"], name(&job));
    // The Job's name is the CronJob's and its scheduled minute.
    let minute: i64 = name(&job).strip_prefix("report-").unwrap().parse().unwrap();
    assert!(minute > 29_000_000, "{}", name(&job));
    let job_events = events_of(&sim, "default", &name(&job));
    assert!(
        job_events
            .iter()
            .any(|(r, m, _)| r == "Completed" && m == "Job completed")
    );
    let cj_events = until(Duration::from_secs(5), "SawCompletedJob", || {
        let events = events_of(&sim, "default", "report");
        events
            .iter()
            .any(|(r, _, _)| r == "SawCompletedJob")
            .then_some(events)
    })
    .await;
    assert!(
        cj_events
            .iter()
            .any(|(r, m, _)| r == "SuccessfulCreate" && m == &format!("Created job {}", name(&job))),
        "{cj_events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pod_waits_with_failed_scheduling() {
    let sim = living(50.0).await;
    sim.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "picky", "namespace": "default" },
        "spec": { "nodeSelector": { "disk": "ssd" }, "containers": [{ "name": "app", "image": "app:1" }] },
    }))
    .unwrap();
    let events = until(Duration::from_secs(10), "repeated FailedScheduling", || {
        let events = events_of(&sim, "default", "picky");
        events
            .iter()
            .any(|(r, _, c)| r == "FailedScheduling" && *c >= 2)
            .then_some(events)
    })
    .await;
    assert_eq!(events.len(), 1, "one aggregated Event: {events:?}");
    assert_eq!(
        events[0].1,
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    let pod = sim.get("v1", "Pod", Some("default"), "picky").unwrap();
    assert_eq!(pod["status"]["phase"], "Pending");
    assert!(pod["spec"]["nodeName"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_event_is_one_object_seen_alike_through_both_apis() {
    let sim = living(50.0).await;
    sim.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "flaky", "namespace": "default",
            "annotations": { "faro-sim.io/image-pull": "fail" } },
        "spec": { "containers": [{ "name": "app", "image": "missing:1" }] },
    }))
    .unwrap();
    let core = until(Duration::from_secs(15), "a BackOff counted 3 times", || {
        list(&sim, "v1", "Event", "default").into_iter().find(|e| {
            e["involvedObject"]["name"] == "flaky"
                && e["reason"] == "BackOff"
                && e["count"].as_i64() >= Some(3)
        })
    })
    .await;
    let pod = sim.get("v1", "Pod", Some("default"), "flaky").unwrap();
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
            .as_str()
            .map(|r| r == "ImagePullBackOff" || r == "ErrImagePull"),
        Some(true)
    );
    let name = name(&core);
    let core = sim.get("v1", "Event", Some("default"), &name).unwrap();
    let new = sim
        .get("events.k8s.io/v1", "Event", Some("default"), &name)
        .unwrap();
    let count = core["count"].as_i64().unwrap();
    assert_eq!(new["apiVersion"], "events.k8s.io/v1");
    assert_eq!(new["metadata"]["uid"], core["metadata"]["uid"]);
    assert_eq!(
        new["metadata"]["resourceVersion"],
        core["metadata"]["resourceVersion"]
    );
    assert_eq!(new["series"]["count"], count);
    assert_eq!(new["deprecatedCount"], count);
    assert_eq!(core["series"]["count"], count);
    assert_eq!(new["note"], core["message"]);
    assert_eq!(new["note"], "Back-off pulling image \"missing:1\"");
    assert_eq!(new["regarding"], core["involvedObject"]);
    assert_eq!(new["reportingController"], "kubelet");
    assert_eq!(new["deprecatedLastTimestamp"], core["lastTimestamp"]);
    // The same object is listed once through each API.
    let both = |api: &str| {
        sim.list(api, "Event", Some("default"))
            .unwrap()
            .iter()
            .filter(|e| e["metadata"]["name"] == name.as_str())
            .count()
    };
    assert_eq!((both("v1"), both("events.k8s.io/v1")), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_and_daemonset_pods() {
    let sim = living(20.0).await;
    let template = json!({ "metadata": { "labels": { "app": "db" } },
        "spec": { "containers": [{ "name": "db", "image": "db:1" }] } });
    sim.create(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": { "name": "db", "namespace": "default" },
        "spec": { "replicas": 3, "serviceName": "db", "selector": { "matchLabels": { "app": "db" } }, "template": template },
    }))
    .unwrap();
    let mut ds_template = template.clone();
    ds_template["metadata"]["labels"]["app"] = json!("agent");
    sim.create(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": { "name": "agent", "namespace": "default" },
        "spec": { "selector": { "matchLabels": { "app": "agent" } }, "template": ds_template },
    }))
    .unwrap();
    let pods = until(Duration::from_secs(15), "6 ready pods", || {
        let pods = list(&sim, "v1", "Pod", "default");
        (pods.len() == 6 && pods.iter().all(ready)).then_some(pods)
    })
    .await;
    let db: Vec<String> = pods
        .iter()
        .filter(|p| controller(p).0 == "StatefulSet")
        .map(name)
        .collect();
    assert_eq!(db, ["db-0", "db-1", "db-2"]);
    // Ordered: each pod created after the one before it was ready.
    let created: Vec<String> = events_of(&sim, "default", "db")
        .into_iter()
        .map(|(_, m, _)| m)
        .collect();
    assert_eq!(
        created,
        (0..3)
            .map(|i| format!("create Pod db-{i} in StatefulSet db successful"))
            .collect::<Vec<_>>()
    );
    let mut nodes: Vec<String> = pods
        .iter()
        .filter(|p| controller(p).0 == "DaemonSet")
        .map(|p| p["spec"]["nodeName"].as_str().unwrap().to_string())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["node-1", "node-2", "node-3"], "one agent per node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_and_sidecars_run_before_the_app() {
    let sim = living(20.0).await;
    sim.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "layered", "namespace": "default",
            "annotations": { "faro-sim.io/log-rate": "0.001" } },
        "spec": {
            "initContainers": [
                { "name": "migrate", "image": "tool:1" },
                { "name": "proxy", "image": "proxy:1", "restartPolicy": "Always" },
            ],
            "containers": [{ "name": "app", "image": "app:1" }],
        },
    }))
    .unwrap();
    let pod = until(Duration::from_secs(10), "running", || {
        let pod = sim.get("v1", "Pod", Some("default"), "layered").unwrap();
        ready(&pod).then_some(pod)
    })
    .await;
    let inits = pod["status"]["initContainerStatuses"].as_array().unwrap();
    assert_eq!(inits[0]["state"]["terminated"]["reason"], "Completed");
    assert!(
        inits[1]["state"]["running"].is_object(),
        "the sidecar keeps running"
    );
    let started: Vec<String> = events_of(&sim, "default", "layered")
        .into_iter()
        .filter(|(r, _, _)| r == "Started")
        .map(|(_, m, _)| m)
        .collect();
    assert_eq!(
        started,
        [
            "Started container migrate",
            "Started container proxy",
            "Started container app"
        ]
    );
    assert_eq!(
        sim.log("default", "layered", "migrate").unwrap(),
        ["init migrate: preparing", "init migrate: done"]
    );
}
