//! The blocks that tell a workload's story: `k8s_events:` (Kubernetes
//! Event occurrences), `lifecycle:` (pod lifecycle records) and
//! `correlation_output:` (one JSON document per workload).

use std::path::PathBuf;
use std::time::Duration;

use faro_filter::{NamespaceMatcher, is_dns_label};
use serde_json::Value;

use super::raw::{RawCorrelationOutput, RawK8sEvents, RawLifecycle, boolean, whole_number};
use super::spec::NamespaceSelection;
use super::{ConfigError, invalid_value};

/// Which Events already in the cluster at start are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventsSince {
    /// Only occurrences from Faro's start on: an Event last seen before
    /// is not reported, and only its later occurrences are.
    #[default]
    Start,
    /// Every occurrence the server still has.
    All,
}

/// The `k8s_events:` block. Its presence turns Event watching on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sEventsConfig {
    /// The namespaces whose Events are reported.
    pub namespaces: NamespaceSelection,
    /// `Normal`, `Warning`; empty for both.
    pub types: Vec<String>,
    /// Only these reasons; empty for all.
    pub reasons: Vec<String>,
    /// These reasons are left out.
    pub exclude_reasons: Vec<String>,
    /// Only Events about these kinds (`Pod`, `Deployment`); empty for all.
    pub involved_kinds: Vec<String>,
    /// Where reporting starts.
    pub since: EventsSince,
}

impl Default for K8sEventsConfig {
    fn default() -> Self {
        Self {
            namespaces: NamespaceSelection::All,
            types: Vec::new(),
            reasons: Vec::new(),
            exclude_reasons: Vec::new(),
            involved_kinds: Vec::new(),
            since: EventsSince::Start,
        }
    }
}

impl K8sEventsConfig {
    /// Whether an Event in `namespace` (`None`: cluster-scoped) is reported.
    pub fn namespace_matches(&self, namespace: Option<&str>) -> bool {
        match &self.namespaces {
            NamespaceSelection::All => true,
            NamespaceSelection::Names(names) => {
                namespace.is_some_and(|ns| names.iter().any(|n| n == ns))
            }
            NamespaceSelection::Matching(m) => m.matches(namespace),
        }
    }

    /// Whether an Event of this type, reason and involved kind is reported.
    pub fn matches(&self, event_type: &str, reason: &str, involved_kind: &str) -> bool {
        (self.types.is_empty() || self.types.iter().any(|t| t == event_type))
            && (self.reasons.is_empty() || self.reasons.iter().any(|r| r == reason))
            && !self.exclude_reasons.iter().any(|r| r == reason)
            && (self.involved_kinds.is_empty()
                || self.involved_kinds.iter().any(|k| k == involved_kind))
    }
}

/// The `lifecycle:` block: records of the pods Faro watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// On by default.
    pub enabled: bool,
    /// A pod created within this long after another of the same owner
    /// was deleted replaces it.
    pub replacement_window: Duration,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            replacement_window: Duration::from_secs(60),
        }
    }
}

/// The `correlation_output:` block: one complete JSON document per
/// correlation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationOutputConfig {
    /// Off by default.
    pub enabled: bool,
    /// Where the documents go; `None`: `<output_dir>/correlations`.
    pub directory: Option<PathBuf>,
    /// Past this many bytes, a correlation's oldest records leave memory.
    pub max_bytes_per_correlation: u64,
    /// A correlation with no record for this long is written and closed.
    pub close_after_idle: Duration,
}

impl Default for CorrelationOutputConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            directory: None,
            max_bytes_per_correlation: 8 << 20,
            close_after_idle: Duration::from_secs(600),
        }
    }
}

pub(crate) fn duration(path: &str, text: &str) -> Result<Duration, ConfigError> {
    text.parse::<jiff::SignedDuration>()
        .ok()
        .and_then(|d| Duration::try_from(d).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            ConfigError::invalid(
                path,
                format!("{text:?} is not a duration; expected one above zero such as 90s or 10m"),
            )
        })
}

fn names(path: &str, list: &[String], allowed: Option<&[&str]>) -> Result<(), ConfigError> {
    for (j, name) in list.iter().enumerate() {
        let ok = match allowed {
            Some(allowed) => allowed.contains(&name.as_str()),
            None => !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
        };
        if !ok {
            let expected = match allowed {
                Some(allowed) => format!("one of {}", allowed.join(", ")),
                None => "a name of letters and digits such as BackOff or Pod".to_owned(),
            };
            return Err(ConfigError::invalid(
                format!("{path}[{j}]"),
                format!("{name:?} is not valid here; expected {expected}"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn k8s_events_config(raw: RawK8sEvents) -> Result<K8sEventsConfig, ConfigError> {
    for (j, name) in raw.namespace_names.iter().enumerate() {
        if !is_dns_label(name) {
            return Err(ConfigError::invalid(
                format!("k8s_events.namespace_names[{j}]"),
                format!(
                    "{name:?} is not a namespace name; expected a DNS-1123 label (lowercase letters, digits and '-')"
                ),
            ));
        }
    }
    let namespaces = if !raw.namespace_patterns.is_empty() {
        NamespaceSelection::Matching(
            NamespaceMatcher::new(raw.namespace_names.clone(), raw.namespace_patterns.clone())
                .map_err(|(j, e)| {
                    invalid_value(
                        &format!("k8s_events.namespace_patterns[{j}]"),
                        &raw.namespace_patterns[j],
                        &e,
                    )
                })?,
        )
    } else if !raw.namespace_names.is_empty() {
        let mut names = raw.namespace_names;
        names.sort();
        names.dedup();
        NamespaceSelection::Names(names)
    } else {
        NamespaceSelection::All
    };
    names("k8s_events.types", &raw.types, Some(&["Normal", "Warning"]))?;
    names("k8s_events.reasons", &raw.reasons, None)?;
    names("k8s_events.exclude_reasons", &raw.exclude_reasons, None)?;
    names("k8s_events.involved_kinds", &raw.involved_kinds, None)?;
    let since = match raw.since.as_deref() {
        None | Some("start") => EventsSince::Start,
        Some("all") => EventsSince::All,
        Some(other) => {
            return Err(ConfigError::invalid(
                "k8s_events.since",
                format!("{other:?} is not a start point; expected start or all"),
            ));
        }
    };
    Ok(K8sEventsConfig {
        namespaces,
        types: raw.types,
        reasons: raw.reasons,
        exclude_reasons: raw.exclude_reasons,
        involved_kinds: raw.involved_kinds,
        since,
    })
}

pub(crate) fn lifecycle_config(raw: RawLifecycle) -> Result<LifecycleConfig, ConfigError> {
    let mut out = LifecycleConfig::default();
    if let Some(v) = &raw.enabled {
        out.enabled = boolean("lifecycle.enabled", v)?;
    }
    if let Some(text) = &raw.replacement_window {
        out.replacement_window = duration("lifecycle.replacement_window", text)?;
    }
    Ok(out)
}

pub(crate) fn correlation_output_config(
    raw: RawCorrelationOutput,
) -> Result<CorrelationOutputConfig, ConfigError> {
    let mut out = CorrelationOutputConfig::default();
    if let Some(v) = &raw.enabled {
        out.enabled = boolean("correlation_output.enabled", v)?;
    }
    if let Some(dir) = raw.directory {
        if dir.trim().is_empty() {
            return Err(ConfigError::invalid(
                "correlation_output.directory",
                "\"\" is empty; expected a directory path",
            ));
        }
        out.directory = Some(PathBuf::from(dir));
    }
    if let Some(v) = &raw.max_bytes_per_correlation {
        let n = budget(v)?;
        out.max_bytes_per_correlation = n;
    }
    if let Some(text) = &raw.close_after_idle {
        out.close_after_idle = duration("correlation_output.close_after_idle", text)?;
    }
    Ok(out)
}

fn budget(value: &Value) -> Result<u64, ConfigError> {
    const PATH: &str = "correlation_output.max_bytes_per_correlation";
    let n = whole_number(PATH, value, 1 << 40, "a number of bytes")?;
    if n == 0 {
        return Err(ConfigError::invalid(
            PATH,
            "0 is not a budget; expected 1 byte or more, such as 8388608",
        ));
    }
    Ok(n)
}
