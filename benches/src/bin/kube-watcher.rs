//! `kube-watcher`: the floor of what a kube-rs program can do, as any kube-rs
//! user would write it — a kube-runtime `watcher` over `DynamicObject` with
//! streaming lists, counting events and nothing else. For the end-to-end
//! comparison of `cargo xtask bench`:
//!
//! `kube-watcher --kubeconfig FILE --resource v1/configmaps/ConfigMap`
//! prints `SYNCED <objects>` when the initial list is in, then
//! `EVENTS <total>` whenever its count of events after the list passes a
//! multiple of `--every` (default 1,000), until SIGTERM.

use futures_util::StreamExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = flag(&args, "--kubeconfig").expect("--kubeconfig FILE");
    let resource = flag(&args, "--resource").unwrap_or_else(|| "v1/configmaps/ConfigMap".into());
    let every: u64 = flag(&args, "--every").map_or(1000, |e| e.parse().expect("--every N"));
    let parts: Vec<&str> = resource.split('/').collect();
    let (group, version, plural, kind) = match parts.as_slice() {
        [v, p, k] => ("", *v, *p, *k),
        [g, v, p, k] => (*g, *v, *p, *k),
        _ => panic!("--resource: expected [GROUP/]VERSION/PLURAL/KIND"),
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("kubeconfig");
    let client = kube::Client::try_from(config).expect("client");
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    let api = kube::Api::<DynamicObject>::all_with(client, &ar);
    let mut stream = std::pin::pin!(watcher(api, watcher::Config::default().streaming_lists()));
    let (mut listed, mut events, mut synced) = (0u64, 0u64, false);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::InitApply(_)) => listed += 1,
            Ok(watcher::Event::InitDone) if !synced => {
                synced = true;
                println!("SYNCED {listed}");
            }
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                events += 1;
                if events.is_multiple_of(every) {
                    println!("EVENTS {events}");
                }
            }
            Ok(_) => {}
            Err(e) => eprintln!("kube-watcher: {e}"),
        }
    }
}
