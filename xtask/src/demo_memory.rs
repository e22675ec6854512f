//! `cargo xtask demo-memory`: runs the release `faro demo` and checks that
//! its resident memory reaches a plateau — RSS after 120 s within 1.3 × RSS
//! after 40 s, and under 200 MB — reading the figures the demo prints
//! every second. Writes them to `target/demo-memory.json`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde_json::{Value, json};

const EARLY: u64 = 40;
const GROWTH: f64 = 1.3;
const CEILING: u64 = 200_000_000;

pub fn run(seconds: u64) -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workspace root")?
        .to_path_buf();
    let faro = root.join("target/release/faro");
    if !faro.exists() {
        bail!(
            "{} is missing; build it first with `cargo build --release -p faro-cli`",
            faro.display()
        );
    }
    let out_dir = root.join("target/demo-memory");
    let mut child = Command::new(&faro)
        .args([
            "demo",
            "--duration",
            &seconds.to_string(),
            "--no-metrics",
            "--output-dir",
        ])
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", faro.display()))?;
    let stdout = child.stdout.take().context("the demo's stdout")?;
    let mut samples: Vec<(u64, u64, Value)> = Vec::new();
    let mut summary = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        match serde_json::from_str::<Value>(&line) {
            Ok(v) if v["residentBytes"].is_u64() => {
                let at = v["seconds"].as_u64().unwrap_or(0);
                let rss = v["residentBytes"].as_u64().unwrap_or(0);
                samples.push((at, rss, v["cluster"].clone()));
            }
            _ => summary = line,
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("faro demo exited with {status}");
    }
    let at = |s: u64| samples.iter().rev().find(|(t, _, _)| *t <= s).cloned();
    let (Some(early), Some(late)) = (at(EARLY), samples.last().cloned()) else {
        bail!("the demo printed too few samples ({})", samples.len());
    };
    let peak = samples.iter().map(|(_, r, _)| *r).max().unwrap_or(0);
    let ratio = late.1 as f64 / early.1.max(1) as f64;
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "faro demo memory: {:.1} MB at {} s, {:.1} MB at {} s (× {ratio:.2}, bound × {GROWTH}), peak {:.1} MB (bound {:.0} MB)",
        mb(early.1),
        early.0,
        mb(late.1),
        late.0,
        mb(peak),
        mb(CEILING)
    );
    println!("cluster at the end: {}", late.2);
    println!("{summary}");
    let report = json!({
        "early": { "seconds": early.0, "residentBytes": early.1, "cluster": early.2 },
        "late": { "seconds": late.0, "residentBytes": late.1, "cluster": late.2 },
        "peakResidentBytes": peak,
        "ratio": ratio,
        "samples": samples.iter().map(|(t, r, _)| json!([t, r])).collect::<Vec<_>>(),
    });
    std::fs::write(
        root.join("target/demo-memory.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    if ratio > GROWTH {
        bail!(
            "resident memory grew × {ratio:.2} from {EARLY} s to the end; the bound is × {GROWTH}"
        );
    }
    if peak >= CEILING {
        bail!(
            "resident memory peaked at {:.1} MB; the bound is {:.0} MB",
            mb(peak),
            mb(CEILING)
        );
    }
    Ok(())
}
