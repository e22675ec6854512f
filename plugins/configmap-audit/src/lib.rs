//! `configmap-audit`: keeps the last `data` of every ConfigMap and writes,
//! at each change, which keys were added, removed or changed — never the
//! values — as one JSON line to the file named by its `output` setting.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;

use faro_plugin_sdk::serde_json::{self, Value, json};
use faro_plugin_sdk::{Event, Host, Manifest, Plugin, append_file, export_plugin};

/// The plugin's state: the last data of each ConfigMap.
pub struct ConfigMapAudit {
    out: File,
    last: HashMap<String, BTreeMap<String, Value>>,
}

fn data(object: &Value) -> BTreeMap<String, Value> {
    ["data", "binaryData"]
        .iter()
        .filter_map(|k| object[*k].as_object())
        .flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect()
}

impl Plugin for ConfigMapAudit {
    fn manifest() -> Manifest {
        Manifest::new(
            "configmap-audit",
            env!("CARGO_PKG_VERSION"),
            ["v1/configmaps"],
        )
    }

    fn init(config: Value, host: Host) -> Result<Self, String> {
        let out = append_file(&config, "output")?;
        host.info(&format!("configmap-audit writing to {}", config["output"]));
        Ok(Self {
            out,
            last: HashMap::new(),
        })
    }

    fn on_event(&mut self, event: &Event) -> Result<(), String> {
        let key = match &event.namespace {
            Some(ns) => format!("{ns}/{}", event.name),
            None => event.name.clone(),
        };
        let before = self.last.remove(&key).unwrap_or_default();
        let after = if event.event_type == "DELETED" {
            BTreeMap::new()
        } else {
            data(&event.object)
        };
        let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
        let removed: Vec<&String> = before.keys().filter(|k| !after.contains_key(*k)).collect();
        let changed: Vec<&String> = after
            .iter()
            .filter(|(k, v)| before.get(*k).is_some_and(|b| b != *v))
            .map(|(k, _)| k)
            .collect();
        let write = event.event_type != "UPDATED"
            || !(added.is_empty() && removed.is_empty() && changed.is_empty());
        if write {
            let line = json!({
                "timestamp": event.timestamp,
                "configMap": key,
                "event": event.event_type,
                "resourceVersion": event.resource_version,
                "added": added,
                "removed": removed,
                "changed": changed,
            });
            let mut text = serde_json::to_vec(&line).map_err(|e| e.to_string())?;
            text.push(b'\n');
            self.out
                .write_all(&text)
                .map_err(|e| format!("writing: {e}"))?;
        }
        if event.event_type != "DELETED" {
            self.last.insert(key, after);
        }
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), String> {
        self.out.flush().map_err(|e| e.to_string())
    }
}

export_plugin!(ConfigMapAudit);
