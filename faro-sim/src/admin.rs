//! The fault-injection and control API under `/faro-sim/v1/`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::shared::{ErrorFault, Shared};
use crate::status::ApiError;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/faro-sim/v1/watches/close", post(close_watches))
        .route("/faro-sim/v1/watches/freeze", post(freeze))
        .route("/faro-sim/v1/watches", get(watches))
        .route("/faro-sim/v1/logs/follows", get(follows))
        .route("/faro-sim/v1/logs/close", post(close_follows))
        .route("/faro-sim/v1/history/compact", post(compact))
        .route("/faro-sim/v1/state", get(state))
        .route("/faro-sim/v1/faults/errors", post(errors))
        .route("/faro-sim/v1/faults/latency", post(latency))
        .route("/faro-sim/v1/restart", post(restart))
        .route(
            "/faro-sim/v1/pods/{ns}/{name}/containers/{container}/log",
            post(append_log),
        )
        .route(
            "/faro-sim/v1/pods/{ns}/{name}/containers/{container}/restart",
            post(restart_container),
        )
}

fn body<T: Default + serde::de::DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(text).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
}

pub(crate) fn do_close_watches(shared: &Shared) {
    shared.close_tx.send_modify(|g| *g += 1);
}

async fn close_watches(State(shared): State<Arc<Shared>>) -> Json<Value> {
    do_close_watches(&shared);
    Json(json!({}))
}

pub(crate) fn do_close_follows(shared: &Shared) {
    shared.follows_close_tx.send_modify(|g| *g += 1);
}

async fn close_follows(State(shared): State<Arc<Shared>>) -> Json<Value> {
    do_close_follows(&shared);
    Json(json!({}))
}

async fn follows(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!(shared.follow_infos()))
}

pub(crate) fn do_compact(shared: &Shared) -> u64 {
    shared.store().compact()
}

async fn compact(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({ "compactedTo": do_compact(&shared).to_string() }))
}

pub(crate) fn do_state(shared: &Shared) -> Value {
    let (rv, objects, history_bytes) = {
        let store = shared.store();
        (store.rv(), store.len(), store.history_bytes())
    };
    let log_bytes: usize = shared.logs().values().map(|l| l.bytes).sum();
    json!({
        "resourceVersion": rv.to_string(),
        "objects": objects,
        "watches": shared.watch_count(),
        "follows": shared.follow_infos().len(),
        "historyBytes": history_bytes,
        "logBytes": log_bytes,
    })
}

async fn state(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(do_state(&shared))
}

async fn watches(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!(shared.watch_infos()))
}

pub(crate) fn do_errors(shared: &Shared, fault: ErrorFault) {
    shared.faults().errors = (fault.count > 0).then_some(fault);
}

async fn errors(State(shared): State<Arc<Shared>>, text: String) -> Result<Json<Value>, ApiError> {
    let mut fault: ErrorFault = body(&text)?;
    if fault.status == 0 {
        fault.status = 500;
    }
    if !(400..=599).contains(&fault.status) {
        return Err(ApiError::bad_request(format!(
            "status: {} is not an error status; expected 500, 429 or another 4xx/5xx code",
            fault.status
        )));
    }
    do_errors(&shared, fault);
    Ok(Json(json!({})))
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Ms {
    ms: u64,
}

pub(crate) fn do_latency(shared: &Shared, latency: Duration) {
    shared.faults().latency = latency;
}

async fn latency(State(shared): State<Arc<Shared>>, text: String) -> Result<Json<Value>, ApiError> {
    let Ms { ms } = body(&text)?;
    do_latency(&shared, Duration::from_millis(ms));
    Ok(Json(json!({})))
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Seconds {
    seconds: f64,
    #[serde(rename = "downSeconds")]
    down_seconds: f64,
}

pub(crate) fn do_freeze(shared: &Shared, duration: Duration) {
    shared.faults().freeze_until = Some(Instant::now() + duration);
}

async fn freeze(State(shared): State<Arc<Shared>>, text: String) -> Result<Json<Value>, ApiError> {
    let s: Seconds = body(&text)?;
    do_freeze(&shared, Duration::from_secs_f64(s.seconds.max(0.0)));
    Ok(Json(json!({})))
}

pub(crate) fn do_restart(shared: &Shared, down: Duration) {
    {
        let mut faults = shared.faults();
        faults.freeze_until = None;
        faults.latency = Duration::ZERO;
    }
    do_close_watches(shared);
    shared.restart_tx.send_replace(Some(down));
}

async fn restart(State(shared): State<Arc<Shared>>, text: String) -> Result<Json<Value>, ApiError> {
    let s: Seconds = body(&text)?;
    let shared2 = shared.clone();
    // Answer first, then drop the connections (this one included).
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        do_restart(&shared2, Duration::from_secs_f64(s.down_seconds.max(0.0)));
    });
    Ok(Json(json!({})))
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Lines {
    lines: Vec<String>,
}

pub(crate) fn do_append_log(
    shared: &Shared,
    ns: &str,
    pod: &str,
    container: &str,
    lines: Vec<String>,
) -> Result<(), ApiError> {
    {
        let mut logs = shared.logs();
        let log = logs
            .get_mut(&(ns.to_string(), pod.to_string(), container.to_string()))
            .ok_or_else(|| ApiError::not_found("", "pods", &format!("{pod}/{container}")))?;
        let limit = shared.config.log_bytes_per_container;
        for line in lines {
            log.push(jiff::Timestamp::now(), line, limit);
        }
        log.appended.send_modify(|n| *n += 1);
    }
    Ok(())
}

async fn append_log(
    State(shared): State<Arc<Shared>>,
    Path((ns, name, container)): Path<(String, String, String)>,
    text: String,
) -> Result<Json<Value>, ApiError> {
    let Lines { lines } = body(&text)?;
    do_append_log(&shared, &ns, &name, &container, lines)?;
    Ok(Json(json!({})))
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Termination {
    exit_code: i64,
    reason: String,
}

/// Moves the current log to "previous", bumps `restartCount` and records the termination.
pub(crate) fn do_restart_container(
    shared: &Shared,
    ns: &str,
    pod: &str,
    container: &str,
    exit_code: i64,
    reason: &str,
) -> Result<(), ApiError> {
    {
        let mut logs = shared.logs();
        let log = logs
            .get_mut(&(ns.to_string(), pod.to_string(), container.to_string()))
            .ok_or_else(|| ApiError::not_found("", "pods", &format!("{pod}/{container}")))?;
        log.rotate();
    }
    shared.logs_tx.send_modify(|g| *g += 1);
    let stored = {
        let mut store = shared.store();
        let Some(current) = store.get("/pods", ns, pod) else {
            return Err(ApiError::not_found("", "pods", pod));
        };
        let mut value = current.value.clone();
        let now = jiff::Timestamp::now().to_string();
        let reason = if reason.is_empty() { "Error" } else { reason };
        for status in value["status"]["containerStatuses"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if status["name"].as_str() == Some(container) {
                let count = status["restartCount"].as_i64().unwrap_or(0) + 1;
                status["restartCount"] = json!(count);
                status["lastState"] = json!({ "terminated": {
                    "exitCode": exit_code, "reason": reason, "finishedAt": now,
                    "startedAt": status["state"]["running"]["startedAt"],
                }});
                status["state"] = json!({ "running": { "startedAt": now } });
            }
        }
        store.put("/pods", value)
    };
    shared.notify(stored.rv);
    Ok(())
}

async fn restart_container(
    State(shared): State<Arc<Shared>>,
    Path((ns, name, container)): Path<(String, String, String)>,
    text: String,
) -> Result<Json<Value>, ApiError> {
    let t: Termination = body(&text)?;
    do_restart_container(&shared, &ns, &name, &container, t.exit_code, &t.reason)?;
    Ok(Json(json!({})))
}
