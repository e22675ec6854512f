//! The `faro` program: flags and wiring around the Faro libraries —
//! `demo` (an embedded simulated cluster), `run` (a configuration file),
//! `watch` (flags only), `logs` (container logs from flags), `events`
//! (Kubernetes Events from flags) and `sim` (the simulated cluster alone).

/// A line on stdout for whoever reads it. A closed stdout (`faro run |
/// head -1`) loses the line, not the run: the events still go to their files.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod cli;
mod demo;
mod events_cmd;
mod exit;
mod ha;
mod http;
mod kube_client;
mod logs_cmd;
mod profiling;
mod run;
mod stats;
mod watch_cmd;
mod watching;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use faro_core::config::LogLevel;

use cli::{Cli, Command, Common, LogFormat};
use exit::Failure;

fn init_logging(level: LogLevel, format: LogFormat) {
    let level = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error | LogLevel::Fatal => "error",
    };
    // kube's client logs each failed request itself; Faro reports failures
    // with their context, so that a failure is one line.
    let filter = tracing_subscriber::EnvFilter::try_from_env("FARO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},kube_client=off")));
    // Colour only for a person at a terminal; a file or a pipe gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn sim(args: &cli::SimArgs) -> Result<(), Failure> {
    let positive = |flag: &str, value: f64| {
        if value.is_finite() && value > 0.0 {
            Ok(())
        } else {
            Err(Failure::Usage(format!(
                "{flag}: {value} is not a positive number; expected e.g. 1 or 60"
            )))
        }
    };
    positive("--time-scale", args.time_scale)?;
    if let Some(rate) = args.churn {
        positive("--churn", rate)?;
    }
    if !(args.log_rate.is_finite() && args.log_rate >= 0.0) {
        return Err(Failure::Usage(format!(
            "--log-rate: {} is not a number of lines per second; expected 0 or more",
            args.log_rate
        )));
    }
    let sim = std::sync::Arc::new(
        faro_sim::Sim::start(faro_sim::SimConfig {
            port: args.port,
            nodes: args.nodes,
            time_scale: args.time_scale,
            log_lines_per_second: args.log_rate,
            ..faro_sim::SimConfig::default()
        })
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?,
    );
    let mut workload = Vec::new();
    if let Some(rate) = args.churn {
        let namespaces = vec!["shop".to_owned(), "payments".to_owned()];
        let failed =
            |e: faro_sim::ApiError| Failure::Runtime(format!("starting the workload: {e}"));
        faro_sim::scenario::install(&sim, &namespaces).map_err(failed)?;
        let mut churn = faro_sim::churn::Churn::new(faro_sim::churn::ChurnConfig {
            namespaces: vec!["churn-a".to_owned(), "churn-b".to_owned()],
            operations_per_second: rate,
            ..faro_sim::churn::ChurnConfig::default()
        });
        churn.populate(&sim).map_err(failed)?;
        let day = Duration::from_secs(24 * 3600);
        let churn_sim = sim.clone();
        workload.push(tokio::spawn(async move {
            let _ = churn.run(&churn_sim, day).await;
        }));
        let rollout_sim = sim.clone();
        workload.push(tokio::spawn(async move {
            let _ =
                faro_sim::scenario::drive(&rollout_sim, &namespaces, Duration::from_secs(30), day)
                    .await;
        }));
    }
    say!("FARO_SIM_URL: {}", sim.url());
    say!("FARO_SIM_KUBECONFIG: {}", sim.kubeconfig().display());
    run::shutdown_signal(None).await;
    for task in workload {
        task.abort();
    }
    Ok(())
}

async fn main_async(cli: Cli) -> Result<(), Failure> {
    let common: Common = cli.common;
    match cli.command {
        Some(Command::Demo { duration }) => {
            init_logging(LogLevel::Warn, common.log_format);
            demo::demo(&common, duration).await
        }
        Some(Command::Sim(args)) => {
            init_logging(LogLevel::Info, common.log_format);
            sim(&args).await
        }
        Some(Command::Watch(args)) => {
            init_logging(
                run::log_level_flag(&common)?.unwrap_or(LogLevel::Warn),
                common.log_format,
            );
            watch_cmd::watch(&common, &args).await
        }
        Some(Command::Logs(args)) => {
            init_logging(
                run::log_level_flag(&common)?.unwrap_or(LogLevel::Warn),
                common.log_format,
            );
            logs_cmd::logs(&common, &args).await
        }
        Some(Command::Events(args)) => {
            init_logging(
                run::log_level_flag(&common)?.unwrap_or(LogLevel::Warn),
                common.log_format,
            );
            events_cmd::events(&common, &args).await
        }
        command @ (Some(Command::Run { .. }) | None) => {
            let fresh = matches!(command, Some(Command::Run { fresh: true }));
            if command.is_none() && common.config.is_none() {
                return Err(Failure::Usage(
                    "no command given; expected demo, run, watch, logs, events or sim (or --config FILE); see faro --help".to_owned(),
                ));
            }
            let config = run::resolve_config(&common)?;
            init_logging(config.log_level, common.log_format);
            run::run(&common, config, fresh).await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(cli::normalise_args(std::env::args()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("faro: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(main_async(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("faro: {failure}");
            failure.code()
        }
    }
}
