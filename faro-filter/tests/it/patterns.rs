//! Namespace matchers, name patterns, label patterns and the server/client split.

use faro_filter::{
    ClientFilter, FieldSelector, Filter, LabelPattern, LabelSelector, NamespaceMatcher, ObjectView,
    Pattern, ServerSelectors,
};

use crate::labels;

#[test]
fn namespace_matcher_combines_names_and_patterns() {
    let m = NamespaceMatcher::new(["default"], ["^prod-", "-staging$"]).unwrap();
    assert!(m.matches(Some("default")));
    assert!(m.matches(Some("prod-eu")));
    assert!(m.matches(Some("team-staging")));
    assert!(!m.matches(Some("defaults-not")));
    assert!(
        !m.matches(None),
        "a cluster-scoped object is in no namespace"
    );
    assert!(NamespaceMatcher::any().matches(None));
    let (index, e) = NamespaceMatcher::new(Vec::<String>::new(), ["ok", "(["]).unwrap_err();
    assert_eq!(index, 1);
    assert_eq!(e.to_string(), "unclosed character class");
}

#[test]
fn patterns_are_unanchored() {
    let p = Pattern::new("web").unwrap();
    assert!(p.is_match("my-web-1"));
    assert!(!Pattern::new("^web$").unwrap().is_match("my-web-1"));
}

#[test]
fn label_patterns_split_only_before_a_new_key() {
    let list = LabelPattern::parse_list("app=^nginx-.*$, tier=a{1,3}").unwrap();
    let rendered: Vec<String> = list.iter().map(ToString::to_string).collect();
    assert_eq!(rendered, ["app=^nginx-.*$", "tier=a{1,3}"]);
    let l = labels(&[("app", "nginx-1"), ("tier", "aa")]);
    assert!(list.iter().all(|p| p.matches(&l)));
    let no_tier = labels(&[("app", "nginx-1")]);
    assert!(!list[1].matches(&no_tier), "a missing label never matches");

    let with_prefix = LabelPattern::parse_list("example.com/team=^infra$").unwrap();
    assert_eq!(with_prefix[0].key(), "example.com/team");
    assert_eq!(
        LabelPattern::parse_list("app").unwrap_err().to_string(),
        r#""app" has no "="; expected key=regex"#
    );
    assert_eq!(
        LabelPattern::parse_list("app=(").unwrap_err().to_string(),
        "unclosed group"
    );
}

#[test]
fn filter_evaluates_in_order_and_splits() {
    let filter = Filter {
        server: ServerSelectors {
            namespace: Some("prod".into()),
            labels: LabelSelector::parse("app=web").unwrap(),
            fields: FieldSelector::parse("metadata.name!=skip").unwrap(),
        },
        client: ClientFilter {
            namespaces: NamespaceMatcher::any(),
            name: Some(Pattern::new("^web-").unwrap()),
            labels: LabelPattern::parse_list("version=^v2").unwrap(),
        },
    };
    let good = labels(&[("app", "web"), ("version", "v2.1")]);
    let old = labels(&[("app", "web"), ("version", "v1")]);
    let v = |ns, name, l| ObjectView {
        namespace: Some(ns),
        name,
        labels: Some(l),
    };
    assert!(filter.matches(&v("prod", "web-1", &good)));
    assert!(!filter.matches(&v("dev", "web-1", &good)), "namespace");
    assert!(!filter.matches(&v("prod", "skip", &good)), "field selector");
    assert!(!filter.matches(&v("prod", "api-1", &good)), "name pattern");
    assert!(!filter.matches(&v("prod", "web-1", &old)), "label pattern");

    let (server, client) = filter.split();
    assert_eq!(
        server.to_string(),
        r#"namespace=prod labelSelector="app=web" fieldSelector="metadata.name!=skip""#
    );
    assert_eq!(client.to_string(), "name~/^web-/ label~version=/^v2/");
    assert!(!client.is_unconstrained());
    assert!(ClientFilter::default().is_unconstrained());
}
