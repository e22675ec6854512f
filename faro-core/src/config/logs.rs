//! The `logs:` block: which containers' logs Faro follows, and how.

use std::time::Duration;

use faro_filter::{LabelSelector, NamespaceMatcher, Pattern, is_dns_label};

use super::raw::{RawLogs, boolean, whole_number};
use super::spec::NamespaceSelection;
use super::{ConfigError, invalid_value};

/// Where a container's log is read from when Faro starts following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogSince {
    /// From the container's start: every line the kubelet still has.
    #[default]
    Start,
    /// Only lines written from now on.
    Now,
    /// Lines written in the last while.
    Last(Duration),
}

impl std::str::FromStr for LogSince {
    type Err = String;

    /// `start`, `now`, or a duration such as `10m`, `1h30m`, `90s`.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "start" => Ok(Self::Start),
            "now" => Ok(Self::Now),
            other => other
                .parse::<jiff::SignedDuration>()
                .ok()
                .and_then(|d| Duration::try_from(d).ok())
                .filter(|d| !d.is_zero())
                .map(Self::Last)
                .ok_or_else(|| {
                    format!("{other:?} is not a start point; expected start, now or a duration such as 10m")
                }),
        }
    }
}

/// The `logs:` block. Its presence turns log following on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsConfig {
    /// The namespaces whose pods are followed.
    pub namespaces: NamespaceSelection,
    /// Sent to the server with the pod watch.
    pub label_selector: LabelSelector,
    /// Pods whose name matches.
    pub pod_name_pattern: Option<Pattern>,
    /// Containers whose name matches.
    pub container_pattern: Option<Pattern>,
    /// Containers whose name matches are left out.
    pub exclude_container_pattern: Option<Pattern>,
    /// Follow init containers too (sidecars are always followed).
    pub include_init_containers: bool,
    /// After a restart, read the terminated instance's remaining lines.
    pub previous_on_restart: bool,
    /// Where a container is first read from.
    pub since: LogSince,
    /// At most this many log streams open at once; the others wait in turn.
    pub max_streams: usize,
    /// Longer lines are cut here and marked truncated.
    pub max_line_bytes: usize,
    /// Only lines that match.
    pub line_include: Option<Pattern>,
    /// Lines that match are left out.
    pub line_exclude: Option<Pattern>,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            namespaces: NamespaceSelection::All,
            label_selector: LabelSelector::everything(),
            pod_name_pattern: None,
            container_pattern: None,
            exclude_container_pattern: None,
            include_init_containers: true,
            previous_on_restart: true,
            since: LogSince::Start,
            max_streams: 1000,
            max_line_bytes: 16 * 1024,
            line_include: None,
            line_exclude: None,
        }
    }
}

impl LogsConfig {
    /// Whether a pod's namespace is followed.
    pub fn namespace_matches(&self, namespace: &str) -> bool {
        match &self.namespaces {
            NamespaceSelection::All => true,
            NamespaceSelection::Names(names) => names.iter().any(|n| n == namespace),
            NamespaceSelection::Matching(m) => m.matches(Some(namespace)),
        }
    }

    /// Whether a pod is followed (namespace and name; the label selector
    /// is applied by the server).
    pub fn pod_matches(&self, namespace: &str, name: &str) -> bool {
        self.namespace_matches(namespace)
            && self
                .pod_name_pattern
                .as_ref()
                .is_none_or(|p| p.is_match(name))
    }

    /// Whether a container (by name) is followed.
    pub fn container_matches(&self, name: &str) -> bool {
        self.container_pattern
            .as_ref()
            .is_none_or(|p| p.is_match(name))
            && !self
                .exclude_container_pattern
                .as_ref()
                .is_some_and(|p| p.is_match(name))
    }

    /// Whether a line is kept.
    pub fn line_matches(&self, line: &str) -> bool {
        self.line_include.as_ref().is_none_or(|p| p.is_match(line))
            && !self.line_exclude.as_ref().is_some_and(|p| p.is_match(line))
    }
}

pub(crate) fn logs_config(raw: RawLogs) -> Result<LogsConfig, ConfigError> {
    let mut out = LogsConfig::default();
    for (j, name) in raw.namespace_names.iter().enumerate() {
        if !is_dns_label(name) {
            return Err(ConfigError::invalid(
                format!("logs.namespace_names[{j}]"),
                format!(
                    "{name:?} is not a namespace name; expected a DNS-1123 label (lowercase letters, digits and '-')"
                ),
            ));
        }
    }
    out.namespaces = if !raw.namespace_patterns.is_empty() {
        NamespaceSelection::Matching(
            NamespaceMatcher::new(raw.namespace_names.clone(), raw.namespace_patterns.clone())
                .map_err(|(j, e)| {
                    invalid_value(
                        &format!("logs.namespace_patterns[{j}]"),
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
    if let Some(text) = &raw.label_selector {
        out.label_selector = LabelSelector::parse(text)
            .map_err(|e| invalid_value("logs.label_selector", text, &e))?;
    }
    let pattern = |key: &str, text: &Option<String>| -> Result<Option<Pattern>, ConfigError> {
        text.as_deref()
            .map(|t| Pattern::new(t).map_err(|e| invalid_value(&format!("logs.{key}"), t, &e)))
            .transpose()
    };
    out.pod_name_pattern = pattern("pod_name_pattern", &raw.pod_name_pattern)?;
    out.container_pattern = pattern("container_pattern", &raw.container_pattern)?;
    out.exclude_container_pattern =
        pattern("exclude_container_pattern", &raw.exclude_container_pattern)?;
    out.line_include = pattern("line_include", &raw.line_include)?;
    out.line_exclude = pattern("line_exclude", &raw.line_exclude)?;
    if let Some(v) = &raw.include_init_containers {
        out.include_init_containers = boolean("logs.include_init_containers", v)?;
    }
    if let Some(v) = &raw.previous_on_restart {
        out.previous_on_restart = boolean("logs.previous_on_restart", v)?;
    }
    if let Some(since) = &raw.since {
        out.since = since
            .parse()
            .map_err(|e: String| ConfigError::invalid("logs.since", e))?;
    }
    if let Some(v) = &raw.max_streams {
        let n = whole_number("logs.max_streams", v, 1_000_000, "a number of streams")?;
        if n == 0 {
            return Err(ConfigError::invalid(
                "logs.max_streams",
                "0 is not a number of streams; expected 1 or more",
            ));
        }
        out.max_streams = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(v) = &raw.max_line_bytes {
        let n = whole_number("logs.max_line_bytes", v, 16 << 20, "a line length in bytes")?;
        if n < 64 {
            return Err(ConfigError::invalid(
                "logs.max_line_bytes",
                format!("{n} is too short a line; expected 64 bytes or more"),
            ));
        }
        out.max_line_bytes = usize::try_from(n).unwrap_or(usize::MAX);
    }
    Ok(out)
}
