//! The `monitor:` block (thresholds, profiling) and `metrics.push`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::error::ConfigError;
use super::raw::boolean;

/// The `monitor:` block: how often Faro looks at itself and what it
/// warns about.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// How often a snapshot is taken and the thresholds checked.
    pub interval: Duration,
    /// Resident memory, in MiB.
    pub max_resident_mb: Option<f64>,
    /// Events waiting or being handled by any one worker or sink.
    pub max_queue_depth: Option<u64>,
    /// p99 of `faro_event_latency_seconds` over the last minute.
    pub max_event_latency_seconds: Option<f64>,
    /// Errors per event handled over the last minute.
    pub max_error_rate: Option<f64>,
    /// How long an informer may stay out of the watching state.
    pub stall_seconds: Option<f64>,
    /// `/readyz` answers 503 while a threshold is exceeded.
    pub readiness_on_violation: bool,
    /// Serve `/debug/pprof/*` on the metrics address.
    pub profiling: bool,
}

// Every figure is validated finite, so equality is an equivalence.
impl Eq for MonitorConfig {}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            max_resident_mb: None,
            max_queue_depth: None,
            max_event_latency_seconds: None,
            max_error_rate: None,
            stall_seconds: None,
            readiness_on_violation: false,
            profiling: false,
        }
    }
}

/// `metrics.push`: the metrics pushed to a Prometheus Pushgateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConfig {
    /// The Pushgateway, `http://` or `https://`.
    pub url: String,
    /// The `job` of the grouping key.
    pub job: String,
    /// Further labels of the grouping key (such as `instance`).
    pub grouping: BTreeMap<String, String>,
    /// Between pushes while running; `None`: only at exit.
    pub interval: Option<Duration>,
    /// Push once more after the summary is known, before exit.
    pub on_exit: bool,
    /// How the Pushgateway is told who pushes.
    pub auth: PushAuth,
    /// How long one push may take.
    pub timeout: Duration,
    /// Further tries after a failed push, with back-off.
    pub retries: u32,
}

/// Credentials for the Pushgateway, read from files at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PushAuth {
    #[default]
    None,
    /// HTTP basic authentication; the password is read from a file.
    Basic {
        username: String,
        password_file: PathBuf,
    },
    /// A bearer token read from a file.
    Bearer { token_file: PathBuf },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMonitor {
    pub interval: Option<String>,
    pub max_resident_mb: Option<Value>,
    pub max_queue_depth: Option<Value>,
    pub max_event_latency_seconds: Option<Value>,
    pub max_error_rate: Option<Value>,
    pub stall_seconds: Option<Value>,
    pub readiness_on_violation: Option<Value>,
    pub profiling: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPush {
    pub url: Option<String>,
    pub job: Option<String>,
    #[serde(default)]
    pub grouping: BTreeMap<String, String>,
    pub interval: Option<Value>,
    pub on_exit: Option<Value>,
    pub basic_auth: Option<RawBasicAuth>,
    pub bearer_token_file: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBasicAuth {
    pub username: Option<String>,
    pub password_file: Option<String>,
}

/// A number above zero (a threshold).
fn above_zero(path: &str, value: &Value, what: &str) -> Result<f64, ConfigError> {
    match value.as_f64() {
        Some(n) if n > 0.0 && n.is_finite() => Ok(n),
        _ => Err(ConfigError::invalid(
            path,
            format!(
                "{} is not {what}; expected a number above zero",
                match value {
                    Value::String(s) => format!("{s:?}"),
                    other => other.to_string(),
                }
            ),
        )),
    }
}

pub(crate) fn monitor_config(raw: RawMonitor) -> Result<MonitorConfig, ConfigError> {
    let mut out = MonitorConfig::default();
    if let Some(text) = &raw.interval {
        out.interval = super::story::duration("monitor.interval", text)?;
    }
    let number = |key: &str, v: &Option<Value>, what: &str| -> Result<Option<f64>, ConfigError> {
        v.as_ref()
            .map(|v| above_zero(&format!("monitor.{key}"), v, what))
            .transpose()
    };
    out.max_resident_mb = number("max_resident_mb", &raw.max_resident_mb, "a size in MiB")?;
    out.max_queue_depth = match &raw.max_queue_depth {
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Some(n),
            _ => {
                return Err(ConfigError::invalid(
                    "monitor.max_queue_depth",
                    format!("{v} is not a queue depth; expected a whole number above zero"),
                ));
            }
        },
        None => None,
    };
    out.max_event_latency_seconds = number(
        "max_event_latency_seconds",
        &raw.max_event_latency_seconds,
        "a number of seconds",
    )?;
    out.max_error_rate = number("max_error_rate", &raw.max_error_rate, "a rate")?;
    if let Some(rate) = out.max_error_rate
        && rate > 1.0
    {
        return Err(ConfigError::invalid(
            "monitor.max_error_rate",
            format!("{rate} is not a rate; expected errors per event, above 0 and at most 1"),
        ));
    }
    out.stall_seconds = number("stall_seconds", &raw.stall_seconds, "a number of seconds")?;
    if let Some(v) = &raw.readiness_on_violation {
        out.readiness_on_violation = boolean("monitor.readiness_on_violation", v)?;
    }
    if let Some(v) = &raw.profiling {
        out.profiling = boolean("monitor.profiling", v)?;
    }
    Ok(out)
}

/// A file named in the configuration must exist when it is loaded.
fn existing_file(path: &str, text: &str) -> Result<PathBuf, ConfigError> {
    let p = PathBuf::from(text);
    if p.is_file() {
        Ok(p)
    } else {
        Err(ConfigError::invalid(
            path,
            format!("{text:?} does not exist or is not a file; expected a readable file"),
        ))
    }
}

/// Whether `name` is a Prometheus label name.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn push_config(raw: RawPush) -> Result<PushConfig, ConfigError> {
    let url = raw.url.ok_or_else(|| {
        ConfigError::invalid(
            "metrics.push.url",
            "is missing; expected the Pushgateway's address such as http://127.0.0.1:9091",
        )
    })?;
    let scheme_ok = ["http://", "https://"]
        .iter()
        .any(|s| url.len() > s.len() && url.to_ascii_lowercase().starts_with(s));
    if !scheme_ok || url.contains(char::is_whitespace) {
        return Err(ConfigError::invalid(
            "metrics.push.url",
            format!("{url:?} is not an http(s) URL; expected one such as http://127.0.0.1:9091"),
        ));
    }
    let job = raw.job.unwrap_or_else(|| "faro".to_owned());
    if job.is_empty() {
        return Err(ConfigError::invalid(
            "metrics.push.job",
            "\"\" is empty; expected a job name such as faro",
        ));
    }
    for name in raw.grouping.keys() {
        if !is_label_name(name) || name == "job" {
            return Err(ConfigError::invalid(
                format!("metrics.push.grouping.{name}"),
                format!(
                    "{name:?} is not a grouping label; expected a Prometheus label name other than job"
                ),
            ));
        }
    }
    let interval = match &raw.interval {
        None => None,
        Some(Value::Number(n)) if n.as_u64() == Some(0) => None,
        Some(Value::String(s)) if s == "0" || s == "0s" => None,
        Some(Value::String(s)) => Some(super::story::duration("metrics.push.interval", s)?),
        Some(other) => {
            return Err(ConfigError::invalid(
                "metrics.push.interval",
                format!(
                    "{other} is not a duration; expected one such as 30s, or 0 to push only at exit"
                ),
            ));
        }
    };
    let on_exit = match &raw.on_exit {
        Some(v) => boolean("metrics.push.on_exit", v)?,
        None => true,
    };
    let auth = match (raw.basic_auth, raw.bearer_token_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                "metrics.push",
                "has both basic_auth and bearer_token_file; expected one of them",
            ));
        }
        (Some(basic), None) => {
            let username = basic.username.filter(|u| !u.is_empty()).ok_or_else(|| {
                ConfigError::invalid(
                    "metrics.push.basic_auth.username",
                    "is missing; expected the user name",
                )
            })?;
            let file = basic.password_file.ok_or_else(|| {
                ConfigError::invalid(
                    "metrics.push.basic_auth.password_file",
                    "is missing; expected a file holding the password",
                )
            })?;
            PushAuth::Basic {
                username,
                password_file: existing_file("metrics.push.basic_auth.password_file", &file)?,
            }
        }
        (None, Some(file)) => PushAuth::Bearer {
            token_file: existing_file("metrics.push.bearer_token_file", &file)?,
        },
        (None, None) => PushAuth::None,
    };
    let timeout = match &raw.timeout {
        Some(t) => super::story::duration("metrics.push.timeout", t)?,
        None => Duration::from_secs(10),
    };
    let retries = match &raw.retries {
        Some(v) => u32::try_from(super::raw::whole_number(
            "metrics.push.retries",
            v,
            10,
            "a number of retries",
        )?)
        .unwrap_or(3),
        None => 3,
    };
    Ok(PushConfig {
        url: url.trim_end_matches('/').to_owned(),
        job,
        grouping: raw.grouping,
        interval,
        on_exit,
        auth,
        timeout,
        retries,
    })
}
