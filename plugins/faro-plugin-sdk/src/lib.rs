//! Safe plugin authoring for Faro: a [`Plugin`] trait and the
//! [`export_plugin!`] macro that emits the two symbols of `faro-plugin-abi`.
//!
//! A plugin is a `cdylib` crate:
//!
//! ```ignore
//! use faro_plugin_sdk::{Event, Host, Manifest, Plugin, export_plugin};
//!
//! struct Counter { seen: u64 }
//!
//! impl Plugin for Counter {
//!     fn manifest() -> Manifest {
//!         Manifest::new("counter", env!("CARGO_PKG_VERSION"), ["v1/pods"])
//!     }
//!     fn init(_config: serde_json::Value, _host: Host) -> Result<Self, String> {
//!         Ok(Counter { seen: 0 })
//!     }
//!     fn on_event(&mut self, _event: &Event) -> Result<(), String> {
//!         self.seen += 1;
//!         Ok(())
//!     }
//! }
//!
//! export_plugin!(Counter);
//! ```
//!
//! A plugin that also wants container log lines says so in its manifest
//! (`Manifest::new(…).with_logs()`) and implements [`Plugin::on_log`].
//!
//! Every entry point is wrapped in `catch_unwind`: a panic becomes the
//! `STATUS_PANICKED` code and never unwinds into the host. The host calls a
//! plugin from one thread at a time, in event order.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use faro_plugin_abi as abi;
use serde::{Deserialize, Serialize};
pub use serde_json;

/// What a plugin declares about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Unique among the host's workers.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// GVRs it handles, such as `v1/pods`; `*` for all.
    pub gvrs: Vec<String>,
    /// The record kinds it receives: `events` and/or `logs`. Empty (left
    /// out of the manifest): resource events only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<String>,
}

impl Manifest {
    /// A manifest handling `gvrs`.
    pub fn new<I, S>(name: &str, version: &str, gvrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            gvrs: gvrs.into_iter().map(Into::into).collect(),
            records: Vec::new(),
        }
    }

    /// Also receive container log lines ([`Plugin::on_log`]).
    #[must_use]
    pub fn with_logs(mut self) -> Self {
        self.records = vec!["events".to_owned(), "logs".to_owned()];
        self
    }

    /// Receive container log lines only, no resource events.
    #[must_use]
    pub fn logs_only(mut self) -> Self {
        self.records = vec!["logs".to_owned()];
        self
    }
}

/// One event, decoded from the host's envelope.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Envelope version.
    pub v: u32,
    /// `ADDED`, `UPDATED` or `DELETED`.
    pub event_type: String,
    /// Such as `v1/pods`.
    pub gvr: String,
    /// Absent for cluster-scoped objects.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// The event's resourceVersion.
    pub resource_version: String,
    /// When Faro observed the event, RFC 3339 UTC.
    pub timestamp: String,
    /// True for a DELETED inferred from a relist.
    #[serde(default)]
    pub inferred: bool,
    /// The workload the object belongs to, if any.
    #[serde(default)]
    pub workload: Option<String>,
    /// The object as it was in this event.
    pub object: serde_json::Value,
}

/// One container log line, decoded from the host's log envelope
/// (`"kind":"log"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Envelope version.
    pub v: u32,
    /// When the kubelet received the line, RFC 3339 with nanoseconds.
    pub timestamp: String,
    /// When Faro read it.
    pub observed: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The pod's uid.
    pub pod_uid: String,
    /// The container's name.
    pub container: String,
    /// `init`, `regular`, `sidecar` or `ephemeral`.
    pub container_type: String,
    /// The container instance.
    pub restart_count: u32,
    /// Read from a terminated instance.
    #[serde(default)]
    pub previous: bool,
    /// Cut at the configured length.
    #[serde(default)]
    pub truncated: bool,
    /// The line, without its newline.
    pub line: String,
}

/// The host's services, lent for the plugin's whole life.
#[derive(Clone, Copy)]
pub struct Host(abi::Host);

// SAFETY: the ABI requires `Host::log` to be callable from any thread, and
// `context` is only ever handed back to it.
#[allow(unsafe_code)]
unsafe impl Send for Host {}
// SAFETY: as for `Send`.
#[allow(unsafe_code)]
unsafe impl Sync for Host {}

impl Host {
    /// Writes one line through the host's logger.
    pub fn log(&self, level: u32, message: &str) {
        let text = abi::FaroStr {
            ptr: message.as_ptr(),
            len: message.len(),
        };
        // SAFETY: `log` and `context` come from the host, which keeps them
        // valid for the plugin's life; `text` is valid for this call.
        #[allow(unsafe_code)]
        unsafe {
            (self.0.log)(self.0.context, level, text)
        }
    }

    /// Logs at info level.
    pub fn info(&self, message: &str) {
        self.log(abi::LOG_INFO, message);
    }

    /// Logs at warning level.
    pub fn warn(&self, message: &str) {
        self.log(abi::LOG_WARN, message);
    }
}

/// Opens (appending, creating) the file whose path is the string at
/// `config[key]`; the error names the key and what was expected.
pub fn append_file(config: &serde_json::Value, key: &str) -> Result<std::fs::File, String> {
    let path = config[key].as_str().ok_or_else(|| {
        format!("{key}: missing; expected the path of the JSON lines file to write")
    })?;
    std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{key}: cannot open {path}: {e}"))
}

/// A Faro plugin.
pub trait Plugin: Sized + Send + 'static {
    /// Name, version and GVRs.
    fn manifest() -> Manifest;
    /// Builds the plugin from its configuration (`null` when none is given).
    fn init(config: serde_json::Value, host: Host) -> Result<Self, String>;
    /// Handles one event.
    fn on_event(&mut self, event: &Event) -> Result<(), String>;
    /// Handles one container log line, when the manifest asks for logs.
    fn on_log(&mut self, line: &LogLine) -> Result<(), String> {
        let _ = line;
        Ok(())
    }
    /// Flushes what it holds; no event follows.
    fn shutdown(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// Emits `faro_plugin_abi_version` and `faro_plugin_init_v1` for a [`Plugin`] type.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        $crate::export_plugin!($plugin, abi_version = $crate::abi::ABI_VERSION);
    };
    // Exporting another ABI version exists to test the host's refusal.
    ($plugin:ty, abi_version = $version:expr) => {
        /// The ABI version this plugin was built against.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn faro_plugin_abi_version() -> u32 {
            $version
        }

        /// Builds the plugin and fills the host's vtable.
        ///
        /// # Safety
        ///
        /// As `faro_plugin_abi::InitV1` requires.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn faro_plugin_init_v1(
            host: *const $crate::abi::Host,
            config: $crate::abi::FaroStr,
            out: *mut $crate::abi::PluginV1,
            error: *mut $crate::abi::ErrorBuf,
        ) -> i32 {
            // SAFETY: the host upholds `InitV1`'s contract, which is all `init` needs.
            unsafe { $crate::__private::init::<$plugin>(host, config, out, error) }
        }
    };
}

struct State<P> {
    plugin: P,
    manifest: String,
}

/// The bodies of the exported entry points: the only unsafe code of the SDK,
/// reached through `export_plugin!`.
#[doc(hidden)]
#[allow(unsafe_code)]
pub mod __private {
    use super::*;

    /// Writes `message` into the host's error buffer, truncated to fit.
    unsafe fn write_error(error: *mut abi::ErrorBuf, message: &str) {
        // SAFETY: the host lends either null or a valid buffer of `cap` bytes.
        let Some(buf) = (unsafe { error.as_mut() }) else {
            return;
        };
        let mut n = message.len().min(buf.cap);
        while !message.is_char_boundary(n) {
            n -= 1;
        }
        if n > 0 && !buf.ptr.is_null() {
            // SAFETY: `n <= cap` bytes fit at `ptr`, and the ranges are distinct.
            unsafe { std::ptr::copy_nonoverlapping(message.as_ptr(), buf.ptr, n) };
        }
        buf.len = n;
    }

    /// The lent bytes as text.
    unsafe fn text<'a>(s: abi::FaroStr) -> Result<&'a str, String> {
        if s.len == 0 {
            return Ok("");
        }
        if s.ptr.is_null() {
            return Err("null string with a length".to_owned());
        }
        // SAFETY: the host lends `len` readable bytes at `ptr` for this call.
        let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
        std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))
    }

    fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
        panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    }

    /// The body of `faro_plugin_init_v1`.
    ///
    /// # Safety
    ///
    /// As `faro_plugin_abi::InitV1` requires.
    pub unsafe fn init<P: Plugin>(
        host: *const abi::Host,
        config: abi::FaroStr,
        out: *mut abi::PluginV1,
        error: *mut abi::ErrorBuf,
    ) -> i32 {
        let result = catch_unwind(AssertUnwindSafe(
            || -> Result<abi::PluginV1, (i32, String)> {
                // SAFETY: the host lends a valid `Host` (or null) for the plugin's life.
                let host = unsafe { host.as_ref() }
                    .copied()
                    .ok_or((abi::STATUS_INVALID_ARGUMENT, "no host".to_owned()))?;
                // SAFETY: `config` is lent for this call.
                let text = unsafe { text(config) }.map_err(|e| (abi::STATUS_BAD_CONFIG, e))?;
                let value = if text.trim().is_empty() {
                    serde_json::Value::Null
                } else {
                    serde_json::from_str(text)
                        .map_err(|e| (abi::STATUS_BAD_CONFIG, format!("configuration: {e}")))?
                };
                let plugin = P::init(value, Host(host)).map_err(|e| (abi::STATUS_BAD_CONFIG, e))?;
                let manifest = serde_json::to_string(&P::manifest())
                    .map_err(|e| (abi::STATUS_FAILED, e.to_string()))?;
                let state = Box::new(State { plugin, manifest });
                let manifest_json = abi::FaroStr {
                    ptr: state.manifest.as_ptr(),
                    len: state.manifest.len(),
                };
                Ok(abi::PluginV1 {
                    struct_size: std::mem::size_of::<abi::PluginV1>(),
                    manifest_json,
                    instance: Box::into_raw(state).cast::<c_void>(),
                    on_event: on_event::<P>,
                    free: free::<P>,
                    shutdown: shutdown::<P>,
                })
            },
        ));
        let (code, message) = match result {
            Ok(Ok(vtable)) => {
                if out.is_null() {
                    // SAFETY: built just above by `init`.
                    unsafe { free::<P>(vtable.instance) };
                    return abi::STATUS_INVALID_ARGUMENT;
                }
                // SAFETY: the host lends a writable `PluginV1`.
                unsafe { out.write(vtable) };
                return abi::STATUS_OK;
            }
            Ok(Err(failure)) => failure,
            Err(panic) => (abi::STATUS_PANICKED, panic_message(panic.as_ref())),
        };
        // SAFETY: as in `write_error`.
        unsafe { write_error(error, &message) };
        code
    }

    unsafe extern "C" fn on_event<P: Plugin>(
        instance: *mut c_void,
        envelope: abi::FaroStr,
        error: *mut abi::ErrorBuf,
    ) -> i32 {
        let result = catch_unwind(AssertUnwindSafe(|| -> Result<(), (i32, String)> {
            // SAFETY: `instance` is the `State<P>` built by `init`, not yet freed,
            // and the host calls one entry point at a time.
            let state = unsafe { instance.cast::<State<P>>().as_mut() }
                .ok_or((abi::STATUS_INVALID_ARGUMENT, "no instance".to_owned()))?;
            // SAFETY: the envelope is lent for this call.
            let text = unsafe { text(envelope) }.map_err(|e| (abi::STATUS_INVALID_ARGUMENT, e))?;
            let bad =
                |e: serde_json::Error| (abi::STATUS_INVALID_ARGUMENT, format!("envelope: {e}"));
            #[derive(Deserialize)]
            struct Kind<'a> {
                #[serde(default, borrow)]
                kind: Option<&'a str>,
            }
            let kind: Kind<'_> = serde_json::from_str(text).map_err(bad)?;
            let result = if kind.kind == Some("log") {
                let line: LogLine = serde_json::from_str(text).map_err(bad)?;
                state.plugin.on_log(&line)
            } else {
                let event: Event = serde_json::from_str(text).map_err(bad)?;
                state.plugin.on_event(&event)
            };
            result.map_err(|e| (abi::STATUS_FAILED, e))
        }));
        finish(result, error)
    }

    unsafe extern "C" fn shutdown<P: Plugin>(
        instance: *mut c_void,
        error: *mut abi::ErrorBuf,
    ) -> i32 {
        let result = catch_unwind(AssertUnwindSafe(|| -> Result<(), (i32, String)> {
            // SAFETY: as in `on_event`.
            let state = unsafe { instance.cast::<State<P>>().as_mut() }
                .ok_or((abi::STATUS_INVALID_ARGUMENT, "no instance".to_owned()))?;
            state.plugin.shutdown().map_err(|e| (abi::STATUS_FAILED, e))
        }));
        finish(result, error)
    }

    unsafe extern "C" fn free<P: Plugin>(instance: *mut c_void) {
        if instance.is_null() {
            return;
        }
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `instance` came from `Box::into_raw` in `init` and is freed once.
            drop(unsafe { Box::from_raw(instance.cast::<State<P>>()) });
        }));
    }

    fn finish(
        result: std::thread::Result<Result<(), (i32, String)>>,
        error: *mut abi::ErrorBuf,
    ) -> i32 {
        let (code, message) = match result {
            Ok(Ok(())) => return abi::STATUS_OK,
            Ok(Err(failure)) => failure,
            Err(panic) => (abi::STATUS_PANICKED, panic_message(panic.as_ref())),
        };
        // SAFETY: the host lends null or a valid buffer.
        unsafe { write_error(error, &message) };
        code
    }
}
