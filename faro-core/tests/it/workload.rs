//! The `workload:` block: what it accepts, what it refuses, and how ids are read.

use std::collections::BTreeMap;

use faro_core::Config;

use crate::error;

const BLOCK: &str = r#"
workload:
  detection_label: example.com/workload
  workload_pattern: ^team-([a-z]+)$
  namespace_pattern: ^([a-z]+)-(dev|prod)$
  gvrs: [v1/pods, apps/v1/deployments]
"#;

#[test]
fn reads_ids_from_labels_and_namespace_names() {
    let config = Config::from_yaml(BLOCK, "test.yaml").unwrap();
    let w = config.workload.expect("workload block");
    assert_eq!(w.detection_label, "example.com/workload");
    assert_eq!(
        w.gvrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["v1/pods", "apps/v1/deployments"]
    );
    let labels = BTreeMap::from([("example.com/workload".to_owned(), "team-blue".to_owned())]);
    assert_eq!(w.workload_of(Some(&labels)), Some("blue"));
    let other = BTreeMap::from([("example.com/workload".to_owned(), "blue".to_owned())]);
    assert_eq!(w.workload_of(Some(&other)), None);
    assert_eq!(w.workload_of(None), None);
    assert_eq!(w.namespace_workload("blue-prod"), Some("blue"));
    assert_eq!(w.namespace_workload("blue-test"), None);
}

#[test]
fn refuses_bad_blocks_with_one_line() {
    let cases = [
        (
            BLOCK.replace("example.com/workload", "a=b"),
            "workload.detection_label: \"a=b\" is not a label key; expected one such as example.com/workload",
        ),
        (
            BLOCK.replace("^([a-z]+)-(dev|prod)$", "^[a-z]+-prod$"),
            "workload.namespace_pattern: \"^[a-z]+-prod$\" has no capture group; expected one that captures the workload id, such as ^(.+)-(dev|prod)$",
        ),
        (
            BLOCK.replace("[v1/pods, apps/v1/deployments]", "[v1/pods, v1/nodes]"),
            "workload.gvrs[1]: v1/nodes is cluster-scoped; expected a namespaced resource",
        ),
        (
            BLOCK.replace("[v1/pods, apps/v1/deployments]", "[]"),
            "workload.gvrs: is empty; expected at least one namespaced resource such as v1/pods",
        ),
    ];
    for (yaml, expected) in cases {
        assert_eq!(error(&yaml), expected, "for {yaml}");
    }
    assert!(
        error(&BLOCK.replace("^team-([a-z]+)$", "^team-([a-z]+$")).starts_with(
            "workload.workload_pattern: \"^team-([a-z]+$\" is not a valid regular expression"
        )
    );
}
