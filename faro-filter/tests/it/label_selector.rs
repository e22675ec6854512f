//! Label selectors follow apimachinery's syntax and semantics.

use faro_filter::{LabelSelector, Operator};

use crate::labels;

fn sel(text: &str) -> LabelSelector {
    LabelSelector::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

#[test]
fn every_operator_parses() {
    let cases = [
        ("app", Operator::Exists, vec![]),
        ("!app", Operator::DoesNotExist, vec![]),
        ("app=web", Operator::Equals, vec!["web"]),
        ("app==web", Operator::Equals, vec!["web"]),
        ("app!=web", Operator::NotEquals, vec!["web"]),
        ("app in (web,api)", Operator::In, vec!["api", "web"]),
        (
            "app notin (web, api, web)",
            Operator::NotIn,
            vec!["api", "web"],
        ),
        ("app=", Operator::Equals, vec![""]),
    ];
    for (text, operator, values) in cases {
        let s = sel(text);
        assert_eq!(s.requirements().len(), 1, "{text}");
        let r = &s.requirements()[0];
        assert_eq!(r.key(), "app");
        assert_eq!(r.operator(), operator, "{text}");
        assert_eq!(r.values(), values.as_slice(), "{text}");
    }
}

#[test]
fn semantics_match_kubernetes() {
    let web = labels(&[("app", "web"), ("tier", "front")]);
    let api = labels(&[("app", "api")]);
    let none = labels(&[]);
    // (selector, matches web, matches api, matches an object without labels)
    let cases = [
        ("", true, true, true),
        ("app", true, true, false),
        ("!app", false, false, true),
        ("app=web", true, false, false),
        ("app==web", true, false, false),
        // != and notin match objects that do not carry the key.
        ("app!=web", false, true, true),
        ("app in (web,db)", true, false, false),
        ("app notin (web,db)", false, true, true),
        ("app,tier", true, false, false),
        ("app=web,tier=front", true, false, false),
        ("app=web,!tier", false, false, false),
        ("tier!=back", true, true, true),
        ("tier notin (front)", false, true, true),
    ];
    for (text, on_web, on_api, on_none) in cases {
        let s = sel(text);
        assert_eq!(s.matches(&web), on_web, "{text:?} on web");
        assert_eq!(s.matches(&api), on_api, "{text:?} on api");
        assert_eq!(s.matches(&none), on_none, "{text:?} on no labels");
    }
}

#[test]
fn render_is_canonical_and_round_trips() {
    let cases = [
        ("", ""),
        ("app", "app"),
        ("  !app ", "!app"),
        ("app==web", "app=web"),
        (
            "tier notin (b, a),app in ( y , x )",
            "app in (x,y),tier notin (a,b)",
        ),
        (
            "example.com/team=infra,app!=web",
            "app!=web,example.com/team=infra",
        ),
        ("b=1,a=2,c", "a=2,b=1,c"),
    ];
    for (text, canonical) in cases {
        let s = sel(text);
        assert_eq!(s.to_string(), canonical, "render of {text:?}");
        let again = sel(&s.to_string());
        assert_eq!(again, s, "round trip of {text:?}");
        assert_eq!(again.to_string(), canonical);
    }
    assert_eq!(sel("app==web"), sel("app=web"));
}

#[test]
fn errors_say_what_was_expected() {
    let cases = [
        (
            "app in (a,",
            r#"expected a value or ")", found the end of the selector"#,
        ),
        ("app in a", r#"expected "(", found "a" at position 8"#),
        (
            "app in ()",
            r#"the value set of "app" is empty; expected at least one value for in/notin"#,
        ),
        (
            "app=web,",
            "expected a label key, found the end of the selector",
        ),
        (",app", r#"expected a label key, found "," at position 1"#),
        (
            "app web",
            r#"expected an operator (=, ==, !=, in, notin), found "web" at position 5"#,
        ),
        (
            "app>1",
            r#"operator ">" is not supported; expected =, ==, !=, in or notin"#,
        ),
        (
            "-app=x",
            r#"label key "-app" is invalid; expected at most 63 characters of [A-Za-z0-9-_.], beginning and ending with an alphanumeric, with an optional DNS-subdomain prefix and '/'"#,
        ),
        (
            "Example.COM/app=x",
            r#"label key "Example.COM/app" has an invalid prefix; expected a DNS subdomain such as example.com"#,
        ),
        (
            "app=-x",
            r#"label value "-x" is invalid; expected at most 63 characters of [A-Za-z0-9-_.], beginning and ending with an alphanumeric"#,
        ),
        (
            "app in (a b)",
            r#"expected "," or ")", found "b" at position 11"#,
        ),
    ];
    for (text, expected) in cases {
        let e = LabelSelector::parse(text).unwrap_err().to_string();
        assert_eq!(e, expected, "error of {text:?}");
    }
    let long = "a".repeat(64);
    assert!(LabelSelector::parse(&format!("app={long}")).is_err());
    assert!(LabelSelector::parse(&format!("app={}", &long[1..])).is_ok());
}
