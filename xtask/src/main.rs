//! Repository chores, run as `cargo xtask <job>`:
//!
//! - `cargo xtask bench [FILTER] [--quick] [--compare OLD.json]` runs the
//!   criterion benchmarks and the end-to-end comparison of `faro run`,
//!   `faro watch`, a bare kube-runtime watcher and `kubectl get -w` (each a
//!   process against one faro-sim process), and writes
//!   `target/faro-bench/report.{json,md}` and `chart.svg`.
//! - `cargo xtask demo-memory [SECONDS]` runs the release `faro demo` and
//!   checks that its memory reaches a plateau.

mod bench;
mod compare;
mod demo_memory;
mod report;
#[cfg(test)]
mod tidy;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Faro repository chores")]
struct Cli {
    #[command(subcommand)]
    job: Job,
}

#[derive(Subcommand)]
enum Job {
    /// Run the benchmarks and write target/faro-bench/report.{json,md} and chart.svg.
    Bench {
        /// Only criterion benchmarks whose name contains this text (and no
        /// end-to-end comparison).
        filter: Option<String>,
        /// Seconds of measurement per criterion benchmark.
        #[arg(long, default_value_t = 3)]
        measurement_time: u64,
        /// Only the end-to-end comparison, on 10,000 objects, once.
        #[arg(long)]
        quick: bool,
        /// Leave out the end-to-end comparison.
        #[arg(long, conflicts_with = "quick")]
        no_tools: bool,
        /// A former report.json: print how each figure changed.
        #[arg(long, value_name = "OLD.json")]
        compare: Option<std::path::PathBuf>,
    },
    /// Run the release `faro demo` and check that its memory reaches a plateau.
    DemoMemory {
        /// How long the demo runs.
        #[arg(default_value_t = 120)]
        seconds: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().job {
        Job::Bench {
            filter,
            measurement_time,
            quick,
            no_tools,
            compare,
        } => bench::run(&bench::Options {
            filter: filter.as_deref(),
            measurement_time,
            quick,
            no_tools,
            compare: compare.as_deref(),
        }),
        Job::DemoMemory { seconds } => demo_memory::run(seconds),
    }
}
