//! The `faro` program: flags and wiring around the Faro libraries.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "faro",
    version,
    about = "Watch Kubernetes resources and hand their events to sinks and workers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Faro against an embedded simulated cluster.
    Demo,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Demo => {
            eprintln!(
                "faro demo: not built yet; the watcher, the simulated cluster and the demo wiring come in later releases"
            );
            ExitCode::FAILURE
        }
    }
}
