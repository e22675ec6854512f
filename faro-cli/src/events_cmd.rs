//! `faro events`: Kubernetes Events from flags; one narrative per line on
//! a terminal, JSON records in a pipe.

use std::time::Duration;

use faro_core::config::{EventsSince, NamespaceSelection};
use faro_core::{Config, K8sEventsConfig};
use faro_watch::Controller;

use crate::cli::{Common, EventType, EventsArgs};
use crate::exit::{Failure, from_watch};
use crate::logs_cmd::Stdout;

/// The `k8s_events:` block the flags describe; `default_ns` is the
/// kubeconfig's namespace.
pub fn events_config(args: &EventsArgs, default_ns: &str) -> Result<K8sEventsConfig, Failure> {
    for ns in &args.namespaces {
        if !faro_filter::is_dns_label(ns) {
            return Err(Failure::Usage(format!(
                "--namespace {ns:?}: not a namespace name; expected a DNS-1123 label"
            )));
        }
    }
    for (flag, list) in [("--reasons", &args.reasons), ("--kinds", &args.kinds)] {
        if let Some(bad) = list
            .iter()
            .find(|r| r.is_empty() || !r.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(Failure::Usage(format!(
                "{flag} {bad:?}: not a name; expected letters and digits such as BackOff or Pod"
            )));
        }
    }
    let mut types: Vec<String> = args
        .types
        .iter()
        .map(|t| match t {
            EventType::Normal => "Normal".to_owned(),
            EventType::Warning => "Warning".to_owned(),
        })
        .collect();
    types.sort();
    types.dedup();
    let namespaces = if args.all_namespaces {
        NamespaceSelection::All
    } else if args.namespaces.is_empty() {
        NamespaceSelection::Names(vec![default_ns.to_owned()])
    } else {
        let mut names = args.namespaces.clone();
        names.sort();
        names.dedup();
        NamespaceSelection::Names(names)
    };
    Ok(K8sEventsConfig {
        namespaces,
        types,
        reasons: args.reasons.clone(),
        exclude_reasons: Vec::new(),
        involved_kinds: args.kinds.clone(),
        since: if args.all {
            EventsSince::All
        } else {
            EventsSince::Start
        },
    })
}

/// `faro events`.
pub async fn events(common: &Common, args: &EventsArgs) -> Result<(), Failure> {
    // Bad flags are reported before any contact with a server.
    events_config(args, "default")?;
    let client =
        crate::kube_client::client(common.kubeconfig.as_deref(), common.one_context()?).await?;
    let mut config = Config::default();
    config.k8s_events = Some(events_config(args, client.default_namespace())?);
    let controller = Controller::new(client.clone(), &config);
    let dispatcher = Stdout::for_output(false, args.output).dispatcher()?;
    controller.add_handler(dispatcher.clone());
    controller.start().await.map_err(from_watch)?;
    let auto = common
        .auto_shutdown
        .filter(|s| *s > 0)
        .map(Duration::from_secs);
    tokio::select! {
        () = crate::run::shutdown_signal(auto) => {}
        () = crate::watch_cmd::stdout_closed() => std::process::exit(0),
    }
    controller.stop().await;
    dispatcher.shutdown().await;
    Ok(())
}
