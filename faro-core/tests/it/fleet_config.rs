//! The `clusters:` block and `readiness:`: every key, per-cluster rules and
//! one-line refusals.

use std::path::PathBuf;

use faro_core::Config;
use faro_core::config::Readiness;

fn load(yaml: &str) -> Config {
    Config::from_yaml(yaml, "faro.yaml")
        .unwrap_or_else(|e| panic!("configuration should load: {e}"))
}

#[test]
fn no_block_is_one_unnamed_cluster_ready_on_any() {
    let c = load("resources: [{gvr: v1/configmaps}]");
    assert!(c.clusters.is_empty());
    assert_eq!(c.readiness, Readiness::Any);
}

#[test]
fn clusters_share_the_rules_unless_they_set_their_own() {
    let c = load(
        "resources:\n  - gvr: v1/configmaps\nreadiness: all\nclusters:\n  - name: prod-eu\n    kubeconfig: /etc/faro/eu.yaml\n    context: eu\n  - name: staging\n    context: staging\n    namespaces:\n      - name_selector: shop\n        resources:\n          apps/v1/deployments: {}\n    resources:\n      - gvr: v1/secrets\n",
    );
    assert_eq!(c.readiness, Readiness::All);
    let names: Vec<&str> = c.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["prod-eu", "staging"]);
    let eu = &c.clusters[0];
    assert_eq!(eu.kubeconfig, Some(PathBuf::from("/etc/faro/eu.yaml")));
    assert_eq!(eu.context.as_deref(), Some("eu"));
    assert!(eu.rules.is_none());
    let specs = |config: &Config| -> Vec<String> {
        config.watch_specs.iter().map(ToString::to_string).collect()
    };
    let shared = specs(&c);
    assert_eq!(specs(&c.for_cluster(eu).unwrap()), shared);
    let staging = c.for_cluster(&c.clusters[1]).unwrap();
    assert!(staging.clusters.is_empty());
    let own = specs(&staging);
    assert_ne!(own, shared);
    assert!(
        own.iter()
            .any(|s| s.contains("apps/v1/deployments") && s.contains("shop")),
        "{own:?}"
    );
    assert!(own.iter().any(|s| s.contains("v1/secrets")), "{own:?}");
    assert!(!own.iter().any(|s| s.contains("v1/configmaps")), "{own:?}");
    assert_eq!(
        staging.rules[0].origin,
        "clusters[1].namespaces[0].resources[\"apps/v1/deployments\"]"
    );
}

#[test]
fn bad_clusters_are_one_line_naming_key_value_and_expectation() {
    let cases = [
        (
            "clusters: [{name: a}, {name: b}, {name: a}]",
            "clusters[2].name: \"a\" is already the name of clusters[0]; expected unique names",
        ),
        (
            "clusters: [{name: Prod_EU}]",
            "clusters[0].name: \"Prod_EU\" is not a cluster name; expected lowercase letters, digits and '-' (a DNS label)",
        ),
        (
            "clusters: [{context: eu}]",
            "clusters[0].name: is missing; expected a name for the cluster",
        ),
        (
            "clusters: [{name: a, kubeconfig: \"\"}]",
            "clusters[0].kubeconfig: \"\" is empty; expected a kubeconfig",
        ),
        (
            "clusters: [{name: a, contxt: eu}]",
            "clusters[0].contxt: unknown key; expected one of name, kubeconfig, context",
        ),
        (
            "clusters: [{name: a, resources: [{gvr: configmaps}]}]",
            "clusters[0].resources[0].gvr: \"configmaps\" is not a GVR",
        ),
        (
            "readiness: most",
            "readiness: \"most\" is not a readiness; expected any or all",
        ),
    ];
    crate::refused(&cases);
}

#[test]
fn ha_defaults_follow_client_go_and_every_key_is_read() {
    let d = load("resources: []").ha;
    assert!(!d.enabled);
    assert_eq!(d.lease_name, "faro");
    assert_eq!(
        (d.lease_duration, d.renew_deadline, d.retry_period, d.shards),
        (
            std::time::Duration::from_secs(15),
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(2),
            1
        )
    );
    let c = load(
        "ha: {enabled: true, lease_namespace: faro-system, lease_name: faro.watch, identity: replica-a, lease_duration: 4s, renew_deadline: 3s, retry_period: 500ms, shards: 4}",
    )
    .ha;
    assert!(c.enabled);
    assert_eq!(c.lease_namespace.as_deref(), Some("faro-system"));
    assert_eq!(c.lease_name, "faro.watch");
    assert_eq!(c.identity.as_deref(), Some("replica-a"));
    assert_eq!(c.lease_duration, std::time::Duration::from_secs(4));
    assert_eq!(c.renew_deadline, std::time::Duration::from_secs(3));
    assert_eq!(c.retry_period, std::time::Duration::from_millis(500));
    assert_eq!(c.shards, 4);
}

#[test]
fn bad_ha_blocks_are_one_line_naming_key_value_and_expectation() {
    let cases = [
        (
            "ha: {shards: 0}",
            "ha.shards: 0 is not a number of shards; expected 1 or more",
        ),
        (
            "ha: {lease_duration: 10s, renew_deadline: 10s}",
            "ha.renew_deadline: 10s is not below ha.lease_duration (10s); expected a shorter deadline",
        ),
        (
            "ha: {renew_deadline: 2s, retry_period: 2s}",
            "ha.retry_period: 2s leaves no retry before ha.renew_deadline (2s)",
        ),
        (
            "ha: {lease_name: Faro_Lease}",
            "ha.lease_name: \"Faro_Lease\" is not a Lease name",
        ),
        (
            "ha: {lease_namespace: Faro}",
            "ha.lease_namespace: \"Faro\" is not a namespace name",
        ),
        ("ha: {enabled: yes}", "ha.enabled: \"yes\" is not a boolean"),
        (
            "ha: {retry_period: soon}",
            "ha.retry_period: \"soon\" is not a duration",
        ),
        (
            "ha: {leader: x}",
            "ha.leader: unknown key; expected one of enabled",
        ),
    ];
    crate::refused(&cases);
}
