//! `faro-sim`: serve the simulated API server alone, for kubectl or a test tool.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "faro-sim",
    version,
    about = "A Kubernetes-compatible API server in memory"
)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the kubeconfig.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Milliseconds between bookmarks on idle watches.
    #[arg(long, default_value_t = 5000)]
    bookmark_interval_ms: u64,
    /// Writes kept in history for watches to resume from.
    #[arg(long, default_value_t = 100_000)]
    history_window: usize,
    /// Turn off what a real cluster's controllers add (namespace defaults, termination).
    #[arg(long)]
    no_controllers: bool,
    /// Refuse streaming lists (sendInitialEvents), as a server without the WatchList feature gate.
    #[arg(long)]
    no_streaming_lists: bool,
    /// About how many bytes of history are kept for watches.
    #[arg(long, default_value_t = 64 << 20)]
    history_bytes: usize,
    /// Nodes registered at start.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Simulated time runs this many times faster (back-offs, exits, CronJobs).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Log lines per second each running container writes.
    #[arg(long, default_value_t = 1.0)]
    log_rate: f64,
    /// Bytes of log kept per container (older lines are dropped).
    #[arg(long, default_value_t = 1 << 20)]
    log_bytes_per_container: usize,
    /// Seconds an Event is kept after it was last recorded.
    #[arg(long, default_value_t = 3600)]
    event_ttl_seconds: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = faro_sim::SimConfig {
        port: args.port,
        kubeconfig: args.kubeconfig,
        bookmark_interval: Duration::from_millis(args.bookmark_interval_ms),
        history_window: args.history_window,
        cluster_controllers: !args.no_controllers,
        streaming_lists: !args.no_streaming_lists,
        history_bytes: args.history_bytes,
        nodes: args.nodes,
        time_scale: args.time_scale,
        log_lines_per_second: args.log_rate,
        log_bytes_per_container: args.log_bytes_per_container,
        event_ttl: Duration::from_secs(args.event_ttl_seconds),
    };
    let sim = match faro_sim::Sim::start(config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("faro-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("FARO_SIM_URL: {}", sim.url());
    println!("FARO_SIM_KUBECONFIG: {}", sim.kubeconfig().display());
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
