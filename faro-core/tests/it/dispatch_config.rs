//! The `plugins:`, `workers:` and `middleware:` blocks.

use std::path::PathBuf;

use faro_core::Config;
use faro_core::config::{FullQueuePolicy, WorkerSettings};

use crate::error;

#[test]
fn defaults_when_absent() {
    let c = Config::from_yaml("", "t.yaml").unwrap();
    assert_eq!(c.plugins.directory, None);
    assert_eq!(c.plugins.quarantine_after, 5);
    assert_eq!(c.workers.for_worker("any"), WorkerSettings::default());
    assert!(c.middleware.redact_secrets && c.middleware.drop_managed_fields);
}

#[test]
fn reads_every_key() {
    let c = Config::from_yaml(
        r#"
plugins:
  directory: /opt/faro/plugins
  quarantine_after: 3
  config:
    configmap-audit: { output: /tmp/audit.jsonl, keys: [a, b] }
workers:
  queue_size: 64
  full_queue: drop
  lanes: 4
  overrides:
    json-lines: { lanes: 1, full_queue: block }
middleware:
  redact_secrets: false
"#,
        "t.yaml",
    )
    .unwrap();
    assert_eq!(
        c.plugins.directory,
        Some(PathBuf::from("/opt/faro/plugins"))
    );
    assert_eq!(c.plugins.quarantine_after, 3);
    assert_eq!(
        c.plugins.config["configmap-audit"],
        serde_json::json!({"output": "/tmp/audit.jsonl", "keys": ["a", "b"]})
    );
    let other = c.workers.for_worker("other");
    assert_eq!(
        (other.queue_size, other.full_queue, other.lanes),
        (64, FullQueuePolicy::Drop, 4)
    );
    let json = c.workers.for_worker("json-lines");
    assert_eq!(
        (json.queue_size, json.full_queue, json.lanes),
        (64, FullQueuePolicy::Block, 1)
    );
    assert!(!c.middleware.redact_secrets);
    assert!(c.middleware.drop_managed_fields);
}

#[test]
fn refuses_bad_values_with_one_line() {
    assert_eq!(
        error("workers:\n  full_queue: wait\n"),
        "workers.full_queue: \"wait\" is not a full-queue policy; expected block or drop"
    );
    assert_eq!(
        error("workers:\n  overrides:\n    audit: { queue_size: 0 }\n"),
        "workers.overrides.audit.queue_size: 0 is not a queue size; expected 1 or more"
    );
    assert_eq!(
        error("plugins:\n  quarantine_after: 0\n"),
        "plugins.quarantine_after: 0 is not a number of panics; expected 1 or more"
    );
    assert_eq!(
        error("middleware:\n  redact_secrets: no\n"),
        "middleware.redact_secrets: \"no\" is not a boolean; expected true or false"
    );
}
