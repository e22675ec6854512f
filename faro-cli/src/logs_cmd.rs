//! `faro logs`: follow container logs from flags; coloured lines on a
//! terminal, JSON records in a pipe.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faro_core::config::{LogSince, NamespaceSelection, WorkerSettings};
use faro_core::{Config, LogRecord, LogsConfig, MatchedEvent, Record, RecordKind};
use faro_dispatch::{Dispatcher, DispatcherOptions, Handles, ResourceWorker, WorkerError};
use faro_filter::{LabelSelector, Pattern};
use faro_watch::{Controller, LogOptions, WatchOptions};

use crate::cli::{Common, LogsArgs, Output};
use crate::exit::{Failure, from_watch};

/// The `logs:` block the flags describe; `default_ns` is the kubeconfig's namespace.
pub fn logs_config(args: &LogsArgs, default_ns: &str) -> Result<LogsConfig, Failure> {
    let usage = |flag: &str, value: &str, e: &dyn std::fmt::Display| {
        Failure::Usage(format!("{flag} {value:?}: {e}"))
    };
    let pattern = |flag: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| Pattern::new(t).map_err(|e| usage(flag, t, &e)))
            .transpose()
    };
    let mut config = LogsConfig {
        pod_name_pattern: pattern("POD_REGEX", &args.pod)?,
        container_pattern: pattern("--container", &args.container)?,
        ..LogsConfig::default()
    };
    if let Some(s) = &args.selector {
        config.label_selector = LabelSelector::parse(s).map_err(|e| usage("--selector", s, &e))?;
    }
    if let Some(since) = &args.since {
        config.since = since
            .parse::<LogSince>()
            .map_err(|e| Failure::Usage(format!("--since: {e}")))?;
    }
    if let Some(n) = args.max_streams {
        if n == 0 {
            return Err(Failure::Usage(
                "--max-streams: 0 is not a number of streams; expected 1 or more".to_owned(),
            ));
        }
        config.max_streams = n;
    }
    config.namespaces = if args.all_namespaces {
        NamespaceSelection::All
    } else if args.namespaces.is_empty() {
        NamespaceSelection::Names(vec![default_ns.to_owned()])
    } else {
        for ns in &args.namespaces {
            if !faro_filter::is_dns_label(ns) {
                return Err(Failure::Usage(format!(
                    "--namespace {ns:?}: not a namespace name; expected a DNS-1123 label"
                )));
            }
        }
        NamespaceSelection::Names(args.namespaces.clone())
    };
    Ok(config)
}

/// Writes each log line or Event record to stdout: buffered, flushed when
/// the queue goes idle; a closed pipe (`| head`) ends the program.
pub struct Stdout {
    /// Text lines (else JSON).
    text: bool,
    /// ANSI colours (a terminal).
    colour: bool,
    /// Log lines (else Kubernetes Event records).
    logs: bool,
    out: Mutex<std::io::BufWriter<std::io::Stdout>>,
}

impl Stdout {
    /// Log lines (`logs`) or Kubernetes Event records, as text or JSON.
    pub fn new(logs: bool, text: bool, colour: bool) -> Self {
        Self {
            text,
            colour,
            logs,
            out: Mutex::new(std::io::BufWriter::with_capacity(
                64 * 1024,
                std::io::stdout(),
            )),
        }
    }

    /// As `-o` asks; without it, text on a terminal and JSON in a pipe.
    /// Colours only on a terminal.
    pub fn for_output(logs: bool, output: Option<Output>) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let text = match output {
            Some(Output::Text) => true,
            Some(Output::Json) => false,
            None => terminal,
        };
        Self::new(logs, text, text && terminal)
    }

    /// Registers with a dispatcher of its own, on one lane (stdout is one
    /// stream, in arrival order).
    pub fn dispatcher(self) -> Result<Dispatcher, Failure> {
        let dispatcher = Dispatcher::new(DispatcherOptions::default());
        dispatcher
            .register_with(
                Arc::new(self),
                WorkerSettings {
                    lanes: 1,
                    ..WorkerSettings::default()
                },
            )
            .map_err(|e| Failure::Runtime(e.to_string()))?;
        Ok(dispatcher)
    }

    fn write(&self, bytes: &[u8]) -> Result<(), WorkerError> {
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.write_all(bytes).map_err(broken)
    }
}

fn broken(e: std::io::Error) -> WorkerError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    WorkerError::new(format!("stdout: {e}"))
}

/// A stable colour per container (one of 12 readable ANSI colours).
fn colour_of(record: &LogRecord) -> u8 {
    const COLOURS: [u8; 12] = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];
    let s = record.source();
    let mut h: u32 = 2_166_136_261;
    for b in s
        .namespace
        .bytes()
        .chain(s.pod.bytes())
        .chain(s.container.bytes())
    {
        h = (h ^ u32::from(b)).wrapping_mul(16_777_619);
    }
    COLOURS[(h % 12) as usize]
}

/// `namespace/pod container line`, the prefix coloured on a terminal.
pub fn text_line(record: &LogRecord, colour: bool, out: &mut Vec<u8>) {
    let s = record.source();
    let prefix = format!("{}/{} {}", s.namespace, s.pod, s.container);
    if colour {
        let _ = write!(out, "\x1b[{}m{prefix}\x1b[0m ", colour_of(record));
    } else {
        let _ = write!(out, "{prefix} ");
    }
    out.extend_from_slice(record.line().as_bytes());
    out.push(b'\n');
}

#[async_trait::async_trait]
impl ResourceWorker for Stdout {
    fn name(&self) -> &str {
        "stdout"
    }
    fn handles(&self) -> Handles {
        Handles::Only(Vec::new())
    }
    async fn handle(&self, _event: &MatchedEvent) -> Result<(), WorkerError> {
        Ok(())
    }
    fn wants_logs(&self) -> bool {
        self.logs
    }
    fn wants_records(&self, kind: RecordKind) -> bool {
        !self.logs && kind == RecordKind::K8sEvent
    }
    async fn handle_record(&self, record: &Record) -> Result<(), WorkerError> {
        let mut line = Vec::with_capacity(256);
        if self.text {
            // A Warning stands out on a terminal.
            let warning = self.colour && record.severity() == "Warning";
            if warning {
                line.extend_from_slice(b"\x1b[33m");
            }
            line.extend_from_slice(record.narrative().as_bytes());
            if warning {
                line.extend_from_slice(b"\x1b[0m");
            }
            line.push(b'\n');
        } else {
            record.write_json(&mut line);
        }
        self.write(&line)
    }
    async fn handle_log(&self, record: &LogRecord) -> Result<(), WorkerError> {
        let mut line = Vec::with_capacity(256);
        if self.text {
            text_line(record, self.colour, &mut line);
        } else {
            record.write_json(&mut line);
        }
        self.write(&line)
    }
    async fn idle(&self) {
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = out.flush() {
            let _ = broken(e);
        }
    }
    async fn shutdown(&self) -> Result<(), WorkerError> {
        self.out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .flush()
            .map_err(broken)
    }
}

/// `faro logs`.
pub async fn logs(common: &Common, args: &LogsArgs) -> Result<(), Failure> {
    // Bad flags are reported before any contact with a server.
    logs_config(args, "default")?;
    let client =
        crate::kube_client::client(common.kubeconfig.as_deref(), common.one_context()?).await?;
    let mut config = Config::default();
    config.logs = Some(logs_config(args, client.default_namespace())?);
    let follow = !(args.no_follow || args.previous);
    let options = WatchOptions {
        logs: LogOptions {
            follow,
            previous_only: args.previous,
            ..LogOptions::default()
        },
        ..WatchOptions::default()
    };
    let controller = Controller::with_options(client.clone(), &config, options);
    let dispatcher = Stdout::for_output(true, args.output).dispatcher()?;
    controller.add_handler(dispatcher.clone());
    controller.start().await.map_err(from_watch)?;
    let read_all = async {
        if follow {
            return std::future::pending().await;
        }
        controller.ready().await;
        while !controller.logs_settled() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let auto = common
        .auto_shutdown
        .filter(|s| *s > 0)
        .map(Duration::from_secs);
    tokio::select! {
        () = crate::run::shutdown_signal(auto) => {}
        () = read_all => {}
        () = crate::watch_cmd::stdout_closed() => std::process::exit(0),
    }
    controller.stop().await;
    dispatcher.shutdown().await;
    Ok(())
}
