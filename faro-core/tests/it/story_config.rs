//! The `k8s_events:`, `lifecycle:` and `correlation_output:` blocks:
//! defaults, every key, and one-line refusals.

use std::path::PathBuf;
use std::time::Duration;

use faro_core::Config;
use faro_core::config::{EventsSince, NamespaceSelection};

fn load(yaml: &str) -> Config {
    Config::from_yaml(yaml, "faro.yaml")
        .unwrap_or_else(|e| panic!("configuration should load: {e}"))
}

#[test]
fn defaults_report_no_events_keep_lifecycle_on_and_write_no_correlation_files() {
    let c = load("resources: []");
    assert!(c.k8s_events.is_none());
    assert!(c.lifecycle.enabled);
    assert_eq!(c.lifecycle.replacement_window, Duration::from_secs(60));
    let out = &c.correlation_output;
    assert!(!out.enabled && out.directory.is_none());
    assert_eq!(out.max_bytes_per_correlation, 8 << 20);
    assert_eq!(out.close_after_idle, Duration::from_secs(600));
    // An empty block reports every Event from the start on.
    let e = load("k8s_events: {}")
        .k8s_events
        .expect("a k8s_events block");
    assert_eq!(e.namespaces, NamespaceSelection::All);
    assert_eq!(e.since, EventsSince::Start);
    assert!(e.matches("Normal", "Scheduled", "Pod") && e.matches("Warning", "BackOff", "Node"));
}

#[test]
fn every_key_is_read_and_used() {
    let c = load(
        "k8s_events:\n  namespace_names: [shop, shop, payments]\n  types: [Warning]\n  reasons: [BackOff, FailedScheduling, Killing]\n  exclude_reasons: [Killing]\n  involved_kinds: [Pod]\n  since: all\nlifecycle: { enabled: false, replacement_window: 2m }\ncorrelation_output: { enabled: true, directory: /var/faro, max_bytes_per_correlation: 4096, close_after_idle: 90s }\n",
    );
    let e = c.k8s_events.expect("a k8s_events block");
    assert_eq!(
        e.namespaces,
        NamespaceSelection::Names(vec!["payments".into(), "shop".into()])
    );
    assert!(e.namespace_matches(Some("shop")) && !e.namespace_matches(Some("other")));
    assert!(!e.namespace_matches(None));
    assert_eq!(e.since, EventsSince::All);
    assert!(e.matches("Warning", "BackOff", "Pod"));
    assert!(!e.matches("Normal", "BackOff", "Pod"), "types");
    assert!(!e.matches("Warning", "Unhealthy", "Pod"), "reasons");
    assert!(!e.matches("Warning", "Killing", "Pod"), "exclude_reasons");
    assert!(!e.matches("Warning", "BackOff", "Node"), "involved_kinds");
    assert!(!c.lifecycle.enabled);
    assert_eq!(c.lifecycle.replacement_window, Duration::from_secs(120));
    let out = &c.correlation_output;
    assert!(out.enabled);
    assert_eq!(out.directory, Some(PathBuf::from("/var/faro")));
    assert_eq!(out.max_bytes_per_correlation, 4096);
    assert_eq!(out.close_after_idle, Duration::from_secs(90));
    // Patterns select namespaces by regex, names beside them.
    let e = load("k8s_events: { namespace_patterns: ['^team-'], namespace_names: [infra] }")
        .k8s_events
        .unwrap();
    assert!(e.namespace_matches(Some("team-a")) && e.namespace_matches(Some("infra")));
    assert!(!e.namespace_matches(Some("shop")));
}

#[test]
fn bad_values_are_one_line_naming_key_value_and_expectation() {
    let cases = [
        (
            "k8s_events: { typs: [Warning] }",
            "k8s_events.typs: unknown key; expected one of namespace_names",
        ),
        (
            "k8s_events: { types: [Error] }",
            "k8s_events.types[0]: \"Error\" is not valid here; expected one of Normal, Warning",
        ),
        (
            "k8s_events: { namespace_patterns: [\"([\"] }",
            "k8s_events.namespace_patterns[0]: \"([\" is not a valid regular expression",
        ),
        (
            "k8s_events: { namespace_names: [Bad_NS] }",
            "k8s_events.namespace_names[0]: \"Bad_NS\" is not a namespace name",
        ),
        (
            "k8s_events: { reasons: [\"Back Off\"] }",
            "k8s_events.reasons[0]: \"Back Off\" is not valid here; expected a name",
        ),
        (
            "k8s_events: { since: yesterday }",
            "k8s_events.since: \"yesterday\" is not a start point; expected start or all",
        ),
        (
            "lifecycle: { enabled: sometimes }",
            "lifecycle.enabled: \"sometimes\" is not a boolean",
        ),
        (
            "lifecycle: { replacement_window: 0s }",
            "lifecycle.replacement_window: \"0s\" is not a duration; expected one above zero",
        ),
        (
            "lifecycle: { replace_window: 1m }",
            "lifecycle.replace_window: unknown key; expected one of enabled, replacement_window",
        ),
        (
            "correlation_output: { max_bytes_per_correlation: 0 }",
            "correlation_output.max_bytes_per_correlation: 0 is not a budget; expected 1 byte or more",
        ),
        (
            "correlation_output: { max_bytes_per_correlation: -5 }",
            "correlation_output.max_bytes_per_correlation: -5 is not a number of bytes",
        ),
        (
            "correlation_output: { directory: \"\" }",
            "correlation_output.directory: \"\" is empty; expected a directory path",
        ),
        (
            "correlation_output: { close_after_idle: soon }",
            "correlation_output.close_after_idle: \"soon\" is not a duration",
        ),
        (
            "correlation_output: { enable: true }",
            "correlation_output.enable: unknown key; expected one of enabled, directory",
        ),
    ];
    crate::refused(&cases);
}
