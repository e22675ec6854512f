//! The `faro` program: flags and wiring around the Faro libraries —
//! `demo` (an embedded simulated cluster), `run` (a configuration file),
//! `watch` (flags only) and `sim` (the simulated cluster alone).

mod cli;
mod demo;
mod exit;
mod http;
mod kube_client;
mod run;
mod stats;
mod watch_cmd;

use std::process::ExitCode;

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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn sim(port: u16) -> Result<(), Failure> {
    let sim = faro_sim::Sim::start(faro_sim::SimConfig {
        port,
        ..faro_sim::SimConfig::default()
    })
    .await
    .map_err(|e| Failure::Runtime(e.to_string()))?;
    println!("FARO_SIM_URL: {}", sim.url());
    println!("FARO_SIM_KUBECONFIG: {}", sim.kubeconfig().display());
    run::shutdown_signal(None).await;
    Ok(())
}

async fn main_async(cli: Cli) -> Result<(), Failure> {
    let common: Common = cli.common;
    match cli.command {
        Some(Command::Demo { duration }) => {
            init_logging(LogLevel::Warn, common.log_format);
            demo::demo(&common, duration).await
        }
        Some(Command::Sim { port }) => {
            init_logging(LogLevel::Info, common.log_format);
            sim(port).await
        }
        Some(Command::Watch(args)) => {
            init_logging(
                run::log_level_flag(&common)?.unwrap_or(LogLevel::Warn),
                common.log_format,
            );
            watch_cmd::watch(&common, &args).await
        }
        Some(Command::Run) | None => {
            if cli.command.is_none() && common.config.is_none() {
                return Err(Failure::Usage(
                    "no command given; expected demo, run, watch or sim (or --config FILE); see faro --help".to_owned(),
                ));
            }
            let config = run::resolve_config(&common)?;
            init_logging(config.log_level, common.log_format);
            run::run(&common, config).await
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
