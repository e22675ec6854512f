//! Faro watching itself: thresholds and readiness, profiles on demand, and
//! the real Prometheus Pushgateway and Prometheus server reading its
//! metrics.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::run::{get, spawn_run_with};
use crate::{Faro, TempDir, sim};

/// A GET over a fresh connection: (status, body bytes), chunked or not.
pub async fn get_bytes(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header");
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let mut body = response[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..end])
                    .split(';')
                    .next()
                    .unwrap()
                    .trim(),
                16,
            )
            .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 2 + size + 2..];
        }
        body = out;
    }
    (status, body)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A program from a Debian package, or `None` with a SKIPPED line.
fn program(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "SKIPPED: {name} is not installed (Debian package {package}); this test runs the real one"
        );
    }
    found
}

/// A background program killed on drop.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program args…` and waits (30 s) until `ready` answers 200.
async fn daemon(program: &Path, args: &[String], ready: &str, log: &Path) -> Daemon {
    let child = std::process::Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", program.display()));
    let d = Daemon(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = tokio::net::TcpStream::connect(
            ready
                .strip_prefix("http://")
                .unwrap()
                .split('/')
                .next()
                .unwrap(),
        )
        .await
        .is_ok();
        if up && get(ready).await.0 == 200 {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "{} not ready within 30 s: {}",
            program.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sums the samples of `name` whose labels contain every one of `labels`.
fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

fn configmap(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": ns},
           "data": {"payload": "x".repeat(512)}})
}

fn namespace(sim: &faro_sim::Sim, ns: &str) {
    sim.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .unwrap();
}

/// `faro run` with stderr kept in a file.
fn spawn_logged(
    sim: &faro_sim::Sim,
    config: &Path,
    dir: &TempDir,
    extra: &[&str],
) -> (Faro, PathBuf) {
    let log = dir.path().join("stderr.log");
    let faro = crate::run::spawn_run_to(sim, config, dir, extra, Some(&log));
    (faro, log)
}

async fn metrics_url(faro: &mut Faro) -> String {
    faro.line("FARO_METRICS_URL:").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiling_endpoints_are_404_when_off() {
    let sim = sim().await;
    let dir = TempDir::new();
    let config = dir.file("faro.yaml", "resources: [{gvr: v1/configmaps}]\n");
    let mut faro = spawn_run_with(&sim, &config, &dir, &[]);
    let url = metrics_url(&mut faro).await;
    faro.line("FARO_READY:").await;
    let base = url.strip_suffix("/metrics").unwrap();
    for path in ["profile?seconds=1", "heap", "tasks"] {
        let (status, body) = get(&format!("{base}/debug/pprof/{path}")).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body.contains("--profiling"), "{body}");
    }
    let (code, _) = faro.stop().await;
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_profile_of_a_busy_run_decodes_as_pprof_with_samples() {
    let sim = sim().await;
    namespace(&sim, "busy");
    let dir = TempDir::new();
    let config = dir.file("faro.yaml", "resources: [{gvr: v1/configmaps}]\n");
    let mut faro = spawn_run_with(&sim, &config, &dir, &["--profiling"]);
    let url = metrics_url(&mut faro).await;
    faro.line("FARO_READY:").await;
    let base = url.strip_suffix("/metrics").unwrap().to_owned();
    for (query, why) in [
        ("0", "out of range"),
        ("301", "out of range"),
        ("soon", "not a number"),
    ] {
        let (status, body) = get(&format!("{base}/debug/pprof/profile?seconds={query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(why) && body.contains("1 to 300"), "{body}");
    }
    let profile = tokio::spawn({
        let base = base.clone();
        async move { get_bytes(&format!("{base}/debug/pprof/profile?seconds=5")).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (second, body) = get(&format!("{base}/debug/pprof/profile?seconds=1")).await;
    assert_eq!(second, 409, "a second profile at once: {body}");
    // Keep Faro busy while it is sampled: write until it has spent 600 ms
    // of CPU (60 samples' worth at 99 Hz), however loaded the machine is.
    let pid = faro.child.id().unwrap();
    let cpu_ticks = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = stat.rsplit_once(')').unwrap().1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime, fields 14 and 15 of stat(5), in clock ticks (1/100 s).
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let before = cpu_ticks();
    let writer = {
        let started = Instant::now();
        let mut i = 0;
        while started.elapsed() < Duration::from_millis(4200) && cpu_ticks() < before + 60 {
            for _ in 0..20 {
                sim.create(configmap("busy", &format!("c{i}"))).unwrap();
                i += 1;
            }
            tokio::task::yield_now().await;
        }
        i
    };
    let (status, bytes) = profile.await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    use prost::Message;
    let p = faro_monitor::cpu::proto::Profile::decode(&bytes[..]).expect("pprof protobuf");
    assert_eq!(p.string_table.first().map(String::as_str), Some(""));
    let s = |i: i64| p.string_table[usize::try_from(i).unwrap()].as_str();
    let types: Vec<(&str, &str)> = p
        .sample_type
        .iter()
        .map(|t| (s(t.r#type), s(t.unit)))
        .collect();
    assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
    assert!(
        !p.sample.is_empty(),
        "samples while {writer} ConfigMaps were written"
    );
    let ids: std::collections::HashSet<u64> = p.location.iter().map(|l| l.id).collect();
    assert!(
        p.sample
            .iter()
            .all(|x| x.value[0] > 0 && x.location_id.iter().all(|l| ids.contains(l)))
    );
    assert!(
        p.function.iter().any(|f| s(f.name).contains("::")),
        "functions are named, demangled: {:?}",
        p.function.iter().map(|f| s(f.name)).collect::<Vec<_>>()
    );
    assert!(p.duration_nanos >= 4_900_000_000);
    // The other endpoints.
    let (status, heap) = get(&format!("{base}/debug/pprof/heap")).await;
    assert_eq!(status, 200);
    assert!(heap.contains("VmRSS:"), "{heap}");
    let (status, tasks) = get(&format!("{base}/debug/pprof/tasks")).await;
    assert_eq!(status, 200);
    assert!(tasks.contains("tasks alive: "), "{tasks}");
    let (code, _) = faro.stop().await;
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_worker_crosses_the_queue_threshold_once_and_readiness_fails_only_when_asked() {
    let sim = sim().await;
    namespace(&sim, "slow");
    let plugins = crate::plugin_dir(&["test-panic"]);
    let runs: Vec<(bool, TempDir)> = [true, false]
        .into_iter()
        .map(|b| (b, TempDir::new()))
        .collect();
    let mut started = Vec::new();
    for (asked, dir) in &runs {
        let config = dir.file(
            "faro.yaml",
            &format!(
                "resources: [{{gvr: v1/configmaps}}]\nplugins:\n  directory: {}\n  config:\n    test-panic: {{sleep_ms: 15}}\nmonitor:\n  interval: 100ms\n  max_queue_depth: 40\n  readiness_on_violation: {asked}\n",
                plugins.path().display()
            ),
        );
        let (mut faro, log) = spawn_logged(&sim, &config, dir, &[]);
        let url = metrics_url(&mut faro).await;
        faro.line("FARO_READY:").await;
        started.push((*asked, faro, log, url));
    }
    for i in 0..150 {
        sim.create(configmap("slow", &format!("c{i}"))).unwrap();
    }
    // Readiness while the queue is deep, then after it drained.
    let mut seen_503 = [false, false];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut drained = true;
        for (k, (_, _, _, url)) in started.iter().enumerate() {
            let base = url.strip_suffix("/metrics").unwrap();
            let (status, body) = get(&format!("{base}/readyz")).await;
            if status == 503 {
                assert!(body.contains("threshold max_queue_depth"), "{body}");
                seen_503[k] = true;
            }
            let (_, text) = get(url).await;
            let handled = sum(
                &text,
                "faro_worker_events_total",
                &["worker=\"test-panic\""],
            );
            let exceeded = sum(&text, "faro_threshold_exceeded", &["max_queue_depth"]);
            drained &= handled >= 150.0 && exceeded == 0.0;
        }
        if drained {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slow worker did not drain in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(
        seen_503,
        [true, false],
        "503 only with readiness_on_violation"
    );
    for (asked, faro, log, url) in started {
        let (_, text) = get(&url).await;
        assert_eq!(
            sum(
                &text,
                "faro_threshold_violations_total",
                &["max_queue_depth"]
            ),
            1.0,
            "{text}"
        );
        let base = url.strip_suffix("/metrics").unwrap().to_owned();
        assert_eq!(get(&format!("{base}/readyz")).await.0, 200);
        let (code, _) = faro.stop().await;
        assert_eq!(code, 0);
        let stderr = std::fs::read_to_string(&log).unwrap();
        let count = |what: &str| stderr.lines().filter(|l| l.contains(what)).count();
        assert_eq!(
            (
                count("threshold max_queue_depth exceeded"),
                count("threshold max_queue_depth back within its limit")
            ),
            (1, 1),
            "readiness asked: {asked}; {stderr}"
        );
    }
}

/// Starts a Pushgateway on a free port; `None` when it is not installed.
async fn pushgateway(dir: &TempDir) -> Option<(Daemon, String)> {
    let program = program("prometheus-pushgateway", "prometheus-pushgateway")?;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let d = daemon(
        &program,
        &[format!("--web.listen-address=127.0.0.1:{port}")],
        &format!("{url}/-/ready"),
        &dir.path().join("pushgateway.log"),
    )
    .await;
    Some((d, url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_push_holds_the_summary_counts() {
    let dir = TempDir::new();
    let Some((_gateway, gw)) = pushgateway(&dir).await else {
        return;
    };
    let sim = sim().await;
    namespace(&sim, "pushed");
    for i in 0..25 {
        sim.create(configmap("pushed", &format!("c{i}"))).unwrap();
    }
    let config = dir.file(
        "faro.yaml",
        &format!(
            "resources: [{{gvr: v1/configmaps, namespace_names: [pushed]}}]\nauto_shutdown_sec: 3\nmetrics:\n  push:\n    url: {gw}\n    grouping: {{instance: ci-7}}\n    interval: 0\n"
        ),
    );
    let mut faro = spawn_run_with(&sim, &config, &dir, &[]);
    faro.line("FARO_READY:").await;
    for i in 0..5 {
        let mut c = configmap("pushed", &format!("c{i}"));
        c["data"]["more"] = json!("yes");
        sim.update(c).unwrap();
    }
    let summary: Value = serde_json::from_str(&faro.line("FARO_SUMMARY:").await).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), faro.child.wait())
        .await
        .expect("faro exits")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let (code, text) = get(&format!("{gw}/metrics")).await;
    assert_eq!(code, 200);
    let group = ["job=\"faro\"", "instance=\"ci-7\""];
    for (kind, key) in [("ADDED", "added"), ("UPDATED", "updated")] {
        let mut labels = group.to_vec();
        let t = format!("type=\"{kind}\"");
        labels.push(&t);
        assert_eq!(
            sum(&text, "faro_watch_events_total", &labels),
            summary[key].as_f64().unwrap(),
            "{kind} in the pushed group; summary {summary}"
        );
    }
    // The 25 and the namespace's kube-root-ca.crt.
    assert_eq!(summary["added"], 26);
    assert_eq!(summary["updated"], 5);
    let mut labels = group.to_vec();
    labels.push("worker=\"json-lines\"");
    assert_eq!(sum(&text, "faro_worker_events_total", &labels), 31.0);
    assert_eq!(
        sum(&text, "faro_event_latency_seconds_count", &labels),
        31.0,
        "the histogram is pushed whole"
    );
    assert!(sum(&text, "push_time_seconds", &group) > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushgateway_gone_mid_run_is_a_warning_not_a_hang() {
    let dir = TempDir::new();
    let Some((gateway, gw)) = pushgateway(&dir).await else {
        return;
    };
    let sim = sim().await;
    let config = dir.file(
        "faro.yaml",
        &format!(
            "resources: [{{gvr: v1/configmaps}}]\nmetrics:\n  push:\n    url: {gw}\n    interval: 300ms\n    timeout: 2s\n"
        ),
    );
    let (mut faro, log) = spawn_logged(&sim, &config, &dir, &[]);
    faro.line("FARO_READY:").await;
    // A periodic push arrives…
    let deadline = Instant::now() + Duration::from_secs(20);
    while !get(&format!("{gw}/metrics"))
        .await
        .1
        .contains("job=\"faro\"")
    {
        assert!(Instant::now() < deadline, "no push within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // …then the Pushgateway is gone.
    drop(gateway);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopping = Instant::now();
    let (code, _) = faro.stop().await;
    assert_eq!(code, 0);
    assert!(
        stopping.elapsed() < Duration::from_secs(12),
        "exit bounded by the push timeout: {:?}",
        stopping.elapsed()
    );
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr.contains("push to") && stderr.contains("failed"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_and_queries_the_metrics() {
    let dir = TempDir::new();
    let Some(prometheus) = program("prometheus", "prometheus") else {
        return;
    };
    let sim = sim().await;
    namespace(&sim, "scraped");
    for i in 0..12 {
        sim.create(configmap("scraped", &format!("c{i}"))).unwrap();
    }
    let config = dir.file(
        "faro.yaml",
        "resources: [{gvr: v1/configmaps, namespace_names: [scraped]}]\n",
    );
    let mut faro = spawn_run_with(&sim, &config, &dir, &[]);
    let url = metrics_url(&mut faro).await;
    faro.line("FARO_READY:").await;
    let target = url
        .strip_prefix("http://")
        .unwrap()
        .strip_suffix("/metrics")
        .unwrap();
    let scrape = dir.file(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: faro\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    );
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let _server = daemon(
        &prometheus,
        &[
            format!("--config.file={}", scrape.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        &format!("{api}/-/ready"),
        &dir.path().join("prometheus.log"),
    )
    .await;
    let query = |q: &str| format!("{api}/api/v1/query?query={q}");
    let deadline = Instant::now() + Duration::from_secs(40);
    let added = loop {
        let (_, body) = get(&query(
            "sum(faro_watch_events_total%7Btype%3D%22ADDED%22%7D)",
        ))
        .await;
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if let Some(value) = v["data"]["result"][0]["value"][1].as_str() {
            break value.parse::<f64>().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has no faro_watch_events_total within 40 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let (_, own) = get(&url).await;
    assert_eq!(
        added,
        sum(&own, "faro_watch_events_total", &["type=\"ADDED\""]),
        "the figure Faro serves"
    );
    assert_eq!(added, 13.0, "the 12 and the namespace's kube-root-ca.crt");
    // Histograms are parsed too: a quantile over the latency buckets.
    let (_, body) = get(&query(
        "histogram_quantile(0.99%2C%20sum%20by%20(le)(faro_event_latency_seconds_bucket))",
    ))
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{body}");
    let p99: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .parse()
        .unwrap();
    assert!(p99 > 0.0 && p99 <= 10.0, "{body}");
    let (_, body) = get(&query("up%7Bjob%3D%22faro%22%7D")).await;
    assert!(body.contains("\"1\""), "{body}");
    let (code, _) = faro.stop().await;
    assert_eq!(code, 0);
}
