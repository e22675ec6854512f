//! Integration tests of faro-sim, linked as one binary: kubectl as a real
//! client, and the fault-injection API.

mod churn;
mod cluster;
mod faults;
mod kubectl;
mod kubectl_cluster;
mod logs;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use faro_sim::{Sim, SimConfig};

/// A faro-sim with a fast bookmark interval, for tests.
pub async fn start() -> Sim {
    Sim::start(SimConfig {
        bookmark_interval: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await
    .expect("faro-sim starts")
}

/// A faro-sim whose simulated time runs `scale` times faster.
pub async fn living(scale: f64) -> Sim {
    Sim::start(SimConfig {
        time_scale: scale,
        bookmark_interval: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await
    .expect("faro-sim starts")
}

/// kubectl pointed at one faro-sim.
pub struct Kubectl {
    kubeconfig: PathBuf,
}

impl Kubectl {
    /// `None`, after saying why, when kubectl is not on the PATH.
    pub fn find(sim: &Sim) -> Option<Self> {
        match Command::new("kubectl")
            .args(["version", "--client"])
            .output()
        {
            Ok(out) if out.status.success() => Some(Self {
                kubeconfig: sim.kubeconfig().to_path_buf(),
            }),
            _ => {
                eprintln!(
                    "SKIPPED: kubectl is not on the PATH; this test drives faro-sim with kubectl"
                );
                None
            }
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", &self.kubeconfig).args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("kubectl runs")
    }

    /// Runs kubectl, asserts it succeeded, returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, asserts it failed with exit code 1, returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "kubectl {args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kubectl get -o json`, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("kubectl prints JSON")
    }
}

/// Polls `check` until it is true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// Writes a manifest to a file for `kubectl -f`.
pub fn manifest(name: &str, text: &str) -> PathBuf {
    let path =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("manifest written");
    path
}
