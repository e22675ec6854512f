//! Faro as a library: a `Controller` watching what a configuration asks
//! for, a `Dispatcher` in front of the JSON lines sink and a worker of your
//! own, all in your binary. Built with the workspace, so it keeps compiling.
//!
//! ```sh
//! cargo run -p faro-cli --example embed -- faro.yaml
//! ```

use std::sync::Arc;

use faro_core::{Config, Gvr, MatchedEvent};
use faro_dispatch::{
    Dispatcher, DispatcherOptions, Handles, JsonLinesSink, ResourceWorker, WorkerError,
};
use faro_watch::Controller;

/// Prints every Deployment that changed.
struct DeploymentPrinter;

#[async_trait::async_trait]
impl ResourceWorker for DeploymentPrinter {
    fn name(&self) -> &str {
        "deployment-printer"
    }

    fn handles(&self) -> Handles {
        Handles::Only(vec![Gvr::parse("apps/v1/deployments").expect("valid GVR")])
    }

    async fn handle(&self, event: &MatchedEvent) -> Result<(), WorkerError> {
        println!(
            "{} {} at {}",
            event.event_type().as_str(),
            event.key(),
            event.resource_version()
        );
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "faro.yaml".to_owned());
    let config = Config::load(std::path::Path::new(&path))?;
    let client = kube::Client::try_default().await?;

    let dispatcher = Dispatcher::new(DispatcherOptions {
        workers: config.workers.clone(),
        middleware: config.middleware,
        ..DispatcherOptions::default()
    });
    let sink = Arc::new(JsonLinesSink::create(&config.output_dir)?);
    println!("events go to {}", sink.path().display());
    dispatcher.register_arc(sink)?;
    dispatcher.register(DeploymentPrinter)?;

    let controller = Controller::new(client, &config);
    controller.add_handler(dispatcher.clone());
    controller.start().await?;
    controller.ready().await;
    println!("synced: {} informers", controller.active_informers().len());

    tokio::signal::ctrl_c().await?;
    controller.stop().await; // every watch ended, every handler call finished
    dispatcher.shutdown().await; // every queue drained, the file flushed
    Ok(())
}
