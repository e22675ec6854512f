//! The monitor's hooks, snapshots, event counts and operation timings.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use faro_monitor::{PerformanceMonitor, Snapshot};

fn text(m: &PerformanceMonitor) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    m.register(&mut registry);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_hear_every_named_event_in_order_with_a_snapshot() {
    let m = PerformanceMonitor::new();
    m.add_source(|s: &mut Snapshot| {
        s.tracked_objects = 42;
        s.informers.insert("watching".into(), 3);
    });
    let heard: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let h = heard.clone();
    m.add_hook(move |event, s| {
        h.lock()
            .unwrap()
            .push((event.to_owned(), s.tracked_objects))
    });
    let periodic = m.start_periodic(Duration::from_millis(50));
    tokio::time::sleep(Duration::from_millis(20)).await;
    m.startup_complete();
    m.record_event("relist");
    tokio::time::sleep(Duration::from_millis(120)).await;
    periodic.abort();
    m.shutdown(Duration::from_millis(7));
    let heard = heard.lock().unwrap().clone();
    let names: Vec<&str> = heard.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "metrics_collection", "{names:?}");
    assert_eq!(&names[1..3], ["startup_complete", "relist"], "{names:?}");
    assert!(
        names[3..names.len() - 1]
            .iter()
            .all(|n| *n == "metrics_collection")
    );
    assert!(names.len() >= 5, "periodic snapshots: {names:?}");
    assert_eq!(names.last(), Some(&"shutdown"));
    assert!(
        heard.iter().all(|(_, tracked)| *tracked == 42),
        "sources fill every snapshot"
    );

    let s = m.snapshot();
    assert!(s.uptime >= Duration::from_millis(140));
    assert!(s.startup.is_some_and(|d| d <= s.uptime));
    assert_eq!(s.shutdown, Some(Duration::from_millis(7)));
    assert!(s.resident_bytes > 1 << 20, "{s:?}");
    assert!(s.open_fds > 0 && s.tasks_alive.is_some(), "{s:?}");
    assert_eq!(s.informers.get("watching"), Some(&3));
    assert!(text(&m).contains("faro_monitor_events_total{event=\"relist\"} 1"));
}

#[tokio::test]
async fn profiled_operations_are_timed_and_their_failures_counted() {
    let m = PerformanceMonitor::new();
    let ok: Result<u8, String> = m
        .profile("list", async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(1)
        })
        .await;
    assert_eq!(ok, Ok(1));
    let failed: Result<u8, String> = m.profile("list", async { Err("no".into()) }).await;
    assert!(failed.is_err());
    let sync: Result<(), ()> = m.profile_sync("parse", || Ok(()));
    assert!(sync.is_ok());
    let t = text(&m);
    assert!(
        t.contains("faro_operation_duration_seconds_count{operation=\"list\"} 2"),
        "{t}"
    );
    assert!(
        t.contains("faro_operation_duration_seconds_count{operation=\"parse\"} 1"),
        "{t}"
    );
    assert!(
        t.contains("faro_operation_errors_total{operation=\"list\"} 1"),
        "{t}"
    );
    assert!(
        !t.contains("faro_operation_errors_total{operation=\"parse\"}"),
        "{t}"
    );
    // The 20 ms operation lies above the 0.0128 s bucket, within 0.0256 s.
    let sum: f64 = t
        .lines()
        .find(|l| l.starts_with("faro_operation_duration_seconds_sum{operation=\"list\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(sum >= 0.02, "{sum}");
}

#[test]
fn a_threshold_crossed_and_recovered_gives_one_start_and_one_end() {
    let m = PerformanceMonitor::new();
    let depth = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let d = depth.clone();
    m.add_source(move |s: &mut Snapshot| {
        s.queue_depths
            .insert("slow".into(), d.load(std::sync::atomic::Ordering::SeqCst));
    });
    m.set_thresholds(faro_monitor::Thresholds {
        max_queue_depth: Some(100),
        ..faro_monitor::Thresholds::default()
    });
    /// (event, the threshold it is about, whether max_queue_depth is exceeded).
    type Heard = Vec<(String, Option<String>, bool)>;
    let heard: Arc<Mutex<Heard>> = Arc::default();
    let h = heard.clone();
    m.add_hook(move |event, s| {
        if event != "metrics_collection" {
            h.lock().unwrap().push((
                event.to_owned(),
                s.threshold.clone(),
                s.exceeded.contains_key("max_queue_depth"),
            ));
        }
    });
    let t = text(&m);
    assert!(
        t.contains("faro_threshold_exceeded{threshold=\"max_queue_depth\"} 0"),
        "{t}"
    );
    m.startup_complete();
    for level in [0, 50, 101, 500, 300, 101, 100, 0, 150, 0] {
        depth.store(level, std::sync::atomic::Ordering::SeqCst);
        m.collect();
        if level == 500 {
            assert!(m.violating());
            let t = text(&m);
            assert!(
                t.contains("faro_threshold_exceeded{threshold=\"max_queue_depth\"} 1"),
                "{t}"
            );
        }
    }
    m.shutdown(Duration::from_millis(1));
    let heard = heard.lock().unwrap().clone();
    let q = Some("max_queue_depth".to_owned());
    assert_eq!(
        heard,
        vec![
            ("startup_complete".to_owned(), None, false),
            ("threshold_exceeded".to_owned(), q.clone(), true),
            ("threshold_cleared".to_owned(), q.clone(), false),
            ("threshold_exceeded".to_owned(), q.clone(), true),
            ("threshold_cleared".to_owned(), q, false),
            ("shutdown".to_owned(), None, false),
        ]
    );
    assert!(!m.violating());
    let t = text(&m);
    assert!(
        t.contains("faro_threshold_violations_total{threshold=\"max_queue_depth\"} 2"),
        "{t}"
    );
    assert!(
        t.contains("faro_threshold_exceeded{threshold=\"max_queue_depth\"} 0"),
        "{t}"
    );
    assert!(t.contains("faro_monitor_queue_depth_max 0"), "{t}");
    assert!(t.contains("faro_monitor_uptime_seconds "), "{t}");
}
