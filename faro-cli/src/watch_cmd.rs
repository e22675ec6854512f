//! `faro watch`: rules from flags, events as lines on stdout.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faro_core::config::Readiness;
use faro_core::config::{NamespaceSelection, WorkerSettings};
use faro_core::{Config, Gvr, MatchedEvent, ResourceRule, Scope};
use faro_dispatch::{Dispatcher, DispatcherOptions, Handles, ResourceWorker, WorkerError};
use faro_filter::{FieldSelector, LabelPattern, LabelSelector, Pattern};
use faro_watch::{Controller, Fleet, WatchOptions};

use crate::cli::{Common, Output, WatchArgs};
use crate::exit::{Failure, from_watch};
use crate::watching::Watching;

/// The rules `faro watch` flags describe; `default_ns` is the kubeconfig's namespace.
pub fn rules(args: &WatchArgs, default_ns: &str) -> Result<Vec<ResourceRule>, Failure> {
    let usage = |flag: &str, value: &str, e: &dyn std::fmt::Display| {
        Failure::Usage(format!("{flag} {value:?}: {e}"))
    };
    let labels = match &args.selector {
        Some(s) => LabelSelector::parse(s).map_err(|e| usage("--selector", s, &e))?,
        None => LabelSelector::everything(),
    };
    let fields = match &args.field_selector {
        Some(s) => FieldSelector::parse(s).map_err(|e| usage("--field-selector", s, &e))?,
        None => FieldSelector::everything(),
    };
    let name = match &args.name_pattern {
        Some(p) => Some(Pattern::new(p).map_err(|e| usage("--name-pattern", p, &e))?),
        None => None,
    };
    let mut label_patterns = Vec::new();
    for p in &args.label_pattern {
        label_patterns
            .extend(LabelPattern::parse_list(p).map_err(|e| usage("--label-pattern", p, &e))?);
    }
    let mut out = Vec::new();
    for (i, text) in args.gvrs.iter().enumerate() {
        let gvr = Gvr::parse(text).map_err(|e| Failure::Usage(format!("GVR {text:?}: {e}")))?;
        let mut rule = ResourceRule::new(gvr);
        rule.label_selector = labels.clone();
        rule.field_selector = fields.clone();
        rule.name_pattern = name.clone();
        rule.label_patterns = label_patterns.clone();
        rule.origin = format!("argument {}", i + 1);
        if rule.scope != Some(Scope::Cluster) && !args.all_namespaces {
            rule.namespaces = if args.namespaces.is_empty() {
                NamespaceSelection::Names(vec![default_ns.to_owned()])
            } else {
                NamespaceSelection::Names(args.namespaces.clone())
            };
        }
        out.push(rule);
    }
    Ok(out)
}

/// Writes each event as a line on stdout; a closed pipe (`| head`) ends the program.
struct StdoutWorker {
    output: Output,
    out: Mutex<std::io::Stdout>,
}

#[async_trait::async_trait]
impl ResourceWorker for StdoutWorker {
    fn name(&self) -> &str {
        "stdout"
    }
    fn handles(&self) -> Handles {
        Handles::All
    }
    async fn handle(&self, event: &MatchedEvent) -> Result<(), WorkerError> {
        let mut line = Vec::with_capacity(512);
        match self.output {
            Output::Json => faro_dispatch::json_line(event, &mut line),
            Output::Text => {
                if let Some(cluster) = event.cluster() {
                    line.extend_from_slice(format!("[{cluster}] ").as_bytes());
                }
                line.extend_from_slice(faro_dispatch::TextLogSink::line(event).as_bytes());
                line.push(b'\n');
            }
        }
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            return Err(WorkerError::new(format!("stdout: {e}")));
        }
        Ok(())
    }
}

/// The configuration of `faro watch`'s flags for a cluster whose
/// kubeconfig namespace is `default_ns`.
fn config_for(args: &WatchArgs, default_ns: &str) -> Result<Config, Failure> {
    let mut config = Config::default();
    config
        .set_rules(rules(args, default_ns)?)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(config)
}

/// `faro watch`: one cluster, or several (`--context` repeated,
/// `--all-contexts`), each line then carrying its cluster.
pub async fn watch(common: &Common, args: &WatchArgs) -> Result<(), Failure> {
    // Bad flags are reported before any contact with a server.
    rules(args, "default")?;
    if args.all_contexts && !common.context.is_empty() {
        return Err(Failure::Usage(
            "--all-contexts: --context is given too; expected one or the other".to_owned(),
        ));
    }
    let contexts = if args.all_contexts {
        let all = crate::kube_client::contexts(common.kubeconfig.as_deref())?;
        if all.is_empty() {
            return Err(Failure::Usage(
                "--all-contexts: the kubeconfig has no contexts; expected at least one".to_owned(),
            ));
        }
        all
    } else {
        common.context.clone()
    };
    let dispatcher = stdout_dispatcher(args.output)?;
    let watching = if args.all_contexts || contexts.len() > 1 {
        let clients = crate::kube_client::clients(common.kubeconfig.as_deref(), &contexts).await?;
        let fleet = Fleet::new(Readiness::Any);
        fleet.add_handler(dispatcher.clone());
        for (name, client) in clients {
            let config = config_for(args, client.default_namespace())?;
            fleet
                .add_cluster(&name, client, &config, WatchOptions::default())
                .map_err(|e| Failure::Usage(format!("--context {name}: {e}")))?;
        }
        Watching::Fleet(fleet)
    } else {
        let client =
            crate::kube_client::client(common.kubeconfig.as_deref(), common.one_context()?).await?;
        let config = config_for(args, client.default_namespace())?;
        let controller = Controller::new(client.clone(), &config);
        crate::run::preflight(&controller, &client, &config).await?;
        controller.add_handler(dispatcher.clone());
        controller.start().await.map_err(from_watch)?;
        Watching::One(controller)
    };
    tokio::select! {
        () = crate::run::shutdown_signal(common.auto_shutdown.filter(|s| *s > 0).map(Duration::from_secs)) => {}
        () = stdout_closed() => {
            // The reader went away (`| head`): nothing more to say.
            std::process::exit(0);
        }
    }
    watching.stop().await;
    dispatcher.shutdown().await;
    Ok(())
}

/// A dispatcher writing every event to stdout, in order.
fn stdout_dispatcher(output: Output) -> Result<Dispatcher, Failure> {
    let dispatcher = Dispatcher::new(DispatcherOptions::default());
    dispatcher
        .register_with(
            Arc::new(StdoutWorker {
                output,
                out: Mutex::new(std::io::stdout()),
            }),
            WorkerSettings {
                lanes: 1,
                ..WorkerSettings::default()
            },
        )
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    Ok(dispatcher)
}

/// Resolves when stdout is a pipe whose reader has gone, even while no
/// event is being written; never on a terminal or a file.
pub async fn stdout_closed() {
    use std::os::fd::AsFd;
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;
    let Ok(owned) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return std::future::pending().await;
    };
    // The registered descriptor is our own duplicate, owned by the AsyncFd
    // and closed only when it is dropped: the I/O-safety concern behind the
    // deprecation (a descriptor closed while registered) cannot arise.
    #[allow(deprecated)]
    let Ok(fd) = AsyncFd::with_interest(owned, Interest::ERROR) else {
        return std::future::pending().await;
    };
    loop {
        match fd.ready(Interest::ERROR).await {
            Ok(guard) if guard.ready().is_error() => return,
            Ok(mut guard) => guard.clear_ready(),
            Err(_) => return std::future::pending().await,
        }
    }
}
