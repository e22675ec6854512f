//! The `monitor:` block and `metrics.push`: every key, defaults and
//! one-line refusals.

use std::time::Duration;

use faro_core::Config;
use faro_core::config::{MonitorConfig, PushAuth};

use crate::refused;

fn load(yaml: &str) -> Config {
    Config::from_yaml(yaml, "faro.yaml")
        .unwrap_or_else(|e| panic!("configuration should load: {e}"))
}

#[test]
fn no_block_checks_nothing_and_pushes_nothing() {
    let c = load("resources: [{gvr: v1/configmaps}]");
    assert_eq!(c.monitor, MonitorConfig::default());
    assert!(!c.monitor.profiling && !c.monitor.readiness_on_violation);
    assert!(c.metrics.push.is_none());
}

#[test]
fn every_key_is_read() {
    let dir = std::env::temp_dir().join(format!("faro-monitor-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let c = load(&format!(
        "monitor:\n  interval: 2s\n  max_resident_mb: 512\n  max_queue_depth: 1000\n  max_event_latency_seconds: 0.5\n  max_error_rate: 0.01\n  stall_seconds: 120\n  readiness_on_violation: true\n  profiling: true\nmetrics:\n  push:\n    url: http://127.0.0.1:9091/\n    job: ci\n    grouping: {{instance: runner-1, pipeline: p7}}\n    interval: 30s\n    on_exit: false\n    bearer_token_file: {}\n    timeout: 3s\n    retries: 5\n",
        token.display()
    ));
    let m = &c.monitor;
    assert_eq!(m.interval, Duration::from_secs(2));
    assert_eq!(m.max_resident_mb, Some(512.0));
    assert_eq!(m.max_queue_depth, Some(1000));
    assert_eq!(m.max_event_latency_seconds, Some(0.5));
    assert_eq!(m.max_error_rate, Some(0.01));
    assert_eq!(m.stall_seconds, Some(120.0));
    assert!(m.readiness_on_violation && m.profiling);
    let p = c.metrics.push.as_ref().unwrap();
    assert_eq!(p.url, "http://127.0.0.1:9091");
    assert_eq!(p.job, "ci");
    assert_eq!(
        p.grouping.get("instance").map(String::as_str),
        Some("runner-1")
    );
    assert_eq!(p.interval, Some(Duration::from_secs(30)));
    assert!(!p.on_exit);
    assert_eq!(
        p.auth,
        PushAuth::Bearer {
            token_file: token.clone()
        }
    );
    assert_eq!(p.timeout, Duration::from_secs(3));
    assert_eq!(p.retries, 5);

    let c = load("metrics:\n  push:\n    url: https://gw.example:9091\n    interval: 0\n");
    let p = c.metrics.push.unwrap();
    assert_eq!(
        (p.job.as_str(), p.interval, p.on_exit, p.retries),
        ("faro", None, true, 3)
    );
    assert_eq!(p.auth, PushAuth::None);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_values_are_refused_with_one_line() {
    refused(&[
        (
            "monitor:\n  max_queue: 3\n",
            "monitor.max_queue: unknown key; expected one of interval,",
        ),
        (
            "monitor:\n  max_queue_depth: 0\n",
            "monitor.max_queue_depth: 0 is not a queue depth; expected a whole number above zero",
        ),
        (
            "monitor:\n  max_resident_mb: -5\n",
            "monitor.max_resident_mb: -5 is not a size in MiB; expected a number above zero",
        ),
        (
            "monitor:\n  max_event_latency_seconds: 0\n",
            "monitor.max_event_latency_seconds: 0 is not a number of seconds",
        ),
        (
            "monitor:\n  max_error_rate: 2\n",
            "monitor.max_error_rate: 2 is not a rate",
        ),
        (
            "monitor:\n  stall_seconds: -1\n",
            "monitor.stall_seconds: -1 is not",
        ),
        (
            "monitor:\n  profiling: yes\n",
            "monitor.profiling: \"yes\" is not a boolean",
        ),
        (
            "monitor:\n  interval: soon\n",
            "monitor.interval: \"soon\" is not a duration",
        ),
        (
            "metrics:\n  push:\n    url: ftp://gw:9091\n",
            "metrics.push.url: \"ftp://gw:9091\" is not an http(s) URL",
        ),
        (
            "metrics:\n  push:\n    job: x\n",
            "metrics.push.url: is missing",
        ),
        (
            "metrics:\n  push:\n    url: http://gw\n    bearer_token_file: /no/such/token\n",
            "metrics.push.bearer_token_file: \"/no/such/token\" does not exist",
        ),
        (
            "metrics:\n  push:\n    url: http://gw\n    basic_auth: {username: u, password_file: /no/such}\n",
            "metrics.push.basic_auth.password_file: \"/no/such\" does not exist",
        ),
        (
            "metrics:\n  push:\n    url: http://gw\n    grouping: {job: x}\n",
            "metrics.push.grouping.job: \"job\" is not a grouping label",
        ),
        (
            "metrics:\n  push:\n    url: http://gw\n    retries: -1\n",
            "metrics.push.retries: -1 is not a number of retries",
        ),
        (
            "metrics:\n  push:\n    url: http://gw\n    tls: true\n",
            "metrics.push.tls: unknown key",
        ),
    ]);
}
