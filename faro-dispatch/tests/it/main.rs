//! Integration tests of faro-dispatch, linked as one binary. The plugin
//! tests load the real `.so` files built from `plugins/`.

mod golden;
mod plugins;
mod queues;
mod routing;
mod sinks;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use faro_core::{DynamicObject, EventHandler, EventType, Gvr, MatchedEvent};
use faro_dispatch::{Dispatcher, Handles, ResourceWorker, WorkerError};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::{Value, json};

/// Hands the dispatcher one `v1/pods` event per name, resourceVersions 1, 2, …
pub async fn send_pods(dispatcher: &Dispatcher, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        dispatcher
            .on_matched(&event("v1/pods", "ns", name, i as u64 + 1))
            .await
            .unwrap();
    }
}

/// `worker`'s count in one of the dispatcher's per-worker counter families.
pub fn worker_count(family: &Family<[(&'static str, String); 1], Counter>, worker: &str) -> u64 {
    family.get_or_create(&[("worker", worker.to_owned())]).get()
}

/// An event of `gvr` for `namespace/name` carrying `object` (metadata is filled in).
pub fn event_with(
    event_type: EventType,
    gvr: &str,
    namespace: Option<&str>,
    name: &str,
    rv: u64,
    mut object: Value,
) -> MatchedEvent {
    let gvr = Gvr::parse(gvr).unwrap();
    object["apiVersion"] = json!(gvr.api_version());
    let meta = &mut object["metadata"];
    if meta.is_null() {
        *meta = json!({});
    }
    meta["name"] = json!(name);
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    if meta["uid"].is_null() {
        meta["uid"] = json!(format!("uid-{name}"));
    }
    meta["resourceVersion"] = json!(rv.to_string());
    let object: DynamicObject = serde_json::from_value(object).unwrap();
    MatchedEvent::builder(event_type, Arc::new(gvr), Arc::new(object))
        .observed_at(
            jiff::Timestamp::from_second(1_800_000_000 + i64::try_from(rv).unwrap()).unwrap(),
        )
        .build()
}

/// A log line of `shop/web-1 app` (instance 2) at a fixed time.
pub fn log_line(container: &str, line: &str) -> faro_core::LogRecord {
    let source = Arc::new(faro_core::ContainerRef {
        namespace: Arc::from("shop"),
        pod: Arc::from("web-1"),
        pod_uid: Arc::from("uid-web-1"),
        container: Arc::from(container),
        container_type: faro_core::ContainerType::Regular,
        correlation: None,
        cluster: None,
    });
    faro_core::LogRecord::builder(source, 2, "2026-12-01T10:00:00.123456789Z", line)
        .observed_at(jiff::Timestamp::from_second(1_800_000_000).unwrap())
        .build()
}

/// A minimal event.
pub fn event(gvr: &str, ns: &str, name: &str, rv: u64) -> MatchedEvent {
    event_with(
        EventType::Added,
        gvr,
        Some(ns),
        name,
        rv,
        json!({ "kind": "Thing" }),
    )
}

/// A worker that records `(gvr, key, resourceVersion)` of everything it handles.
pub struct Recording {
    pub name: &'static str,
    pub handles: Handles,
    pub seen: Mutex<Vec<(String, String, String)>>,
}

impl Recording {
    pub fn new(name: &'static str, handles: Handles) -> Arc<Self> {
        Arc::new(Self {
            name,
            handles,
            seen: Mutex::default(),
        })
    }

    pub fn seen(&self) -> Vec<(String, String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl ResourceWorker for Recording {
    fn name(&self) -> &str {
        self.name
    }
    fn handles(&self) -> Handles {
        self.handles.clone()
    }
    async fn handle(&self, event: &MatchedEvent) -> Result<(), WorkerError> {
        self.seen.lock().unwrap().push((
            event.gvr().to_string(),
            event.key().to_string(),
            event.resource_version().to_owned(),
        ));
        Ok(())
    }
}

pub fn gvrs(list: &[&str]) -> Handles {
    Handles::Only(list.iter().map(|g| Gvr::parse(g).unwrap()).collect())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the plugins of `plugins/` once per test run, in a target directory
/// of their own (the outer `cargo test` holds the main one), and returns
/// where the `.so` files are.
pub fn built_plugins() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = workspace_root().join("target/plugin-tests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = std::process::Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--quiet", "--target-dir"])
            .arg(&target)
            .args([
                "-p",
                "pod-lifecycle",
                "-p",
                "configmap-audit",
                "-p",
                "test-panic",
                "-p",
                "test-wrong-abi",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the plugins failed");
        target.join("debug")
    })
}

/// A fresh plugin directory (mode 0755) holding copies of the named plugins (mode 0755).
pub fn plugin_dir(names: &[&str]) -> tempdir::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir::TempDir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in names {
        let file = format!("lib{}.so", name.replace('-', "_"));
        let to = dir.path().join(&file);
        std::fs::copy(built_plugins().join(&file), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

pub fn plugin_path(dir: &tempdir::TempDir, name: &str) -> PathBuf {
    dir.path().join(format!("lib{}.so", name.replace('-', "_")))
}

/// Plugin configurations by name.
pub fn configs(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// A temporary directory removed on drop; the standard library has none.
pub mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub struct TempDir(PathBuf);

    impl Default for TempDir {
        fn default() -> Self {
            Self::new()
        }
    }

    impl TempDir {
        pub fn new() -> Self {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "faro-dispatch-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
