//! The plugin loader: opens `.so` plugins speaking `faro-plugin-abi` and
//! makes each a [`ResourceWorker`].
//!
//! A plugin is loaded only from a configured directory, only when neither
//! group nor others may write it, with `RTLD_NOW | RTLD_LOCAL`; its ABI
//! version is checked before anything else is called, and its manifest is
//! validated. Each plugin runs on its own OS thread, fed by a bounded
//! channel, never on the async runtime. A library is never closed: its code
//! may still be referenced by the process until it exits.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use faro_core::{Gvr, LogRecord, MatchedEvent};
use faro_plugin_abi as abi;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::envelope::{envelope, log_envelope};
use crate::worker::{Handles, ResourceWorker, WorkerError};

/// Why a plugin was refused. Every message is one line naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The file is not inside a configured plugin directory.
    #[error("plugin {path}: not inside a plugin directory ({dirs}); expected a file in one")]
    OutsideDirectory {
        /// The file.
        path: PathBuf,
        /// The configured directories.
        dirs: String,
    },
    /// Group or others may write the file or its directory.
    #[error(
        "plugin {path}: refused: {what} is {who}-writable (mode {mode:o}); expected no write permission for group or others"
    )]
    Writable {
        /// The file.
        path: PathBuf,
        /// `the file` or `its directory`.
        what: &'static str,
        /// `group` or `world`.
        who: &'static str,
        /// The permission bits.
        mode: u32,
    },
    /// The file or directory could not be read.
    #[error("plugin {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `dlopen` or `dlsym` failed.
    #[error("plugin {path}: cannot be loaded: {message}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The dynamic loader's message.
        message: String,
    },
    /// Built against another ABI version.
    #[error("plugin {path}: plugin ABI {found}, this Faro speaks {expected}")]
    AbiVersion {
        /// The file.
        path: PathBuf,
        /// What the plugin reports.
        found: u32,
        /// [`abi::ABI_VERSION`].
        expected: u32,
    },
    /// `faro_plugin_init_v1` failed.
    #[error("plugin {path}: init failed with status {code}: {message}")]
    Init {
        /// The file.
        path: PathBuf,
        /// The status code.
        code: i32,
        /// The plugin's message.
        message: String,
    },
    /// The manifest is not what the ABI requires.
    #[error("plugin {path}: invalid manifest: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// What a plugin declares about itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginManifest {
    /// The worker name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// GVRs, or `["*"]` for all.
    pub gvrs: Vec<String>,
    /// The record kinds it receives: `events` (resource events) and `logs`
    /// (container log lines). Absent: `["events"]`, as every ABI 1 plugin
    /// written before log lines existed.
    #[serde(default = "events_only")]
    pub records: Vec<String>,
}

fn events_only() -> Vec<String> {
    vec!["events".to_owned()]
}

impl PluginManifest {
    /// Parses and validates a manifest; the error says what is wrong.
    pub fn parse(json: &str) -> Result<(Self, Handles), String> {
        let manifest: Self = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let valid_name = !manifest.name.is_empty()
            && manifest
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_name {
            return Err(format!(
                "name {:?} is not a plugin name; expected lowercase letters, digits and '-'",
                manifest.name
            ));
        }
        if manifest.version.is_empty() {
            return Err("version is empty; expected one such as 1.0.0".to_owned());
        }
        if let Some(other) = manifest
            .records
            .iter()
            .find(|r| !matches!(r.as_str(), "events" | "logs"))
        {
            return Err(format!(
                "records has {other:?}; expected events and/or logs"
            ));
        }
        if manifest.gvrs.is_empty() && manifest.wants_events() {
            return Err("gvrs is empty; expected GVRs such as v1/pods, or \"*\"".to_owned());
        }
        let handles = if !manifest.wants_events() {
            Handles::Only(Vec::new())
        } else if manifest.gvrs.iter().any(|g| g == "*") {
            Handles::All
        } else {
            Handles::Only(
                manifest
                    .gvrs
                    .iter()
                    .map(|g| Gvr::parse(g).map_err(|e| format!("gvrs: {e}")))
                    .collect::<Result<_, _>>()?,
            )
        };
        Ok((manifest, handles))
    }

    /// Whether it receives resource events.
    pub fn wants_events(&self) -> bool {
        self.records.iter().any(|r| r == "events")
    }

    /// Whether it receives container log lines.
    pub fn wants_logs(&self) -> bool {
        self.records.iter().any(|r| r == "logs")
    }
}

/// The name a plugin file's configuration is found under:
/// `libpod_lifecycle.so` → `pod-lifecycle`.
pub fn config_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem.strip_prefix("lib").unwrap_or(&stem).replace('_', "-")
}

/// Loads every `.so` file of `dir`, sorted by name. Each file is loaded or
/// refused on its own; the refusals are returned beside the plugins.
pub fn load_directory(
    dir: &Path,
    configs: &BTreeMap<String, serde_json::Value>,
    queue_size: usize,
) -> (Vec<PluginWorker>, Vec<PluginError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            return (
                Vec::new(),
                vec![PluginError::Io {
                    path: dir.to_path_buf(),
                    source,
                }],
            );
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "so"))
        .collect();
    files.sort();
    let mut plugins = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        let config = configs.get(&config_name(&file));
        match load(&file, &[dir.to_path_buf()], config, queue_size) {
            Ok(p) => plugins.push(p),
            Err(e) => errors.push(e),
        }
    }
    (plugins, errors)
}

fn check_permissions(path: &Path, what: &'static str, shown: &Path) -> Result<(), PluginError> {
    let mode = std::fs::metadata(path)
        .map_err(|source| PluginError::Io {
            path: shown.to_path_buf(),
            source,
        })?
        .permissions()
        .mode();
    let who = if mode & 0o002 != 0 {
        "world"
    } else if mode & 0o020 != 0 {
        "group"
    } else {
        return Ok(());
    };
    Err(PluginError::Writable {
        path: shown.to_path_buf(),
        what,
        who,
        mode: mode & 0o7777,
    })
}

/// The plugin's vtable, moved to its thread.
struct Vtable(abi::PluginV1);

// SAFETY: the ABI lets the host call a plugin from any thread, one call at a
// time; the vtable is used by exactly one thread, its plugin thread.
#[allow(unsafe_code)]
unsafe impl Send for Vtable {}

/// The context of the host's logging callback: the plugin's file, leaked so
/// that it outlives every call the plugin may make.
struct LogContext {
    plugin: String,
}

#[allow(unsafe_code)]
unsafe extern "C" fn host_log(context: *mut c_void, level: u32, message: abi::FaroStr) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: `context` is the leaked `LogContext` this host gave the plugin.
        let Some(ctx) = (unsafe { context.cast::<LogContext>().as_ref() }) else {
            return;
        };
        let text = if message.ptr.is_null() || message.len == 0 {
            String::new()
        } else {
            // SAFETY: the plugin lends `len` readable bytes for this call.
            let bytes = unsafe { std::slice::from_raw_parts(message.ptr, message.len) };
            String::from_utf8_lossy(bytes).into_owned()
        };
        match level {
            abi::LOG_ERROR => tracing::error!(plugin = %ctx.plugin, "{text}"),
            abi::LOG_WARN => tracing::warn!(plugin = %ctx.plugin, "{text}"),
            abi::LOG_INFO => tracing::info!(plugin = %ctx.plugin, "{text}"),
            _ => tracing::debug!(plugin = %ctx.plugin, "{text}"),
        }
    });
}

const ERROR_CAPACITY: usize = 1024;

fn error_text(buf: &[u8], len: usize) -> String {
    String::from_utf8_lossy(&buf[..len.min(buf.len())]).into_owned()
}

/// Loads the plugin at `path`, which must be inside one of `directories`.
pub fn load(
    path: &Path,
    directories: &[PathBuf],
    config: Option<&serde_json::Value>,
    queue_size: usize,
) -> Result<PluginWorker, PluginError> {
    let shown = path.to_path_buf();
    let io = |source| PluginError::Io {
        path: shown.clone(),
        source,
    };
    let real = path.canonicalize().map_err(io)?;
    let inside = directories.iter().any(|d| {
        d.canonicalize()
            .is_ok_and(|d| real.parent() == Some(d.as_path()))
    });
    if !inside {
        return Err(PluginError::OutsideDirectory {
            path: shown,
            dirs: directories
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    check_permissions(&real, "the file", &shown)?;
    if let Some(dir) = real.parent() {
        check_permissions(dir, "its directory", &shown)?;
    }
    let open_error = |e: libloading::Error| PluginError::Open {
        path: shown.clone(),
        message: e.to_string(),
    };
    // SAFETY: loading runs the library's initialisers. The file sits in an
    // operator-configured directory that only its owner may write, which is
    // the trust this loader is documented to extend.
    #[allow(unsafe_code)]
    let library = unsafe {
        libloading::os::unix::Library::open(
            Some(&real),
            libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
        )
    }
    .map_err(open_error)?;
    // SAFETY: the symbol's type is the one the ABI fixes for this name.
    #[allow(unsafe_code)]
    let version: abi::AbiVersion =
        *unsafe { library.get::<abi::AbiVersion>(abi::SYMBOL_ABI_VERSION) }.map_err(open_error)?;
    // SAFETY: a plain function without arguments, as the ABI fixes.
    #[allow(unsafe_code)]
    let found = unsafe { version() };
    if found != abi::ABI_VERSION {
        std::mem::forget(library);
        return Err(PluginError::AbiVersion {
            path: shown,
            found,
            expected: abi::ABI_VERSION,
        });
    }
    // SAFETY: as for the version symbol.
    #[allow(unsafe_code)]
    let init: abi::InitV1 =
        *unsafe { library.get::<abi::InitV1>(abi::SYMBOL_INIT_V1) }.map_err(open_error)?;
    // The library is never closed (see the module documentation).
    std::mem::forget(library);

    let context = Box::leak(Box::new(LogContext {
        plugin: shown.display().to_string(),
    }));
    let host: &'static abi::Host = Box::leak(Box::new(abi::Host {
        struct_size: std::mem::size_of::<abi::Host>(),
        context: std::ptr::from_mut(context).cast::<c_void>(),
        log: host_log,
    }));
    let config_json = config.map(ToString::to_string).unwrap_or_default();
    let mut out = std::mem::MaybeUninit::<abi::PluginV1>::zeroed();
    let mut buf = vec![0u8; ERROR_CAPACITY];
    let mut error = abi::ErrorBuf {
        ptr: buf.as_mut_ptr(),
        cap: buf.len(),
        len: 0,
    };
    // SAFETY: every pointer is valid for the call: `host` for the rest of the
    // process, `config_json` and `error` until it returns, `out` writable.
    #[allow(unsafe_code)]
    let code = unsafe {
        init(
            host,
            abi::FaroStr {
                ptr: config_json.as_ptr(),
                len: config_json.len(),
            },
            out.as_mut_ptr(),
            &raw mut error,
        )
    };
    if code != abi::STATUS_OK {
        return Err(PluginError::Init {
            path: shown,
            code,
            message: error_text(&buf, error.len),
        });
    }
    // SAFETY: `init` returned OK, which means it wrote the whole vtable.
    #[allow(unsafe_code)]
    let vtable = unsafe { out.assume_init() };
    let refuse = |message: String| {
        // SAFETY: the instance came from this plugin's `init` and is freed once.
        #[allow(unsafe_code)]
        unsafe {
            (vtable.free)(vtable.instance);
        }
        PluginError::Manifest {
            path: shown.clone(),
            message,
        }
    };
    if vtable.struct_size < std::mem::size_of::<abi::PluginV1>() {
        return Err(refuse(format!(
            "the vtable has {} bytes; expected {}",
            vtable.struct_size,
            std::mem::size_of::<abi::PluginV1>()
        )));
    }
    let manifest_text = if vtable.manifest_json.ptr.is_null() {
        String::new()
    } else {
        // SAFETY: the manifest is owned by the plugin and valid until `free`.
        #[allow(unsafe_code)]
        let bytes = unsafe {
            std::slice::from_raw_parts(vtable.manifest_json.ptr, vtable.manifest_json.len)
        };
        String::from_utf8_lossy(bytes).into_owned()
    };
    let (manifest, handles) = PluginManifest::parse(&manifest_text).map_err(refuse)?;
    tracing::info!(
        plugin = %manifest.name,
        version = %manifest.version,
        gvrs = ?manifest.gvrs,
        file = %shown.display(),
        "plugin loaded"
    );
    Ok(PluginWorker::start(
        manifest,
        handles,
        shown,
        Vtable(vtable),
        queue_size,
    ))
}

enum Job {
    Event(Arc<[u8]>, oneshot::Sender<Result<(), WorkerError>>),
    /// Envelopes handled in order, stopping after a panic; one result each.
    Batch(
        Vec<Arc<[u8]>>,
        oneshot::Sender<Vec<Result<(), WorkerError>>>,
    ),
    Shutdown(oneshot::Sender<Result<(), WorkerError>>),
}

/// Events queued together go to a plugin's thread in one message of at most
/// this many: the round trip between threads, not the call, is what costs.
const PLUGIN_BATCH: usize = 64;

/// A loaded plugin, served by its own OS thread.
pub struct PluginWorker {
    manifest: PluginManifest,
    handles: Handles,
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for PluginWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginWorker")
            .field("manifest", &self.manifest)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PluginWorker {
    fn start(
        manifest: PluginManifest,
        handles: Handles,
        path: PathBuf,
        vtable: Vtable,
        queue_size: usize,
    ) -> Self {
        let (jobs, rx) = mpsc::channel(queue_size.max(1));
        let thread = std::thread::Builder::new()
            .name(format!("faro-plugin-{}", manifest.name))
            .spawn(move || serve(vtable, rx))
            .ok();
        Self {
            manifest,
            handles,
            path,
            jobs,
            thread: Mutex::new(thread),
        }
    }

    /// What the plugin declared.
    pub fn manifest(&self) -> &PluginManifest {
        &self.manifest
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn call(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<(), WorkerError>>) -> Job,
    ) -> Result<(), WorkerError> {
        self.round_trip(job, stopped).await
    }

    /// Sends `job` to the plugin thread and waits for its reply; `gone`
    /// when the thread is no longer there to answer.
    async fn round_trip<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<T>) -> Job,
        gone: impl Fn() -> T,
    ) -> T {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(job(tx)).await.is_err() {
            return gone();
        }
        rx.await.unwrap_or_else(|_| gone())
    }
}

fn stopped() -> Result<(), WorkerError> {
    Err(WorkerError::new("the plugin thread has stopped"))
}

/// The plugin thread: one call at a time, in the order of the channel.
fn serve(vtable: Vtable, mut rx: mpsc::Receiver<Job>) {
    let vt = vtable.0;
    let mut buf = vec![0u8; ERROR_CAPACITY];
    let result = |code: i32, buf: &[u8], len: usize| match code {
        abi::STATUS_OK => Ok(()),
        abi::STATUS_PANICKED => Err(WorkerError::panicked(format!(
            "plugin panicked: {}",
            error_text(buf, len)
        ))),
        code => Err(WorkerError::new(format!(
            "plugin status {code}: {}",
            error_text(buf, len)
        ))),
    };
    let call = |envelope: &[u8], error: &mut abi::ErrorBuf| {
        // SAFETY: `instance` is live (not yet freed), this thread is the
        // only caller, and the envelope and error buffer outlive the call.
        #[allow(unsafe_code)]
        unsafe {
            (vt.on_event)(
                vt.instance,
                abi::FaroStr {
                    ptr: envelope.as_ptr(),
                    len: envelope.len(),
                },
                error,
            )
        }
    };
    while let Some(job) = rx.blocking_recv() {
        let mut error = abi::ErrorBuf {
            ptr: buf.as_mut_ptr(),
            cap: buf.len(),
            len: 0,
        };
        match job {
            Job::Event(envelope, reply) => {
                let code = call(&envelope, &mut error);
                let _ = reply.send(result(code, &buf, error.len));
            }
            Job::Batch(envelopes, reply) => {
                let mut results = Vec::with_capacity(envelopes.len());
                for envelope in &envelopes {
                    error.len = 0;
                    let code = call(envelope, &mut error);
                    results.push(result(code, &buf, error.len));
                    if code == abi::STATUS_PANICKED {
                        break;
                    }
                }
                let _ = reply.send(results);
            }
            Job::Shutdown(reply) => {
                // SAFETY: as for `on_event`; `free` is the last call, made once.
                #[allow(unsafe_code)]
                let code = unsafe {
                    let code = (vt.shutdown)(vt.instance, &raw mut error);
                    (vt.free)(vt.instance);
                    code
                };
                let _ = reply.send(result(code, &buf, error.len));
                return;
            }
        }
    }
}

#[async_trait::async_trait]
impl ResourceWorker for PluginWorker {
    fn name(&self) -> &str {
        &self.manifest.name
    }

    fn handles(&self) -> Handles {
        self.handles.clone()
    }

    async fn handle(&self, event: &MatchedEvent) -> Result<(), WorkerError> {
        // Serialised once per event, whatever the number of plugins.
        let bytes = event.serialized(envelope);
        self.call(|reply| Job::Event(bytes, reply)).await
    }

    fn max_batch(&self) -> usize {
        PLUGIN_BATCH
    }

    async fn handle_batch(&self, events: &[MatchedEvent]) -> Vec<Result<(), WorkerError>> {
        let envelopes = events.iter().map(|e| e.serialized(envelope)).collect();
        self.round_trip(|reply| Job::Batch(envelopes, reply), || vec![stopped()])
            .await
    }

    fn wants_logs(&self) -> bool {
        self.manifest.wants_logs()
    }

    async fn handle_log(&self, record: &LogRecord) -> Result<(), WorkerError> {
        let bytes = record.serialized(log_envelope);
        self.call(|reply| Job::Event(bytes, reply)).await
    }

    async fn shutdown(&self) -> Result<(), WorkerError> {
        let result = self.call(Job::Shutdown).await;
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        result
    }
}
