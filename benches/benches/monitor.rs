//! The performance monitor on a hot path: `monitor/record_event` (a named
//! event counted, no hook), `monitor/record_event_with_hook` (the hook
//! called with the last periodic snapshot) and `monitor/counter_increment`
//! (one Prometheus counter, the floor of both), and `monitor/latency_observe`
//! (what `faro_event_latency_seconds` adds per event and worker: a clock
//! read and a bucket increment).

use criterion::{Criterion, criterion_group, criterion_main};
use faro_monitor::PerformanceMonitor;
use prometheus_client::metrics::counter::Counter;

fn monitor(c: &mut Criterion) {
    let mut group = c.benchmark_group("monitor");
    let counter = Counter::<u64>::default();
    group.bench_function("counter_increment", |b| b.iter(|| counter.inc()));
    let m = PerformanceMonitor::new();
    group.bench_function("record_event", |b| b.iter(|| m.record_event("relist")));
    let hooked = PerformanceMonitor::new();
    hooked.add_hook(|event, snapshot| {
        std::hint::black_box((event, snapshot));
    });
    group.bench_function("record_event_with_hook", |b| {
        b.iter(|| hooked.record_event("relist"));
    });
    let latency = faro_monitor::LatencyHistogram::default();
    let received = std::time::Instant::now();
    group.bench_function("latency_observe", |b| {
        b.iter(|| latency.observe(std::hint::black_box(received).elapsed()));
    });
    group.finish();
}

criterion_group!(benches, monitor);
criterion_main!(benches);
