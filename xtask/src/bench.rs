//! `cargo xtask bench`: the criterion benchmarks and the end-to-end
//! comparison with the tools users would pick instead, collected into
//! `target/faro-bench/` (`report.json`, `report.md`, `chart.svg`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use xshell::{Shell, cmd};

/// What `cargo xtask bench` was asked for.
pub struct Options<'a> {
    pub filter: Option<&'a str>,
    pub measurement_time: u64,
    /// 10,000 objects, one repetition, no criterion.
    pub quick: bool,
    /// Leave out the end-to-end comparison.
    pub no_tools: bool,
    /// A former `report.json` to print the differences against.
    pub compare: Option<&'a Path>,
}

pub fn run(o: &Options<'_>) -> Result<()> {
    let sh = Shell::new()?;
    let root = workspace_root();
    sh.change_dir(&root);
    let criterion = if o.quick {
        Vec::new()
    } else {
        criterion(&sh, &root, o.filter, o.measurement_time)?
    };
    let workloads = if o.no_tools || o.filter.is_some() {
        Vec::new()
    } else {
        cmd!(
            sh,
            "cargo build --release -p faro-cli -p faro-benches --bins"
        )
        .run()?;
        let bin = root.join("target/release");
        let (list, repetitions) = if o.quick {
            (
                vec![crate::compare::Workload {
                    configmaps: 10_000,
                    pods: 0,
                    updates: 2_000,
                    rate: 1_000,
                    rate_seconds: 5,
                }],
                1,
            )
        } else {
            (
                vec![
                    crate::compare::Workload {
                        configmaps: 10_000,
                        pods: 0,
                        updates: 20_000,
                        rate: 1_000,
                        rate_seconds: 20,
                    },
                    crate::compare::Workload {
                        configmaps: 100_000,
                        pods: 0,
                        updates: 20_000,
                        rate: 1_000,
                        rate_seconds: 20,
                    },
                    crate::compare::Workload {
                        configmaps: 0,
                        pods: 20_000,
                        updates: 0,
                        rate: 0,
                        rate_seconds: 0,
                    },
                ],
                3,
            )
        };
        crate::compare::run(&bin, &list, repetitions)?
    };
    // Written by the watch_memory and logs_memory benches when criterion ran them.
    let memory_files = if o.quick {
        Vec::new()
    } else {
        vec![
            root.join("target/bench-memory.json"),
            root.join("target/bench-memory-logs.json"),
        ]
    };
    let memory: Vec<Value> = memory_files
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .filter_map(|text| serde_json::from_str(&text).ok())
        .collect();
    let commit = cmd!(sh, "git rev-parse --short HEAD")
        .quiet()
        .read()
        .unwrap_or_else(|_| "unknown".to_owned());
    let report = json!({
        "date": jiff_free_date(),
        "commit": commit,
        "machine": machine(),
        "quick": o.quick,
        "workloads": workloads,
        "criterion": criterion,
        "memory": memory,
    });
    let dir = root.join("target/faro-bench");
    std::fs::create_dir_all(&dir)?;
    let write = |name: &str, text: String| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write("report.json", serde_json::to_string_pretty(&report)?)?;
    write("report.md", crate::report::markdown(&report))?;
    write("chart.svg", crate::report::svg(&report))?;
    println!(
        "bench report: {}/report.md (and report.json, chart.svg)",
        dir.display()
    );
    print_criterion(&report);
    if let Some(old) = o.compare {
        let old: Value = serde_json::from_str(
            &std::fs::read_to_string(old)
                .with_context(|| format!("--compare {}", old.display()))?,
        )
        .with_context(|| format!("--compare {}: not a bench report", old.display()))?;
        println!(
            "changes since {}:",
            o.compare
                .map(Path::display)
                .map(|d| d.to_string())
                .unwrap_or_default()
        );
        for line in crate::report::differences(&old, &report) {
            println!("  {line}");
        }
    }
    Ok(())
}

/// Today's date (UTC) from the system clock, as YYYY-MM-DD.
fn jiff_free_date() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Cores, CPU model and memory of this machine.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim())
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "memory_gib": memory_kb / 1_048_576.0,
    })
}

/// Runs criterion and returns its estimates.
fn criterion(
    sh: &Shell,
    root: &Path,
    filter: Option<&str>,
    measurement_time: u64,
) -> Result<Vec<Value>> {
    let time = measurement_time.to_string();
    let filter = filter.unwrap_or("");
    let memory_files = [
        root.join("target/bench-memory.json"),
        root.join("target/bench-memory-logs.json"),
    ];
    for file in &memory_files {
        let _ = std::fs::remove_file(file);
    }
    cmd!(
        sh,
        "cargo bench -p faro-benches -- --warm-up-time 1 --measurement-time {time} {filter}"
    )
    .run()?;

    let criterion = root.join("target/criterion");
    let mut results = Vec::new();
    collect(&criterion, &mut results)?;
    results.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(results)
}

/// The criterion figures and the memory benches, one line each.
fn print_criterion(report: &Value) {
    for r in report["criterion"].as_array().into_iter().flatten() {
        println!(
            "  {:<40} {:>14.1} ns/iter{}",
            r["name"].as_str().unwrap_or("?"),
            r["mean_ns"].as_f64().unwrap_or(f64::NAN),
            r["elements_per_sec"]
                .as_f64()
                .map(|e| format!("  {:>14.0} elements/s", e))
                .unwrap_or_default()
        );
    }
    for m in report["memory"].as_array().into_iter().flatten() {
        if let Some(per_stream) = m["heap_bytes_per_stream"].as_f64() {
            println!(
                "  {:<40} {:>14.0} heap bytes/stream    {:>14.0} resident bytes/stream (with the server)",
                m["name"].as_str().unwrap_or("?"),
                per_stream,
                m["resident_bytes_per_stream_with_server"]
                    .as_f64()
                    .unwrap_or(f64::NAN),
            );
            continue;
        }
        println!(
            "  {:<40} {:>14.0} heap bytes/object  {:>14.0} resident bytes/object",
            m["name"].as_str().unwrap_or("?"),
            m["heap_bytes_per_object"].as_f64().unwrap_or(f64::NAN),
            m["resident_bytes_per_object"].as_f64().unwrap_or(f64::NAN),
        );
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Every `<bench>/new/estimates.json` below `dir`, with its throughput.
fn collect(dir: &Path, out: &mut Vec<Value>) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n == "new") {
            let estimates = path.join("estimates.json");
            let benchmark = path.join("benchmark.json");
            if !estimates.exists() || !benchmark.exists() {
                continue;
            }
            let estimates: Value = serde_json::from_str(&std::fs::read_to_string(&estimates)?)?;
            let benchmark: Value = serde_json::from_str(&std::fs::read_to_string(&benchmark)?)?;
            let mean_ns = estimates["mean"]["point_estimate"]
                .as_f64()
                .unwrap_or(f64::NAN);
            let elements = benchmark["throughput"]["Elements"].as_f64();
            out.push(json!({
                "name": benchmark["full_id"],
                "mean_ns": mean_ns,
                "elements_per_iter": elements,
                "elements_per_sec": elements.map(|e| e * 1e9 / mean_ns),
            }));
        } else if path.is_dir() {
            collect(&path, out)?;
        }
    }
    Ok(())
}
