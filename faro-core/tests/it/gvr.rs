//! GVR and scope parsing.

use faro_core::{Gvr, Scope};

#[test]
fn parses_and_displays_the_three_forms() {
    for (text, group, version, resource, api_version) in [
        ("v1/configmaps", "", "v1", "configmaps", "v1"),
        (
            "apps/v1/deployments",
            "apps",
            "v1",
            "deployments",
            "apps/v1",
        ),
        (
            "hypershift.openshift.io/v1beta1/hostedclusters",
            "hypershift.openshift.io",
            "v1beta1",
            "hostedclusters",
            "hypershift.openshift.io/v1beta1",
        ),
    ] {
        let gvr = Gvr::parse(text).unwrap();
        assert_eq!(
            (gvr.group(), gvr.version(), gvr.resource()),
            (group, version, resource)
        );
        assert_eq!(gvr.to_string(), text);
        assert_eq!(gvr.api_version(), api_version);
        assert_eq!(gvr.is_core(), group.is_empty());
    }
}

#[test]
fn rejects_malformed_strings() {
    for text in [
        "",
        "configmaps",
        "v1/",
        "/v1/configmaps",
        "v1/ConfigMaps",
        "apps/v1/deployments/scale",
        "apps/deployments",
        "Apps/v1/deployments",
        "apps/V1/deployments",
    ] {
        let e = Gvr::parse(text).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{text:?} is not a GVR; expected ")),
            "{text}: {e}"
        );
    }
}

#[test]
fn serde_round_trip_as_a_string() {
    let gvr: Gvr = serde_json::from_str("\"apps/v1/deployments\"").unwrap();
    assert_eq!(
        serde_json::to_string(&gvr).unwrap(),
        "\"apps/v1/deployments\""
    );
    assert!(serde_json::from_str::<Gvr>("\"deployments\"").is_err());
}

#[test]
fn scope_is_case_insensitive() {
    assert_eq!(Scope::parse("cluster").unwrap(), Scope::Cluster);
    assert_eq!(Scope::parse("NAMESPACED").unwrap(), Scope::Namespaced);
    assert_eq!(
        Scope::parse("Galaxy").unwrap_err().to_string(),
        r#""Galaxy" is not a scope; expected Cluster or Namespaced"#
    );
}

#[test]
fn known_cluster_scoped_builtins() {
    assert_eq!(
        Gvr::parse("v1/namespaces").unwrap().known_scope(),
        Some(Scope::Cluster)
    );
    assert_eq!(Gvr::parse("v1/configmaps").unwrap().known_scope(), None);
}
