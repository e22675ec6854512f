//! The `logs:` block: defaults, every key, and one-line refusals.

use std::time::Duration;

use faro_core::Config;
use faro_core::config::{LogSince, NamespaceSelection};

fn logs(yaml: &str) -> faro_core::LogsConfig {
    Config::from_yaml(yaml, "faro.yaml")
        .unwrap_or_else(|e| panic!("configuration should load: {e}"))
        .logs
        .expect("a logs block")
}

#[test]
fn absent_block_follows_nothing_and_an_empty_one_follows_everything_by_default() {
    assert!(
        Config::from_yaml("resources: []", "faro.yaml")
            .unwrap()
            .logs
            .is_none()
    );
    let l = logs("logs: {}");
    assert_eq!(l.namespaces, NamespaceSelection::All);
    assert!(l.label_selector.is_empty());
    assert!(l.include_init_containers && l.previous_on_restart);
    assert_eq!(
        (l.since, l.max_streams, l.max_line_bytes),
        (LogSince::Start, 1000, 16 * 1024)
    );
    assert!(l.pod_matches("any", "pod") && l.container_matches("app") && l.line_matches("x"));
}

#[test]
fn every_key_is_read_and_used() {
    let l = logs(
        r#"
logs:
  namespace_names: [shop]
  namespace_patterns: ["^team-"]
  label_selector: "app in (web, api)"
  pod_name_pattern: "^web-"
  container_pattern: "^(app|sidecar)$"
  exclude_container_pattern: "^sidecar$"
  include_init_containers: false
  previous_on_restart: false
  since: 10m
  max_streams: 50
  max_line_bytes: 1024
  line_include: "ERROR|WARN"
  line_exclude: "healthz"
"#,
    );
    assert!(l.pod_matches("shop", "web-1") && l.pod_matches("team-a", "web-2"));
    assert!(!l.pod_matches("other", "web-1") && !l.pod_matches("shop", "api-1"));
    assert_eq!(l.label_selector.to_string(), "app in (api,web)");
    assert!(l.container_matches("app") && !l.container_matches("sidecar"));
    assert!(!l.container_matches("proxy"));
    assert!(!l.include_init_containers && !l.previous_on_restart);
    assert_eq!(l.since, LogSince::Last(Duration::from_secs(600)));
    assert_eq!((l.max_streams, l.max_line_bytes), (50, 1024));
    assert!(l.line_matches("ERROR boom") && !l.line_matches("ERROR /healthz"));
    assert!(!l.line_matches("INFO fine"));
    assert_eq!(logs("logs: { since: now }").since, LogSince::Now);
}

#[test]
fn bad_values_are_one_line_naming_key_value_and_expectation() {
    let cases = [
        (
            "logs: { max_streams: 0 }",
            "logs.max_streams: 0 is not a number of streams; expected 1 or more",
        ),
        (
            "logs: { container_pattern: \"([\" }",
            "logs.container_pattern: \"([\" is not a valid regular expression",
        ),
        (
            "logs: { since: yesterday }",
            "logs.since: \"yesterday\" is not a start point; expected start, now or a duration such as 10m",
        ),
        (
            "logs: { folow: true }",
            "logs.folow: unknown key; expected one of namespace_names",
        ),
        (
            "logs: { previous_on_restart: yes }",
            "logs.previous_on_restart: \"yes\" is not a boolean",
        ),
        (
            "logs: { namespace_names: [Bad_NS] }",
            "logs.namespace_names[0]: \"Bad_NS\" is not a namespace name",
        ),
        (
            "logs: { max_line_bytes: 10 }",
            "logs.max_line_bytes: 10 is too short a line; expected 64 bytes or more",
        ),
    ];
    crate::refused(&cases);
}
