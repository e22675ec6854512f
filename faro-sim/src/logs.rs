//! `GET .../pods/<name>/log`: container logs with `container`, `follow`,
//! `previous`, `sinceTime`, `sinceSeconds`, `timestamps` and `tailLines`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use crate::ops::{self, Target};
use crate::shared::{ContainerLog, FollowInfo, Shared};
use crate::status::ApiError;

type Line = (jiff::Timestamp, String);

struct LogOptions {
    timestamps: bool,
    since: Option<jiff::Timestamp>,
    tail: Option<usize>,
}

impl LogOptions {
    fn render(&self, lines: &[Line], out: &mut String) {
        let selected: Vec<&Line> = lines
            .iter()
            .filter(|(at, _)| self.since.is_none_or(|s| *at >= s))
            .collect();
        let skip = self.tail.map_or(0, |t| selected.len().saturating_sub(t));
        for (at, text) in selected.into_iter().skip(skip) {
            if self.timestamps {
                // RFC 3339 with nanoseconds, trailing zeros trimmed, as the kubelet writes it.
                out.push_str(&at.to_string());
                out.push(' ');
            }
            out.push_str(text);
            out.push('\n');
        }
    }
}

/// Takes a follow off the list when its stream ends, however it ends.
struct FollowGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for FollowGuard {
    fn drop(&mut self) {
        self.shared.unregister_follow(self.id);
    }
}

pub(crate) fn pod_log(
    shared: Arc<Shared>,
    target: &Target,
    params: &HashMap<String, String>,
    query: &str,
) -> Result<Response, ApiError> {
    let pod = ops::get(
        &shared,
        &Target {
            subresource: None,
            ..target.clone()
        },
    )?;
    let ns = pod.namespace.clone().unwrap_or_default();
    let containers: Vec<String> = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| pod.value["spec"][*list].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let container = match params.get("container") {
        Some(c) if !c.is_empty() => {
            if !containers.contains(c) {
                return Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {}",
                    pod.name
                )));
            }
            c.clone()
        }
        _ if pod.value["spec"]["containers"].as_array().map(Vec::len) == Some(1) => {
            containers[0].clone()
        }
        _ => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {}, choose one of: [{}]",
                pod.name,
                containers.join(" ")
            )));
        }
    };
    let since = match (params.get("sinceTime"), params.get("sinceSeconds")) {
        (Some(t), _) => Some(t.parse::<jiff::Timestamp>().map_err(|_| {
            ApiError::bad_request(format!("sinceTime: invalid RFC 3339 time {t:?}"))
        })?),
        (None, Some(s)) => {
            let seconds: i64 = s
                .parse()
                .map_err(|_| ApiError::bad_request(format!("sinceSeconds: invalid value {s:?}")))?;
            jiff::Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_secs(seconds))
                .ok()
        }
        _ => None,
    };
    let options = LogOptions {
        timestamps: params.get("timestamps").is_some_and(|v| v == "true"),
        since,
        tail: params.get("tailLines").and_then(|t| t.parse().ok()),
    };
    let key = (ns, pod.name.clone(), container.clone());
    let previous = params.get("previous").is_some_and(|v| v == "true");
    let (lines, generation, mut sent, uid) = {
        let logs = shared.logs();
        let empty = ContainerLog::default();
        let log = logs.get(&key).unwrap_or(&empty);
        let lines: Vec<Line> = if previous {
            log.previous.clone().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "previous terminated container \"{container}\" in pod \"{}\" not found",
                    pod.name
                ))
            })?
        } else {
            if log.lines.is_empty()
                && let Some(reason) = waiting_reason(&pod.value, &container)
            {
                return Err(ApiError::bad_request(format!(
                    "container \"{container}\" in pod \"{}\" is waiting to start: {reason}",
                    pod.name
                )));
            }
            log.lines.iter().cloned().collect()
        };
        (lines, log.generation, log.end(), log.pod_uid.clone())
    };
    let mut text = String::new();
    options.render(&lines, &mut text);
    let follow = params.get("follow").is_some_and(|v| v == "true") && !previous;
    if !follow {
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response());
    }
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    let guard = FollowGuard {
        id: shared.register_follow(FollowInfo {
            namespace: key.0.clone(),
            pod: key.1.clone(),
            container: key.2.clone(),
            query: query.to_string(),
        }),
        shared: shared.clone(),
    };
    tokio::spawn(async move {
        let _guard = guard;
        if !text.is_empty() && tx.send(Bytes::from(text)).await.is_err() {
            return;
        }
        let mut changes = shared.logs_tx.subscribe();
        let mut close = shared.close_tx.subscribe();
        close.mark_unchanged();
        let mut close_follows = shared.follows_close_tx.subscribe();
        close_follows.mark_unchanged();
        let follow_options = LogOptions {
            tail: None,
            since: None,
            ..options
        };
        // This container's appends; other changes (restart, exit, removal)
        // come through `changes`.
        let mut appended: Option<tokio::sync::watch::Receiver<u64>> = None;
        loop {
            let (new, ended) = {
                let logs = shared.logs();
                match logs.get(&key) {
                    Some(log) if log.generation == generation && log.pod_uid == uid => {
                        if appended.is_none() {
                            // Under the lock that the read below holds too:
                            // no append can fall between the two.
                            appended = Some(log.appended.subscribe());
                        }
                        let new: Vec<Line> = log.since(sent).cloned().collect();
                        sent = log.end();
                        // A container that has exited ends its follow, as the kubelet does.
                        (new, log.terminated)
                    }
                    _ => (Vec::new(), true),
                }
            };
            if !new.is_empty() {
                let mut chunk = String::new();
                follow_options.render(&new, &mut chunk);
                if tx.send(Bytes::from(chunk)).await.is_err() {
                    return;
                }
            }
            if ended {
                return;
            }
            let appended_changed = async {
                match appended.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                more = appended_changed => if !more { return },
                _ = close.changed() => return,
                _ = close_follows.changed() => return,
                () = tx.closed() => return,
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|c| c.map(Ok::<_, Infallible>))
    }));
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body).into_response())
}

/// Why a container that has written nothing yet has not started, if it has not.
fn waiting_reason(pod: &serde_json::Value, container: &str) -> Option<String> {
    [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .flat_map(|list| pod["status"][*list].as_array().into_iter().flatten())
    .find(|s| s["name"] == container)
    .and_then(|s| s["state"]["waiting"]["reason"].as_str())
    .map(str::to_string)
}
