//! The end-to-end comparison of `cargo xtask bench --compare-tools`: Faro
//! and the programs users would run instead, each a separate process
//! against one `bench-sim` process holding the same objects, one after
//! another, measured from outside (`/proc`).
//!
//! Contenders: `faro run` (the JSON lines file), `faro watch -o json` (to a
//! file), `kube-watcher` (a bare kube-runtime watcher that only counts) and
//! `kubectl get -w`. Phases: the initial sync, then updates from 8 writers
//! at the server's pace.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// One workload: how many ConfigMaps, and how many updates follow.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub configmaps: usize,
    /// With pods, the ~6 KB Pods are what is watched (sync figures only:
    /// the updates and the fixed rate apply to ConfigMaps).
    pub pods: usize,
    pub updates: usize,
    /// Then updates at this fixed rate (per second) for `rate_seconds`,
    /// for the observe→sink latency of `faro run`.
    pub rate: usize,
    pub rate_seconds: usize,
}

/// The programs compared, in the order they run.
pub const CONTENDERS: [&str; 4] = ["faro run", "faro watch", "kube-watcher", "kubectl"];

/// Figures of one run of one contender.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub sync_seconds: f64,
    pub sync_events_per_second: f64,
    pub sync_cpu_per_1000: f64,
    pub rss_after_sync_mb: f64,
    pub peak_rss_mb: f64,
    pub resident_bytes_per_object: f64,
    pub update_cpu_per_1000: f64,
    pub drain_lag_seconds: f64,
    /// `faro run` only: observe→sink latency at the fixed rate, p50 and p99.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
}

impl Workload {
    /// (plural, GVR, kube-watcher's resource) of what is watched.
    fn resource(&self) -> (&'static str, &'static str, &'static str) {
        if self.pods > 0 {
            ("pods", "v1/pods", "v1/pods/Pod")
        } else {
            ("configmaps", "v1/configmaps", "v1/configmaps/ConfigMap")
        }
    }

    fn name(&self) -> String {
        if self.pods > 0 {
            format!("{} Pods (~6 KB, two containers)", self.pods)
        } else {
            format!(
                "{} ConfigMaps (~1 KB), then {} updates from 8 writers, then {}/s for {} s",
                self.configmaps, self.updates, self.rate, self.rate_seconds
            )
        }
    }
}

impl Figures {
    pub fn to_json(&self) -> Value {
        json!({
            "sync_seconds": self.sync_seconds,
            "sync_events_per_second": self.sync_events_per_second,
            "sync_cpu_seconds_per_1000_events": self.sync_cpu_per_1000,
            "rss_after_sync_mb": self.rss_after_sync_mb,
            "peak_rss_mb": self.peak_rss_mb,
            "resident_bytes_per_object": self.resident_bytes_per_object,
            "update_cpu_seconds_per_1000_events": self.update_cpu_per_1000,
            "drain_lag_seconds": self.drain_lag_seconds,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
        })
    }
}

/// The bench-sim process: seeded, then driven through its stdin.
struct BenchSim {
    child: Child,
    stdin: ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    kubeconfig: PathBuf,
    objects: u64,
}

impl BenchSim {
    fn start(bin: &Path, w: Workload) -> Result<Self> {
        let mut child = Command::new(bin.join("bench-sim"))
            .args(["--configmaps", &w.configmaps.to_string(), "--bytes", "1024"])
            .args(["--pods", &w.pods.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting bench-sim")?;
        let stdin = child.stdin.take().context("bench-sim stdin")?;
        let lines = lines_of(child.stdout.take().context("bench-sim stdout")?);
        let mut sim = BenchSim {
            child,
            stdin,
            lines,
            kubeconfig: PathBuf::new(),
            objects: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        while sim.kubeconfig.as_os_str().is_empty() || sim.objects == 0 {
            let line = sim.next_line(deadline)?;
            if let Some(path) = line.strip_prefix("BENCH_SIM_KUBECONFIG: ") {
                sim.kubeconfig = PathBuf::from(path);
            } else if let Some(n) = line.strip_prefix("BENCH_SIM_OBJECTS: ") {
                sim.objects = n.trim().parse()?;
            }
        }
        Ok(sim)
    }

    fn next_line(&self, deadline: Instant) -> Result<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.lines
            .recv_timeout(left)
            .context("bench-sim did not answer in time")
    }

    /// Runs `updates N 8` and waits for it.
    fn updates(&mut self, n: usize) -> Result<()> {
        writeln!(self.stdin, "updates {n} 8")?;
        self.stdin.flush()?;
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if self.next_line(deadline)?.starts_with("UPDATES_DONE") {
                return Ok(());
            }
        }
    }
}

impl BenchSim {
    /// Starts `rate R SECONDS`; `RATE_DONE` comes on its lines.
    fn start_rate(&mut self, per_second: usize, seconds: usize) -> Result<()> {
        writeln!(self.stdin, "rate {per_second} {seconds}")?;
        self.stdin.flush()?;
        Ok(())
    }
}

impl Drop for BenchSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reader thread handing over stdout lines.
fn lines_of(out: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// CPU seconds (user + system) of a process, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime (fields 14 and 15), in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) / 100.0
}

/// (resident, peak resident) in bytes, from `/proc/<pid>/status`.
fn resident(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            * 1024.0
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// Counts newline-terminated lines appended to a file.
struct FileLines {
    path: PathBuf,
    offset: u64,
    lines: u64,
}

impl FileLines {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            offset: 0,
            lines: 0,
        }
    }

    fn count(&mut self) -> u64 {
        use std::io::Seek;
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return self.lines;
        };
        if f.seek(std::io::SeekFrom::Start(self.offset)).is_err() {
            return self.lines;
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_ok() {
            // Only whole lines count; a partial one is read again next time.
            if let Some(last) = buf.iter().rposition(|b| *b == b'\n') {
                self.lines += buf[..=last].iter().filter(|b| **b == b'\n').count() as u64;
                self.offset += last as u64 + 1;
            }
        }
        self.lines
    }
}

/// How a contender tells how many events it has put out so far.
enum Progress {
    File(FileLines),
    Counter(Arc<AtomicU64>),
}

impl Progress {
    fn seen(&mut self) -> u64 {
        match self {
            Progress::File(f) => f.count(),
            Progress::Counter(c) => c.load(Ordering::SeqCst),
        }
    }
}

/// One contender running.
struct Running {
    child: Child,
    progress: Progress,
}

impl Running {
    /// The file the contender writes its events to, when it is one.
    fn file(&self) -> Option<PathBuf> {
        match &self.progress {
            Progress::File(f) => Some(f.path.clone()),
            Progress::Counter(_) => None,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(name: &str, bin: &Path, sim: &BenchSim, w: Workload, dir: &Path) -> Result<Running> {
    let kubeconfig = sim.kubeconfig.to_str().context("kubeconfig path")?;
    let (plural, gvr, resource) = w.resource();
    let faro = bin.join("faro");
    match name {
        "faro run" => {
            let config = dir.join("faro.yaml");
            std::fs::write(&config, format!("resources: [{{gvr: {gvr}}}]\n"))?;
            let out = dir.join("out");
            let mut child = Command::new(&faro)
                .args(["run", "--config"])
                .arg(&config)
                .args(["--kubeconfig", kubeconfig, "--no-metrics", "--output-dir"])
                .arg(&out)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let lines = lines_of(child.stdout.take().context("stdout")?);
            let deadline = Instant::now() + Duration::from_secs(60);
            let path = loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let line = lines
                    .recv_timeout(left)
                    .context("faro run: no FARO_JSON_FILE line")?;
                if let Some(p) = line.strip_prefix("FARO_JSON_FILE: ") {
                    break PathBuf::from(p);
                }
            };
            // Keep reading its stdout, as a terminal would.
            std::thread::spawn(move || for _ in lines {});
            Ok(Running {
                child,
                progress: Progress::File(FileLines::new(path)),
            })
        }
        "faro watch" => {
            let path = dir.join("watch.json");
            let child = Command::new(&faro)
                .args(["watch", gvr, "-A", "-o", "json", "--kubeconfig", kubeconfig])
                .args(["--no-metrics"])
                .stdout(std::fs::File::create(&path)?)
                .stderr(Stdio::null())
                .spawn()?;
            Ok(Running {
                child,
                progress: Progress::File(FileLines::new(path)),
            })
        }
        "kube-watcher" => {
            let mut child = Command::new(bin.join("kube-watcher"))
                .args(["--kubeconfig", kubeconfig, "--every", "100"])
                .args(["--resource", resource])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let seen = Arc::new(AtomicU64::new(0));
            let lines = lines_of(child.stdout.take().context("stdout")?);
            let counter = seen.clone();
            std::thread::spawn(move || {
                let mut listed = 0;
                for line in lines {
                    if let Some(n) = line.strip_prefix("SYNCED ") {
                        listed = n.trim().parse().unwrap_or(0);
                        counter.store(listed, Ordering::SeqCst);
                    } else if let Some(n) = line.strip_prefix("EVENTS ") {
                        let n: u64 = n.trim().parse().unwrap_or(0);
                        counter.store(listed + n, Ordering::SeqCst);
                    }
                }
            });
            Ok(Running {
                child,
                progress: Progress::Counter(seen),
            })
        }
        "kubectl" => {
            let mut child = Command::new("kubectl")
                .args([
                    "get",
                    plural,
                    "-A",
                    "-w",
                    "-o",
                    "json",
                    "--output-watch-events",
                ])
                .args(["--kubeconfig", kubeconfig])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .context("kubectl (is it on the PATH?)")?;
            let out = child.stdout.take().context("stdout")?;
            let seen = Arc::new(AtomicU64::new(0));
            let counter = seen.clone();
            // kubectl prints the initial list as Lists (one per page of 500),
            // wrapped as events or bare: objects count, not values.
            std::thread::spawn(move || {
                let values =
                    serde_json::Deserializer::from_reader(BufReader::new(out)).into_iter::<Value>();
                for v in values {
                    let Ok(v) = v else { break };
                    let items = v["items"].as_array().or(v["object"]["items"].as_array());
                    let n = items.map_or(1, |items| items.len() as u64);
                    counter.fetch_add(n, Ordering::SeqCst);
                }
            });
            Ok(Running {
                child,
                progress: Progress::Counter(seen),
            })
        }
        other => bail!("no contender {other:?}"),
    }
}

/// Waits until `running` has put out `target` events; the moment it did.
fn wait_for(running: &mut Running, target: u64, limit: Duration) -> Result<Instant> {
    let deadline = Instant::now() + limit;
    loop {
        if running.progress.seen() >= target {
            return Ok(Instant::now());
        }
        if let Ok(Some(status)) = running.child.try_wait() {
            bail!(
                "ended ({status}) after {} of {target} events",
                running.progress.seen()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {target} events after {limit:?}",
                running.progress.seen()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One run of `name`: the initial sync, then `w.updates` updates.
fn measure(name: &str, bin: &Path, sim: &mut BenchSim, w: Workload) -> Result<Figures> {
    let dir = std::env::temp_dir().join(format!(
        "faro-bench-{}-{}",
        std::process::id(),
        name.replace(' ', "-")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    let mut running = start(name, bin, sim, w, &dir)?;
    let pid = running.child.id();
    let objects = sim.objects;
    let synced = wait_for(&mut running, objects, Duration::from_secs(300))?;
    let sync_seconds = synced.duration_since(started).as_secs_f64();
    let sync_cpu = cpu_seconds(pid);
    let (rss, _) = resident(pid);
    let mut f = Figures {
        sync_seconds,
        sync_events_per_second: objects as f64 / sync_seconds,
        sync_cpu_per_1000: sync_cpu * 1000.0 / objects as f64,
        rss_after_sync_mb: rss / 1_048_576.0,
        resident_bytes_per_object: rss / objects as f64,
        // Measured for `faro run` only; the others show none.
        latency_p50_ms: f64::NAN,
        latency_p99_ms: f64::NAN,
        // Measured only where the workload has an update phase.
        update_cpu_per_1000: f64::NAN,
        drain_lag_seconds: f64::NAN,
        ..Figures::default()
    };
    if w.updates > 0 {
        sim.updates(w.updates)?;
        let written = Instant::now();
        let drained = wait_for(
            &mut running,
            objects + w.updates as u64,
            Duration::from_secs(300),
        )?;
        f.drain_lag_seconds = drained.duration_since(written).as_secs_f64();
        f.update_cpu_per_1000 = (cpu_seconds(pid) - sync_cpu) * 1000.0 / w.updates as f64;
    }
    if name == "faro run" && w.rate > 0 {
        let file = running.file().context("faro run writes a file")?;
        let (p50, p99) = latency(sim, &file, w)?;
        f.latency_p50_ms = p50;
        f.latency_p99_ms = p99;
    }
    f.peak_rss_mb = resident(pid).1 / 1_048_576.0;
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(f)
}

/// Updates at a fixed rate while the events file is tailed: for each
/// UPDATED line, the time it is seen in the file minus the time Faro read
/// the event off the watch (its `timestamp`). Returns (p50, p99) in ms.
fn latency(sim: &mut BenchSim, file: &Path, w: Workload) -> Result<(f64, f64)> {
    use std::io::Seek;
    let mut f = std::fs::File::open(file)?;
    let mut offset = f.seek(std::io::SeekFrom::End(0))?;
    let expected = w.rate * w.rate_seconds;
    sim.start_rate(w.rate, w.rate_seconds)?;
    let deadline = Instant::now() + Duration::from_secs(w.rate_seconds as u64 + 60);
    let mut latencies: Vec<f64> = Vec::with_capacity(expected);
    let mut partial = Vec::new();
    while latencies.len() < expected {
        if Instant::now() > deadline {
            bail!(
                "{} of {expected} updates seen at the fixed rate",
                latencies.len()
            );
        }
        f.seek(std::io::SeekFrom::Start(offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        if buf.is_empty() {
            std::thread::sleep(Duration::from_micros(500));
            continue;
        }
        let seen = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64();
        offset += buf.len() as u64;
        partial.extend_from_slice(&buf);
        let Some(last) = partial.iter().rposition(|b| *b == b'\n') else {
            continue;
        };
        let whole: Vec<u8> = partial.drain(..=last).collect();
        for line in whole.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_slice(line)?;
            if v["eventType"] != "UPDATED" {
                continue;
            }
            let observed = v["timestamp"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .context("an event line without a timestamp")?;
            let observed = observed.as_nanosecond() as f64 / 1e9;
            latencies.push((seen - observed) * 1000.0);
        }
    }
    // The writer's answer, so that the next command starts clean.
    let done = Instant::now() + Duration::from_secs(30);
    while !sim.next_line(done)?.starts_with("RATE_DONE") {}
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    Ok((at(0.5), at(0.99)))
}

/// The median of each figure over the runs, and the spread (max − min) of
/// the events per second.
fn median(runs: &[Figures]) -> (Figures, f64) {
    let pick = |get: &dyn Fn(&Figures) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(get).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let eps: Vec<f64> = runs.iter().map(|r| r.sync_events_per_second).collect();
    let spread =
        eps.iter().copied().fold(f64::MIN, f64::max) - eps.iter().copied().fold(f64::MAX, f64::min);
    (
        Figures {
            sync_seconds: pick(&|r| r.sync_seconds),
            sync_events_per_second: pick(&|r| r.sync_events_per_second),
            sync_cpu_per_1000: pick(&|r| r.sync_cpu_per_1000),
            rss_after_sync_mb: pick(&|r| r.rss_after_sync_mb),
            peak_rss_mb: pick(&|r| r.peak_rss_mb),
            resident_bytes_per_object: pick(&|r| r.resident_bytes_per_object),
            update_cpu_per_1000: pick(&|r| r.update_cpu_per_1000),
            drain_lag_seconds: pick(&|r| r.drain_lag_seconds),
            latency_p50_ms: pick(&|r| r.latency_p50_ms),
            latency_p99_ms: pick(&|r| r.latency_p99_ms),
        },
        spread,
    )
}

/// Runs every contender `repetitions` times on each workload; returns the
/// report's `workloads` entries.
pub fn run(bin: &Path, workloads: &[Workload], repetitions: usize) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for w in workloads {
        eprintln!("bench: starting bench-sim: {}", w.name());
        let mut sim = BenchSim::start(bin, *w)?;
        let mut contenders = Vec::new();
        for name in CONTENDERS {
            let mut runs = Vec::new();
            let mut error = None;
            for rep in 0..repetitions {
                eprintln!("bench: {name}, run {} of {repetitions}", rep + 1);
                match measure(name, bin, &mut sim, *w) {
                    Ok(f) => runs.push(f),
                    Err(e) => {
                        eprintln!("bench: {name}: {e:#}");
                        error = Some(format!("{e:#}"));
                        break;
                    }
                }
            }
            let entry = if runs.is_empty() {
                json!({"name": name, "error": error})
            } else {
                let (m, spread) = median(&runs);
                json!({
                    "name": name,
                    "runs": runs.len(),
                    "median": m.to_json(),
                    "events_per_second_spread": spread,
                    "all": runs.iter().map(Figures::to_json).collect::<Vec<_>>(),
                })
            };
            contenders.push(entry);
        }
        out.push(json!({
            "name": w.name(),
            "objects": sim.objects,
            "updates": w.updates,
            "contenders": contenders,
        }));
    }
    Ok(out)
}
