//! The command line, as clap parses it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "faro",
    version,
    about = "Watch Kubernetes resources and hand their events to sinks and workers",
    args_conflicts_with_subcommands = false
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags every command accepts.
#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// Configuration file (YAML); `-config FILE` is accepted too.
    #[arg(long, global = true, env = "FARO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Kubeconfig file; else KUBECONFIG, then ~/.kube/config, then in-cluster.
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context; `faro run` and `faro watch` take several, one
    /// cluster each, named after its context.
    #[arg(long, global = true)]
    pub context: Vec<String>,
    /// Where logs/ with the event and log files goes.
    #[arg(long, global = true, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// debug, info, warning, error or fatal.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// How log lines are written to stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Stop after this many seconds (0: run until signalled).
    #[arg(long, global = true, value_name = "SECONDS")]
    pub auto_shutdown: Option<u64>,
    /// Address of /metrics, /healthz and /readyz (port 0 picks one).
    #[arg(long, global = true, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Serve no metrics endpoint.
    #[arg(long, global = true)]
    pub no_metrics: bool,
    /// Seconds between runtime statistics log lines.
    #[arg(long, global = true, default_value_t = 60, value_name = "SECONDS")]
    pub stats_interval: u64,
    /// Serve CPU profiles and runtime figures under /debug/pprof/ on the
    /// metrics address (as `monitor.profiling: true`).
    #[arg(long, global = true)]
    pub profiling: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Text,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run Faro against an embedded simulated cluster with a live summary.
    Demo {
        /// Stop after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        duration: Option<u64>,
    },
    /// Run as the configuration file says (the default when --config is given).
    Run {
        /// Ignore the checkpoints of an earlier run (and replace them): every
        /// existing object is reported as ADDED again.
        #[arg(long)]
        fresh: bool,
    },
    /// Watch resources without a configuration file; JSON lines on stdout.
    Watch(WatchArgs),
    /// Follow container logs without a configuration file.
    Logs(LogsArgs),
    /// Follow Kubernetes Events without a configuration file.
    Events(EventsArgs),
    /// Serve the simulated cluster alone, for kubectl.
    Sim(SimArgs),
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Regular expression on the pod name; default: every pod.
    #[arg(value_name = "POD_REGEX")]
    pub pod: Option<String>,
    /// Namespaces (repeatable); default: the kubeconfig's namespace.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Every namespace.
    #[arg(short = 'A', long = "all-namespaces", conflicts_with = "namespaces")]
    pub all_namespaces: bool,
    /// Label selector on pods, sent to the server.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Regular expression on the container name.
    #[arg(short = 'c', long = "container", value_name = "CONTAINER_REGEX")]
    pub container: Option<String>,
    /// Where to start: start (every line the kubelet has), now, or a duration such as 10m.
    #[arg(long, value_name = "start|now|DURATION")]
    pub since: Option<String>,
    /// Print each restarted container's previous instance, then exit.
    #[arg(long)]
    pub previous: bool,
    /// Print what is there, then exit.
    #[arg(long)]
    pub no_follow: bool,
    /// Log streams open at once (default 1000); the others wait their turn.
    #[arg(long, value_name = "N")]
    pub max_streams: Option<usize>,
    /// Line format; default: text on a terminal, JSON otherwise.
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<Output>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    #[value(name = "Normal")]
    Normal,
    #[value(name = "Warning")]
    Warning,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Namespaces (repeatable); default: the kubeconfig's namespace.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Every namespace.
    #[arg(short = 'A', long = "all-namespaces", conflicts_with = "namespaces")]
    pub all_namespaces: bool,
    /// Only these types (comma-separated); default: both.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        ignore_case = true,
        value_name = "Normal,Warning"
    )]
    pub types: Vec<EventType>,
    /// Only these reasons (comma-separated), e.g. BackOff,FailedScheduling.
    #[arg(long, value_delimiter = ',', value_name = "REASON")]
    pub reasons: Vec<String>,
    /// Only Events about these kinds (comma-separated), e.g. Pod,Deployment.
    #[arg(long, value_delimiter = ',', value_name = "KIND")]
    pub kinds: Vec<String>,
    /// Also what the server has from before the start, once.
    #[arg(long)]
    pub all: bool,
    /// Line format; default: a narrative per line on a terminal, JSON otherwise.
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<Output>,
}

#[derive(Args, Debug)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Run the living workload (rollouts, a crash loop, an OOMKill, a
    /// CronJob) plus this many create/update/delete operations per second.
    #[arg(long, value_name = "RATE")]
    pub churn: Option<f64>,
    /// Nodes the simulated cluster registers.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Simulated time runs this many times faster (back-offs, exits, CronJobs).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Log lines per second each running container writes.
    #[arg(long, default_value_t = 1.0)]
    pub log_rate: f64,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Resources as GVR: v1/configmaps, apps/v1/deployments, example.com/v1/widgets.
    #[arg(required = true, value_name = "GVR")]
    pub gvrs: Vec<String>,
    /// Namespaces to watch (repeatable); default: the kubeconfig's namespace.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Every namespace.
    #[arg(short = 'A', long = "all-namespaces", conflicts_with = "namespaces")]
    pub all_namespaces: bool,
    /// Label selector, sent to the server.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Field selector, sent to the server.
    #[arg(long, value_name = "SELECTOR")]
    pub field_selector: Option<String>,
    /// Regular expression on the name, checked by Faro.
    #[arg(long, value_name = "RE")]
    pub name_pattern: Option<String>,
    /// key=regex on a label value, checked by Faro (repeatable).
    #[arg(long, value_name = "KEY=RE")]
    pub label_pattern: Vec<String>,
    /// Line format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Json)]
    pub output: Output,
    /// Every context of the kubeconfig, one cluster each (named after it).
    #[arg(long)]
    pub all_contexts: bool,
}

impl Common {
    /// The one `--context` of a command that watches one cluster.
    pub fn one_context(&self) -> Result<Option<&str>, crate::exit::Failure> {
        match self.context.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            many => Err(crate::exit::Failure::Usage(format!(
                "--context: given {} times; expected one (only faro run and faro watch watch several clusters)",
                many.len()
            ))),
        }
    }
}

/// The Go Faro took `-config FILE`; clap wants `--config`.
pub fn normalise_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|a| {
            if a == "-config" {
                "--config".to_owned()
            } else if let Some(rest) = a.strip_prefix("-config=") {
                format!("--config={rest}")
            } else {
                a
            }
        })
        .collect()
}
