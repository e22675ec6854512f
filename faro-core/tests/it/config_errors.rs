//! Every bad input names the key path, the value and what was expected, on one line.

use crate::error;

fn assert_one_line(text: &str) {
    assert!(!text.contains('\n'), "error must be one line: {text}");
}

#[test]
fn unknown_key() {
    let e = error("resources:\n  - gvr: v1/configmaps\n    colour: blue\n");
    assert_eq!(
        e,
        "resources[0].colour: unknown key; expected one of gvr, scope, namespace_names, namespace_patterns, name_selector, name_pattern, label_selector, label_pattern, field_selector, updates (line 3, column 5)"
    );
    assert_eq!(
        error("resources:\n  - gvr: v1/configmaps\n    my-key: 1\n"),
        r#"resources[0]["my-key"]: unknown key; expected one of gvr, scope, namespace_names, namespace_patterns, name_selector, name_pattern, label_selector, label_pattern, field_selector, updates (line 3, column 5)"#
    );
    assert_eq!(
        error("output_dir: /tmp\nfoo: 1\n"),
        "foo: unknown key; expected one of output_dir, log_level, auto_shutdown_sec, json_export, metrics, namespaces, resources, workload, plugins, workers, middleware, logs, k8s_events, lifecycle, correlation_output, checkpoint, updates, clusters, readiness, ha, monitor (line 2, column 1)"
    );
    let e = error(
        "namespaces:\n  - name_selector: a\n    resources:\n      v1/configmaps:\n        nme_pattern: x\n",
    );
    assert_eq!(
        e,
        r#"namespaces[0].resources["v1/configmaps"].nme_pattern: unknown key; expected one of name_selector, name_pattern, label_selector, label_pattern, field_selector (line 5, column 9)"#
    );
}

#[test]
fn unknown_scope() {
    assert_eq!(
        error("resources:\n  - gvr: v1/configmaps\n    scope: Galaxy\n"),
        r#"resources[0].scope: "Galaxy" is not a scope; expected Cluster or Namespaced"#
    );
}

#[test]
fn gvr_without_version() {
    assert_eq!(
        error("resources:\n  - gvr: configmaps\n"),
        r#"resources[0].gvr: "configmaps" is not a GVR; expected <version>/<resource> for the core group (v1/configmaps) or <group>/<version>/<resource> (apps/v1/deployments)"#
    );
}

#[test]
fn bad_regex() {
    assert_eq!(
        error("resources:\n  - gvr: v1/configmaps\n    name_pattern: \"([\"\n"),
        r#"resources[0].name_pattern: "([" is not a valid regular expression: unclosed character class"#
    );
}

#[test]
fn bad_label_selector() {
    assert_eq!(
        error("resources:\n  - gvr: v1/configmaps\n    label_selector: \"app in (a,\"\n"),
        r#"resources[0].label_selector: "app in (a," is not a valid label selector: expected a value or ")", found the end of the selector"#
    );
}

#[test]
fn bad_log_level() {
    assert_eq!(
        error("log_level: loud\n"),
        r#"log_level: "loud" is not a log level; expected one of debug, info, warning, warn, error, fatal"#
    );
}

#[test]
fn yaml_syntax_error_reports_line_and_column() {
    let e = error("resources:\n  - gvr: v1/configmaps\n   scope: [x\n");
    assert_eq!(
        e,
        "faro.yaml:3:4: YAML syntax error: while parsing a block collection, did not find expected '-' indicator"
    );
}

#[test]
fn y_is_not_a_boolean() {
    assert_eq!(
        error("json_export: y\n"),
        r#"json_export: "y" is not a boolean; expected true or false"#
    );
    assert_eq!(
        error("metrics:\n  enabled: yes\n"),
        r#"metrics.enabled: "yes" is not a boolean; expected true or false"#
    );
}

#[test]
fn conflicting_and_misplaced_keys() {
    let cases = [
        (
            "resources:\n  - gvr: v1/namespaces\n    scope: Cluster\n    namespace_names: [a]\n",
            "resources[0].namespace_names: v1/namespaces is cluster-scoped; expected no namespace_names",
        ),
        (
            "resources:\n  - gvr: v1/nodes\n    namespace_patterns: [a]\n",
            "resources[0].namespace_patterns: v1/nodes is cluster-scoped; expected no namespace_patterns",
        ),
        (
            "namespaces:\n  - name_selector: a\n    name_pattern: b\n",
            "namespaces[0]: name_selector and name_pattern are both set; expected exactly one",
        ),
        (
            "namespaces:\n  - resources: {}\n",
            "namespaces[0]: neither name_selector nor name_pattern is set; expected exactly one",
        ),
        (
            "namespaces:\n  - name_selector: a\n    resources:\n      v1/nodes: {}\n",
            r#"namespaces[0].resources["v1/nodes"]: v1/nodes is cluster-scoped; expected a namespaced resource under namespaces[]"#,
        ),
        (
            "resources:\n  - gvr: v1/configmaps\n    name_selector: a\n    field_selector: metadata.name=b\n",
            r#"resources[0].name_selector: "a" conflicts with metadata.name=b in field_selector; expected one name"#,
        ),
        (
            "resources:\n  - gvr: example.com/v1/widgets\n    scope: Cluster\n  - gvr: example.com/v1/widgets\n    scope: Namespaced\n",
            "resources[1].scope: example.com/v1/widgets is Namespaced here but Cluster in resources[0]; expected one scope per GVR",
        ),
        (
            "resources:\n  - gvr: v1/configmaps\n    namespace_names: [Prod]\n",
            r#"resources[0].namespace_names[0]: "Prod" is not a namespace name; expected a DNS-1123 label (lowercase letters, digits and '-')"#,
        ),
        (
            "resources:\n  - gvr: v1/configmaps\n    namespace_patterns: [ok, \"(\"]\n",
            r#"resources[0].namespace_patterns[1]: "(" is not a valid regular expression: unclosed group"#,
        ),
        (
            "resources:\n  - gvr: v1/pods\n    label_pattern: \"=x\"\n",
            r#"resources[0].label_pattern: "=x" is not a valid label pattern (key=regex): "" is not a label key; expected key=regex with a Kubernetes label key"#,
        ),
        (
            "resources:\n  - scope: Cluster\n",
            "resources[0]: missing required key gvr (line 2, column 5)",
        ),
        (
            "metrics:\n  port: 99999\n",
            "metrics.port: 99999 is not a port; expected a whole number from 0 to 65535",
        ),
        (
            "metrics:\n  bind_addr: localhost\n",
            r#"metrics.bind_addr: "localhost" is not an IP address; expected one such as 127.0.0.1 or 0.0.0.0"#,
        ),
        (
            "resources:\n  - gvr: apps/deployments\n",
            r#"resources[0].gvr: "apps/deployments" is not a GVR; expected <version>/<resource> for the core group (v1/configmaps) or <group>/<version>/<resource> (apps/v1/deployments); the core group's versions look like v1, so a two-part GVR must start with one"#,
        ),
    ];
    for (yaml, expected) in cases {
        let e = error(yaml);
        assert_one_line(&e);
        assert_eq!(e, expected, "for {yaml:?}");
    }
}

#[test]
fn a_missing_file_names_the_path() {
    let path = std::path::Path::new("/nonexistent/faro.yaml");
    let e = faro_core::Config::load(path).unwrap_err().to_string();
    assert!(
        e.starts_with("cannot read configuration file /nonexistent/faro.yaml: "),
        "{e}"
    );
}

#[test]
fn checkpoint_and_updates_blocks() {
    assert_eq!(
        error("updates:\n  only_paths: [spec/replicas]\n"),
        r#"updates.only_paths[0]: "spec/replicas" is not a JSON pointer: it does not start with /; expected one such as /spec/replicas"#
    );
    assert_eq!(
        error("updates:\n  only_paths: [/spec]\n  ignore_paths: [/status, /spec]\n"),
        r#"updates.only_paths[0]: "/spec" is also updates.ignore_paths[1]; expected a path in one of the two lists"#
    );
    assert_eq!(
        error("updates:\n  suppress: [everything]\n"),
        r#"updates.suppress[0]: "everything" is not a kind of update; expected resync, status_only, metadata_only or managed_fields_only"#
    );
    assert_eq!(
        error("updates:\n  diff: full\n"),
        r#"updates.diff: "full" is not a diff mode; expected paths, patch or none"#
    );
    assert_eq!(
        error("updates:\n  event_types: [MODIFIED]\n"),
        r#"updates.event_types[0]: "MODIFIED" is not an event type; expected ADDED, UPDATED or DELETED"#
    );
    assert_eq!(
        error("resources:\n  - gvr: v1/pods\n    updates:\n      diff_memory_mb: 5\n"),
        "resources[0].updates.diff_memory_mb: is set per rule; expected it in the top-level updates block only"
    );
    assert_eq!(
        error(
            "resources:\n  - gvr: v1/pods\n    updates: {diff: none}\n  - gvr: v1/pods\n    namespace_names: [a]\n    updates: {diff: patch}\n"
        ),
        "resources[1].updates: differs from resources[0].updates for v1/pods; expected one updates block per GVR"
    );
    assert_eq!(
        error("checkpoint:\n  interval: soon\n"),
        r#"checkpoint.interval: "soon" is not a duration; expected one above zero such as 90s or 10m"#
    );
    assert!(error("checkpoint:\n  every: 5s\n").starts_with("checkpoint.every: unknown key"));
}
