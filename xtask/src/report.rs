//! The bench report: `report.json` (for comparing runs), `report.md` (a
//! table per workload, each figure beside the ratio Faro / contender and its
//! target) and `chart.svg` (events/s and resident memory per contender).

use std::fmt::Write as _;

use serde_json::Value;

/// The figures shown, in order: key, label, whether lower is better.
const ROWS: [(&str, &str, bool); 10] = [
    ("sync_seconds", "initial sync, s", true),
    ("sync_events_per_second", "events/s (sync)", false),
    (
        "sync_cpu_seconds_per_1000_events",
        "CPU s / 1,000 events (sync)",
        true,
    ),
    ("rss_after_sync_mb", "RSS after sync, MB", true),
    ("peak_rss_mb", "peak RSS, MB", true),
    ("resident_bytes_per_object", "resident bytes / object", true),
    (
        "update_cpu_seconds_per_1000_events",
        "CPU s / 1,000 events (updates)",
        true,
    ),
    (
        "drain_lag_seconds",
        "drain lag after the last write, s",
        true,
    ),
    (
        "latency_p50_ms",
        "observe→sink p50 at the fixed rate, ms",
        true,
    ),
    (
        "latency_p99_ms",
        "observe→sink p99 at the fixed rate, ms (target < 5)",
        true,
    ),
];

/// A target on the ratio `faro run` / contender for one figure.
struct Target {
    contender: &'static str,
    figure: &'static str,
    /// `ratio >= bound` when true, `ratio <= bound` when false.
    at_least: bool,
    bound: f64,
}

const TARGETS: [Target; 4] = [
    Target {
        contender: "kube-watcher",
        figure: "sync_events_per_second",
        at_least: true,
        bound: 1.0,
    },
    Target {
        contender: "kube-watcher",
        figure: "sync_cpu_seconds_per_1000_events",
        at_least: false,
        bound: 1.0,
    },
    Target {
        contender: "kubectl",
        figure: "sync_events_per_second",
        at_least: true,
        bound: 10.0,
    },
    Target {
        contender: "kubectl",
        figure: "sync_cpu_seconds_per_1000_events",
        at_least: false,
        bound: 0.2,
    },
];

fn figure(contender: &Value, key: &str) -> Option<f64> {
    contender["median"][key].as_f64().filter(|v| v.is_finite())
}

fn show(v: Option<f64>) -> String {
    match v {
        None => "—".to_owned(),
        Some(v) if v >= 1000.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// The Markdown report.
pub fn markdown(report: &Value) -> String {
    let mut md = String::from("# Faro benchmark report\n\n");
    let m = &report["machine"];
    let _ = writeln!(
        md,
        "{} · commit `{}` · {} cores ({}) · {:.1} GiB memory\n",
        report["date"].as_str().unwrap_or("?"),
        report["commit"].as_str().unwrap_or("?"),
        m["cores"],
        m["cpu"].as_str().unwrap_or("?"),
        m["memory_gib"].as_f64().unwrap_or(0.0),
    );
    md.push_str(
        "Each contender is a separate process against one `bench-sim` process (faro-sim, seeded), run one after another; figures are medians over the runs, read from `/proc`. Ratios are `faro run` / contender.\n",
    );
    for w in report["workloads"].as_array().into_iter().flatten() {
        let _ = writeln!(md, "\n## {}\n", w["name"].as_str().unwrap_or("?"));
        let contenders: Vec<&Value> = w["contenders"].as_array().into_iter().flatten().collect();
        let faro = contenders.iter().find(|c| c["name"] == "faro run");
        md.push_str("| figure |");
        for c in &contenders {
            let _ = write!(md, " {} |", c["name"].as_str().unwrap_or("?"));
        }
        md.push_str(" faro run / kube-watcher | faro run / kubectl |\n|---|");
        md.push_str(&"---:|".repeat(contenders.len() + 2));
        md.push('\n');
        for (key, label, _) in ROWS {
            let _ = write!(md, "| {label} |");
            for c in &contenders {
                let _ = write!(md, " {} |", show(figure(c, key)));
            }
            for other in ["kube-watcher", "kubectl"] {
                let ratio = faro.and_then(|f| {
                    let o = contenders.iter().find(|c| c["name"] == other)?;
                    Some(figure(f, key)? / figure(o, key)?)
                });
                let target = TARGETS
                    .iter()
                    .find(|t| t.contender == other && t.figure == key);
                let cell = match (ratio, target) {
                    (Some(r), Some(t)) => {
                        let ok = if t.at_least {
                            r >= t.bound
                        } else {
                            r <= t.bound
                        };
                        format!(
                            "{r:.2} (target {}{}) {}",
                            if t.at_least { "≥ " } else { "≤ " },
                            t.bound,
                            if ok { "✓" } else { "✗" }
                        )
                    }
                    (Some(r), None) => format!("{r:.2}"),
                    (None, _) => "—".to_owned(),
                };
                let _ = write!(md, " {cell} |");
            }
            md.push('\n');
        }
        for c in &contenders {
            if let Some(e) = c["error"].as_str() {
                let _ = writeln!(md, "\n`{}` failed: {e}", c["name"].as_str().unwrap_or("?"));
            }
        }
        let spreads: Vec<String> = contenders
            .iter()
            .filter_map(|c| {
                Some(format!(
                    "{} ±{:.0}",
                    c["name"].as_str()?,
                    c["events_per_second_spread"].as_f64()? / 2.0
                ))
            })
            .collect();
        let _ = writeln!(
            md,
            "\nSpread of events/s over {} run(s): {}.",
            contenders
                .first()
                .and_then(|c| c["runs"].as_u64())
                .unwrap_or(0),
            spreads.join(", ")
        );
    }
    if let Some(benches) = report["criterion"].as_array().filter(|b| !b.is_empty()) {
        md.push_str("\n## Micro-benchmarks (criterion)\n\n| benchmark | mean | throughput |\n|---|---:|---:|\n");
        for b in benches {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} |",
                b["name"].as_str().unwrap_or("?"),
                nanos(b["mean_ns"].as_f64().unwrap_or(f64::NAN)),
                b["elements_per_sec"]
                    .as_f64()
                    .map(|e| format!("{e:.0} elements/s"))
                    .unwrap_or_default()
            );
        }
    }
    md
}

fn nanos(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// Two bar charts side by side per workload: events/s of the initial sync
/// and RSS after it, one bar per contender.
pub fn svg(report: &Value) -> String {
    let workloads: Vec<&Value> = report["workloads"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let (chart_w, chart_h, pad) = (360.0, 220.0, 40.0);
    let width = 2.0 * chart_w + 3.0 * pad;
    let height = workloads.len() as f64 * (chart_h + 2.0 * pad) + pad;
    let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (row, w) in workloads.iter().enumerate() {
        let top = pad + row as f64 * (chart_h + 2.0 * pad);
        let contenders: Vec<&Value> = w["contenders"].as_array().into_iter().flatten().collect();
        for (col, (key, title)) in [
            ("sync_events_per_second", "events/s, initial sync"),
            ("rss_after_sync_mb", "RSS after sync, MB"),
        ]
        .into_iter()
        .enumerate()
        {
            let left = pad + col as f64 * (chart_w + pad);
            let _ = writeln!(
                s,
                "<text x=\"{left}\" y=\"{}\" font-weight=\"bold\">{} — {title}</text>",
                top - 8.0,
                escape(w["name"].as_str().unwrap_or(""))
            );
            let max = contenders
                .iter()
                .filter_map(|c| figure(c, key))
                .fold(0.0_f64, f64::max)
                .max(f64::MIN_POSITIVE);
            let bar_w = chart_w / contenders.len().max(1) as f64;
            for (i, c) in contenders.iter().enumerate() {
                let v = figure(c, key).unwrap_or(0.0);
                let h = (v / max) * (chart_h - 30.0);
                let x = left + i as f64 * bar_w + 6.0;
                let y = top + chart_h - 20.0 - h;
                let _ = writeln!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"/>",
                    bar_w - 12.0,
                    colours[i % colours.len()]
                );
                let _ = writeln!(
                    s,
                    "<text x=\"{x:.1}\" y=\"{:.1}\">{}</text>",
                    y - 3.0,
                    show(figure(c, key))
                );
                let _ = writeln!(
                    s,
                    "<text x=\"{x:.1}\" y=\"{:.1}\">{}</text>",
                    top + chart_h - 6.0,
                    escape(c["name"].as_str().unwrap_or(""))
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The differences between two reports' figures, one line each.
pub fn differences(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for w in new["workloads"].as_array().into_iter().flatten() {
        let Some(ow) = old["workloads"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["name"] == w["name"])
        else {
            continue;
        };
        for c in w["contenders"].as_array().into_iter().flatten() {
            let Some(oc) = ow["contenders"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["name"] == c["name"])
            else {
                continue;
            };
            for (key, label, lower_better) in ROWS {
                let (Some(a), Some(b)) = (figure(oc, key), figure(c, key)) else {
                    continue;
                };
                let change = if a == 0.0 { 0.0 } else { (b - a) / a * 100.0 };
                let better = if lower_better {
                    change < 0.0
                } else {
                    change > 0.0
                };
                out.push(format!(
                    "{} · {} · {label}: {} → {} ({change:+.1} %{})",
                    w["name"].as_str().unwrap_or("?"),
                    c["name"].as_str().unwrap_or("?"),
                    show(Some(a)),
                    show(Some(b)),
                    if change.abs() < 0.05 {
                        ""
                    } else if better {
                        ", better"
                    } else {
                        ", worse"
                    }
                ));
            }
        }
    }
    for b in new["criterion"].as_array().into_iter().flatten() {
        let Some(o) = old["criterion"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["name"] == b["name"])
        else {
            continue;
        };
        let (Some(a), Some(n)) = (o["mean_ns"].as_f64(), b["mean_ns"].as_f64()) else {
            continue;
        };
        out.push(format!(
            "criterion · {}: {} → {} ({:+.1} %)",
            b["name"].as_str().unwrap_or("?"),
            nanos(a),
            nanos(n),
            (n - a) / a * 100.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(faro_eps: f64, kubectl_eps: f64) -> Value {
        let c = |name: &str, eps: f64, cpu: f64| {
            json!({"name": name, "runs": 1, "events_per_second_spread": 0.0,
                   "median": {"sync_events_per_second": eps,
                              "sync_cpu_seconds_per_1000_events": cpu,
                              "rss_after_sync_mb": 20.0}})
        };
        json!({
            "date": "2026-12-02", "commit": "abc", "machine": {"cores": 2, "cpu": "x", "memory_gib": 24.0},
            "workloads": [{"name": "10000 ConfigMaps", "contenders": [
                c("faro run", faro_eps, 0.05), c("faro watch", 90.0, 0.06),
                c("kube-watcher", 100.0, 0.1), c("kubectl", kubectl_eps, 1.0)]}],
            "criterion": [{"name": "filter/evaluate/1", "mean_ns": 51.0}],
        })
    }

    #[test]
    fn ratios_are_judged_against_their_targets() {
        let md = markdown(&report(120.0, 20.0));
        assert!(md.contains("| events/s (sync) | 120.0 | 90.0 | 100.0 | 20.0 | 1.20 (target ≥ 1) ✓ | 6.00 (target ≥ 10) ✗ |"), "{md}");
        assert!(md.contains("0.50 (target ≤ 1) ✓"), "{md}");
        assert!(md.contains("| `filter/evaluate/1` | 51.0 ns |"), "{md}");
        let svg = svg(&report(120.0, 20.0));
        assert!(
            svg.starts_with("<svg") && svg.matches("<rect").count() == 9,
            "{svg}"
        );
    }

    #[test]
    fn differences_name_the_figure_and_the_direction() {
        let lines = differences(&report(100.0, 20.0), &report(150.0, 20.0));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("faro run · events/s (sync): 100.0 → 150.0 (+50.0 %, better)")),
            "{lines:#?}"
        );
    }
}
