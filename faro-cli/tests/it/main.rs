//! Black-box tests of the `faro` binary against faro-sim (and kubectl).

mod bad_input;
mod continuity;
mod deploy;
mod fleet;
mod ha;
mod logs;
mod monitor;
mod run;
mod story;
mod watch;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use faro_sim::{Sim, SimConfig};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub const FARO: &str = env!("CARGO_BIN_EXE_faro");

pub async fn sim() -> Sim {
    Sim::start(SimConfig {
        bookmark_interval: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await
    .expect("faro-sim starts")
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "faro-cli-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `faro` whose stdout lines are collected.
pub struct Faro {
    pub child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    pub seen: Vec<String>,
}

impl Faro {
    pub fn spawn(args: &[&str]) -> Faro {
        Self::spawn_to(args, None)
    }

    /// [`Faro::spawn`], its stderr written to `stderr` when given.
    pub fn spawn_to(args: &[&str], stderr: Option<&Path>) -> Faro {
        let stderr = match stderr {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(FARO)
            .args(args)
            .env_remove("KUBECONFIG")
            .env_remove("FARO_CONFIG")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("faro starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Faro {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to 30 s) for a stdout line starting with `prefix`; returns the rest.
    pub async fn line(&mut self, prefix: &str) -> String {
        if let Some(found) = self.seen.iter().find(|l| l.starts_with(prefix)) {
            return found[prefix.len()..].trim().to_owned();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no {prefix} line within 30 s; saw {:?}", self.seen))
                .unwrap_or_else(|| panic!("faro ended before {prefix}; saw {:?}", self.seen));
            self.seen.push(line.clone());
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit code and the summary.
    pub async fn stop(mut self) -> (i32, Value) {
        self.signal("TERM");
        let summary = self.line("FARO_SUMMARY:").await;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("faro exits within 30 s")
            .unwrap();
        (
            status.code().unwrap_or(-1),
            serde_json::from_str(&summary).unwrap(),
        )
    }
}

/// The JSON lines of an events file.
pub fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `TYPE gvr ns/name` of each record, sorted.
pub fn shorts(records: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .map(|r| {
            let ns = r["namespace"]
                .as_str()
                .map(|n| format!("{n}/"))
                .unwrap_or_default();
            format!(
                "{} {} {ns}{}",
                r["eventType"].as_str().unwrap(),
                r["gvr"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

/// kubectl against one faro-sim; `None` (with a SKIPPED line) when kubectl is missing.
pub struct Kubectl {
    kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn new(sim: &Sim) -> Option<Kubectl> {
        let found = std::process::Command::new("kubectl")
            .arg("version")
            .arg("--client")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            eprintln!("SKIPPED: kubectl is not on the PATH; this test drives the cluster with it");
            return None;
        }
        Some(Kubectl {
            kubeconfig: sim.kubeconfig().to_path_buf(),
        })
    }

    /// Runs kubectl with `stdin`, asserting success; returns stdout.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn apply(&self, manifest: &str) {
        self.run(&["apply", "--validate=false", "-f", "-"], Some(manifest));
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A fresh plugin directory holding the named plugins of `plugins/`, built
/// once per test run in a target directory of their own (the outer `cargo
/// test` holds the main one).
pub fn plugin_dir(names: &[&str]) -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    static BUILT: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let built = {
        let mut built = BUILT.lock().unwrap();
        built
            .get_or_insert_with(|| {
                let target = workspace_root().join("target/plugin-tests");
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
                let status = std::process::Command::new(cargo)
                    .current_dir(workspace_root())
                    .args(["build", "--quiet", "--target-dir"])
                    .arg(&target)
                    .args(["-p", "test-panic"])
                    .status()
                    .expect("cargo runs");
                assert!(status.success(), "building the plugins failed");
                target.join("debug")
            })
            .clone()
    };
    let dir = TempDir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in names {
        let file = format!("lib{}.so", name.replace('-', "_"));
        let to = dir.path().join(&file);
        std::fs::copy(built.join(&file), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}
