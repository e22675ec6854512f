//! `bench-sim`: a faro-sim process for the end-to-end comparison of
//! `cargo xtask bench`. It seeds ConfigMaps (`--configmaps N`, about
//! `--bytes B` each, over 10 namespaces) and with `--pods N` about 6 KB
//! Pods of two containers, prints `BENCH_SIM_OBJECTS: <n>` (every Pod with
//! `--pods`, else every ConfigMap, the namespaces' own included) and
//! `BENCH_SIM_KUBECONFIG: <path>` once they are all in, then reads commands
//! on stdin, one a line, answering each when done:
//!
//! - `updates N WRITERS`: N updates from WRITERS concurrent writers, at the
//!   server's pace → `UPDATES_DONE <seconds>`;
//! - `rate R SECONDS`: R updates a second for SECONDS → `RATE_DONE <n>`.
//!
//! Every update stamps `faro.io/written-at` (RFC 3339, nanoseconds) on the
//! object, so a consumer can tell observe→sink latency. End of stdin stops it.

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faro_benches::configmap;

const NAMESPACES: usize = 10;

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: {v:?} is not a whole number"))
        })
        .unwrap_or(default)
}

fn name_of(i: usize) -> (String, String) {
    (format!("bench-{}", i % NAMESPACES), format!("cm-{i}"))
}

/// One update of object `i`, stamped with the time it is written.
fn update(sim: &faro_sim::Sim, i: usize, round: u64, bytes: usize) {
    let (ns, name) = name_of(i);
    let mut object = configmap(&ns, &name, bytes);
    object["metadata"]["annotations"] = serde_json::json!({
        "faro.io/written-at": jiff::Timestamp::now().to_string(),
        "faro.io/round": round.to_string(),
    });
    sim.update(object).expect("update");
}

/// A Pod of about 6 KB with two containers, bound to a node no kubelet
/// serves (so the simulated cluster leaves it as it is).
fn pod(i: usize) -> serde_json::Value {
    let (ns, _) = name_of(i);
    let env: Vec<serde_json::Value> = (0..85)
        .map(|k| serde_json::json!({"name": format!("SETTING_{k}"), "value": format!("value-{k}-of-pod-{i}")}))
        .collect();
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("web-{i}"), "namespace": ns,
            "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
        },
        "spec": {
            "nodeName": "bench-unserved-node",
            "containers": [
                {"name": "web", "image": "registry.example/web:1.2.3", "env": env,
                 "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                 "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}]},
                {"name": "sidecar", "image": "registry.example/proxy:4.5",
                 "args": ["--port=9090", "--upstream=127.0.0.1:8080"]}
            ],
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}}],
            "restartPolicy": "Always",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}]
        }
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pods = flag(&args, "--pods", 0);
    let count = flag(&args, "--configmaps", 10_000);
    let bytes = flag(&args, "--bytes", 1024);
    let runtime = faro_benches::runtime();
    let sim = Arc::new(runtime.block_on(async {
        faro_sim::Sim::start(faro_sim::SimConfig::default())
            .await
            .expect("faro-sim starts")
    }));
    for n in 0..NAMESPACES {
        sim.create(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("bench-{n}")},
        }))
        .expect("namespace");
    }
    for i in 0..count {
        let (ns, name) = name_of(i);
        sim.create(configmap(&ns, &name, bytes)).expect("configmap");
    }
    for i in 0..pods {
        sim.create(pod(i)).expect("pod");
    }
    // With --pods, the pods are what is compared.
    let kind = if pods > 0 { "Pod" } else { "ConfigMap" };
    let objects = sim.list("v1", kind, None).expect("list").len();
    println!("BENCH_SIM_OBJECTS: {objects}");
    println!("BENCH_SIM_KUBECONFIG: {}", sim.kubeconfig().display());
    let round = AtomicU64::new(0);
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| -> f64 { words.get(i).and_then(|w| w.parse().ok()).unwrap_or(0.0) };
        match words.first() {
            Some(&"updates") => {
                let (total, writers) = (number(1) as usize, (number(2) as usize).max(1));
                let r = round.fetch_add(1, Ordering::Relaxed) + 1;
                let started = Instant::now();
                std::thread::scope(|scope| {
                    for w in 0..writers {
                        let sim = &sim;
                        scope.spawn(move || {
                            let mut i = w;
                            while i < total {
                                update(sim, i % count.max(1), r, bytes);
                                i += writers;
                            }
                        });
                    }
                });
                println!("UPDATES_DONE {:.3}", started.elapsed().as_secs_f64());
            }
            Some(&"rate") => {
                let (per_second, seconds) = (number(1).max(1.0), number(2));
                let r = round.fetch_add(1, Ordering::Relaxed) + 1;
                let total = (per_second * seconds) as usize;
                let started = Instant::now();
                for k in 0..total {
                    let due = started + Duration::from_secs_f64(k as f64 / per_second);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    update(&sim, k % count.max(1), r, bytes);
                }
                println!("RATE_DONE {total}");
            }
            _ => println!("UNKNOWN {line}"),
        }
    }
}
