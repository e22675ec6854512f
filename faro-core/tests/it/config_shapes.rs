//! Each configuration shape normalises to exactly the expected watch specs.

use std::collections::BTreeMap;

use faro_filter::ObjectView;

use crate::specs;

#[test]
fn namespace_centric_with_name_selector() {
    let yaml = r#"
namespaces:
  - name_selector: faro-test-1
    resources:
      v1/configmaps:
        name_selector: test-config-1
        label_selector: app=faro-test
      apps/v1/deployments:
        name_pattern: "^web-"
"#;
    assert_eq!(
        specs(yaml),
        [
            // Sorted by (group, version, resource): the core group first.
            r#"v1/configmaps (Namespaced) namespace=faro-test-1 labels="app=faro-test" fields="metadata.name=test-config-1" filter=[*]"#,
            r#"apps/v1/deployments (Namespaced) namespace=faro-test-1 filter=[name~/^web-/]"#,
        ]
    );
}

#[test]
fn namespace_centric_with_name_pattern_watches_across_namespaces() {
    let yaml = r#"
namespaces:
  - name_pattern: "^team-.*"
    resources:
      v1/secrets: {}
"#;
    assert_eq!(
        specs(yaml),
        [r#"v1/secrets (Namespaced) namespace=* filter=[namespace~/^team-.*/]"#]
    );
}

#[test]
fn resource_centric_with_namespace_names_and_name_selector() {
    let yaml = r#"
resources:
  - gvr: v1/configmaps
    scope: Namespaced
    namespace_names: [faro-b, faro-a]
    name_selector: test-config-2
"#;
    assert_eq!(
        specs(yaml),
        [
            r#"v1/configmaps (Namespaced) namespace=faro-a fields="metadata.name=test-config-2" filter=[*]"#,
            r#"v1/configmaps (Namespaced) namespace=faro-b fields="metadata.name=test-config-2" filter=[*]"#,
        ]
    );
}

#[test]
fn both_formats_for_the_same_gvr_merge_into_one_watch() {
    let yaml = r#"
namespaces:
  - name_selector: faro-test
    resources:
      v1/configmaps:
        label_selector: "app==web"
resources:
  - gvr: v1/configmaps
    scope: namespaced
    namespace_names: [faro-test]
    label_selector: app=web
"#;
    assert_eq!(
        specs(yaml),
        [r#"v1/configmaps (Namespaced) namespace=faro-test labels="app=web" filter=[*]"#]
    );
}

#[test]
fn both_formats_with_different_patterns_share_one_watch() {
    let yaml = r#"
namespaces:
  - name_selector: faro-test
    resources:
      v1/configmaps:
        name_pattern: "^a-"
resources:
  - gvr: v1/configmaps
    namespace_names: [faro-test]
    name_pattern: "^b-"
"#;
    assert_eq!(
        specs(yaml),
        [r#"v1/configmaps (Namespaced) namespace=faro-test filter=[name~/^a-/] OR [name~/^b-/]"#]
    );
}

#[test]
fn set_based_label_selector_is_rendered_canonically() {
    let yaml = r#"
resources:
  - gvr: v1/pods
    label_selector: "tier notin (frontend), environment in (staging, production),!canary"
"#;
    assert_eq!(
        specs(yaml),
        [
            r#"v1/pods namespace=* labels="!canary,environment in (production,staging),tier notin (frontend)" filter=[*]"#
        ]
    );
}

#[test]
fn namespace_patterns_give_one_watch_filtered_client_side() {
    let yaml = r#"
resources:
  - gvr: v1/configmaps
    namespace_patterns: ["prod-.*", "staging-.*"]
"#;
    assert_eq!(
        specs(yaml),
        [r#"v1/configmaps namespace=* filter=[namespace~/prod-.*/|/staging-.*/]"#]
    );
    let config = faro_core::Config::from_yaml(yaml, "faro.yaml").unwrap();
    let spec = &config.watch_specs[0];
    let view = |ns| ObjectView {
        namespace: Some(ns),
        name: "x",
        labels: None,
    };
    assert!(spec.matches(&view("prod-eu")));
    assert!(spec.matches(&view("staging-1")));
    // Unanchored, as documented: the pattern may match inside the name.
    assert!(spec.matches(&view("old-prod-eu")));
    assert!(!spec.matches(&view("dev")));
}

#[test]
fn label_pattern_is_checked_client_side() {
    let yaml = r#"
resources:
  - gvr: v1/pods
    namespace_names: [web]
    label_pattern: "app=^nginx-.*$"
"#;
    assert_eq!(
        specs(yaml),
        [r#"v1/pods namespace=web filter=[label~app=/^nginx-.*$/]"#]
    );
    let config = faro_core::Config::from_yaml(yaml, "faro.yaml").unwrap();
    let spec = &config.watch_specs[0];
    let labels = |v: &str| BTreeMap::from([("app".to_string(), v.to_string())]);
    let nginx = labels("nginx-1");
    let apache = labels("apache");
    let view = |labels| ObjectView {
        namespace: Some("web"),
        name: "p",
        labels,
    };
    assert!(spec.matches(&view(Some(&nginx))));
    assert!(!spec.matches(&view(Some(&apache))));
    assert!(!spec.matches(&view(None)));
}

#[test]
fn cluster_scoped_gvr_with_name_selector() {
    let yaml = r#"
resources:
  - gvr: v1/namespaces
    scope: Cluster
    name_selector: kube-system
"#;
    assert_eq!(
        specs(yaml),
        [r#"v1/namespaces (Cluster) fields="metadata.name=kube-system" filter=[*]"#]
    );
}

#[test]
fn crd_gvr_with_a_dotted_group() {
    let yaml = r#"
resources:
  - gvr: hypershift.openshift.io/v1beta1/hostedclusters
    scope: Namespaced
    namespace_names: [clusters]
"#;
    assert_eq!(
        specs(yaml),
        [
            r#"hypershift.openshift.io/v1beta1/hostedclusters (Namespaced) namespace=clusters filter=[*]"#
        ]
    );
}

#[test]
fn namespaced_gvr_without_namespace_keys_watches_all_namespaces() {
    let yaml = r#"
resources:
  - gvr: apps/v1/deployments
"#;
    assert_eq!(
        specs(yaml),
        [r#"apps/v1/deployments namespace=* filter=[*]"#]
    );
}

#[test]
fn a_namespace_watch_folds_into_an_all_namespace_watch_with_the_same_selectors() {
    let yaml = r#"
resources:
  - gvr: v1/configmaps
    namespace_names: [a]
    name_pattern: "^x"
  - gvr: v1/configmaps
    namespace_patterns: ["^b-"]
"#;
    assert_eq!(
        specs(yaml),
        [r#"v1/configmaps namespace=* filter=[namespace~/^b-/] OR [namespace~a name~/^x/]"#]
    );
}

#[test]
fn an_unconstrained_rule_absorbs_the_others_on_its_watch() {
    let yaml = r#"
resources:
  - gvr: v1/configmaps
    name_pattern: "^x"
  - gvr: v1/configmaps
"#;
    assert_eq!(specs(yaml), [r#"v1/configmaps namespace=* filter=[*]"#]);
}

#[test]
fn defaults_and_top_level_keys() {
    let config = faro_core::Config::from_yaml(
        r#"
output_dir: /var/faro
log_level: warning
auto_shutdown_sec: 120
json_export: false
metrics: { enabled: true, port: 0, path: /m, bind_addr: 0.0.0.0 }
"#,
        "faro.yaml",
    )
    .unwrap();
    assert_eq!(config.output_dir, std::path::PathBuf::from("/var/faro"));
    assert_eq!(config.log_level, faro_core::config::LogLevel::Warn);
    assert_eq!(config.auto_shutdown_sec, Some(120));
    assert!(!config.json_export);
    assert_eq!(config.metrics.addr().to_string(), "0.0.0.0:0");
    assert_eq!(config.metrics.path, "/m");
    assert!(config.watch_specs.is_empty());

    let empty = faro_core::Config::from_yaml("", "faro.yaml").unwrap();
    assert_eq!(empty, faro_core::Config::default());
    assert_eq!(empty.metrics.addr().to_string(), "127.0.0.1:8080");
}
