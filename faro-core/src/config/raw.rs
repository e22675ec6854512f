//! The YAML document as written, before validation.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::error::{ConfigError, Invalid};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub output_dir: Option<String>,
    pub log_level: Option<String>,
    pub auto_shutdown_sec: Option<Value>,
    pub json_export: Option<Value>,
    pub metrics: Option<RawMetrics>,
    #[serde(default)]
    pub namespaces: Vec<RawNamespace>,
    #[serde(default)]
    pub resources: Vec<RawResource>,
    pub workload: Option<RawWorkload>,
    pub plugins: Option<RawPlugins>,
    pub workers: Option<RawWorkers>,
    pub middleware: Option<RawMiddleware>,
    pub logs: Option<RawLogs>,
    pub k8s_events: Option<RawK8sEvents>,
    pub lifecycle: Option<RawLifecycle>,
    pub correlation_output: Option<RawCorrelationOutput>,
    pub checkpoint: Option<RawCheckpoint>,
    pub updates: Option<RawUpdates>,
    #[serde(default)]
    pub clusters: Vec<RawCluster>,
    pub readiness: Option<String>,
    pub ha: Option<RawHa>,
    pub monitor: Option<super::monitor::RawMonitor>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHa {
    pub enabled: Option<Value>,
    pub lease_namespace: Option<String>,
    pub lease_name: Option<String>,
    pub identity: Option<String>,
    pub lease_duration: Option<String>,
    pub renew_deadline: Option<String>,
    pub retry_period: Option<String>,
    pub shards: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub name: Option<String>,
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub namespaces: Option<Vec<RawNamespace>>,
    pub resources: Option<Vec<RawResource>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheckpoint {
    pub enabled: Option<Value>,
    pub directory: Option<String>,
    pub interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpdates {
    #[serde(default)]
    pub suppress: Vec<String>,
    pub diff: Option<String>,
    pub diff_memory_mb: Option<Value>,
    #[serde(default)]
    pub only_paths: Vec<String>,
    #[serde(default)]
    pub ignore_paths: Vec<String>,
    pub event_types: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawK8sEvents {
    #[serde(default)]
    pub namespace_names: Vec<String>,
    #[serde(default)]
    pub namespace_patterns: Vec<String>,
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub exclude_reasons: Vec<String>,
    #[serde(default)]
    pub involved_kinds: Vec<String>,
    pub since: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLifecycle {
    pub enabled: Option<Value>,
    pub replacement_window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCorrelationOutput {
    pub enabled: Option<Value>,
    pub directory: Option<String>,
    pub max_bytes_per_correlation: Option<Value>,
    pub close_after_idle: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogs {
    #[serde(default)]
    pub namespace_names: Vec<String>,
    #[serde(default)]
    pub namespace_patterns: Vec<String>,
    pub label_selector: Option<String>,
    pub pod_name_pattern: Option<String>,
    pub container_pattern: Option<String>,
    pub exclude_container_pattern: Option<String>,
    pub include_init_containers: Option<Value>,
    pub previous_on_restart: Option<Value>,
    pub since: Option<String>,
    pub max_streams: Option<Value>,
    pub max_line_bytes: Option<Value>,
    pub line_include: Option<String>,
    pub line_exclude: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlugins {
    pub directory: Option<String>,
    pub quarantine_after: Option<Value>,
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkerSettings {
    pub queue_size: Option<Value>,
    pub full_queue: Option<String>,
    pub lanes: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkers {
    pub queue_size: Option<Value>,
    pub full_queue: Option<String>,
    pub lanes: Option<Value>,
    #[serde(default)]
    pub overrides: BTreeMap<String, RawWorkerSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMiddleware {
    pub redact_secrets: Option<Value>,
    pub drop_managed_fields: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkload {
    pub detection_label: String,
    pub workload_pattern: Option<String>,
    pub namespace_pattern: String,
    #[serde(default)]
    pub gvrs: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    pub enabled: Option<Value>,
    pub port: Option<Value>,
    pub path: Option<String>,
    pub bind_addr: Option<String>,
    pub push: Option<super::monitor::RawPush>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNamespace {
    pub name_selector: Option<String>,
    pub name_pattern: Option<String>,
    #[serde(default)]
    pub resources: BTreeMap<String, RawResourceFilter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResourceFilter {
    pub name_selector: Option<String>,
    pub name_pattern: Option<String>,
    pub label_selector: Option<String>,
    pub label_pattern: Option<String>,
    pub field_selector: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResource {
    pub gvr: String,
    pub scope: Option<String>,
    #[serde(default)]
    pub namespace_names: Vec<String>,
    #[serde(default)]
    pub namespace_patterns: Vec<String>,
    pub name_selector: Option<String>,
    pub name_pattern: Option<String>,
    pub label_selector: Option<String>,
    pub label_pattern: Option<String>,
    pub field_selector: Option<String>,
    pub updates: Option<RawUpdates>,
}

/// Parses YAML text into the raw document. `origin` names the text in syntax errors.
pub(crate) fn parse(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(RawConfig::default());
    }
    let options = serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
    };
    let mut failed_at: Option<String> = None;
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, Option<RawConfig>>(de).map_err(|e| {
            failed_at = Some(render_path(e.path()));
            e.into_inner()
        })
    });
    match result {
        Ok(raw) => Ok(raw.unwrap_or_default()),
        Err(error) => Err(convert(&error, failed_at, origin)),
    }
}

fn convert(error: &serde_saphyr::Error, path: Option<String>, origin: &str) -> ConfigError {
    let position = error
        .location()
        .map(|l| (l.line(), l.column()))
        .filter(|(line, _)| *line > 0);
    let message = first_line(&error.without_snippet().to_string());
    let syntax = matches!(
        error.without_snippet(),
        serde_saphyr::Error::ExternalMessage { .. } | serde_saphyr::Error::Eof { .. }
    );
    match path {
        // The error came from a key or value: name the key path.
        Some(path) if !syntax => ConfigError::Invalid(describe(path, &message, position)),
        _ => {
            let (line, column) = position.unwrap_or((0, 0));
            ConfigError::Syntax {
                origin: origin.to_string(),
                line,
                column,
                message: strip_position(&message),
            }
        }
    }
}

/// Rewords serde's messages into `path: what is wrong; expected …`.
fn describe(path: String, message: &str, position: Option<(u64, u64)>) -> Invalid {
    let message = strip_position(message);
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((_key, expected)) = rest.split_once('`')
    {
        let expected = expected
            .trim_start_matches(", ")
            .replace("expected one of ", "")
            .replace("expected ", "")
            .replace('`', "");
        // serde_path_to_error's path already ends with the unknown key.
        return Invalid {
            path,
            message: format!("unknown key; expected one of {expected}"),
            position,
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        return Invalid {
            path,
            message: format!("missing required key {key}"),
            position,
        };
    }
    Invalid {
        path,
        message,
        position,
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_string()
}

/// serde-saphyr appends ` at line L, column C`; the position is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].trim_end_matches(':').to_string(),
        None => message.to_string(),
    }
}

fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => push_key(&mut out, key),
            Segment::Enum { variant } => push_key(&mut out, variant),
            Segment::Unknown => {}
        }
    }
    out
}

/// Appends `.key`, or `["key"]` when the key is not a plain identifier (a GVR).
pub(crate) fn push_key(out: &mut String, key: &str) {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(key);
    } else {
        out.push_str(&format!("[{key:?}]"));
    }
}

/// A boolean written as YAML `true` or `false`; `y`, `yes`, `on` and quoted
/// strings are refused (they are YAML 1.1 booleans, a classic trap).
pub(crate) fn boolean(path: &str, value: &Value) -> Result<bool, ConfigError> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(ConfigError::invalid(
            path,
            format!("{} is not a boolean; expected true or false", show(other)),
        )),
    }
}

/// A whole number within `0..=max`, described as `what` in the error.
pub(crate) fn whole_number(
    path: &str,
    value: &Value,
    max: u64,
    what: &str,
) -> Result<u64, ConfigError> {
    match value.as_u64() {
        Some(n) if n <= max => Ok(n),
        _ => Err(ConfigError::invalid(
            path,
            format!(
                "{} is not {what}; expected a whole number from 0 to {max}",
                show(value)
            ),
        )),
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}
