//! A living workload for the demo and `faro sim --churn`: per namespace a
//! web and an api Deployment that roll out now and then, a Deployment whose
//! container crashes (CrashLoopBackOff), one that is OOMKilled, a CronJob
//! every minute, and a StatefulSet — the objects, Events and logs a person
//! sees in a real cluster.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{ApiError, Sim};

fn deployment(ns: &str, name: &str, replicas: u32, annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": ns, "labels": { "app": name } },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name }, "annotations": annotations },
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{ "name": name, "image": format!("registry.example.com/{name}:1.0.0"),
                                     "ports": [{ "containerPort": 8080 }] }],
                },
            },
        },
    })
}

/// Creates the workload in each namespace (and the namespaces).
pub fn install(sim: &Sim, namespaces: &[String]) -> Result<(), ApiError> {
    for (i, ns) in namespaces.iter().enumerate() {
        match sim
            .create(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }))
        {
            Ok(_) => {}
            Err(e) if e.reason == "AlreadyExists" => {}
            Err(e) => return Err(e),
        }
        sim.create(deployment(ns, "web", 3, json!({})))?;
        sim.create(deployment(ns, "api", 2, json!({})))?;
        sim.create(deployment(
            ns,
            "flaky",
            1,
            json!({ "faro-sim.io/exit-after": "15s", "faro-sim.io/exit-code": "1" }),
        ))?;
        sim.create(deployment(
            ns,
            "hungry",
            1,
            json!({ "faro-sim.io/oom-after": "25s" }),
        ))?;
        sim.create(json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": { "name": "report", "namespace": ns },
            "spec": { "schedule": "* * * * *", "successfulJobsHistoryLimit": 2,
                "jobTemplate": { "spec": { "template": { "spec": { "restartPolicy": "OnFailure",
                    "containers": [{ "name": "report", "image": "registry.example.com/report:1.0.0" }] } } } } },
        }))?;
        if i == 0 {
            sim.create(json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": { "name": "db", "namespace": ns },
                "spec": { "replicas": 2, "serviceName": "db", "selector": { "matchLabels": { "app": "db" } },
                    "template": { "metadata": { "labels": { "app": "db" } },
                        "spec": { "containers": [{ "name": "db", "image": "registry.example.com/db:15" }] } } },
            }))?;
        }
    }
    Ok(())
}

/// Rolls out a new version of `web` or `api` in turn, every `period`, for `duration`.
pub async fn drive(
    sim: &Sim,
    namespaces: &[String],
    period: Duration,
    duration: Duration,
) -> Result<u64, ApiError> {
    let start = tokio::time::Instant::now();
    let mut rollouts = 0u64;
    while start.elapsed() + period < duration {
        tokio::time::sleep(period).await;
        rollouts += 1;
        let ns = &namespaces[(rollouts as usize) % namespaces.len().max(1)];
        let name = if rollouts.is_multiple_of(2) {
            "web"
        } else {
            "api"
        };
        let mut d = sim.get("apps/v1", "Deployment", Some(ns), name)?;
        d["spec"]["template"]["spec"]["containers"][0]["image"] =
            json!(format!("registry.example.com/{name}:1.0.{rollouts}"));
        if let Some(meta) = d["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
        }
        sim.update(d)?;
    }
    Ok(rollouts)
}
