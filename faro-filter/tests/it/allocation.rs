//! Evaluating a compiled filter allocates nothing.

use faro_filter::{
    ClientFilter, FieldSelector, Filter, LabelPattern, LabelSelector, NamespaceMatcher, ObjectView,
    Pattern, ServerSelectors,
};

use crate::labels;

#[test]
fn evaluating_a_compiled_filter_allocates_nothing() {
    let filter = Filter {
        server: ServerSelectors {
            namespace: None,
            labels: LabelSelector::parse("app in (web,api),tier!=cache,!canary").unwrap(),
            fields: FieldSelector::parse("metadata.name!=skip").unwrap(),
        },
        client: ClientFilter {
            namespaces: NamespaceMatcher::new(["default"], ["^prod-", "^staging-"]).unwrap(),
            name: Some(Pattern::new("^web-[0-9]+$").unwrap()),
            labels: LabelPattern::parse_list("version=^v[0-9]+").unwrap(),
        },
    };
    let hit = labels(&[("app", "web"), ("version", "v2")]);
    let miss = labels(&[("app", "db")]);
    let objects = [
        ObjectView {
            namespace: Some("prod-eu"),
            name: "web-1",
            labels: Some(&hit),
        },
        ObjectView {
            namespace: Some("dev"),
            name: "web-1",
            labels: Some(&hit),
        },
        ObjectView {
            namespace: Some("default"),
            name: "web-x",
            labels: Some(&hit),
        },
        ObjectView {
            namespace: Some("staging-1"),
            name: "web-2",
            labels: Some(&miss),
        },
        ObjectView {
            namespace: None,
            name: "web-3",
            labels: None,
        },
    ];
    // The regex engine builds its per-thread cache on first use: warm up once.
    let expected: Vec<bool> = objects.iter().map(|o| filter.matches(o)).collect();
    assert_eq!(expected, [true, false, false, false, false]);

    let mut results = [false; 5];
    let info = allocation_counter::measure(|| {
        for _ in 0..1_000 {
            for (slot, object) in results.iter_mut().zip(&objects) {
                *slot = filter.matches(object);
            }
        }
    });
    assert_eq!(results.to_vec(), expected);
    assert_eq!(info.count_total, 0, "filter evaluation allocated: {info:?}");

    // The counter does see allocations: rendering a selector allocates.
    let control = allocation_counter::measure(|| {
        std::hint::black_box(filter.server.labels.to_string());
    });
    assert!(control.count_total > 0);
}
