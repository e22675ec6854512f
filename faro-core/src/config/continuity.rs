//! The blocks that keep Faro's output exact and informative across time:
//! `checkpoint:` (resume after a restart with no flood and no loss) and
//! `updates:` (which UPDATEDs are worth delivering, and what changed in them).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::ConfigError;
use super::raw::{RawCheckpoint, RawUpdates, boolean, whole_number};
use crate::{EventType, Gvr};

/// The `checkpoint:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// On by default for `faro run`.
    pub enabled: bool,
    /// Where checkpoints are kept; `None`: `<output_dir>/state`.
    pub directory: Option<PathBuf>,
    /// How often progress is recorded (and always at shutdown).
    pub interval: Duration,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            directory: None,
            interval: Duration::from_secs(5),
        }
    }
}

/// UPDATEDs that are not delivered when their only changes are of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Suppress {
    /// Nothing changed but `metadata.resourceVersion`.
    pub resync: bool,
    /// Only `/status` changed.
    pub status_only: bool,
    /// Only `/metadata` changed, and not `metadata.generation`.
    pub metadata_only: bool,
    /// Only `metadata.managedFields` changed.
    pub managed_fields_only: bool,
}

impl Suppress {
    /// Whether any suppression is asked for.
    pub fn any(self) -> bool {
        self.resync || self.status_only || self.metadata_only || self.managed_fields_only
    }
}

/// What an UPDATED says about its change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiffMode {
    /// `changedPaths`: the JSON pointers of what changed.
    #[default]
    Paths,
    /// `changedPaths` and an RFC 6902 `patch` from the previous state.
    Patch,
    /// Neither.
    None,
}

/// How the UPDATEDs of one GVR are treated: what is suppressed, what they
/// carry, which event types are delivered at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePolicy {
    /// Kinds of no-op UPDATEDs not delivered.
    pub suppress: Suppress,
    /// What an UPDATED carries.
    pub diff: DiffMode,
    /// Deliver an UPDATED only if something under one of these JSON pointers changed.
    pub only_paths: Vec<String>,
    /// Deliver an UPDATED only if something outside all of these changed.
    pub ignore_paths: Vec<String>,
    /// Delivered event types (the others are still classified).
    pub event_types: [bool; 3],
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        Self {
            suppress: Suppress::default(),
            diff: DiffMode::Paths,
            only_paths: Vec::new(),
            ignore_paths: Vec::new(),
            event_types: [true; 3],
        }
    }
}

impl UpdatePolicy {
    /// Whether events of `t` are delivered.
    pub fn delivers(&self, t: EventType) -> bool {
        self.event_types[match t {
            EventType::Added => 0,
            EventType::Updated => 1,
            EventType::Deleted => 2,
        }]
    }

    /// Whether deciding on an UPDATED needs the object's previous state.
    pub fn needs_previous(&self) -> bool {
        self.delivers(EventType::Updated)
            && (self.diff != DiffMode::None
                || self.suppress.any()
                || !self.only_paths.is_empty()
                || !self.ignore_paths.is_empty())
    }
}

/// The `updates:` block and the per-rule `updates:` blocks, resolved per GVR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatesConfig {
    /// For every GVR whose rules set no `updates:` block.
    pub default: UpdatePolicy,
    /// By GVR, from the rules that set one.
    pub per_gvr: BTreeMap<Gvr, UpdatePolicy>,
    /// Previous states kept for diffs, all GVRs together; past it the
    /// oldest are evicted and their next UPDATED carries `changedPaths: null`.
    pub diff_memory_bytes: u64,
}

impl Default for UpdatesConfig {
    fn default() -> Self {
        Self {
            default: UpdatePolicy::default(),
            per_gvr: BTreeMap::new(),
            diff_memory_bytes: 256 << 20,
        }
    }
}

impl UpdatesConfig {
    /// The policy of `gvr`.
    pub fn policy(&self, gvr: &Gvr) -> &UpdatePolicy {
        self.per_gvr.get(gvr).unwrap_or(&self.default)
    }
}

pub(crate) fn checkpoint_config(raw: RawCheckpoint) -> Result<CheckpointConfig, ConfigError> {
    let mut out = CheckpointConfig::default();
    if let Some(v) = &raw.enabled {
        out.enabled = boolean("checkpoint.enabled", v)?;
    }
    if let Some(dir) = raw.directory {
        if dir.trim().is_empty() {
            return Err(ConfigError::invalid(
                "checkpoint.directory",
                "\"\" is empty; expected a directory path",
            ));
        }
        out.directory = Some(PathBuf::from(dir));
    }
    if let Some(text) = &raw.interval {
        out.interval = super::story::duration("checkpoint.interval", text)?;
    }
    Ok(out)
}

/// Validates one `updates:` block written at `path` (`updates`, `resources[2].updates`).
pub(crate) fn update_policy(path: &str, raw: &RawUpdates) -> Result<UpdatePolicy, ConfigError> {
    let mut out = UpdatePolicy::default();
    for (j, name) in raw.suppress.iter().enumerate() {
        let s = &mut out.suppress;
        match name.as_str() {
            "resync" => s.resync = true,
            "status_only" => s.status_only = true,
            "metadata_only" => s.metadata_only = true,
            "managed_fields_only" => s.managed_fields_only = true,
            other => {
                return Err(ConfigError::invalid(
                    format!("{path}.suppress[{j}]"),
                    format!(
                        "{other:?} is not a kind of update; expected resync, status_only, metadata_only or managed_fields_only"
                    ),
                ));
            }
        }
    }
    if let Some(mode) = &raw.diff {
        out.diff = match mode.as_str() {
            "paths" => DiffMode::Paths,
            "patch" => DiffMode::Patch,
            "none" => DiffMode::None,
            other => {
                return Err(ConfigError::invalid(
                    format!("{path}.diff"),
                    format!("{other:?} is not a diff mode; expected paths, patch or none"),
                ));
            }
        };
    }
    for (key, list) in [
        ("only_paths", &raw.only_paths),
        ("ignore_paths", &raw.ignore_paths),
    ] {
        for (j, pointer) in list.iter().enumerate() {
            if let Err(why) = check_pointer(pointer) {
                return Err(ConfigError::invalid(
                    format!("{path}.{key}[{j}]"),
                    format!(
                        "{pointer:?} is not a JSON pointer: {why}; expected one such as /spec/replicas"
                    ),
                ));
            }
        }
    }
    for (i, only) in raw.only_paths.iter().enumerate() {
        if let Some(j) = raw.ignore_paths.iter().position(|p| p == only) {
            return Err(ConfigError::invalid(
                format!("{path}.only_paths[{i}]"),
                format!(
                    "{only:?} is also {path}.ignore_paths[{j}]; expected a path in one of the two lists"
                ),
            ));
        }
    }
    out.only_paths.clone_from(&raw.only_paths);
    out.ignore_paths.clone_from(&raw.ignore_paths);
    if let Some(types) = &raw.event_types {
        out.event_types = [false; 3];
        for (j, name) in types.iter().enumerate() {
            let i = match name.as_str() {
                "ADDED" => 0,
                "UPDATED" => 1,
                "DELETED" => 2,
                other => {
                    return Err(ConfigError::invalid(
                        format!("{path}.event_types[{j}]"),
                        format!(
                            "{other:?} is not an event type; expected ADDED, UPDATED or DELETED"
                        ),
                    ));
                }
            };
            out.event_types[i] = true;
        }
    }
    Ok(out)
}

/// The top-level `updates:` block: a policy plus the diff memory budget.
pub(crate) fn updates_config(raw: &RawUpdates) -> Result<UpdatesConfig, ConfigError> {
    let mut out = UpdatesConfig {
        default: update_policy("updates", raw)?,
        ..UpdatesConfig::default()
    };
    if let Some(v) = &raw.diff_memory_mb {
        let mb = diff_memory("updates.diff_memory_mb", v)?;
        out.diff_memory_bytes = mb << 20;
    }
    Ok(out)
}

fn diff_memory(path: &str, value: &Value) -> Result<u64, ConfigError> {
    whole_number(path, value, 1 << 20, "a number of mebibytes")
}

/// RFC 6901: empty (the whole document) or `/`-separated tokens in which
/// `~` is only ever followed by `0` or `1`.
fn check_pointer(pointer: &str) -> Result<(), &'static str> {
    if pointer.is_empty() {
        return Err("it is empty (the whole object)");
    }
    if !pointer.starts_with('/') {
        return Err("it does not start with /");
    }
    let bytes = pointer.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')) {
            return Err("~ is not followed by 0 or 1");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_are_checked() {
        assert!(check_pointer("/spec/replicas").is_ok());
        assert!(check_pointer("/metadata/labels/app.kubernetes.io~1name").is_ok());
        assert!(check_pointer("spec").is_err());
        assert!(check_pointer("/a~2b").is_err());
        assert!(check_pointer("/a~").is_err());
        assert!(check_pointer("").is_err());
    }
}
