//! The only types a Faro plugin shares with its host: `#[repr(C)]` structs,
//! the two exported symbols and the ABI version number. No dependencies, so
//! host and plugin can be built by different compilers and crate graphs.
//!
//! A plugin is a shared library exporting exactly two symbols:
//!
//! - [`SYMBOL_ABI_VERSION`]: `extern "C" fn() -> u32`, returning the
//!   [`ABI_VERSION`] the plugin was built against. The host calls it first
//!   and refuses the plugin when it differs from its own.
//! - [`SYMBOL_INIT_V1`]: [`InitV1`], which reads the plugin's configuration
//!   (JSON) and fills a [`PluginV1`] vtable.
//!
//! No Rust type crosses the boundary. Strings are UTF-8 byte ranges
//! ([`FaroStr`]) lent for the duration of one call; errors are written into
//! a buffer the host lends ([`ErrorBuf`]); results are plain integer status
//! codes. Each event crosses once, as a versioned JSON envelope:
//!
//! ```json
//! {"v":1,"eventType":"ADDED","gvr":"v1/configmaps","namespace":"default",
//!  "name":"app","resourceVersion":"42","timestamp":"2026-11-24T10:00:00Z",
//!  "object":{ ... }}
//! ```
//!
//! and the manifest a plugin returns declares
//! `{"name":…,"version":…,"gvrs":["v1/pods"]}` (`["*"]` for every GVR).
//!
//! Plugin authors use `faro-plugin-sdk`, which implements all of this
//! safely; this crate is what that SDK and the host's loader agree on.

#![no_std]

use core::ffi::c_void;

/// The ABI version this crate describes.
pub const ABI_VERSION: u32 = 1;

/// The envelope format version (`"v"` in every event envelope).
pub const ENVELOPE_VERSION: u32 = 1;

/// The NUL-terminated name of `extern "C" fn() -> u32`.
pub const SYMBOL_ABI_VERSION: &[u8] = b"faro_plugin_abi_version\0";

/// The NUL-terminated name of [`InitV1`].
pub const SYMBOL_INIT_V1: &[u8] = b"faro_plugin_init_v1\0";

/// Success.
pub const STATUS_OK: i32 = 0;
/// The configuration given to `init` was refused.
pub const STATUS_BAD_CONFIG: i32 = 1;
/// The event could not be handled; the message says why.
pub const STATUS_FAILED: i32 = 2;
/// The plugin panicked; the panic was caught at the boundary.
pub const STATUS_PANICKED: i32 = 3;
/// An argument was invalid (a null pointer, a struct too small).
pub const STATUS_INVALID_ARGUMENT: i32 = 4;

/// Log levels of [`Host::log`].
pub const LOG_ERROR: u32 = 1;
/// See [`LOG_ERROR`].
pub const LOG_WARN: u32 = 2;
/// See [`LOG_ERROR`].
pub const LOG_INFO: u32 = 3;
/// See [`LOG_ERROR`].
pub const LOG_DEBUG: u32 = 4;

/// A borrowed UTF-8 string: valid only for the call it is passed to, unless
/// stated otherwise.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FaroStr {
    /// First byte; may be null when `len` is 0.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

/// A buffer the host lends for an error message. The plugin writes at most
/// `cap` bytes of UTF-8 at `ptr` and sets `len`.
#[repr(C)]
#[derive(Debug)]
pub struct ErrorBuf {
    /// Where to write.
    pub ptr: *mut u8,
    /// How many bytes fit.
    pub cap: usize,
    /// How many bytes were written.
    pub len: usize,
}

/// What the host lends a plugin for its whole life.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Host {
    /// `size_of::<Host>()` as the host knows it.
    pub struct_size: usize,
    /// Passed back to `log` unchanged.
    pub context: *mut c_void,
    /// Writes one log line through the host's logger. Callable from any thread.
    pub log: unsafe extern "C" fn(context: *mut c_void, level: u32, message: FaroStr),
}

/// The vtable `init` fills.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginV1 {
    /// `size_of::<PluginV1>()` as the plugin knows it.
    pub struct_size: usize,
    /// The manifest JSON; owned by the plugin, valid until `free`.
    pub manifest_json: FaroStr,
    /// The plugin's state, passed to every entry point.
    pub instance: *mut c_void,
    /// Handles one event envelope (lent for the call). Returns a status
    /// code; on failure a message may be written to `error`.
    pub on_event:
        unsafe extern "C" fn(instance: *mut c_void, envelope: FaroStr, error: *mut ErrorBuf) -> i32,
    /// Releases `instance` and the manifest. Called once, last.
    pub free: unsafe extern "C" fn(instance: *mut c_void),
    /// Flushes and stops; no `on_event` follows. Returns a status code.
    pub shutdown: unsafe extern "C" fn(instance: *mut c_void, error: *mut ErrorBuf) -> i32,
}

/// `faro_plugin_init_v1`: reads `config_json` (lent) and fills `out`.
/// Returns a status code; on failure a message may be written to `error`
/// and `out` is left untouched.
pub type InitV1 = unsafe extern "C" fn(
    host: *const Host,
    config_json: FaroStr,
    out: *mut PluginV1,
    error: *mut ErrorBuf,
) -> i32;

/// `faro_plugin_abi_version`.
pub type AbiVersion = unsafe extern "C" fn() -> u32;
