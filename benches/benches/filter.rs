//! Compiled client-side filter evaluation for watches serving 1, 10 and 100 rules.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use faro_benches::{sample_objects, watch_spec_with_rules};
use faro_filter::ObjectView;

fn filter_evaluation(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter/evaluate");
    for rules in [1usize, 10, 100] {
        let spec = watch_spec_with_rules(rules).filter_set();
        let objects = sample_objects(1_000, rules);
        let views: Vec<ObjectView<'_>> = objects
            .iter()
            .map(|o| ObjectView {
                namespace: Some(&o.namespace),
                name: &o.name,
                labels: Some(&o.labels),
            })
            .collect();
        let matched = views.iter().filter(|v| spec.matches(v)).count();
        assert_eq!(matched, 250, "a quarter of the objects match");
        group.throughput(Throughput::Elements(views.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(rules), &views, |b, views| {
            b.iter(|| {
                views
                    .iter()
                    .filter(|v| spec.matches(std::hint::black_box(v)))
                    .count()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, filter_evaluation);
criterion_main!(benches);
