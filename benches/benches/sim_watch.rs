//! How many ConfigMap events one faro-sim watch connection delivers per
//! second: a watch from an old resourceVersion replays 50,000 events of about
//! 1 KB each from history over a real TCP connection, read as a client reads
//! them. faro-sim must never be the bottleneck of Faro's own benchmarks.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use faro_benches::configmap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EVENTS: u64 = 50_000;

/// Reads a watch until `events` event lines (`}\n`) have arrived.
async fn read_events(addr: std::net::SocketAddr, from: u64, events: u64) -> u64 {
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /api/v1/namespaces/bench/configmaps?watch=true&resourceVersion={from} HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.expect("request");
    let mut buf = vec![0u8; 1 << 20];
    let mut seen = 0u64;
    let mut last = 0u8;
    while seen < events {
        let n = socket.read(&mut buf).await.expect("read");
        assert!(n > 0, "watch ended after {seen} events");
        for &b in &buf[..n] {
            if b == b'\n' && last == b'}' {
                seen += 1;
            }
            last = b;
        }
    }
    seen
}

fn sim_watch(c: &mut Criterion) {
    let rt = faro_benches::runtime();
    let sim = rt
        .block_on(faro_sim::Sim::start(faro_sim::SimConfig {
            // The whole run must stay in the history the watch replays.
            history_bytes: usize::MAX,
            ..faro_sim::SimConfig::default()
        }))
        .expect("faro-sim starts");
    sim.create(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "bench" },
    }))
    .expect("namespace");
    let from = sim.resource_version();
    for i in 0..EVENTS {
        sim.create(configmap("bench", &format!("cm-{i}"), 1024))
            .expect("configmap");
    }
    let addr = sim.addr();

    let mut group = c.benchmark_group("sim/watch");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("configmap_events_1kb", |b| {
        b.iter(|| rt.block_on(read_events(addr, from, EVENTS)));
    });
    group.finish();
    drop(sim);
}

criterion_group!(benches, sim_watch);
criterion_main!(benches);
