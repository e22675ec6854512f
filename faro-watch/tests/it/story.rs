//! Kubernetes Events as occurrences, pod lifecycle records and correlation
//! ids, against faro-sim's living cluster.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use faro_core::{EventHandler, HandlerError, LogRecord, MatchedEvent, Record};
use faro_sim::{Sim, SimConfig};
use faro_watch::Controller;
use serde_json::{Value, json};

use crate::{client, config, create, fast, sim_with};

/// Everything a controller hands on, as `(what, correlation, detail)`.
#[derive(Debug, Clone)]
struct Said {
    what: String,
    correlation: Option<String>,
    json: Value,
}

#[derive(Default)]
struct Story {
    said: Mutex<Vec<Said>>,
}

impl Story {
    fn all(&self) -> Vec<Said> {
        self.said.lock().unwrap().clone()
    }

    fn records(&self, kind: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|s| s.what == kind)
            .map(|s| s.json)
            .collect()
    }

    async fn wait(&self, what: &str, limit: Duration, done: impl Fn(&[Said]) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // A snapshot: `done` may look at the story itself.
            if done(&self.all()) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let said: Vec<String> = self
                    .all()
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {} {}",
                            s.what,
                            s.correlation.as_deref().unwrap_or("-"),
                            s.json
                        )
                    })
                    .collect();
                panic!("timed out waiting for {what}; said:\n{}", said.join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[async_trait::async_trait]
impl EventHandler for Story {
    fn name(&self) -> &str {
        "story"
    }

    async fn on_matched(&self, event: &MatchedEvent) -> Result<(), HandlerError> {
        self.said.lock().unwrap().push(Said {
            what: format!("event {} {}", event.gvr(), event.event_type()),
            correlation: event.correlation().map(|c| c.to_string()),
            json: json!({ "key": event.key().to_string(), "type": event.event_type().as_str() }),
        });
        Ok(())
    }

    async fn on_log(&self, record: &LogRecord) -> Result<(), HandlerError> {
        self.said.lock().unwrap().push(Said {
            what: "log".into(),
            correlation: record.source().correlation.as_ref().map(|c| c.to_string()),
            json: json!({ "pod": &*record.source().pod, "line": record.line() }),
        });
        Ok(())
    }

    async fn on_record(&self, record: &Record) -> Result<(), HandlerError> {
        let json: Value = serde_json::from_str(record.json()).expect("a record is JSON");
        assert_eq!(json["narrative"], record.narrative());
        self.said.lock().unwrap().push(Said {
            what: record.kind().as_str().into(),
            correlation: record.correlation().map(|c| c.to_string()),
            json,
        });
        Ok(())
    }
}

async fn living(scale: f64) -> Sim {
    sim_with(SimConfig {
        time_scale: scale,
        ..SimConfig::default()
    })
    .await
}

async fn start(sim: &Sim, yaml: &str) -> (Controller, Arc<Story>) {
    let controller = Controller::with_options(client(sim), &config(yaml), fast());
    let story = Arc::new(Story::default());
    controller.add_handler(story.clone());
    controller.start().await.expect("controller starts");
    tokio::time::timeout(Duration::from_secs(10), controller.ready())
        .await
        .expect("controller becomes ready");
    (controller, story)
}

fn core_event(count: u64) -> Value {
    let now = jiff::Timestamp::now().to_string();
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": { "name": "web.181f0a", "namespace": "story" },
        "involvedObject": { "kind": "Pod", "apiVersion": "v1", "namespace": "story",
            "name": "web", "uid": "0e0a9b7c-1111-4a4a-9c9c-000000000001" },
        "reason": "BackOff",
        "message": "Back-off restarting failed container app in pod web_story(0e0a9b7c)",
        "type": "Warning",
        "count": count,
        "firstTimestamp": now, "lastTimestamp": now,
        "source": { "component": "kubelet", "host": "node-1" },
    })
}

fn bump(sim: &Sim, count: u64) {
    let mut event = sim
        .get("v1", "Event", Some("story"), "web.181f0a")
        .expect("the Event exists");
    let now = jiff::Timestamp::now().to_string();
    event["count"] = json!(count);
    event["lastTimestamp"] = json!(now);
    sim.update(event).expect("the Event is updated");
}

fn occurrences(story: &Story) -> u64 {
    story
        .records("k8s-event")
        .iter()
        .map(|r| r["newOccurrences"].as_u64().unwrap())
        .sum()
}

const EVENTS: &str = "k8s_events:\n  namespace_names: [story]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_counted_to_five_is_five_occurrences_and_no_more_after_a_relist_or_a_restart() {
    let sim = living(1.0).await;
    create(&sim, crate::namespace("story"));
    let (controller, story) = start(&sim, EVENTS).await;
    // One API is watched: events.k8s.io, which the server serves.
    let watched = crate::watches(&sim);
    assert!(
        watched
            .iter()
            .any(|w| w.starts_with("/apis/events.k8s.io/v1/namespaces/story/events")),
        "{watched:?}"
    );
    assert!(
        !watched
            .iter()
            .any(|w| w.contains("/api/v1/namespaces/story/events")),
        "{watched:?}"
    );

    create(&sim, core_event(1));
    story
        .wait("the first occurrence", Duration::from_secs(10), |s| {
            !s.is_empty()
        })
        .await;
    bump(&sim, 2);
    story
        .wait("two occurrences", Duration::from_secs(10), |_| {
            occurrences(&story) == 2
        })
        .await;
    bump(&sim, 5);
    story
        .wait("five occurrences", Duration::from_secs(10), |_| {
            occurrences(&story) == 5
        })
        .await;
    let records = story.records("k8s-event");
    let counts: Vec<(u64, u64)> = records
        .iter()
        .map(|r| {
            (
                r["count"].as_u64().unwrap(),
                r["newOccurrences"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [(1, 1), (2, 1), (5, 3)]);
    let last = &records[2];
    assert_eq!(last["kind"], "k8s-event");
    assert_eq!(last["type"], "Warning");
    assert_eq!(last["reason"], "BackOff");
    assert_eq!(last["reportingController"], "kubelet");
    assert_eq!(last["involvedObject"]["kind"], "Pod");
    assert_eq!(last["involvedObject"]["name"], "web");
    assert_eq!(
        last["narrative"],
        "Pod story/web: back-off restarting failed container app (5 times)"
    );
    // The pod is gone from the cluster: its own id.
    assert_eq!(last["correlation"], "Pod/story/web");

    // A relist (history compacted, watches dropped) reports nothing again.
    let relists = || {
        controller
            .metrics()
            .relists
            .get_or_create(&[("gvr", "events.k8s.io/v1/events".to_owned())])
            .get()
    };
    let before = relists();
    // A write elsewhere first, so the watch's last version is compacted away.
    create(
        &sim,
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "elsewhere", "namespace": "default" } }),
    );
    sim.compact();
    sim.close_watches();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while relists() == before {
        assert!(tokio::time::Instant::now() < deadline, "no relist happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(occurrences(&story), 5, "after the relist");
    controller.stop().await;

    // A restart with `since: start` reports nothing that happened before.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (controller, again) = start(&sim, EVENTS).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(occurrences(&again), 0, "after the restart");
    bump(&sim, 6);
    again
        .wait("the sixth occurrence", Duration::from_secs(10), |_| {
            occurrences(&again) == 1
        })
        .await;
    assert_eq!(again.records("k8s-event")[0]["count"], 6);
    controller.stop().await;

    // `since: all` reports what the server still has, once.
    let (controller, all) = start(&sim, &format!("{EVENTS}  since: all\n")).await;
    all.wait("every occurrence", Duration::from_secs(10), |_| {
        occurrences(&all) == 6
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(all.records("k8s-event").len(), 1);
    controller.stop().await;
}

fn narratives(story: &Story) -> Vec<String> {
    story
        .records("k8s-event")
        .iter()
        .map(|r| r["narrative"].as_str().unwrap().to_owned())
        .collect()
}

fn deployment(ns: &str, name: &str, replicas: u64, image: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": ns },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name }, "annotations": annotations },
                "spec": { "containers": [{ "name": "app", "image": image }] },
            },
        },
    })
}

fn pods(sim: &Sim, ns: &str) -> Vec<Value> {
    sim.list("v1", "Pod", Some(ns)).unwrap()
}

fn name(o: &Value) -> String {
    o["metadata"]["name"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_pods_workloads_and_nodes_read_as_sentences() {
    let sim = living(20.0).await;
    create(&sim, crate::namespace("shop"));
    let (controller, story) = start(
        &sim,
        "k8s_events:\n  namespace_names: [shop, default]\n  since: all\n",
    )
    .await;
    create(&sim, deployment("shop", "web", 1, "web:1", json!({})));
    create(
        &sim,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "crash", "namespace": "shop",
                "annotations": { "faro-sim.io/exit-after": "1s", "faro-sim.io/exit-code": "3" } },
            "spec": { "containers": [{ "name": "app", "image": "app:1" }] },
        }),
    );
    create(
        &sim,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "picky", "namespace": "shop" },
            "spec": { "nodeSelector": { "disk": "ssd" }, "containers": [{ "name": "app", "image": "app:1" }] },
        }),
    );
    create(
        &sim,
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": { "name": "backup", "namespace": "shop" },
            "spec": { "template": { "spec": { "restartPolicy": "Never",
                "containers": [{ "name": "backup", "image": "backup:1" }] } } },
        }),
    );
    story
        .wait(
            "the web pod running and the job complete",
            Duration::from_secs(20),
            |_| {
                let n = narratives(&story);
                n.iter().any(|t| t == "Job shop/backup: completed")
                    && n.iter().any(|t| {
                        t.starts_with("Pod shop/web-") && t.ends_with("started container app")
                    })
                    && n.iter().any(|t| {
                        t.starts_with("Pod shop/crash: back-off restarting failed container app")
                    })
            },
        )
        .await;
    let web = pods(&sim, "shop")
        .into_iter()
        .find(|p| name(p).starts_with("web-"))
        .expect("a web pod");
    let web_name = name(&web);
    let node = web["spec"]["nodeName"].as_str().unwrap().to_owned();
    let rs = web["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.delete("v1", "Pod", Some("shop"), &web_name).unwrap();
    story
        .wait("Killing", Duration::from_secs(10), |_| {
            narratives(&story).contains(&format!("Pod shop/{web_name}: stopping container app"))
        })
        .await;
    let n = narratives(&story);
    let has = |text: &str| assert!(n.iter().any(|t| t == text), "{text:?} not in {n:#?}");
    has(&format!(
        "Pod shop/{web_name}: scheduled to {node} by default-scheduler"
    ));
    has(&format!("Pod shop/{web_name}: pulled image web:1"));
    has(&format!("Pod shop/{web_name}: created container app"));
    has(&format!("Pod shop/{web_name}: started container app"));
    has(&format!(
        "Deployment shop/web: scaled up replica set {rs} from 0 to 1"
    ));
    has(&format!("ReplicaSet shop/{rs}: created pod {web_name}"));
    has("Job shop/backup: completed");
    has(
        "Pod shop/picky: could not be scheduled — 0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
    );
    assert!(
        n.iter()
            .any(|t| t.starts_with("Pod shop/crash: back-off restarting failed container app")),
        "{n:#?}"
    );
    // Nodes' Events are cluster-scoped in `default`.
    has("Node node-1: status is now NodeReady");
    has("Node node-1: registered by node-controller");
    controller.stop().await;
}

fn lifecycle(story: &Story, pod: &str) -> Vec<Value> {
    story
        .records("lifecycle")
        .into_iter()
        .filter(|r| r["pod"] == pod)
        .collect()
}

fn has_record(records: &[Value], check: impl Fn(&Value) -> bool) -> bool {
    records.iter().any(check)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_lifecycle_tells_how_containers_ended_and_links_replacements() {
    let sim = living(20.0).await;
    create(&sim, crate::namespace("life"));
    let (controller, story) = start(
        &sim,
        "resources:\n  - gvr: v1/pods\n    namespace_names: [life]\n",
    )
    .await;
    create(
        &sim,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "hungry", "namespace": "life",
                "annotations": { "faro-sim.io/oom-after": "2s" } },
            "spec": { "restartPolicy": "Never", "containers": [{ "name": "app", "image": "app:1" }] },
        }),
    );
    create(
        &sim,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "crash", "namespace": "life",
                "annotations": { "faro-sim.io/exit-after": "1s", "faro-sim.io/exit-code": "3" } },
            "spec": { "containers": [{ "name": "app", "image": "app:1" }] },
        }),
    );
    create(
        &sim,
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": { "name": "once", "namespace": "life" },
            "spec": { "template": { "spec": { "restartPolicy": "Never",
                "containers": [{ "name": "work", "image": "work:1" }] } } },
        }),
    );
    create(&sim, deployment("life", "api", 1, "api:1", json!({})));
    story
        .wait(
            "OOMKilled, CrashLoopBackOff and a completed job pod",
            Duration::from_secs(30),
            |_| {
                let hungry = lifecycle(&story, "hungry");
                let crash = lifecycle(&story, "crash");
                let job: Vec<Value> = story
                    .records("lifecycle")
                    .into_iter()
                    .filter(|r| r["pod"].as_str().unwrap().starts_with("once-"))
                    .collect();
                has_record(&hungry, |r| {
                    r["event"] == "PhaseChanged" && r["phase"] == "Failed"
                }) && has_record(&crash, |r| r["reason"] == "CrashLoopBackOff")
                    && has_record(&job, |r| {
                        r["event"] == "PhaseChanged" && r["phase"] == "Succeeded"
                    })
            },
        )
        .await;
    let hungry = lifecycle(&story, "hungry");
    assert!(
        has_record(&hungry, |r| r["event"] == "ContainerTerminated"
            && r["reason"] == "OOMKilled"
            && r["exitCode"] == 137
            && r["container"] == "app"
            && r["narrative"]
                == "Pod life/hungry: container app terminated: OOMKilled (exit code 137)"),
        "{hungry:#?}"
    );
    assert!(
        has_record(&hungry, |r| r["previousPhase"] == "Running"
            && r["phase"] == "Failed"
            && r["secondsInPreviousPhase"]
                .as_f64()
                .is_some_and(|s| s > 0.0)),
        "{hungry:#?}"
    );
    let crash = lifecycle(&story, "crash");
    assert!(
        has_record(&crash, |r| r["event"] == "ContainerRestarted"
            && r["exitCode"] == 3
            && r["message"] == "Error"
            && r["restartCount"].as_u64() >= Some(1)),
        "{crash:#?}"
    );
    assert!(
        has_record(&crash, |r| r["event"] == "ContainerWaiting"
            && r["reason"] == "CrashLoopBackOff"
            && r["narrative"]
                == "Pod life/crash: container app waiting: CrashLoopBackOff"),
        "{crash:#?}"
    );
    let job: Vec<Value> = story
        .records("lifecycle")
        .into_iter()
        .filter(|r| r["pod"].as_str().unwrap().starts_with("once-"))
        .collect();
    assert!(
        has_record(&job, |r| r["event"] == "ContainerTerminated"
            && r["reason"] == "Completed"
            && r["exitCode"] == 0),
        "{job:#?}"
    );
    assert!(
        job.iter().all(|r| r["correlation"] == "Job/life/once"),
        "{job:#?}"
    );

    // A deleted pod of the ReplicaSet is replaced, and the two are linked.
    let old = pods(&sim, "life")
        .into_iter()
        .find(|p| name(p).starts_with("api-"))
        .expect("an api pod");
    let old = name(&old);
    sim.delete("v1", "Pod", Some("life"), &old).unwrap();
    story
        .wait(
            "the replacement and the old pod gone",
            Duration::from_secs(20),
            |_| {
                has_record(&story.records("lifecycle"), |r| r["event"] == "Replaced")
                    && has_record(&lifecycle(&story, &old), |r| r["event"] == "Deleted")
            },
        )
        .await;
    let replaced = story
        .records("lifecycle")
        .into_iter()
        .find(|r| r["event"] == "Replaced")
        .unwrap();
    let new = replaced["pod"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(replaced["replaces"], old.as_str());
    assert_eq!(
        replaced["narrative"],
        format!("Pod life/{new}: replaces life/{old}")
    );
    let old_records = lifecycle(&story, &old);
    assert!(
        has_record(&old_records, |r| r["event"] == "Deleting"
            && r["gracePeriodSeconds"] == 30),
        "{old_records:#?}"
    );
    assert!(
        has_record(&old_records, |r| r["event"] == "Deleted"
            && r["replacedBy"] == new.as_str()),
        "{old_records:#?}"
    );
    assert!(
        story
            .records("lifecycle")
            .iter()
            .filter(|r| r["pod"].as_str().unwrap().starts_with("api-"))
            .all(|r| r["correlation"] == "Deployment/life/api")
    );
    controller.stop().await;
}

/// The object a record is about: an event's key, an Event's involved
/// object, a lifecycle record's or a log line's pod.
fn subject(s: &Said) -> String {
    [
        &s.json["key"],
        &s.json["involvedObject"]["name"],
        &s.json["pod"],
    ]
    .into_iter()
    .find_map(|v| v.as_str())
    .unwrap_or_default()
    .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_and_a_cronjob_each_carry_one_correlation_on_every_record() {
    let sim = living(60.0).await;
    create(&sim, crate::namespace("shop"));
    let (controller, story) = start(
        &sim,
        "namespaces:\n  - name_selector: shop\n    resources:\n      apps/v1/deployments: {}\n      apps/v1/replicasets: {}\n      v1/pods: {}\n      batch/v1/jobs: {}\n      batch/v1/cronjobs: {}\nk8s_events:\n  namespace_names: [shop]\nlogs:\n  namespace_names: [shop]\n",
    )
    .await;
    create(
        &sim,
        deployment(
            "shop",
            "web",
            2,
            "web:1",
            json!({ "faro-sim.io/log-rate": "5" }),
        ),
    );
    let sim = &sim;
    let ready = |image: &str| {
        let image = image.to_owned();
        move |_: &[Said]| {
            let pods = pods(sim, "shop");
            let web: Vec<&Value> = pods
                .iter()
                .filter(|p| name(p).starts_with("web-"))
                .collect();
            web.len() == 2
                && web.iter().all(|p| {
                    p["spec"]["containers"][0]["image"] == image.as_str()
                        && p["status"]["phase"] == "Running"
                        && p["metadata"]["deletionTimestamp"].is_null()
                })
        }
    };
    story
        .wait("two web:1 pods", Duration::from_secs(20), ready("web:1"))
        .await;
    // A rollout: a second ReplicaSet, new pods, the old ones stopped.
    let mut d = sim
        .get("apps/v1", "Deployment", Some("shop"), "web")
        .unwrap();
    d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
    sim.update(d).unwrap();
    story
        .wait("two web:2 pods", Duration::from_secs(30), ready("web:2"))
        .await;
    create(
        sim,
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": { "name": "report", "namespace": "shop" },
            "spec": { "schedule": "* * * * *", "jobTemplate": { "spec": { "template": { "spec": {
                "restartPolicy": "OnFailure", "containers": [{ "name": "report", "image": "report:1" }] } } } } },
        }),
    );
    story
        .wait(
            "a report job's pod succeeded, web lines logged, Events of both",
            Duration::from_secs(30),
            |said| {
                said.iter().any(|s| {
                    s.what == "lifecycle"
                        && s.json["pod"]
                            .as_str()
                            .is_some_and(|p| p.starts_with("report-"))
                        && s.json["phase"] == "Succeeded"
                }) && said.iter().filter(|s| s.what == "log").count() >= 10
                    && ["web", "report"].iter().all(|w| {
                        said.iter()
                            .any(|s| s.what == "k8s-event" && subject(s).contains(w))
                    })
            },
        )
        .await;
    // What was delivered up to now had its correlation looked up in full;
    // a record still looking up its owner when the watches stop gets the
    // nearest known id instead, so the records after this point are left out.
    let delivered = story.all().len();
    controller.stop().await;
    let mut said = story.all();
    said.truncate(delivered);
    let web: Vec<&Said> = said.iter().filter(|s| subject(s).contains("web")).collect();
    let kinds = |of: &[&Said]| {
        let mut k: Vec<String> = of.iter().map(|s| s.what.clone()).collect();
        k.sort();
        k.dedup();
        k
    };
    for s in &web {
        assert_eq!(
            s.correlation.as_deref(),
            Some("Deployment/shop/web"),
            "{s:?}"
        );
    }
    let web_kinds = kinds(&web);
    for kind in [
        "event apps/v1/deployments UPDATED",
        "event apps/v1/replicasets ADDED",
        "event v1/pods ADDED",
        "event v1/pods DELETED",
        "k8s-event",
        "lifecycle",
        "log",
    ] {
        assert!(
            web_kinds.iter().any(|k| k == kind),
            "no {kind} of web in {web_kinds:?}"
        );
    }
    let replica_sets: std::collections::BTreeSet<String> = web
        .iter()
        .filter(|s| s.what.starts_with("event apps/v1/replicasets"))
        .map(|s| s.json["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(replica_sets.len(), 2, "{replica_sets:?}");
    let report: Vec<&Said> = said
        .iter()
        .filter(|s| subject(s).contains("report"))
        .collect();
    for s in &report {
        assert_eq!(
            s.correlation.as_deref(),
            Some("CronJob/shop/report"),
            "{s:?}"
        );
    }
    let report_kinds = kinds(&report);
    for kind in [
        "event batch/v1/jobs ADDED",
        "event v1/pods ADDED",
        "k8s-event",
        "lifecycle",
    ] {
        assert!(
            report_kinds.iter().any(|k| k == kind),
            "no {kind} of report in {report_kinds:?}"
        );
    }
}
