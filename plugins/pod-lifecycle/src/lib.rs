//! `pod-lifecycle`: follows every pod and writes one JSON line per
//! transition — created, phase changed (with the seconds spent in the
//! previous phase), container restarted, deleted — to the file named by
//! its `output` setting.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;

use faro_plugin_sdk::serde_json::{self, Value, json};
use faro_plugin_sdk::{Event, Host, Manifest, Plugin, append_file, export_plugin};

struct Pod {
    uid: String,
    phase: String,
    since: jiff::Timestamp,
    restarts: BTreeMap<String, i64>,
}

/// The plugin's state: the last phase and restart counts of each pod.
pub struct PodLifecycle {
    out: File,
    pods: HashMap<String, Pod>,
}

fn phase(object: &Value) -> String {
    object["status"]["phase"]
        .as_str()
        .unwrap_or("Unknown")
        .to_owned()
}

fn restarts(object: &Value) -> BTreeMap<String, i64> {
    object["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["name"].as_str()?.to_owned(), c["restartCount"].as_i64()?)))
        .collect()
}

fn seconds(from: jiff::Timestamp, to: jiff::Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()) as f64 / 1000.0
}

impl PodLifecycle {
    fn write(&mut self, line: &Value) -> Result<(), String> {
        let mut text = serde_json::to_vec(line).map_err(|e| e.to_string())?;
        text.push(b'\n');
        self.out
            .write_all(&text)
            .map_err(|e| format!("writing: {e}"))
    }
}

impl Plugin for PodLifecycle {
    fn manifest() -> Manifest {
        Manifest::new("pod-lifecycle", env!("CARGO_PKG_VERSION"), ["v1/pods"])
    }

    fn init(config: Value, host: Host) -> Result<Self, String> {
        let out = append_file(&config, "output")?;
        host.info(&format!("pod-lifecycle writing to {}", config["output"]));
        Ok(Self {
            out,
            pods: HashMap::new(),
        })
    }

    fn on_event(&mut self, event: &Event) -> Result<(), String> {
        let at: jiff::Timestamp = event
            .timestamp
            .parse()
            .map_err(|e| format!("timestamp {:?}: {e}", event.timestamp))?;
        let key = match &event.namespace {
            Some(ns) => format!("{ns}/{}", event.name),
            None => event.name.clone(),
        };
        let uid = event.object["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if event.event_type == "DELETED" {
            if let Some(pod) = self.pods.remove(&key) {
                self.write(&json!({
                    "timestamp": event.timestamp, "pod": key, "uid": pod.uid,
                    "transition": "deleted", "from": pod.phase, "to": null,
                    "secondsInPrevious": seconds(pod.since, at),
                }))?;
            }
            return Ok(());
        }
        let now_phase = phase(&event.object);
        let now_restarts = restarts(&event.object);
        let known = self.pods.get(&key).filter(|p| p.uid == uid).is_some();
        if !known {
            self.write(&json!({
                "timestamp": event.timestamp, "pod": key, "uid": uid,
                "transition": "created", "from": null, "to": now_phase,
                "secondsInPrevious": null,
            }))?;
            self.pods.insert(
                key,
                Pod {
                    uid,
                    phase: now_phase,
                    since: at,
                    restarts: now_restarts,
                },
            );
            return Ok(());
        }
        let mut lines = Vec::new();
        if let Some(pod) = self.pods.get_mut(&key) {
            if pod.phase != now_phase {
                lines.push(json!({
                    "timestamp": event.timestamp, "pod": key, "uid": uid,
                    "transition": "phase", "from": pod.phase, "to": now_phase,
                    "secondsInPrevious": seconds(pod.since, at),
                }));
                pod.phase = now_phase;
                pod.since = at;
            }
            for (container, count) in &now_restarts {
                let before = pod.restarts.get(container).copied().unwrap_or(0);
                if *count > before {
                    lines.push(json!({
                        "timestamp": event.timestamp, "pod": key, "uid": uid,
                        "transition": "restart", "container": container,
                        "restartCount": count, "phase": pod.phase,
                    }));
                }
            }
            pod.restarts = now_restarts;
        }
        for line in &lines {
            self.write(line)?;
        }
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), String> {
        self.out.flush().map_err(|e| e.to_string())
    }
}

export_plugin!(PodLifecycle);
