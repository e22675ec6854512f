//! Repository chores, run as `cargo xtask <job>`:
//!
//! - `cargo xtask bench [FILTER]` runs the criterion benchmarks and writes
//!   `target/bench-report.json`, one entry per benchmark, so that two runs
//!   (or two programs) can be compared by a program.
//! - `cargo xtask demo-memory [SECONDS]` runs the release `faro demo` and
//!   checks that its memory reaches a plateau.

mod bench;
mod demo_memory;
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
    /// Run the criterion benchmarks and write target/bench-report.json.
    Bench {
        /// Only benchmarks whose name contains this text.
        filter: Option<String>,
        /// Seconds of measurement per benchmark.
        #[arg(long, default_value_t = 3)]
        measurement_time: u64,
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
        } => bench::run(filter.as_deref(), measurement_time),
        Job::DemoMemory { seconds } => demo_memory::run(seconds),
    }
}
