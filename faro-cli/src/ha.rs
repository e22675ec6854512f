//! `faro run` with `ha.enabled`: the replica's elections, announced on
//! stdout as `FARO_HA: leading` / `FARO_HA: following` (with `shard N`
//! when there are several, and `cluster C` with several clusters) whenever
//! its role changes.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use faro_core::EventHandler;
use faro_core::config::HaConfig;
use faro_watch::{Gate, Replicas};

/// A gate in front of `writer`, and the elections driving it.
pub fn start(
    client: kube::Client,
    ha: &HaConfig,
    cluster: Option<&str>,
    gate: Arc<Gate>,
    ready: Arc<AtomicBool>,
) -> (Replicas, tokio::task::JoinHandle<()>) {
    let cluster = cluster.map(|c| format!(" cluster {c}")).unwrap_or_default();
    let identity = faro_watch::default_identity(ha);
    let namespace = faro_watch::default_lease_namespace(ha);
    let replicas = Replicas::start(client, ha, &identity, &namespace, gate, ready);
    let sharded = ha.shards > 1;
    let mut roles = replicas.roles();
    let announcer = tokio::spawn(async move {
        let mut said: Vec<bool> = roles.borrow_and_update().clone();
        for shard in 0..said.len() {
            say(sharded, shard, false, &cluster);
        }
        while roles.changed().await.is_ok() {
            let now = roles.borrow_and_update().clone();
            for (shard, (was, is)) in said.iter().zip(&now).enumerate() {
                if was != is {
                    say(sharded, shard, *is, &cluster);
                }
            }
            said = now;
        }
    });
    (replicas, announcer)
}

fn say(sharded: bool, shard: usize, leading: bool, cluster: &str) {
    let role = if leading { "leading" } else { "following" };
    if sharded {
        say!("FARO_HA: {role} shard {shard}{cluster}");
    } else {
        say!("FARO_HA: {role}{cluster}");
    }
}

/// The handler a gate passes events on to.
pub fn writer(dispatcher: &faro_dispatch::Dispatcher) -> Arc<dyn EventHandler> {
    Arc::new(dispatcher.clone())
}
