//! Durable progress: what the handlers report back to the watch side so
//! that a checkpoint records only what is safely written, and what a resumed
//! watch reads back from the output to deliver nothing twice.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::EventType;

/// A position in a JSON lines file of resource events (the output
/// contract's events file): every line before `offset` is durably written.
/// Lines after it, and files of the same `prefix` in the same directory with
/// later names, were written after the mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableMark {
    /// The file.
    pub path: PathBuf,
    /// Its length when the mark was taken.
    pub offset: u64,
}

/// One line of an events file, as much of it as resuming needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WrittenEvent {
    /// ADDED, UPDATED or DELETED.
    pub event_type: EventType,
    /// `v1/configmaps`, `apps/v1/deployments`.
    pub gvr: String,
    /// Absent for cluster-scoped objects.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    #[serde(default)]
    pub uid: String,
    /// The event's resourceVersion.
    #[serde(default)]
    pub resource_version: String,
    /// Labels, for attributing the line to a watch by its label selector.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The cluster, when Faro watches clusters by name.
    #[serde(default)]
    pub cluster: Option<String>,
}

impl WrittenEvent {
    /// Parses one line; `None` for a line that is not an event (or is cut).
    pub fn parse(line: &[u8]) -> Option<Self> {
        serde_json::from_slice(line).ok()
    }

    /// Every whole line of `file` from `offset` on, then of every later file
    /// of the same name prefix in its directory (a later run's), in name
    /// order. A file that cannot be read is skipped.
    pub fn read_since(mark: &DurableMark) -> Vec<WrittenEvent> {
        let mut out = Vec::new();
        let Some(dir) = mark.path.parent() else {
            return out;
        };
        let Some(name) = mark.path.file_name().and_then(|n| n.to_str()) else {
            return out;
        };
        let prefix = format!("{}-", name.split('-').next().unwrap_or(name));
        let mut later: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".json") && n > name)
            })
            .collect();
        later.sort();
        let files = std::iter::once((mark.path.clone(), mark.offset))
            .chain(later.into_iter().map(|p| (p, 0)));
        for (path, offset) in files {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let text = &bytes[start..];
            // Only whole lines: a cut last line was never written.
            let end = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            out.extend(
                text[..end]
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .filter_map(WrittenEvent::parse),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_after_the_mark_and_later_files_are_read_whole_lines_only() {
        let dir = std::env::temp_dir().join(format!("faro-progress-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let line = |name: &str, t: &str, rv: &str| {
            format!(
                r#"{{"timestamp":"2026-01-01T00:00:00Z","eventType":"{t}","gvr":"v1/configmaps","namespace":"ns","name":"{name}","uid":"u-{name}","resourceVersion":"{rv}"}}"#
            ) + "\n"
        };
        let first = line("a", "ADDED", "1") + &line("b", "UPDATED", "2");
        let a = dir.join("events-20260101-000000.json");
        std::fs::write(&a, first.clone() + &line("c", "DELETED", "3")).unwrap();
        let b = dir.join("events-20260101-000100.json");
        std::fs::write(&b, line("d", "ADDED", "4") + r#"{"timestamp":"cut"#).unwrap();
        std::fs::write(dir.join("k8s-events-20260101-000100.json"), "{}\n").unwrap();
        let mark = DurableMark {
            path: a,
            offset: first.len() as u64,
        };
        let got: Vec<(String, EventType, String)> = WrittenEvent::read_since(&mark)
            .into_iter()
            .map(|w| (w.name, w.event_type, w.resource_version))
            .collect();
        assert_eq!(
            got,
            [
                ("c".to_owned(), EventType::Deleted, "3".to_owned()),
                ("d".to_owned(), EventType::Added, "4".to_owned())
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
