//! A `FilterSet` answers exactly as its filters checked one by one.

use faro_filter::{ClientFilter, FilterSet, LabelPattern, NamespaceMatcher, ObjectView, Pattern};

use crate::labels;

fn filter(
    names: &[&str],
    patterns: &[&str],
    name: Option<&str>,
    label: Option<&str>,
) -> ClientFilter {
    ClientFilter {
        namespaces: NamespaceMatcher::new(names.iter().copied(), patterns.iter().copied()).unwrap(),
        name: name.map(|p| Pattern::new(p).unwrap()),
        labels: label.map_or_else(Vec::new, |l| LabelPattern::parse_list(l).unwrap()),
    }
}

/// Filters covering each branch of the index: exact namespaces, namespace
/// patterns shared by two filters, any namespace with a name pattern, any
/// namespace with labels only, and a filter with both names and patterns.
fn filters() -> Vec<ClientFilter> {
    vec![
        filter(&["default"], &[], Some("^web-"), None),
        filter(&["default", "kube-system"], &[], None, Some("tier=^db$")),
        filter(&[], &["^prod-"], Some("-api$"), None),
        filter(&[], &["^prod-"], None, Some("tier=^cache$")),
        filter(
            &["staging"],
            &["^team-[0-9]+$"],
            Some("^job-"),
            Some("app=."),
        ),
        filter(&[], &[], Some("^cluster-"), None),
        filter(&[], &[], Some("^cluster-"), Some("role=^admin$")),
        filter(&[], &[], None, Some("audit=^yes$")),
    ]
}

#[test]
fn the_index_agrees_with_each_filter_checked_in_turn() {
    let namespaces = [
        None,
        Some("default"),
        Some("kube-system"),
        Some("prod-eu"),
        Some("staging"),
        Some("team-7"),
        Some("team-x"),
        Some("other"),
    ];
    let names = ["web-1", "db-0", "orders-api", "job-9", "cluster-admin", "x"];
    let label_sets = [
        labels(&[]),
        labels(&[("tier", "db")]),
        labels(&[("tier", "cache"), ("app", "a")]),
        labels(&[("role", "admin"), ("audit", "yes")]),
        labels(&[("app", "x")]),
    ];
    let all = filters();
    // Every subset of the filters (2^8), so each branch meets each other.
    let mut checked = 0;
    let mut passed = 0;
    for mask in 0u32..(1 << all.len()) {
        let chosen: Vec<ClientFilter> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, f)| f.clone())
            .collect();
        let set = FilterSet::new(chosen.clone());
        for namespace in namespaces {
            for name in names {
                for labels in &label_sets {
                    let object = ObjectView {
                        namespace,
                        name,
                        labels: Some(labels),
                    };
                    let expected = chosen.iter().any(|f| f.matches(&object));
                    assert_eq!(
                        set.matches(&object),
                        expected,
                        "filters {mask:08b}, object {namespace:?}/{name} {labels:?}"
                    );
                    checked += 1;
                    passed += usize::from(expected);
                }
            }
        }
    }
    assert_eq!(checked, 256 * 8 * 6 * 5);
    assert!(
        passed > checked / 10 && passed < checked,
        "both answers occur: {passed} of {checked}"
    );
}

#[test]
fn no_filter_accepts_nothing_and_an_unconstrained_one_accepts_everything() {
    let object = ObjectView {
        namespace: Some("x"),
        name: "y",
        labels: None,
    };
    assert!(!FilterSet::new(Vec::new()).matches(&object));
    assert!(!FilterSet::default().matches(&object));
    let open = FilterSet::new(vec![
        filter(&["a"], &[], None, None),
        ClientFilter::default(),
    ]);
    assert!(open.accepts_all());
    assert!(open.matches(&object));
    assert_eq!(open.filters().len(), 2);
}

#[test]
fn evaluating_a_set_of_a_hundred_rules_allocates_nothing() {
    let set = FilterSet::new(
        (0..100)
            .map(|i| {
                filter(
                    &[],
                    &[&format!("^team-{i}-")],
                    Some(&format!("^app-{i}-[a-z]+$")),
                    Some(&format!("tier=^(web|api)-{i}$")),
                )
            })
            .collect(),
    );
    let hit_labels = labels(&[("tier", "web-42")]);
    let objects = [
        ObjectView {
            namespace: Some("team-42-prod"),
            name: "app-42-object",
            labels: Some(&hit_labels),
        },
        ObjectView {
            namespace: Some("team-41-prod"),
            name: "app-42-object",
            labels: Some(&hit_labels),
        },
        ObjectView {
            namespace: Some("other-3"),
            name: "app-42-object",
            labels: Some(&hit_labels),
        },
        ObjectView {
            namespace: None,
            name: "app-42-object",
            labels: None,
        },
    ];
    let expected: Vec<bool> = objects.iter().map(|o| set.matches(o)).collect();
    assert_eq!(expected, [true, false, false, false]);
    let mut results = [false; 4];
    let info = allocation_counter::measure(|| {
        for _ in 0..1_000 {
            for (slot, object) in results.iter_mut().zip(&objects) {
                *slot = set.matches(object);
            }
        }
    });
    assert_eq!(results.to_vec(), expected);
    assert_eq!(info.count_total, 0, "set evaluation allocated: {info:?}");
}
