//! `cargo xtask bench`: run criterion, collect its estimates into one JSON report.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use xshell::{Shell, cmd};

pub fn run(filter: Option<&str>, measurement_time: u64) -> Result<()> {
    let sh = Shell::new()?;
    let root = workspace_root();
    sh.change_dir(&root);
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
    // Written by the watch_memory and logs_memory benches when they ran
    // (their names matched the filter).
    let memory: Vec<Value> = memory_files
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .filter_map(|text| serde_json::from_str(&text).ok())
        .collect();
    let report = json!({
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
        "benchmarks": results,
        "memory": memory,
    });
    let out = root.join("target/bench-report.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("bench report: {}", out.display());
    for r in report["benchmarks"].as_array().into_iter().flatten() {
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
    Ok(())
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
