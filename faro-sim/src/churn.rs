//! A reproducible churn of objects for the demo and benchmarks: ConfigMaps of
//! about 1–2 KB, Pods of about 4–8 KB with several containers (and log lines,
//! and now and then a container restart), and Deployments — created, updated
//! and deleted in proportions that keep the population steady.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{ApiError, Sim};

/// What to churn, and how fast.
#[derive(Debug, Clone)]
pub struct ChurnConfig {
    /// The same seed gives the same sequence of operations.
    pub seed: u64,
    /// Namespaces to churn in (created when missing).
    pub namespaces: Vec<String>,
    /// ConfigMaps kept per namespace.
    pub configmaps_per_namespace: usize,
    /// Pods kept per namespace.
    pub pods_per_namespace: usize,
    /// Deployments kept per namespace.
    pub deployments_per_namespace: usize,
    /// Operations per second for [`Churn::run`]; 0 runs as fast as it can.
    pub operations_per_second: f64,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            namespaces: vec!["churn-a".into(), "churn-b".into()],
            configmaps_per_namespace: 20,
            pods_per_namespace: 10,
            deployments_per_namespace: 3,
            operations_per_second: 50.0,
        }
    }
}

/// One operation the churn performed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChurnOp {
    /// `create`, `update` or `delete`.
    pub verb: &'static str,
    /// `ConfigMap`, `Pod` or `Deployment`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

const KINDS: [&str; 3] = ["ConfigMap", "Pod", "Deployment"];

/// The churn generator; see [`ChurnConfig`].
pub struct Churn {
    config: ChurnConfig,
    rng: fastrand::Rng,
    live: Vec<(usize, String, String)>,
    next: u64,
}

impl Churn {
    /// A generator; nothing happens until [`Churn::populate`] or [`Churn::step`].
    pub fn new(config: ChurnConfig) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(config.seed),
            config,
            live: Vec::new(),
            next: 0,
        }
    }

    fn target(&self, kind: usize) -> usize {
        match kind {
            0 => self.config.configmaps_per_namespace,
            1 => self.config.pods_per_namespace,
            _ => self.config.deployments_per_namespace,
        }
    }

    fn text(&mut self, len: usize) -> String {
        (0..len).map(|_| self.rng.alphanumeric()).collect()
    }

    fn object(&mut self, kind: usize, ns: &str, name: &str) -> Value {
        let labels = json!({ "app": format!("app-{}", self.rng.u8(0..5)), "churn": "true" });
        match kind {
            0 => {
                let len = self.rng.usize(1000..2000);
                json!({ "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": { "name": name, "namespace": ns, "labels": labels },
                        "data": { "config": self.text(len) } })
            }
            1 => {
                let containers: Vec<Value> = (0..self.rng.usize(2..5))
                    .map(|i| {
                        let env: Vec<Value> = (0..8)
                            .map(|e| json!({ "name": format!("VAR_{e}"), "value": self.text(40) }))
                            .collect();
                        json!({ "name": format!("c{i}"), "image": format!("registry.example.com/app:{}", self.rng.u16(1..999)),
                                "env": env,
                                "resources": { "requests": { "cpu": "100m", "memory": "128Mi" },
                                               "limits": { "cpu": "500m", "memory": "256Mi" } },
                                "ports": [{ "containerPort": 8080 + i, "protocol": "TCP" }] })
                    })
                    .collect();
                let padding = self.rng.usize(1500..3500);
                json!({ "apiVersion": "v1", "kind": "Pod",
                        "metadata": { "name": name, "namespace": ns, "labels": labels,
                                      "annotations": { "churn/notes": self.text(padding) } },
                        "spec": { "containers": containers, "restartPolicy": "Always" } })
            }
            _ => json!({ "apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": { "name": name, "namespace": ns, "labels": labels },
                         "spec": { "replicas": self.rng.u8(1..5),
                                   "selector": { "matchLabels": { "churn": name } },
                                   "template": { "metadata": { "labels": { "churn": name } },
                                                 "spec": { "containers": [{ "name": "app", "image": "nginx" }] } } } }),
        }
    }

    fn create(&mut self, sim: &Sim, kind: usize, ns: String) -> Result<ChurnOp, ApiError> {
        self.next += 1;
        let name = format!("{}-{}", KINDS[kind].to_ascii_lowercase(), self.next);
        let object = self.object(kind, &ns, &name);
        sim.create(object)?;
        self.live.push((kind, ns.clone(), name.clone()));
        Ok(ChurnOp {
            verb: "create",
            kind: KINDS[kind],
            namespace: ns,
            name,
        })
    }

    /// Creates the namespaces and the initial objects; returns how many objects.
    pub fn populate(&mut self, sim: &Sim) -> Result<usize, ApiError> {
        for ns in self.config.namespaces.clone() {
            if sim.get("v1", "Namespace", None, &ns).is_err() {
                sim.create(
                    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }),
                )?;
            }
            for kind in 0..KINDS.len() {
                for _ in 0..self.target(kind) {
                    self.create(sim, kind, ns.clone())?;
                }
            }
        }
        Ok(self.live.len())
    }

    /// One operation: mostly updates, with creates and deletes keeping each
    /// kind near its target count.
    pub fn step(&mut self, sim: &Sim) -> Result<ChurnOp, ApiError> {
        // Only the kinds asked for (a target of zero leaves a kind alone).
        let kinds: Vec<usize> = (0..KINDS.len()).filter(|&k| self.target(k) > 0).collect();
        let kind = if kinds.is_empty() {
            0
        } else {
            kinds[self.rng.usize(0..kinds.len())]
        };
        let namespaces = self.config.namespaces.clone();
        let ns = namespaces[self.rng.usize(0..namespaces.len().max(1))].clone();
        let count = self
            .live
            .iter()
            .filter(|(k, n, _)| *k == kind && *n == ns)
            .count();
        let target = self.target(kind).max(1);
        let roll = self.rng.u8(0..100);
        if count == 0 || (count < target && roll < 30) {
            return self.create(sim, kind, ns);
        }
        let candidates: Vec<usize> = (0..self.live.len())
            .filter(|&i| self.live[i].0 == kind && self.live[i].1 == ns)
            .collect();
        let index = candidates[self.rng.usize(0..candidates.len())];
        let (_, ns, name) = self.live[index].clone();
        if count > target / 2 && roll >= 85 {
            self.live.swap_remove(index);
            sim.delete(
                if kind == 2 { "apps/v1" } else { "v1" },
                KINDS[kind],
                Some(&ns),
                &name,
            )?;
            return Ok(ChurnOp {
                verb: "delete",
                kind: KINDS[kind],
                namespace: ns,
                name,
            });
        }
        let api_version = if kind == 2 { "apps/v1" } else { "v1" };
        let mut current = sim.get(api_version, KINDS[kind], Some(&ns), &name)?;
        match kind {
            0 => {
                let len = self.rng.usize(1000..2000);
                current["data"]["config"] = json!(self.text(len));
            }
            1 => {
                current["metadata"]["labels"]["revision"] = json!(self.rng.u32(..).to_string());
                let container = current["spec"]["containers"][0]["name"]
                    .as_str()
                    .unwrap_or("c0")
                    .to_string();
                let line = format!(
                    "{} request served in {}ms",
                    self.text(8),
                    self.rng.u16(1..500)
                );
                sim.append_log(&ns, &name, &container, vec![line])?;
                if self.rng.u8(0..20) == 0 {
                    sim.restart_container(&ns, &name, &container, 1, "Error")?;
                    current = sim.get(api_version, KINDS[kind], Some(&ns), &name)?;
                    current["metadata"]["labels"]["revision"] = json!(self.rng.u32(..).to_string());
                }
            }
            _ => current["spec"]["replicas"] = json!(self.rng.u8(1..5)),
        }
        // Unconditional, as the cluster's own controllers write these objects too.
        if let Some(meta) = current["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
        }
        sim.update(current)?;
        Ok(ChurnOp {
            verb: "update",
            kind: KINDS[kind],
            namespace: ns,
            name,
        })
    }

    /// Runs steps at the configured rate for `duration`; returns how many ran.
    pub async fn run(&mut self, sim: &Sim, duration: Duration) -> Result<u64, ApiError> {
        let start = tokio::time::Instant::now();
        let mut done = 0u64;
        while start.elapsed() < duration {
            self.step(sim)?;
            done += 1;
            if self.config.operations_per_second > 0.0 {
                let due = start
                    + Duration::from_secs_f64(done as f64 / self.config.operations_per_second);
                tokio::time::sleep_until(due).await;
            } else if done.is_multiple_of(256) {
                tokio::task::yield_now().await;
            }
        }
        Ok(done)
    }
}
