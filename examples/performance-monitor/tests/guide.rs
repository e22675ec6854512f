//! The guide's performance monitoring integration against faro-sim: the
//! hook's per-GVR counts equal the events the watches delivered, each one
//! timed, next to the monitor's own families.

use std::process::Stdio;
use std::time::Duration;

use faro_sim::{Sim, SimConfig};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const MONITOR: &str = env!("CARGO_BIN_EXE_performance-monitor");

async fn scrape(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_counted_and_timed_per_gvr() {
    let sim = Sim::start(SimConfig::default())
        .await
        .expect("faro-sim starts");
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        .unwrap();
    for i in 0..7 {
        sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "namespace": "shop"}}))
            .unwrap();
    }
    let mut child = tokio::process::Command::new(MONITOR)
        .args([
            "--gvrs",
            "v1/configmaps,v1/namespaces",
            "--listen",
            "127.0.0.1:0",
            "--duration",
            "3",
        ])
        .arg("--kubeconfig")
        .arg(sim.kubeconfig())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let next = async |lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>| {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("a line within 30 s")
            .unwrap()
            .expect("the monitor runs")
    };
    let url = next(&mut lines)
        .await
        .strip_prefix("METRICS_URL: ")
        .unwrap()
        .to_owned();
    assert_eq!(next(&mut lines).await, "READY");
    for i in 7..10 {
        sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "namespace": "shop"}}))
            .unwrap();
    }
    let configmaps = sim.list("v1", "ConfigMap", None).unwrap().len() as f64;
    let namespaces = sim.list("v1", "Namespace", None).unwrap().len() as f64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = scrape(&url).await;
        let counted = text
            .lines()
            .find_map(|l| l.strip_prefix("example_events_total{gvr=\"v1/configmaps\"} "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if counted == Some(configmaps) {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        value(&text, "example_events_total{gvr=\"v1/namespaces\"}"),
        namespaces
    );
    assert_eq!(
        value(
            &text,
            "example_processing_duration_seconds_count{gvr=\"v1/configmaps\"}"
        ),
        configmaps
    );
    assert_eq!(
        value(
            &text,
            "faro_operation_duration_seconds_count{operation=\"process_event\"}"
        ),
        configmaps + namespaces
    );
    assert_eq!(
        value(
            &text,
            "faro_monitor_events_total{event=\"processed:v1/configmaps\"}"
        ),
        configmaps
    );
    assert!(text.contains("faro_monitor_startup_seconds "), "{text}");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("it stops after --duration")
        .unwrap();
    assert!(status.success());
}
