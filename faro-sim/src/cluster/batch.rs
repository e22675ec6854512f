//! The batch/v1 controllers: Job → Pods (completions, parallelism,
//! backoffLimit, `Complete` / `Failed`), CronJob → Jobs on its schedule
//! (read on the simulated clock, so `--time-scale` runs hours in minutes).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::apps::pod_ready;
use super::scheduler::set_condition;
use super::{
    Api, CRONJOBS, JOBS, Key, Manager, PODS, Source, deleting, now_rfc3339, owned, owner_ref,
};
use crate::ops::{DeleteOptions, Propagation};
use crate::store::Stored;

/// What the CronJob controller remembers between runs.
#[derive(Debug, Default)]
pub(crate) struct CronState {
    /// Jobs whose completion has been noted (`SawCompletedJob`).
    seen: HashSet<String>,
}

fn condition_true(object: &Value, kind: &str) -> bool {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

fn finished(job: &Value) -> Option<&'static str> {
    if condition_true(job, "Complete") {
        Some("Complete")
    } else if condition_true(job, "Failed") {
        Some("Failed")
    } else {
        None
    }
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("Pending")
}

pub(crate) fn job(m: &mut Manager, api: &Api<'_>, ns: &str, name: &str) {
    let Some(job) = api.get(JOBS, ns, name) else {
        return;
    };
    if deleting(&job.value) || finished(&job.value).is_some() {
        return;
    }
    let spec = &job.value["spec"];
    let pods = owned(m, api, PODS, &job);
    let on_failure = spec["template"]["spec"]["restartPolicy"] == "OnFailure";
    let succeeded = pods
        .iter()
        .filter(|p| phase(&p.value) == "Succeeded")
        .count() as i64;
    let restarts: i64 = if on_failure {
        pods.iter()
            .flat_map(|p| {
                p.value["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|s| s["restartCount"].as_i64().unwrap_or(0))
            .sum()
    } else {
        0
    };
    let failed = pods.iter().filter(|p| phase(&p.value) == "Failed").count() as i64 + restarts;
    let active: Vec<&Arc<Stored>> = pods
        .iter()
        .filter(|p| !deleting(&p.value) && !matches!(phase(&p.value), "Succeeded" | "Failed"))
        .collect();
    let ready = active.iter().filter(|p| pod_ready(&p.value)).count();
    let parallelism = spec["parallelism"].as_i64().unwrap_or(1).max(0);
    let completions = spec["completions"].as_i64();
    let backoff_limit = spec["backoffLimit"].as_i64().unwrap_or(6);
    let suspended = spec["suspend"].as_bool() == Some(true);
    let now = now_rfc3339();

    let mut outcome = None;
    if failed > backoff_limit {
        for p in &active {
            api.delete(PODS, ns, &p.name, &DeleteOptions::default());
        }
        m.note(
            api,
            Source::JOB,
            &job.value,
            true,
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit".into(),
        );
        outcome = Some((
            "Failed",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ));
    } else if match completions {
        Some(c) => succeeded >= c,
        None => succeeded > 0 && active.is_empty(),
    } {
        m.note(
            api,
            Source::JOB,
            &job.value,
            false,
            "Completed",
            "Job completed".into(),
        );
        outcome = Some((
            "Complete",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        ));
    } else if !suspended {
        let remaining = completions.map_or(parallelism, |c| (c - succeeded).max(0));
        let need = parallelism.min(remaining) - active.len() as i64;
        for _ in 0..need.max(0) {
            let template = &spec["template"];
            let mut metadata = template["metadata"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            metadata.insert("generateName".into(), json!(format!("{name}-")));
            metadata.insert("ownerReferences".into(), json!([owner_ref(&job)]));
            metadata.remove("namespace");
            let pod = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"] });
            if let Some(created) = api.create(PODS, ns, pod) {
                m.note(
                    api,
                    Source::JOB,
                    &job.value,
                    false,
                    "SuccessfulCreate",
                    format!("Created pod: {}", created.name),
                );
            }
        }
    }
    let active_now = if outcome.is_some() {
        0
    } else {
        owned(m, api, PODS, &job)
            .iter()
            .filter(|p| !deleting(&p.value) && !matches!(phase(&p.value), "Succeeded" | "Failed"))
            .count()
    };
    api.modify_status(&job, JOBS, |j| {
        let mut status = j["status"]
            .as_object()
            .cloned()
            .map(Value::Object)
            .unwrap_or_else(|| json!({}));
        if status.get("startTime").is_none() && !suspended {
            status["startTime"] = json!(now);
        }
        status["active"] = json!(active_now);
        status["ready"] = json!(if outcome.is_some() { 0 } else { ready });
        status["terminating"] = json!(0);
        status["uncountedTerminatedPods"] = json!({});
        status["succeeded"] = json!(succeeded);
        status["failed"] = json!(failed);
        if let Some(s) = status.as_object_mut() {
            for zero in ["active", "succeeded", "failed"] {
                if s.get(zero) == Some(&json!(0)) {
                    s.remove(zero);
                }
            }
        }
        if let Some((kind, reason, message)) = outcome {
            let interim = if kind == "Complete" {
                "SuccessCriteriaMet"
            } else {
                "FailureTarget"
            };
            set_condition(&mut status, interim, "True", Some((reason, message)), &now);
            set_condition(&mut status, kind, "True", Some((reason, message)), &now);
            if kind == "Complete" {
                status["completionTime"] = json!(now);
            }
        }
        j["status"] = status;
    });
}

/// A CronJob deletes one of its Jobs (and, in the background, its pods).
fn delete_job(m: &mut Manager, api: &Api<'_>, cj: &Stored, job: &str) {
    let ns = cj.namespace.as_deref().unwrap_or_default();
    let background = DeleteOptions {
        propagation: Some(Propagation::Background),
        ..DeleteOptions::default()
    };
    if api.delete(JOBS, ns, job, &background) {
        m.note(
            api,
            Source::CRONJOB,
            &cj.value,
            false,
            "SuccessfulDelete",
            format!("Deleted job {job}"),
        );
    }
}

fn utc(at: jiff::Timestamp) -> jiff::Zoned {
    at.to_zoned(jiff::tz::TimeZone::UTC)
}

pub(crate) fn cronjob(m: &mut Manager, api: &Api<'_>, ns: &str, name: &str) {
    let Some(cj) = api.get(CRONJOBS, ns, name) else {
        return;
    };
    if deleting(&cj.value) {
        return;
    }
    let spec = &cj.value["spec"];
    let Some(schedule) = spec["schedule"]
        .as_str()
        .and_then(|s| s.parse::<croner::Cron>().ok())
    else {
        return;
    };
    let jobs = owned(m, api, JOBS, &cj);
    let mut last_success = cj.value["status"]["lastSuccessfulTime"].clone();
    if m.cron.seen.len() > 10_000 {
        // Completed Jobs are noted once; the oldest notes are long gone with their Jobs.
        m.cron.seen.clear();
    }
    for job in &jobs {
        let uid = super::uid_of(&job.value).to_string();
        if let Some(condition) = finished(&job.value)
            && m.cron.seen.insert(uid)
        {
            m.note(
                api,
                Source::CRONJOB,
                &cj.value,
                false,
                "SawCompletedJob",
                format!("Saw completed job: {}, condition: {condition}", job.name),
            );
            if condition == "Complete" {
                last_success = job.value["status"]["completionTime"].clone();
            }
        }
    }
    // History limits, oldest first.
    for (condition, limit) in [
        (
            "Complete",
            spec["successfulJobsHistoryLimit"].as_i64().unwrap_or(3),
        ),
        (
            "Failed",
            spec["failedJobsHistoryLimit"].as_i64().unwrap_or(1),
        ),
    ] {
        let mut done: Vec<&Arc<Stored>> = jobs
            .iter()
            .filter(|j| finished(&j.value) == Some(condition) && !deleting(&j.value))
            .collect();
        done.sort_by_key(|j| {
            j.value["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        });
        let extra = done.len().saturating_sub(limit.max(0) as usize);
        for j in done.into_iter().take(extra) {
            delete_job(m, api, &cj, &j.name);
        }
    }
    let jobs = owned(m, api, JOBS, &cj);
    let mut active: Vec<&Arc<Stored>> = jobs
        .iter()
        .filter(|j| finished(&j.value).is_none() && !deleting(&j.value))
        .collect();
    let now = m.clock.sim_now();
    let since = cj.value["status"]["lastScheduleTime"]
        .as_str()
        .or_else(|| cj.value["metadata"]["creationTimestamp"].as_str())
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .unwrap_or(now);
    // The most recent time due since the last run (missed ones are not all run).
    let mut due = None;
    let mut cursor = utc(since);
    for _ in 0..1000 {
        match schedule.find_next_occurrence(&cursor, false) {
            Ok(next) if next.timestamp() <= now => {
                due = Some(next.timestamp());
                cursor = next;
            }
            _ => break,
        }
    }
    let mut last_schedule = cj.value["status"]["lastScheduleTime"].clone();
    if let Some(at) = due.filter(|_| spec["suspend"].as_bool() != Some(true)) {
        let policy = spec["concurrencyPolicy"].as_str().unwrap_or("Allow");
        let run = match policy {
            "Forbid" if !active.is_empty() => {
                m.note(api, Source::CRONJOB, &cj.value, false, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid".into());
                false
            }
            "Replace" => {
                for j in active.drain(..) {
                    delete_job(m, api, &cj, &j.name);
                }
                true
            }
            _ => true,
        };
        last_schedule = json!(at.round(jiff::Unit::Second).unwrap_or(at).to_string());
        if run {
            let template = &spec["jobTemplate"];
            let mut metadata = template["metadata"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let job_name = format!("{name}-{}", at.as_second() / 60);
            metadata.insert("name".into(), json!(job_name));
            metadata.insert("ownerReferences".into(), json!([owner_ref(&cj)]));
            metadata.insert(
                "annotations".into(),
                json!({ "batch.kubernetes.io/cronjob-scheduled-timestamp": last_schedule }),
            );
            let job = json!({ "apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": template["spec"] });
            if api.create(JOBS, ns, job).is_some() {
                m.note(
                    api,
                    Source::CRONJOB,
                    &cj.value,
                    false,
                    "SuccessfulCreate",
                    format!("Created job {job_name}"),
                );
            }
        }
    }
    let jobs = owned(m, api, JOBS, &cj);
    let refs: Vec<Value> = jobs
        .iter()
        .filter(|j| finished(&j.value).is_none() && !deleting(&j.value))
        .map(|j| json!({ "apiVersion": "batch/v1", "kind": "Job", "name": j.name, "namespace": ns, "uid": j.value["metadata"]["uid"], "resourceVersion": j.rv.to_string() }))
        .collect();
    api.modify_status(&cj, CRONJOBS, |c| {
        let mut status = json!({});
        if !refs.is_empty() {
            status["active"] = json!(refs);
        }
        if !last_schedule.is_null() {
            status["lastScheduleTime"] = last_schedule;
        }
        if !last_success.is_null() {
            status["lastSuccessfulTime"] = last_success;
        }
        c["status"] = status;
    });
    // Wake for the next run.
    if let Ok(next) = schedule.find_next_occurrence(&utc(now), false) {
        let at = m.clock.instant_of(next.timestamp()) + Duration::from_millis(5);
        m.wake_at(at, Key::CronJob(ns.to_string(), name.to_string()));
    }
}
