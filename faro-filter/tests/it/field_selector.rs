//! Field selectors: metadata.name and metadata.namespace, escapes, rendering.

use faro_filter::{FieldSelector, ObjectView};

fn view<'a>(namespace: Option<&'a str>, name: &'a str) -> ObjectView<'a> {
    ObjectView {
        namespace,
        name,
        labels: None,
    }
}

#[test]
fn evaluates_name_and_namespace() {
    let s = FieldSelector::parse("metadata.name=a,metadata.namespace!=kube-system").unwrap();
    assert!(s.matches(&view(Some("prod"), "a")));
    assert!(!s.matches(&view(Some("kube-system"), "a")));
    assert!(!s.matches(&view(Some("prod"), "b")));
    // A cluster-scoped object has the empty namespace.
    assert!(
        FieldSelector::parse("metadata.namespace=")
            .unwrap()
            .matches(&view(None, "n"))
    );
    assert!(
        FieldSelector::parse("metadata.name==a")
            .unwrap()
            .matches(&view(None, "a"))
    );
    assert!(FieldSelector::parse("").unwrap().matches(&view(None, "a")));
}

#[test]
fn renders_canonically_and_round_trips() {
    for (text, canonical) in [
        (
            "metadata.namespace==b, metadata.name=a",
            "metadata.name=a,metadata.namespace=b",
        ),
        ("metadata.name!=x", "metadata.name!=x"),
        (r"metadata.name=a\,b", r"metadata.name=a\,b"),
    ] {
        let s = FieldSelector::parse(text).unwrap();
        assert_eq!(s.to_string(), canonical);
        assert_eq!(FieldSelector::parse(&s.to_string()).unwrap(), s);
    }
    let escaped = FieldSelector::parse(r"metadata.name=a\,b").unwrap();
    assert_eq!(escaped.terms()[0].value(), "a,b");
    assert!(escaped.matches(&view(None, "a,b")));
}

#[test]
fn name_equals_and_and() {
    let s = FieldSelector::name_equals("web")
        .and(&FieldSelector::parse("metadata.namespace=p").unwrap());
    assert_eq!(s.to_string(), "metadata.name=web,metadata.namespace=p");
    assert_eq!(s.required("metadata.name"), Some("web"));
    assert_eq!(s.required("status.phase"), None);
}

#[test]
fn errors_say_what_was_expected() {
    for (text, expected) in [
        (
            "metadata.name",
            r#"term "metadata.name" has no operator; expected field=value, field==value or field!=value"#,
        ),
        (
            "=a",
            r#"term "=a" has no field; expected field=value, field==value or field!=value"#,
        ),
        (
            "a=b,,c=d",
            "empty term; expected field=value, field==value or field!=value between commas",
        ),
        (
            "meta data=x",
            r#"field "meta data" is invalid; expected a dotted path such as metadata.name"#,
        ),
        (
            "a=b=c",
            r#"value "b=c" has an unescaped '='; escape it with a backslash"#,
        ),
    ] {
        assert_eq!(
            FieldSelector::parse(text).unwrap_err().to_string(),
            expected,
            "{text:?}"
        );
    }
}
